//! `writable-tmp`: every container with a read-only root filesystem gets a writable emptyDir at
//! /tmp (and at the policy's extra paths), because read-only root filesystems break apps, shells
//! and runtimes that write temporary files.

use std::collections::HashSet;

use serde_json::{json, Value};

use super::{skip_windows, Rule};
use crate::change::Findings;
use crate::config::Policy;
use crate::model::workload::PodView;

const ID: &str = "writable-tmp";
/// Annotation that tells the cluster autoscaler these local volumes may be lost on scale-down.
pub const SAFE_TO_EVICT: &str = "cluster-autoscaler.kubernetes.io/safe-to-evict-local-volumes";

/// Adds emptyDir volumes and mounts for /tmp and the policy's writable paths.
pub struct WritableTmp;

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

    fn check(&self, pod: &PodView<'_>, policy: &Policy, out: &mut Findings) {
        if pod.skips(ID) || skip_windows(ID, pod, out) {
            return;
        }
        let mut taken: HashSet<String> = pod
            .spec
            .get("volumes")
            .and_then(Value::as_array)
            .map(|v| {
                v.iter()
                    .filter_map(|v| v.get("name")?.as_str().map(str::to_string))
                    .collect()
            })
            .unwrap_or_default();
        let mut paths: Vec<&str> = Vec::new();
        for path in
            std::iter::once("/tmp").chain(policy.spec.writable_paths.iter().map(String::as_str))
        {
            let path = normalize(path);
            if !paths.contains(&path) {
                paths.push(path);
            }
        }
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
            let mounted: HashSet<String> = c
                .value
                .get("volumeMounts")
                .and_then(Value::as_array)
                .map(|m| {
                    m.iter()
                        .filter_map(|m| {
                            m.get("mountPath")?
                                .as_str()
                                .map(|p| normalize(p).to_string())
                        })
                        .collect()
                })
                .unwrap_or_default();
            for &path in &paths {
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
                            json!({"name": name, "emptyDir": {"sizeLimit": policy.tmp_size_limit()}}),
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
    fn volume_names_are_labels() {
        assert_eq!(volume_base("/var/cache/nginx"), "var-cache-nginx");
        assert_eq!(volume_base("/opt/App_Data//x/"), "opt-app-data-x");
        assert_eq!(normalize("/tmp/"), "/tmp");
    }
}
