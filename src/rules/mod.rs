//! The rule engine: a rule is one module that looks at a pod and returns the changes it wants
//! and what it has to report; the registry fixes their order. Rules never edit objects
//! themselves: the engine applies their changes with one applier, after each rule, so later
//! rules see earlier rules' work (writable-tmp sees the read-only root filesystem).
//!
//! Besides the per-pod [`Rule::check`], a rule may use the stream hooks, which the engine calls
//! for every rule of the registry alike (it knows no rule by name):
//! - [`Rule::indexes`] / [`Rule::index`]: see each object of the stream once, before any rule
//!   runs, and record what the rule needs into its own slot of the [`StreamIndex`];
//! - [`Rule::reads_object`] / [`Rule::check_object`]: work on a whole object (after the per-pod
//!   rules), also on kinds without a pod;
//! - [`Rule::observe`]: note something of every workload hardened (for [`Rule::settle`]);
//! - [`Rule::plan`] / [`Rule::settle`] / [`Rule::create`]: objects to create after an object
//!   (`Op::Create` changes), decided once the whole stream or list is known.

use std::any::Any;

use serde_json::Value;

use crate::change::{Change, Findings, ResourceRef};
use crate::config::Policy;
use crate::model::workload::PodView;

pub mod automount_service_account_token;
pub mod default_probes;
pub mod drop_capabilities;
pub mod evidence;
pub mod no_privilege_escalation;
pub mod pin_image_digests;
pub mod pod_disruption_budget;
pub mod read_only_root_fs;
pub mod run_as_non_root;
pub mod seccomp;
#[cfg(test)]
mod testing;
pub mod writable_tmp;

pub use crate::config::settings::{RuleSettings, SettingsDescriptor};

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

    /// True when a document's text may hold an object [`Rule::index`] records; documents for
    /// which no rule says so are never parsed for the index (a cheap word test).
    fn indexes(&self, _text: &str) -> bool {
        false
    }
    /// Sees one object of the stream (a list's items one by one) before any rule runs, and
    /// records what it needs in its own slot ([`StreamIndex::slot`]). Called whether or not the
    /// rule is enabled (a ResourceList's functionConfig may enable it later).
    fn index(&self, _object: &Value, _index: &mut StreamIndex) {}

    /// True when [`Rule::check_object`] reads objects of this kind: the engine then parses them
    /// even when they hold no pod.
    fn reads_object(&self, _api_version: &str, _kind: &str, _policy: &Policy) -> bool {
        false
    }
    /// Inspects a whole object after the per-pod rules ran (when enabled and
    /// [`Rule::reads_object`] says so) and records changes and findings; `index` is what the
    /// rules' [`Rule::index`] hooks recorded of the stream.
    fn check_object(
        &self,
        _object: &Value,
        _policy: &Policy,
        _index: &StreamIndex,
        _out: &mut Findings,
    ) {
    }

    /// Notes something about a workload that was hardened (when enabled), for
    /// [`Rule::settle`], which sees the notes of every workload of the stream or list.
    fn observe(&self, _object: &Value, _policy: &Policy) -> Option<Box<Note>> {
        None
    }
    /// Decides whether an object should be created after `object` (when enabled).
    /// `repeated`: the input holds another object of the same identity.
    fn plan(
        &self,
        _object: &Value,
        _policy: &Policy,
        _index: &StreamIndex,
        _repeated: bool,
    ) -> Plan {
        Plan::Nothing
    }
    /// Why a planned object is withdrawn because `anchor` (the object it was planned for) is in
    /// the input twice (found only once a whole stream is read).
    fn withdrawn(&self, anchor: &ResourceRef) -> String {
        format!(
            "nothing created: {} is in the input more than once",
            anchor.display()
        )
    }
    /// Why a planned object is not created after a document that ends inside a block scalar
    /// without a final line break (the line break it needs would change that value).
    fn not_placed(&self) -> String {
        "nothing created: the input ends inside a block scalar (`|` or `>`) without a final \
         line break, and an object after it would add one to that value; end the input with a \
         line break"
            .into()
    }
    /// Once the whole stream (or list) is known: for each of this rule's planned objects, in
    /// order, `None` to keep it or `Some(message)` (an info result) to drop it.
    fn settle(
        &self,
        planned: &[&Note],
        _notes: &[&Note],
        _index: &StreamIndex,
    ) -> Vec<Option<String>> {
        vec![None; planned.len()]
    }
    /// The objects to create for the planned ones kept, in order: one `Op::Create` change each
    /// (its message is the result's: `generated: …`). What must be sequential (naming each
    /// object against the names already taken) is done here; each object is built only when the
    /// engine asks for it ([`Creations::build`]), on any thread and in any order, so a stream's
    /// created objects are never all in memory and are built on every core.
    fn create<'a>(&'a self, _planned: Vec<&'a Note>, _index: &'a StreamIndex) -> Creations<'a> {
        Creations::none()
    }
}

