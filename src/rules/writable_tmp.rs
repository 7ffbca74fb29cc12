//! `writable-tmp`: every container with a read-only root filesystem gets a writable emptyDir at
//! /tmp (and at the policy's extra paths), because read-only root filesystems break apps, shells
//! and runtimes that write temporary files.

use std::collections::HashSet;

use schemars::JsonSchema;
use serde::Deserialize;
use serde_json::{json, Value};

use super::evidence::{self, Evidence};
use super::{skip_windows, Rule, RuleSettings, SettingsDescriptor};
use crate::change::Findings;
use crate::config::Policy;
use crate::error::Error;
use crate::facts::{is_within, normalize_path, RuntimeUser};
use crate::model::path::Field;
use crate::model::workload::PodView;
use crate::model::workload::{Container, PodView as Pod};

const ID: &str = "writable-tmp";
/// Annotation that tells the cluster autoscaler these local volumes may be lost on scale-down.
pub const SAFE_TO_EVICT: &str = "cluster-autoscaler.kubernetes.io/safe-to-evict-local-volumes";

/// Adds emptyDir volumes and mounts for /tmp and the policy's writable paths.
pub struct WritableTmp;

/// Default `sizeLimit` for added emptyDirs.
pub const DEFAULT_TMP_SIZE_LIMIT: &str = "64Mi";

/// Settings of writable-tmp (spec keys `tmpSizeLimit`, `writablePaths`).
#[derive(Debug, Clone, Default, Deserialize, JsonSchema, PartialEq, Eq)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct Settings {
    /// `sizeLimit` of each emptyDir added by writable-tmp (default `64Mi`).
    #[serde(default)]
    pub tmp_size_limit: Option<String>,
    /// Extra writable paths (besides `/tmp`) that writable-tmp mounts as emptyDirs into every
    /// container with a read-only root filesystem, e.g. `/var/cache/nginx`.
    #[serde(default)]
    pub writable_paths: Vec<String>,
}

impl Settings {
    /// The `sizeLimit` for added emptyDirs.
    pub fn size_limit(&self) -> &str {
        self.tmp_size_limit
            .as_deref()
            .unwrap_or(DEFAULT_TMP_SIZE_LIMIT)
    }
}

impl RuleSettings for Settings {
    fn validate(&self) -> Result<Self, Error> {
        if let Some(limit) = &self.tmp_size_limit {
            if !is_quantity(limit) {
                return Err(Error::Config(format!(
                    "spec.tmpSizeLimit: `{limit}` is not a Kubernetes quantity such as 64Mi"
                )));
            }
        }
        for (i, path) in self.writable_paths.iter().enumerate() {
            if !path.starts_with('/') || path.contains(':') {
                return Err(Error::Config(format!(
                    "spec.writablePaths[{i}]: `{path}` must be an absolute path"
                )));
            }
        }
        Ok(self.clone())
    }
}

fn is_quantity(s: &str) -> bool {
    let digits = s
        .bytes()
        .take_while(|b| b.is_ascii_digit() || *b == b'.')
        .count();
    let suffix = &s[digits..];
    digits > 0
        && matches!(
            suffix,
            "" | "Ki" | "Mi" | "Gi" | "Ti" | "Pi" | "Ei" | "k" | "M" | "G" | "T" | "P" | "E" | "m"
        )
}

/// Where a container with a read-only root filesystem must still be able to write.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WritePlan {
    /// Cover these paths with emptyDirs (the image ships nothing there); everything else may be
    /// read-only.
    Cover(Vec<String>),
    /// The root filesystem must stay writable, because of this.
    Unsafe(String),
}

/// The paths the container's own mounts already make writable (or replace).
fn mounted(c: &Container<'_>) -> Vec<String> {
    c.value
        .field("volumeMounts")
        .and_then(Value::as_array)
        .map(|m| {
            m.iter()
                .filter_map(|m| m.field("mountPath")?.as_str().map(normalize_path))
                .collect()
        })
        .unwrap_or_default()
}

