//! Pod Security Standards: the level a pod meets (privileged, baseline, restricted) under a
//! given Pod Security Admission version, evaluated the way PSA evaluates that version.
//!
//! Each control lives in its own module as a [`Control`]: its id (PSA's check id), its level and
//! the version each of its variants starts at. A restricted variant may override baseline
//! controls (`capabilities_restricted` replaces `capabilities_baseline` from v1.22, and so on);
//! [`checks`] assembles the list PSA runs for a level and version. Pods are read as
//! `serde_json::Value` the way Go decodes them into a typed `PodSpec`: `null` is absent, and a
//! field of the wrong type counts as unset. Nothing here does I/O.

use std::fmt;
use std::str::FromStr;

use serde_json::Value;

use crate::model::path::FieldPath;

mod allow_privilege_escalation;
mod app_armor_profile;
mod capabilities_baseline;
mod capabilities_restricted;
mod host_namespaces;
mod host_path_volumes;
mod host_ports;
mod host_probes;
mod privileged;
mod proc_mount;
pub mod report;
mod restricted_volumes;
mod run_as_non_root;
mod run_as_user;
mod se_linux_options;
mod seccomp_baseline;
mod seccomp_restricted;
mod sysctls;
mod windows_host_process;

/// The newest minor version any control changes at; later versions (and `latest`) evaluate as
/// this one, as PSA does.
pub const MAX_MINOR: u32 = 37;

/// A Pod Security Standards level, least to most restrictive.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Level {
    /// No restrictions.
    Privileged,
    /// Prevents known privilege escalations.
    Baseline,
    /// Current pod hardening best practice.
    Restricted,
}

impl Level {
    /// The lowercase name PSA uses.
    pub fn as_str(self) -> &'static str {
        match self {
            Level::Privileged => "privileged",
            Level::Baseline => "baseline",
            Level::Restricted => "restricted",
        }
    }
}

impl fmt::Display for Level {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Level {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "privileged" => Ok(Level::Privileged),
            "baseline" => Ok(Level::Baseline),
            "restricted" => Ok(Level::Restricted),
            _ => Err(format!(
                "unknown level `{s}`: expected privileged, baseline or restricted"
            )),
        }
    }
}

/// A Pod Security Admission policy version: `v1.N` or `latest`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Version {
    /// The minor version; `None` for `latest`.
    pub minor: Option<u32>,
}

impl Version {
    /// `latest`.
    pub const LATEST: Version = Version { minor: None };

    /// `v1.minor`.
    pub fn v1(minor: u32) -> Self {
        Version { minor: Some(minor) }
    }

    /// The minor version the checks are taken from (versions past [`MAX_MINOR`] are the same).
    pub fn effective_minor(self) -> u32 {
        self.minor.map_or(MAX_MINOR, |m| m.min(MAX_MINOR))
    }
}

impl fmt::Display for Version {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.minor {
            Some(m) => write!(f, "v1.{m}"),
            None => f.write_str("latest"),
        }
    }
}

impl FromStr for Version {
    type Err = String;

    /// Parses `latest`, `v1.N` or `1.N` (PSA's label syntax, with the `v` optional).
    fn from_str(s: &str) -> Result<Self, String> {
        if s == "latest" {
            return Ok(Version::LATEST);
        }
        let bad =
            || format!("bad Pod Security version `{s}`: expected v1.0 … v1.{MAX_MINOR} or latest");
        let minor = s
            .strip_prefix('v')
            .unwrap_or(s)
            .strip_prefix("1.")
            .ok_or_else(bad)?;
        if minor.is_empty()
            || !minor.bytes().all(|b| b.is_ascii_digit())
            || minor.len() > 1 && minor.starts_with('0')
        {
            return Err(bad());
        }
        minor.parse().map(Version::v1).map_err(|_| bad())
    }
}

/// A pod to evaluate: its metadata and spec as they sit in the object, with their paths.
#[derive(Debug, Clone)]
pub struct Pod<'v> {
    /// The pod's (or pod template's) metadata, if any.
    pub metadata: Option<&'v Value>,
    /// The PodSpec.
    pub spec: &'v Value,
    /// Path of the metadata from the object's root.
    pub metadata_path: FieldPath,
    /// Path of the PodSpec from the object's root.
    pub spec_path: FieldPath,
}

