//! `seccomp`: pods use the container runtime's default seccomp profile.

use serde_json::{json, Value};

use super::{skip_windows, Rule};
use crate::change::Findings;
use crate::config::Policy;
use crate::model::workload::PodView;

const ID: &str = "seccomp";
const POD_ANNOTATION: &str = "seccomp.security.alpha.kubernetes.io/pod";
const CONTAINER_ANNOTATION_PREFIX: &str = "container.seccomp.security.alpha.kubernetes.io/";

/// Adds pod `seccompProfile.type: RuntimeDefault` unless a profile is already chosen.
pub struct Seccomp;

fn is_unconfined(profile: &Value) -> bool {
    profile.get("type").and_then(Value::as_str) == Some("Unconfined")
}

impl Rule for Seccomp {
    fn id(&self) -> &'static str {
        ID
    }

    fn summary(&self) -> &'static str {
        "pods use the runtime's default seccomp profile (seccompProfile.type: RuntimeDefault)"
    }

    fn docs(&self) -> &'static str {
        include_str!("../../docs/rules/seccomp.md")
    }

    fn check(&self, pod: &PodView<'_>, policy: &Policy, out: &mut Findings) {
        if pod.skips(ID) || skip_windows(ID, pod, out) {
            return;
        }
        let annotations = pod.annotations();
        for c in &pod.containers {
            if c.skips(ID) {
                continue;
            }
            if let Some(profile) = c.security_context("seccompProfile") {
                if is_unconfined(profile) {
                    self.unconfined(
                        c.sc_path("seccompProfile.type"),
                        &format!("container {:?}", c.name),
                        policy,
                        out,
                    );
                }
            }
        }
        if let Some(profile) = pod.security_context("seccompProfile") {
            if is_unconfined(profile) {
                if policy.spec.enforce && pod.containers.iter().any(|c| c.skips(ID)) {
                    // Changing the pod's profile would change the opted-out container too:
                    // confine the others one by one instead.
                    out.warn(ID, pod.sc_path("seccompProfile.type"), json!("Unconfined"), Some(json!("RuntimeDefault")),
                        "pod runs seccomp Unconfined and a container opted out; profile set per container instead");
                    for c in pod
                        .containers
                        .iter()
                        .filter(|c| !c.skips(ID) && c.security_context("seccompProfile").is_none())
                    {
                        out.add(
                            ID,
                            c.sc_path("seccompProfile"),
                            json!({"type": "RuntimeDefault"}),
                            format!(
                                "enforce: container {:?} uses the RuntimeDefault seccomp profile",
                                c.name
                            ),
                        );
                    }
                } else {
                    self.unconfined(pod.sc_path("seccompProfile.type"), "pod", policy, out);
                }
            }
            return;
        }
        // The API server rejects a field that disagrees with the legacy annotation.
        if annotations.and_then(|a| a.get(POD_ANNOTATION)).is_some() {
            out.info(
                ID,
                Some(pod.location.metadata.clone()),
                format!("profile chosen by the {POD_ANNOTATION} annotation; field not added"),
            );
            return;
        }
        let chose_own = |name: &str| {
            annotations
                .and_then(|a| a.get(format!("{CONTAINER_ANNOTATION_PREFIX}{name}")))
                .is_some()
        };
        let open: Vec<_> = pod
            .containers
            .iter()
            .filter(|c| c.security_context("seccompProfile").is_none() && !chose_own(&c.name))
            .collect();
        if open.is_empty() && !pod.containers.is_empty() {
            return;
        }
        if open.iter().all(|c| !c.skips(ID)) {
            out.add(
                ID,
                pod.sc_path("seccompProfile"),
                json!({"type": "RuntimeDefault"}),
                "pod uses the RuntimeDefault seccomp profile",
            );
            return;
        }
        for c in open.into_iter().filter(|c| !c.skips(ID)) {
            out.add(
                ID,
                c.sc_path("seccompProfile"),
                json!({"type": "RuntimeDefault"}),
                format!(
                    "container {:?} uses the RuntimeDefault seccomp profile",
                    c.name
                ),
            );
        }
    }
}

impl Seccomp {
    fn unconfined(
        &self,
        path: crate::model::path::FieldPath,
        who: &str,
        policy: &Policy,
        out: &mut Findings,
    ) {
        if policy.spec.enforce {
            out.replace(
                ID,
                path,
                json!("Unconfined"),
                json!("RuntimeDefault"),
                format!("enforce: {who} seccomp profile set to RuntimeDefault"),
            );
        } else {
            out.warn(
                ID,
                path,
                json!("Unconfined"),
                Some(json!("RuntimeDefault")),
                format!("{who} runs seccomp Unconfined; Pod Security forbids it"),
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rules::testing::{changes, findings, pod, policy, run};
    use serde_json::json;

    #[test]
    fn runtime_default_unless_chosen_and_unconfined_only_with_enforce() {
        let none = policy(json!({}));
        let out = run(&Seccomp, &pod(json!({}), json!({})), &none);
        assert_eq!(
            changes(&out),
            ["spec.securityContext.seccompProfile = {\"type\":\"RuntimeDefault\"}"]
        );
        let chosen = pod(
            json!({"seccompProfile": {"type": "Localhost", "localhostProfile": "p"}}),
            json!({}),
        );
        assert!(run(&Seccomp, &chosen, &none).changes.is_empty());
        let unconfined = pod(json!({"seccompProfile": {"type": "Unconfined"}}), json!({}));
        let out = run(&Seccomp, &unconfined, &none);
        assert!(out.changes.is_empty());
        assert_eq!(
            findings(&out),
            ["warning: pod runs seccomp Unconfined; Pod Security forbids it"]
        );
        let out = run(&Seccomp, &unconfined, &policy(json!({"enforce": true})));
        assert_eq!(
            changes(&out),
            ["spec.securityContext.seccompProfile.type = \"RuntimeDefault\""]
        );
    }
}