/// Decides where `c` writes, from its image facts: `/tmp`, the policy's `writablePaths`, the
/// image's `Volumes` and every directory its user can write; never a path where the image ships
/// files. Unknown facts (no facts, a root user, unknown filesystem) make the plan
/// [`WritePlan::Unsafe`] unless `unknownImages: harden`, which covers `/tmp` and the policy's
/// paths as before.
pub fn plan(c: &Container<'_>, pod: &Pod<'_>, policy: &Policy) -> WritePlan {
    let trust = Evidence::trust_unknown(policy);
    let mut wanted: Vec<String> = vec!["/tmp".to_string()];
    for p in &policy.settings::<Settings>().writable_paths {
        let p = normalize_path(p);
        if !wanted.contains(&p) {
            wanted.push(p);
        }
    }
    let fallback = |wanted: Vec<String>| WritePlan::Cover(wanted);
    if let Some(node) = evidence::node_agent(pod, c) {
        return WritePlan::Unsafe(format!(
            "{node}: system daemons keep a writable root filesystem"
        ));
    }
    let ev = Evidence::of(c, pod, policy, None);
    if ev.user.is_root() {
        return WritePlan::Unsafe(format!(
            "it runs as {}, which can write anywhere, so where it writes is unknown. Fix: run it as a non-root uid, or set readOnlyRootFilesystem: true yourself with emptyDirs (policy writablePaths) where it writes",
            ev.describe_user()
        ));
    }
    let Some(facts) = ev.facts.as_deref() else {
        return if trust {
            fallback(wanted)
        } else {
            WritePlan::Unsafe(format!(
                "nothing is known about image {:?}, so where it writes is unknown. Fix: {}",
                ev.image,
                ev.facts_fix()
            ))
        };
    };
    let uid = match ev.user {
        RuntimeUser::Uid(n) => n,
        _ if trust => return fallback(wanted),
        _ => {
            return WritePlan::Unsafe(format!(
                "it runs as {}, so where it writes is unknown. Fix: set securityContext.runAsUser, or {}",
                ev.describe_user(),
                ev.facts_fix()
            ))
        }
    };
    let Some(writable) = facts.writable_dirs(uid, ev.gid, &ev.groups) else {
        let why = facts
            .unknown
            .iter()
            .find(|u| u.starts_with("filesystem"))
            .cloned()
            .unwrap_or_else(|| "the image's filesystem facts are unknown".into());
        return if trust {
            fallback(wanted)
        } else {
            WritePlan::Unsafe(format!(
                "{why}, so where it writes is unknown. Fix: record the image's facts with `kube-harden lock` (raise spec.images.layerBudget if it was exceeded)"
            ))
        };
    };
    let writable: Vec<String> = writable.into_iter().map(|d| d.path.clone()).collect();
    for v in facts.volumes.iter().flatten() {
        let v = normalize_path(v);
        if !wanted.contains(&v) {
            wanted.push(v);
        }
    }
    for w in &writable {
        if !wanted.contains(w) {
            wanted.push(w.clone());
        }
    }
    let mounts = mounted(c);
    let policy_paths: Vec<String> = policy
        .settings::<Settings>()
        .writable_paths
        .iter()
        .map(|p| normalize_path(p))
        .collect();
    let mut cover: Vec<String> = Vec::new();
    for p in wanted {
        if mounts.iter().any(|m| is_within(&p, m)) {
            continue;
        }
        let can_write = p == "/tmp" || writable.iter().any(|w| is_within(&p, w));
        match facts.has_files(&p) {
            Some(false) => {}
            Some(true) if can_write => {
                return WritePlan::Unsafe(format!(
                    "image {:?} ships files in {p}, which uid {uid} can write: an emptyDir there would hide them, and a read-only root would stop the writes. Fix: mount a volume holding those files at {p} yourself, then set readOnlyRootFilesystem: true",
                    ev.image
                ));
            }
            // Shipped files where the user cannot write anyway: nothing to cover.
            Some(true) => continue,
            // Not recorded: only a policy path can be unknown; it is the policy's decision.
            None if policy_paths.contains(&p) => {}
            None => continue,
        }
        if !cover.iter().any(|q| is_within(&p, q)) {
            cover.push(p);
        }
    }
    WritePlan::Cover(cover)
}

fn normalize(path: &str) -> &str {
    let t = path.trim_end_matches('/');
    if t.is_empty() {
        "/"
    } else {
        t
    }
}

/// A DNS-1123 label derived from a path: `/var/cache/nginx` → `var-cache-nginx`.
fn volume_base(path: &str) -> String {
    let mut name: String = path
        .trim_matches('/')
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() {
                c.to_ascii_lowercase()
            } else {
                '-'
            }
        })
        .collect();
    while name.contains("--") {
        name = name.replace("--", "-");
    }
    let name = name.trim_matches('-').to_string();
    let name: String = name.chars().take(40).collect();
    let name = name.trim_end_matches('-').to_string();
    if name.is_empty() {
        "writable".to_string()
    } else {
        name
    }
}