/// One container (init, regular or ephemeral) of a pod.
#[derive(Debug, Clone)]
pub struct ContainerRef<'v> {
    /// Its name (empty when unset).
    pub name: &'v str,
    /// The container object.
    pub value: &'v Value,
    /// Its path from the object's root.
    pub path: FieldPath,
}

/// `v` unless it is absent or `null`.
fn present(v: Option<&Value>) -> Option<&Value> {
    v.filter(|v| !v.is_null())
}

/// True only for a boolean `true` (Go reads anything else as unset or an error).
fn is_true(v: Option<&Value>) -> bool {
    matches!(v, Some(Value::Bool(true)))
}

/// A string field, `""` when unset or not a string.
fn str_of(v: Option<&Value>) -> &str {
    v.and_then(Value::as_str).unwrap_or("")
}

impl<'v> Pod<'v> {
    /// A pod from an object and the paths of its metadata and spec; `None` when there is no spec
    /// mapping at that path.
    pub fn at(object: &'v Value, metadata: &FieldPath, spec: &FieldPath) -> Option<Self> {
        let spec_value = spec.get(object).filter(|v| v.is_object())?;
        Some(Pod {
            metadata: metadata.get(object).filter(|v| v.is_object()),
            spec: spec_value,
            metadata_path: metadata.clone(),
            spec_path: spec.clone(),
        })
    }

    /// A bare pod spec (and metadata) at the root, for tests.
    pub fn bare(metadata: Option<&'v Value>, spec: &'v Value) -> Self {
        Pod {
            metadata,
            spec,
            metadata_path: FieldPath::root().key("metadata"),
            spec_path: FieldPath::root().key("spec"),
        }
    }

    /// Init containers, then containers, then ephemeral containers, as PSA visits them.
    pub fn containers(&self) -> Vec<ContainerRef<'v>> {
        let mut out = Vec::new();
        for field in ["initContainers", "containers", "ephemeralContainers"] {
            if let Some(Value::Array(list)) = self.spec.get(field) {
                for (i, c) in list.iter().enumerate() {
                    out.push(ContainerRef {
                        name: str_of(c.get("name")),
                        value: c,
                        path: self.spec_path.key(field).index(i),
                    });
                }
            }
        }
        out
    }

    /// A PodSpec field (not `null`).
    pub fn field(&self, name: &str) -> Option<&'v Value> {
        present(self.spec.get(name))
    }

    /// Path of a PodSpec field.
    pub fn field_path(&self, name: &str) -> FieldPath {
        self.spec_path.key(name)
    }

    /// A field of the pod's `securityContext` (not `null`).
    pub fn sc(&self, field: &str) -> Option<&'v Value> {
        present(self.field("securityContext").and_then(|sc| sc.get(field)))
    }

    /// Path of a field of the pod's `securityContext`.
    pub fn sc_path(&self, field: &str) -> FieldPath {
        self.spec_path.key("securityContext").key(field)
    }

    /// The pod's annotations with string values.
    pub fn annotations(&self) -> Vec<(&'v str, &'v str)> {
        match self.metadata.and_then(|m| m.get("annotations")) {
            Some(Value::Object(map)) => map
                .iter()
                .filter_map(|(k, v)| v.as_str().map(|v| (k.as_str(), v)))
                .collect(),
            _ => Vec::new(),
        }
    }

    /// Path of an annotation.
    pub fn annotation_path(&self, key: &str) -> FieldPath {
        self.metadata_path.key("annotations").key(key)
    }

    /// `spec.os.name: windows`.
    pub fn is_windows(&self) -> bool {
        str_of(self.field("os").and_then(|os| os.get("name"))) == "windows"
    }

    /// `spec.hostUsers: false`: the pod runs in a user namespace.
    pub fn in_user_namespace(&self) -> bool {
        matches!(self.field("hostUsers"), Some(Value::Bool(false)))
    }
}

