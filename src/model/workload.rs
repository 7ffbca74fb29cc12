//! Where pod templates live in each workload kind, and a read-only view of one pod that rules
//! inspect: its containers, the facts that decide what may be added, and the opt-outs.

use std::collections::HashSet;

use serde_json::Value;

use super::path::{FieldPath, Pointer};
use crate::config::{ExtraWorkload, Policy};
use crate::model::path::Field;

/// Annotation that opts a workload or pod template out of rules: `all` or a comma list of ids.
pub const SKIP_ANNOTATION: &str = "kube-harden.dev/skip";
/// Prefix of the per-container opt-out annotation (`kube-harden.dev/skip.<container>`).
pub const SKIP_CONTAINER_PREFIX: &str = "kube-harden.dev/skip.";
/// Annotation that marks configuration objects (Kptfile, function configs) never to change.
pub const LOCAL_CONFIG: &str = "config.kubernetes.io/local-config";

/// Where the pod lives inside a workload object.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PodLocation {
    /// Path of the pod's metadata (annotations for safe-to-evict and opt-outs).
    pub metadata: FieldPath,
    /// Path of the PodSpec.
    pub spec: FieldPath,
}

/// The API group of an `apiVersion` (`apps/v1` → `apps`, `v1` → the core group `""`).
pub fn group_of(api_version: &str) -> &str {
    api_version.rsplit_once('/').map_or("", |(g, _)| g)
}

/// The pod location for a kind, or `None` when the kind carries no pod.
pub fn pod_location(api_version: &str, kind: &str, policy: &Policy) -> Option<PodLocation> {
    let group = group_of(api_version);
    let template = |p: &str| {
        let base = FieldPath::root().keys(p);
        Some(PodLocation {
            metadata: base.key("metadata"),
            spec: base.key("spec"),
        })
    };
    match (group, kind) {
        ("", "Pod") => Some(PodLocation {
            metadata: FieldPath::root().key("metadata"),
            spec: FieldPath::root().key("spec"),
        }),
        ("", "ReplicationController") => template("spec.template"),
        ("apps" | "extensions", "Deployment" | "StatefulSet" | "DaemonSet" | "ReplicaSet") => {
            template("spec.template")
        }
        ("batch", "Job") => template("spec.template"),
        ("batch", "CronJob") => template("spec.jobTemplate.spec.template"),
        ("argoproj.io", "Rollout") => template("spec.template"),
        ("apps.openshift.io", "DeploymentConfig") | ("", "DeploymentConfig") => {
            template("spec.template")
        }
        _ => {
            let w = extra_workload(api_version, kind, policy)?;
            if let Some(p) = &w.pod_template_path {
                let base = FieldPath::parse(p)?;
                Some(PodLocation {
                    metadata: base.key("metadata"),
                    spec: base.key("spec"),
                })
            } else {
                let spec = FieldPath::parse(w.pod_spec_path.as_deref()?)?;
                Some(PodLocation {
                    metadata: FieldPath::root().key("metadata"),
                    spec,
                })
            }
        }
    }
}

/// The policy's entry for a custom workload kind.
fn extra_workload<'p>(
    api_version: &str,
    kind: &str,
    policy: &'p Policy,
) -> Option<&'p ExtraWorkload> {
    policy
        .spec
        .workloads
        .iter()
        .find(|w| w.kind == kind && api_version_matches(&w.api_version, api_version))
}

/// True when `api_version` matches a policy's `group/version`, where a version of `*`
/// (`example.com/*`) matches any version of the group.
pub fn api_version_matches(pattern: &str, api_version: &str) -> bool {
    let group = group_of(api_version);
    let version = api_version.rsplit_once('/').map_or(api_version, |(_, v)| v);
    let (pg, pv) = pattern.rsplit_once('/').unwrap_or(("", pattern));
    pg == group && (pv == "*" || pv == version)
}

/// True for kinds whose pods run until deleted (probes and disruption budgets make sense);
/// false for Jobs, CronJobs and custom kinds configured with `longRunning: false`.
pub fn is_long_running(api_version: &str, kind: &str, policy: &Policy) -> bool {
    match (group_of(api_version), kind) {
        ("batch", "Job" | "CronJob") => false,
        ("", "Pod" | "ReplicationController" | "DeploymentConfig")
        | ("apps" | "extensions", "Deployment" | "StatefulSet" | "DaemonSet" | "ReplicaSet")
        | ("argoproj.io", "Rollout")
        | ("apps.openshift.io", "DeploymentConfig") => true,
        _ => {
            extra_workload(api_version, kind, policy).is_some_and(|w| w.long_running != Some(false))
        }
    }
}

/// Where a replicated kind keeps its replica count and its pod selector.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Replicated {
    /// Path of the replica count.
    pub replicas: FieldPath,
    /// Path of the selector (a LabelSelector, or a plain label map for ReplicationController
    /// and DeploymentConfig).
    pub selector: FieldPath,
}