/// What [`Rule::create`] returns: how many objects it creates (the first ones of the planned
/// objects it was given, in order) and how to build the `i`th, which any thread may call.
pub struct Creations<'a> {
    count: usize,
    build: Box<dyn Fn(usize) -> Change + Send + Sync + 'a>,
}

impl<'a> Creations<'a> {
    /// `count` objects, the `i`th built by `build(i)`.
    pub fn new(count: usize, build: impl Fn(usize) -> Change + Send + Sync + 'a) -> Self {
        Creations {
            count,
            build: Box::new(build),
        }
    }

    /// Nothing created.
    pub fn none() -> Self {
        Creations::new(0, |_| unreachable!("no object to build"))
    }

    /// How many objects are created.
    pub fn len(&self) -> usize {
        self.count
    }

    /// True when nothing is created.
    pub fn is_empty(&self) -> bool {
        self.count == 0
    }

    /// The `i`th object's change; `None` past the last.
    pub fn build(&self, i: usize) -> Option<Change> {
        (i < self.count).then(|| (self.build)(i))
    }
}

/// A rule's own data, passed through the engine untouched (a planned object, a note).
pub type Note = dyn Any + Send + Sync;

/// What [`Rule::plan`] decided for one object.
pub enum Plan {
    /// Nothing to create, nothing to say.
    Nothing,
    /// Nothing created, and why (info) or what is wrong (warning).
    Skip {
        /// True for a warning.
        warning: bool,
        /// For people.
        message: String,
    },
    /// Create an object: the rule's own plan, named and finished by [`Rule::create`].
    Create(Box<Note>),
}

/// What the rules' [`Rule::index`] hooks recorded of the whole stream: one typed slot per rule,
/// so a rule adds its own index data without the engine knowing its type.
#[derive(Default)]
pub struct StreamIndex {
    slots: Vec<(&'static str, Box<Note>)>,
}

impl std::fmt::Debug for StreamIndex {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_list()
            .entries(self.slots.iter().map(|(id, _)| id))
            .finish()
    }
}

impl StreamIndex {
    /// Records `object` (or each item of a `List`/`ResourceList`, nested lists too) with every
    /// rule's [`Rule::index`].
    pub fn record(&mut self, object: &Value) {
        if let Some(Value::Array(items)) = object.get("items") {
            let kind = object.get("kind").and_then(Value::as_str).unwrap_or("");
            if kind == "ResourceList" || kind.ends_with("List") {
                for item in items {
                    self.record(item);
                }
                return;
            }
        }
        for rule in registry() {
            rule.index(object, self);
        }
    }

    /// True when some rule's index may care about a document with this text.
    pub fn may_matter(text: &str) -> bool {
        registry().iter().any(|r| r.indexes(text))
    }

    /// The slot of rule `id`, created empty on first use.
    pub fn slot<T: Default + Send + Sync + 'static>(&mut self, id: &'static str) -> &mut T {
        let at = match self.slots.iter().position(|(k, _)| *k == id) {
            Some(at) => at,
            None => {
                self.slots.push((id, Box::new(T::default())));
                self.slots.len() - 1
            }
        };
        self.slots[at]
            .1
            .downcast_mut()
            .expect("a rule's index slot holds the rule's own type")
    }

    /// The slot of rule `id`, if it recorded anything.
    pub fn get<T: 'static>(&self, id: &str) -> Option<&T> {
        self.slots
            .iter()
            .find(|(k, _)| *k == id)
            .and_then(|(_, v)| v.downcast_ref())
    }
}

/// True when some rule's [`Rule::check_object`] reads objects of this kind.
pub fn object_rule_reads(api_version: &str, kind: &str, policy: &Policy) -> bool {
    registry()
        .iter()
        .any(|r| r.reads_object(api_version, kind, policy))
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
    &automount_service_account_token::AutomountServiceAccountToken,
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