impl<'v> ContainerRef<'v> {
    /// A field of the container's `securityContext` (not `null`).
    pub fn sc(&self, field: &str) -> Option<&'v Value> {
        present(present(self.value.get("securityContext")).and_then(|sc| sc.get(field)))
    }

    /// True when the container has a `securityContext` (not `null`).
    pub fn has_sc(&self) -> bool {
        present(self.value.get("securityContext")).is_some()
    }

    /// Path of a field of the container's `securityContext`.
    pub fn sc_path(&self, field: &str) -> FieldPath {
        self.path.key("securityContext").key(field)
    }
}

/// Why a control fails: a sentence, and the fields that make it fail (or must be set).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Failure {
    /// What is wrong and how to fix it.
    pub message: String,
    /// The offending fields, from the object's root.
    pub paths: Vec<FieldPath>,
}

/// The outcome of one check: `None` when the pod passes.
pub type Outcome = Option<Failure>;

/// One version of a control's check.
#[derive(Debug, Clone, Copy)]
pub struct Variant {
    /// The first minor version (of 1.x) this variant applies to.
    pub since: u32,
    /// The check.
    pub check: fn(&Pod<'_>) -> Outcome,
    /// Baseline controls this (restricted) variant replaces.
    pub overrides: &'static [&'static str],
}

/// A Pod Security control.
#[derive(Debug, Clone, Copy)]
pub struct Control {
    /// PSA's check id.
    pub id: &'static str,
    /// The level it belongs to.
    pub level: Level,
    /// Its variants, oldest first.
    pub variants: &'static [Variant],
}

impl Control {
    /// The variant in force at `minor`, if the control exists yet.
    pub fn at(&self, minor: u32) -> Option<&Variant> {
        self.variants.iter().rev().find(|v| v.since <= minor)
    }
}

/// Every control.
pub fn controls() -> &'static [Control] {
    const ALL: &[Control] = &[
        app_armor_profile::CONTROL,
        capabilities_baseline::CONTROL,
        host_namespaces::CONTROL,
        host_path_volumes::CONTROL,
        host_ports::CONTROL,
        host_probes::CONTROL,
        privileged::CONTROL,
        proc_mount::CONTROL,
        seccomp_baseline::CONTROL,
        se_linux_options::CONTROL,
        sysctls::CONTROL,
        windows_host_process::CONTROL,
        allow_privilege_escalation::CONTROL,
        capabilities_restricted::CONTROL,
        proc_mount::RESTRICTED,
        restricted_volumes::CONTROL,
        run_as_non_root::CONTROL,
        run_as_user::CONTROL,
        seccomp_restricted::CONTROL,
    ];
    ALL
}

/// The checks PSA runs for `level` at `version`: baseline controls first, then restricted ones;
/// at restricted, baseline controls that a restricted variant overrides are left out.
pub fn checks(level: Level, version: Version) -> Vec<(&'static Control, &'static Variant)> {
    let minor = version.effective_minor();
    let active = |l: Level| {
        controls()
            .iter()
            .filter(move |c| c.level == l)
            .filter_map(move |c| c.at(minor).map(|v| (c, v)))
    };
    match level {
        Level::Privileged => Vec::new(),
        Level::Baseline => active(Level::Baseline).collect(),
        Level::Restricted => {
            let restricted: Vec<_> = active(Level::Restricted).collect();
            let overridden: Vec<&str> = restricted
                .iter()
                .flat_map(|(_, v)| v.overrides.iter().copied())
                .collect();
            active(Level::Baseline)
                .filter(|(c, _)| !overridden.contains(&c.id))
                .chain(restricted)
                .collect()
        }
    }
}

/// A failing control.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Violation {
    /// The control's id.
    pub control: &'static str,
    /// The control's level.
    pub level: Level,
    /// Why.
    pub failure: Failure,
}

/// The failing checks of `level` at `version`.
pub fn violations(pod: &Pod<'_>, level: Level, version: Version) -> Vec<Violation> {
    checks(level, version)
        .into_iter()
        .filter_map(|(c, v)| {
            (v.check)(pod).map(|failure| Violation {
                control: c.id,
                level: c.level,
                failure,
            })
        })
        .collect()
}

/// True when the pod meets `level` at `version`.
pub fn meets(pod: &Pod<'_>, level: Level, version: Version) -> bool {
    checks(level, version)
        .into_iter()
        .all(|(_, v)| (v.check)(pod).is_none())
}