/// The replica and selector paths of a kind that runs several copies of one pod, or `None`
/// (DaemonSets, Jobs, bare Pods and unknown kinds).
pub fn replicated(api_version: &str, kind: &str, policy: &Policy) -> Option<Replicated> {
    let standard = || {
        Some(Replicated {
            replicas: FieldPath::root().keys("spec.replicas"),
            selector: FieldPath::root().keys("spec.selector"),
        })
    };
    match (group_of(api_version), kind) {
        ("apps" | "extensions", "Deployment" | "StatefulSet" | "ReplicaSet")
        | ("", "ReplicationController" | "DeploymentConfig")
        | ("argoproj.io", "Rollout")
        | ("apps.openshift.io", "DeploymentConfig") => standard(),
        ("batch", _) | ("apps" | "extensions", "DaemonSet") | ("", "Pod") => None,
        _ => {
            let w = extra_workload(api_version, kind, policy)?;
            if w.long_running == Some(false) {
                return None;
            }
            let path = |p: &Option<String>, default: &str| {
                p.as_deref()
                    .and_then(FieldPath::parse)
                    .unwrap_or_else(|| FieldPath::root().keys(default))
            };
            Some(Replicated {
                replicas: path(&w.replicas_path, "spec.replicas"),
                selector: path(&w.selector_path, "spec.selector"),
            })
        }
    }
}

/// Which list a container comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ContainerGroup {
    /// `initContainers` (including native sidecars).
    Init,
    /// `containers`.
    Main,
    /// `ephemeralContainers`.
    Ephemeral,
}

impl ContainerGroup {
    /// The PodSpec field name.
    pub fn field(self) -> &'static str {
        match self {
            ContainerGroup::Init => "initContainers",
            ContainerGroup::Main => "containers",
            ContainerGroup::Ephemeral => "ephemeralContainers",
        }
    }
}

/// One container of the pod.
#[derive(Debug, Clone)]
pub struct Container<'v> {
    /// Which list.
    pub group: ContainerGroup,
    /// Its name.
    pub name: String,
    /// Path of the container object from the object root.
    pub path: FieldPath,
    /// The container object.
    pub value: &'v Value,
    /// An init container with `restartPolicy: Always`.
    pub sidecar: bool,
    skipped: HashSet<String>,
}

impl<'v> Container<'v> {
    /// The container's `securityContext` field, if any.
    pub fn security_context(&self, field: &str) -> Option<&'v Value> {
        self.value
            .field("securityContext")
            .and_then(|sc| sc.get(field))
            .filter(|v| !v.is_null())
    }

    /// Path of a field of the container's securityContext.
    pub fn sc_path(&self, field: &str) -> FieldPath {
        self.path.key("securityContext").keys(field)
    }

    /// `securityContext.privileged: true`.
    pub fn privileged(&self) -> bool {
        self.security_context("privileged").and_then(Value::as_bool) == Some(true)
    }

    /// capabilities.add holds SYS_ADMIN (the API rejects allowPrivilegeEscalation=false then).
    pub fn adds_sys_admin(&self) -> bool {
        self.added_capabilities()
            .iter()
            .any(|c| c == "SYS_ADMIN" || c == "CAP_SYS_ADMIN")
    }

    /// The names in capabilities.add.
    pub fn added_capabilities(&self) -> Vec<String> {
        self.value
            .at("/securityContext/capabilities/add")
            .and_then(Value::as_array)
            .map(|a| {
                a.iter()
                    .filter_map(Value::as_str)
                    .map(str::to_string)
                    .collect()
            })
            .unwrap_or_default()
    }

    /// True when the container opted out of the rule.
    pub fn skips(&self, rule: &str) -> bool {
        self.skipped.contains("all") || self.skipped.contains(rule)
    }
}

/// A read-only view of one pod inside an object.
#[derive(Debug)]
pub struct PodView<'v> {
    /// The whole object.
    pub object: &'v Value,
    /// Where the pod is.
    pub location: PodLocation,
    /// The PodSpec.
    pub spec: &'v Value,
    /// All containers: init, main, ephemeral, in that order.
    pub containers: Vec<Container<'v>>,
    /// `spec.os.name: windows`, or a `kubernetes.io/os: windows` node selector.
    pub windows: bool,
    /// A Windows HostProcess pod (pod or container `windowsOptions.hostProcess: true`).
    pub host_process: bool,
    skipped: HashSet<String>,
}

/// True when an object's `kube-harden.dev/skip` annotation opts it out of `rule`.
pub fn opted_out(annotations: Option<&Value>, rule: &str) -> bool {
    let mut skipped = HashSet::new();
    skip_list(annotations, SKIP_ANNOTATION, &mut skipped);
    skipped.contains("all") || skipped.contains(rule)
}

fn skip_list(annotations: Option<&Value>, key: &str, into: &mut HashSet<String>) {
    if let Some(list) = annotations.and_then(|a| a.get(key)).and_then(Value::as_str) {
        into.extend(
            list.split(',')
                .map(|s| s.trim().to_string())
                .filter(|s| !s.is_empty()),
        );
    }
}