impl Rule for WritableTmp {
    fn id(&self) -> &'static str {
        ID
    }

    fn summary(&self) -> &'static str {
        "read-only containers get a writable emptyDir at /tmp (sizeLimit 64Mi) and at the policy's writable paths"
    }

    fn docs(&self) -> &'static str {
        include_str!("../../docs/rules/writable-tmp.md")
    }

    fn settings(&self) -> Option<SettingsDescriptor> {
        Some(SettingsDescriptor::of::<Settings>())
    }

    fn check(&self, pod: &PodView<'_>, policy: &Policy, out: &mut Findings) {
        if pod.skips(ID) || skip_windows(ID, pod, out) {
            return;
        }
        let mut taken: HashSet<String> = pod
            .spec
            .field("volumes")
            .and_then(Value::as_array)
            .map(|v| {
                v.iter()
                    .filter_map(|v| v.field("name")?.as_str().map(str::to_string))
                    .collect()
            })
            .unwrap_or_default();
        // path → name of the volume added for it in this pod.
        let mut added: Vec<(String, String)> = Vec::new();
        let volumes_path = pod.location.spec.key("volumes");
        for c in pod.containers.iter().filter(|c| !c.skips(ID)) {
            if c.security_context("readOnlyRootFilesystem")
                .and_then(Value::as_bool)
                != Some(true)
            {
                continue;
            }
            let mounted: HashSet<String> = mounted(c).into_iter().collect();
            let paths: Vec<String> = match plan(c, pod, policy) {
                WritePlan::Cover(paths) => paths,
                // The root filesystem was made read-only by its author: /tmp and the policy's
                // paths as always, except where the image is known to ship files.
                WritePlan::Unsafe(_) => {
                    let ev = Evidence::of(c, pod, policy, None);
                    let mut paths = Vec::new();
                    for p in std::iter::once("/tmp").chain(
                        policy
                            .settings::<Settings>()
                            .writable_paths
                            .iter()
                            .map(String::as_str),
                    ) {
                        let p = normalize(p).to_string();
                        if paths.contains(&p) {
                            continue;
                        }
                        if ev.facts.as_deref().and_then(|f| f.has_files(&p)) == Some(true) {
                            out.withheld(ID, c.path.key("volumeMounts"), json!({"mountPath": p}),
                                format!("container {:?}: no emptyDir at {p}: image {:?} ships files there, which an emptyDir would hide", c.name, ev.image));
                            continue;
                        }
                        paths.push(p);
                    }
                    paths
                }
            };
            for path in &paths {
                let path = path.as_str();
                if mounted.contains(path) {
                    continue;
                }
                let name = match added.iter().find(|(p, _)| p == path) {
                    Some((_, name)) => name.clone(),
                    None => {
                        let base = if path == "/tmp" {
                            "tmp".to_string()
                        } else {
                            volume_base(path)
                        };
                        let mut name = base.clone();
                        let mut n = 1;
                        while taken.contains(&name) {
                            name = if n == 1 {
                                format!("kube-harden-{base}")
                            } else {
                                format!("kube-harden-{base}-{n}")
                            };
                            n += 1;
                        }
                        taken.insert(name.clone());
                        out.append(ID, volumes_path.clone(),
                            json!({"name": name, "emptyDir": {"sizeLimit": policy.settings::<Settings>().size_limit()}}),
                            format!("pod gets emptyDir volume {name:?} for {path}"));
                        added.push((path.to_string(), name.clone()));
                        name
                    }
                };
                out.append(
                    ID,
                    c.path.key("volumeMounts"),
                    json!({"name": name, "mountPath": path}),
                    format!("container {:?} gets a writable {path}", c.name),
                );
            }
        }
        if added.is_empty() {
            return;
        }
        let annotation_path = pod.location.metadata.key("annotations").key(SAFE_TO_EVICT);
        let current = annotation_path.get(pod.object).and_then(Value::as_str);
        let mut names: Vec<String> = current
            .map(|s| {
                s.split(',')
                    .map(|n| n.trim().to_string())
                    .filter(|n| !n.is_empty())
                    .collect()
            })
            .unwrap_or_default();
        for (_, name) in &added {
            if !names.contains(name) {
                names.push(name.clone());
            }
        }
        let joined = names.join(",");
        let message = "cluster autoscaler may evict the pod despite the added emptyDir volumes";
        match current {
            None => out.add(ID, annotation_path, json!(joined), message),
            Some(c) if c != joined => {
                out.replace(ID, annotation_path, json!(c), json!(joined), message)
            }
            Some(_) => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn settings_are_validated_and_defaulted() {
        use crate::policy::spec_from_value;
        use serde_json::json;
        let read = |spec: Value| spec_from_value(spec).and_then(crate::config::Policy::from_spec);
        for (spec, needle) in [
            (
                json!({"tmpSizeLimit": "12 Mi"}),
                "spec.tmpSizeLimit: `12 Mi`",
            ),
            (
                json!({"writablePaths": ["relative"]}),
                "spec.writablePaths[0]",
            ),
            (
                json!({"writablePaths": ["/a", "c:/b"]}),
                "spec.writablePaths[1]",
            ),
            (json!({"writablePaths": "/x"}), "expected a sequence"),
        ] {
            let err = read(spec.clone()).unwrap_err().to_string();
            assert!(err.contains(needle), "{spec}: {err}");
        }
        let p = read(json!({"tmpSizeLimit": "1.5Gi", "writablePaths": ["/run"]})).unwrap();
        assert_eq!(p.settings::<Settings>().size_limit(), "1.5Gi");
        assert_eq!(p.settings::<Settings>().writable_paths, ["/run"]);
        let none = crate::config::Policy::default();
        assert_eq!(
            none.settings::<Settings>().size_limit(),
            DEFAULT_TMP_SIZE_LIMIT
        );
    }

    #[test]
    fn volume_names_are_labels() {
        assert_eq!(volume_base("/var/cache/nginx"), "var-cache-nginx");
        assert_eq!(volume_base("/opt/App_Data//x/"), "opt-app-data-x");
        assert_eq!(normalize("/tmp/"), "/tmp");
    }
}
