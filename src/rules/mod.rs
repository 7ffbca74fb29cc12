//! The rule engine: a rule is one module that looks at a pod and returns the changes it wants
//! and what it has to report; the registry fixes their order. Rules never edit objects
//! themselves: the engine applies their changes with one applier, after each rule, so later
//! rules see earlier rules' work (writable-tmp sees the read-only root filesystem).

use crate::change::Findings;
use crate::config::Policy;
use crate::model::workload::PodView;

pub mod default_probes;
pub mod drop_capabilities;
pub mod evidence;
pub mod no_privilege_escalation;
pub mod pin_image_digests;
pub mod pod_disruption_budget;
pub mod read_only_root_fs;
pub mod run_as_non_root;
pub mod seccomp;
pub mod settings;
#[cfg(test)]
mod testing;
pub mod writable_tmp;

pub use settings::{RuleSettings, SettingsDescriptor};

/// A hardening rule.
pub trait Rule: Sync {
    /// The public id (`run-as-non-root`).
    fn id(&self) -> &'static str;
    /// One line for `kube-harden rules`.
    fn summary(&self) -> &'static str;
    /// The rule's documentation in Markdown: what it changes and why, settings, opting out, and a
    /// before/after example.
    fn docs(&self) -> &'static str;
    /// Whether the rule runs when no policy mentions it.
    fn enabled_by_default(&self) -> bool {
        true
    }
    /// False for rules that work on the whole stream (the engine drives them) rather than on
    /// one pod at a time.
    fn per_pod(&self) -> bool {
        true
    }
    /// The rule's settings (spec keys it owns, their schema and validation), if it has any:
    /// `Some(SettingsDescriptor::of::<Settings>())`. The policy schema, the spec reader, the
    /// ConfigMap and Argo CD string forms and the npm types are generated from these.
    fn settings(&self) -> Option<SettingsDescriptor> {
        None
    }
    /// Inspects one pod and records changes and findings.
    fn check(&self, pod: &PodView<'_>, policy: &Policy, out: &mut Findings);
}

static RULES: &[&dyn Rule] = &[
    &run_as_non_root::RunAsNonRoot,
    &seccomp::Seccomp,
    &no_privilege_escalation::NoPrivilegeEscalation,
    &drop_capabilities::DropCapabilities,
    &read_only_root_fs::ReadOnlyRootFilesystem,
    &writable_tmp::WritableTmp,
    &default_probes::DefaultProbes,
    &pin_image_digests::PinImageDigests,
    &pod_disruption_budget::PodDisruptionBudget,
];

/// Every rule, in the order they run.
pub fn registry() -> &'static [&'static dyn Rule] {
    RULES
}

/// The rule with this id.
pub fn by_id(id: &str) -> Option<&'static dyn Rule> {
    RULES.iter().copied().find(|r| r.id() == id)
}

/// Linux-only rules do nothing on Windows pods (the API server rejects the fields there); this
/// reports that once per pod and rule.
pub(crate) fn skip_windows(rule: &'static str, pod: &PodView<'_>, out: &mut Findings) -> bool {
    if pod.windows {
        out.info(
            rule,
            Some(pod.location.spec.clone()),
            "Windows pod: Linux-only securityContext fields are not added",
        );
    }
    pod.windows
}