impl<'v> PodView<'v> {
    /// Builds the view, or explains why the pod's structure cannot be hardened.
    pub fn new(object: &'v Value, location: PodLocation) -> Result<Option<Self>, String> {
        let Some(spec) = location.spec.get(object).filter(|v| !v.is_null()) else {
            return Ok(None);
        };
        if !spec.is_object() {
            return Err(format!("{} is not a mapping", location.spec));
        }
        let mut skipped = HashSet::new();
        let pod_annotations = location.metadata.key("annotations").get(object);
        let annotations = object.at("/metadata/annotations");
        skip_list(annotations, SKIP_ANNOTATION, &mut skipped);
        skip_list(pod_annotations, SKIP_ANNOTATION, &mut skipped);
        let mut containers = Vec::new();
        for group in [
            ContainerGroup::Init,
            ContainerGroup::Main,
            ContainerGroup::Ephemeral,
        ] {
            let list = match spec.get(group.field()) {
                None | Some(Value::Null) => continue,
                Some(Value::Array(list)) => list,
                Some(_) => {
                    return Err(format!(
                        "{} is not a list",
                        location.spec.key(group.field())
                    ))
                }
            };
            for (i, c) in list.iter().enumerate() {
                let path = location.spec.key(group.field()).index(i);
                if !c.is_object() {
                    return Err(format!("{path} is not a mapping"));
                }
                for field in ["securityContext", "volumeMounts"] {
                    let v = c.get(field);
                    let ok = match (field, v) {
                        (_, None | Some(Value::Null)) => true,
                        ("securityContext", Some(v)) => v.is_object(),
                        (_, Some(v)) => v.is_array(),
                    };
                    if !ok {
                        return Err(format!("{} has the wrong type", path.key(field)));
                    }
                }
                let name = c
                    .field("name")
                    .and_then(Value::as_str)
                    .unwrap_or("")
                    .to_string();
                let mut cskip = skipped.clone();
                if annotations.is_some() || pod_annotations.is_some() {
                    let key = format!("{SKIP_CONTAINER_PREFIX}{name}");
                    skip_list(annotations, &key, &mut cskip);
                    skip_list(pod_annotations, &key, &mut cskip);
                }
                containers.push(Container {
                    group,
                    sidecar: group == ContainerGroup::Init
                        && c.field("restartPolicy").and_then(Value::as_str) == Some("Always"),
                    name,
                    path,
                    value: c,
                    skipped: cskip,
                });
            }
        }
        for field in ["securityContext"] {
            if let Some(v) = spec.get(field) {
                if !v.is_null() && !v.is_object() {
                    return Err(format!("{} is not a mapping", location.spec.key(field)));
                }
            }
        }
        if let Some(v) = spec.field("volumes") {
            if !v.is_null() && !v.is_array() {
                return Err(format!("{} is not a list", location.spec.key("volumes")));
            }
        }
        let windows = spec.at("/os/name").and_then(Value::as_str) == Some("windows")
            || spec
                .at("/nodeSelector/kubernetes.io~1os")
                .and_then(Value::as_str)
                == Some("windows");
        let host_process = spec
            .at("/securityContext/windowsOptions/hostProcess")
            .and_then(Value::as_bool)
            == Some(true)
            || containers.iter().any(|c| {
                c.value
                    .at("/securityContext/windowsOptions/hostProcess")
                    .and_then(Value::as_bool)
                    == Some(true)
            });
        Ok(Some(PodView {
            object,
            location,
            spec,
            containers,
            windows,
            host_process,
            skipped,
        }))
    }

    /// True when the whole pod opted out of the rule.
    pub fn skips(&self, rule: &str) -> bool {
        self.skipped.contains("all") || self.skipped.contains(rule)
    }

    /// Path of a field of the pod-level securityContext.
    pub fn sc_path(&self, field: &str) -> FieldPath {
        self.location.spec.key("securityContext").keys(field)
    }

    /// A pod-level securityContext field, if set.
    pub fn security_context(&self, field: &str) -> Option<&'v Value> {
        self.spec
            .field("securityContext")
            .and_then(|sc| sc.get(field))
            .filter(|v| !v.is_null())
    }

    /// An annotation of the pod template, else of the workload.
    pub fn annotation(&self, key: &str) -> Option<&'v str> {
        self.annotations()
            .and_then(|a| a.get(key))
            .or_else(|| self.object.at("/metadata/annotations")?.get(key))
            .and_then(Value::as_str)
    }

    /// The workload's `apiVersion` and `kind`.
    pub fn kind(&self) -> (&'v str, &'v str) {
        let s = |k: &str| self.object.get(k).and_then(Value::as_str).unwrap_or("");
        (s("apiVersion"), s("kind"))
    }

    /// The pod template's annotations.
    pub fn annotations(&self) -> Option<&'v Value> {
        self.location.metadata.key("annotations").get(self.object)
    }
}
