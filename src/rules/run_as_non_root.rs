//! `run-as-non-root`: pods run as a non-root user (`securityContext.runAsNonRoot: true`).

use serde_json::{json, Value};

use super::Rule;
use crate::change::Findings;
use crate::config::Policy;
use crate::model::workload::{Container, PodView};

const ID: &str = "run-as-non-root";

/// Adds pod `runAsNonRoot: true` (and runAsUser/runAsGroup/fsGroup when the policy gives them).
pub struct RunAsNonRoot;

fn uid(v: Option<&Value>) -> Option<i64> {
    v.and_then(Value::as_i64)
}

impl Rule for RunAsNonRoot {
    fn id(&self) -> &'static str {
        ID
    }

    fn summary(&self) -> &'static str {
        "pods run as a non-root user (runAsNonRoot: true; runAsUser/runAsGroup/fsGroup from the policy)"
    }

    fn docs(&self) -> &'static str {
        include_str!("../../docs/rules/run-as-non-root.md")
    }

    fn check(&self, pod: &PodView<'_>, policy: &Policy, out: &mut Findings) {
        if pod.skips(ID) {
            return;
        }
        let pod_uid = uid(pod.security_context("runAsUser"));
        if pod_uid == Some(0) {
            out.warn(
                ID,
                pod.sc_path("runAsUser"),
                json!(0),
                None,
                "pod runs as UID 0 (runAsUser: 0); Pod Security restricted forbids it",
            );
        }
        let runs_as_root = |c: &Container<'_>| match uid(c.security_context("runAsUser")) {
            Some(u) => u == 0,
            None => pod_uid == Some(0),
        };
        // Containers that must not inherit a pod-level runAsNonRoot: root by declaration,
        // privileged system daemons (CNI, storage) that run as their image's root user, opt-outs.
        let excluded = |c: &Container<'_>| runs_as_root(c) || c.privileged() || c.skips(ID);
        for c in &pod.containers {
            if uid(c.security_context("runAsUser")) == Some(0) {
                out.warn(
                    ID,
                    c.sc_path("runAsUser"),
                    json!(0),
                    None,
                    format!(
                        "container {:?} runs as UID 0; runAsNonRoot not added for it",
                        c.name
                    ),
                );
            }
            if c.skips(ID) {
                continue;
            }
            if let Some(v) = c.security_context("runAsNonRoot") {
                if v != &Value::Bool(true) {
                    if policy.spec.enforce && !excluded(c) {
                        out.replace(
                            ID,
                            c.sc_path("runAsNonRoot"),
                            v.clone(),
                            json!(true),
                            format!("enforce: container {:?} runAsNonRoot set to true", c.name),
                        );
                    } else {
                        out.warn(ID, c.sc_path("runAsNonRoot"), v.clone(), Some(json!(true)),
                            format!("container {:?} sets runAsNonRoot: {v}; Pod Security restricted requires true", c.name));
                    }
                }
            }
        }
        let blockers: Vec<&Container<'_>> = pod
            .containers
            .iter()
            .filter(|c| excluded(c) && c.security_context("runAsNonRoot").is_none())
            .collect();
        match pod.security_context("runAsNonRoot") {
            Some(Value::Bool(true)) => {}
            Some(v) => {
                if policy.spec.enforce && blockers.is_empty() {
                    out.replace(
                        ID,
                        pod.sc_path("runAsNonRoot"),
                        v.clone(),
                        json!(true),
                        "enforce: pod runAsNonRoot set to true",
                    );
                } else {
                    out.warn(
                        ID,
                        pod.sc_path("runAsNonRoot"),
                        v.clone(),
                        Some(json!(true)),
                        format!(
                            "pod sets runAsNonRoot: {v}; Pod Security restricted requires true"
                        ),
                    );
                }
            }
            None if blockers.is_empty() => {
                out.add(
                    ID,
                    pod.sc_path("runAsNonRoot"),
                    json!(true),
                    "pod runs as non-root",
                );
            }
            None => {
                for c in &pod.containers {
                    if !excluded(c) && c.security_context("runAsNonRoot").is_none() {
                        out.add(
                            ID,
                            c.sc_path("runAsNonRoot"),
                            json!(true),
                            format!("container {:?} runs as non-root", c.name),
                        );
                    }
                }
                for c in blockers {
                    if c.privileged() && !runs_as_root(c) && !c.skips(ID) {
                        out.info(ID, Some(c.path.clone()),
                            format!("privileged container {:?} keeps its image's user; runAsNonRoot set per container instead of on the pod", c.name));
                    }
                }
            }
        }
        if pod.windows {
            return;
        }
        // A pod-level user would also change containers that are privileged or opted out.
        let any_privileged = pod.containers.iter().any(|c| c.privileged() || c.skips(ID));
        for (field, value, needs_unprivileged) in [
            ("runAsUser", policy.spec.run_as_user, true),
            ("runAsGroup", policy.spec.run_as_group, true),
            ("fsGroup", policy.spec.fs_group, false),
        ] {
            let Some(value) = value else { continue };
            if pod.security_context(field).is_some() {
                continue;
            }
            if needs_unprivileged && any_privileged {
                out.info(
                    ID,
                    Some(pod.sc_path(field)),
                    format!("pod has a privileged container: {field} from the policy not added"),
                );
                continue;
            }
            out.add(
                ID,
                pod.sc_path(field),
                json!(value),
                format!("pod {field} set from the policy"),
            );
        }
    }
}