/// A pod's verdict: the most restrictive level it meets, and every failing control (the
/// baseline ones, then those only restricted has).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verdict {
    /// The level the pod meets.
    pub level: Level,
    /// The controls that keep it from `restricted`.
    pub violations: Vec<Violation>,
}

/// Evaluates a pod at baseline and restricted.
pub fn evaluate(pod: &Pod<'_>, version: Version) -> Verdict {
    let baseline = violations(pod, Level::Baseline, version);
    let restricted = violations(pod, Level::Restricted, version);
    let level = if restricted.is_empty() {
        Level::Restricted
    } else if baseline.is_empty() {
        Level::Baseline
    } else {
        Level::Privileged
    };
    let mut all = baseline;
    for v in restricted {
        if !all.iter().any(|b| b.control == v.control) {
            all.push(v);
        }
    }
    Verdict {
        level,
        violations: all,
    }
}

/// `"a", "b"` (names quoted and joined, as in messages).
fn quoted<S: AsRef<str>>(items: &[S]) -> String {
    items
        .iter()
        .map(|s| format!("{:?}", s.as_ref()))
        .collect::<Vec<_>>()
        .join(", ")
}

/// `container "a"` or `containers "a", "b"`.
fn containers_named<S: AsRef<str>>(names: &[S]) -> String {
    let noun = if names.len() == 1 {
        "container"
    } else {
        "containers"
    };
    format!("{noun} {}", quoted(names))
}

/// Sorted, deduplicated strings.
fn sorted_set(mut v: Vec<String>) -> Vec<String> {
    v.sort();
    v.dedup();
    v
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn versions_parse_and_clamp() {
        assert_eq!("v1.25".parse::<Version>().unwrap(), Version::v1(25));
        assert_eq!("1.0".parse::<Version>().unwrap(), Version::v1(0));
        assert_eq!("latest".parse::<Version>().unwrap(), Version::LATEST);
        assert!("v2.0".parse::<Version>().is_err());
        assert!("v1.x".parse::<Version>().is_err());
        assert_eq!(Version::v1(99).effective_minor(), MAX_MINOR);
    }

    #[test]
    fn overrides_replace_baseline_controls() {
        let ids = |l, m| -> Vec<&str> {
            checks(l, Version::v1(m))
                .iter()
                .map(|(c, _)| c.id)
                .collect()
        };
        let r21 = ids(Level::Restricted, 21);
        assert!(r21.contains(&"capabilities_baseline"));
        assert!(!r21.contains(&"capabilities_restricted"));
        let r22 = ids(Level::Restricted, 22);
        assert!(!r22.contains(&"capabilities_baseline"));
        assert!(r22.contains(&"capabilities_restricted"));
        assert!(!r22.contains(&"hostPathVolumes"));
        assert!(ids(Level::Restricted, 35).contains(&"procMount_restricted"));
        assert!(!ids(Level::Restricted, 35).contains(&"procMount"));
        assert!(!ids(Level::Baseline, 33).contains(&"hostProbesAndHostLifecycle"));
    }

    #[test]
    fn levels() {
        let spec = json!({"containers": [{"name": "a", "image": "x"}]});
        let pod = Pod::bare(None, &spec);
        let v = evaluate(&pod, Version::LATEST);
        assert_eq!(v.level, Level::Baseline);
        let spec = json!({
            "securityContext": {"runAsNonRoot": true, "seccompProfile": {"type": "RuntimeDefault"}},
            "containers": [{"name": "a", "securityContext": {
                "allowPrivilegeEscalation": false, "capabilities": {"drop": ["ALL"]}}}]
        });
        assert_eq!(
            evaluate(&Pod::bare(None, &spec), Version::LATEST).level,
            Level::Restricted
        );
        let spec = json!({"hostNetwork": true, "containers": [{"name": "a"}]});
        let v = evaluate(&Pod::bare(None, &spec), Version::LATEST);
        assert_eq!(v.level, Level::Privileged);
        assert_eq!(v.violations[0].control, "hostNamespaces");
        assert_eq!(
            v.violations[0].failure.paths[0].to_string(),
            "spec.hostNetwork"
        );
    }
}
