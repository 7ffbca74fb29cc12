//! `no-privilege-escalation`: containers cannot gain more privileges than their parent process.

use serde_json::{json, Value};

use super::evidence::Evidence;
use super::{skip_windows, Rule};
use crate::change::Findings;
use crate::config::Policy;
use crate::facts::RuntimeUser;
use crate::model::workload::Container;
use crate::model::workload::PodView;

const ID: &str = "no-privilege-escalation";

/// Adds `allowPrivilegeEscalation: false` to every container where the API server accepts it.
pub struct NoPrivilegeEscalation;

impl Rule for NoPrivilegeEscalation {
    fn id(&self) -> &'static str {
        ID
    }

    fn summary(&self) -> &'static str {
        "containers cannot escalate privileges (allowPrivilegeEscalation: false)"
    }

    fn docs(&self) -> &'static str {
        include_str!("../../docs/rules/no-privilege-escalation.md")
    }

    fn check(&self, pod: &PodView<'_>, policy: &Policy, out: &mut Findings) {
        if pod.skips(ID) || skip_windows(ID, pod, out) {
            return;
        }
        for c in pod.containers.iter().filter(|c| !c.skips(ID)) {
            let current = c.security_context("allowPrivilegeEscalation");
            // Kubernetes validation: "cannot set allowPrivilegeEscalation to false and privileged
            // to true", and the same for capabilities.add CAP_SYS_ADMIN.
            let blocked = if c.privileged() {
                out.warn(ID, c.sc_path("privileged"), json!(true), None,
                    format!("container {:?} is privileged; Pod Security baseline forbids it (left as is)", c.name));
                true
            } else if c.adds_sys_admin() {
                out.warn(
                    ID,
                    c.path.key("securityContext").keys("capabilities.add"),
                    json!(c.added_capabilities()),
                    None,
                    format!(
                        "container {:?} adds SYS_ADMIN; allowPrivilegeEscalation cannot be false",
                        c.name
                    ),
                );
                true
            } else {
                false
            };
            // no_new_privs (allowPrivilegeEscalation: false) makes the kernel ignore setuid bits
            // and file capabilities: a binary that relies on them stops working.
            let conflict = if blocked || current == Some(&Value::Bool(false)) {
                None
            } else {
                why_not(c, pod, policy)
            };
            if let Some((why, _)) = conflict {
                match current {
                    None => out.withheld(
                        ID,
                        c.sc_path("allowPrivilegeEscalation"),
                        json!(false),
                        format!(
                            "container {:?}: allowPrivilegeEscalation false not set, {why}",
                            c.name
                        ),
                    ),
                    Some(v) => out.warn(
                        ID,
                        c.sc_path("allowPrivilegeEscalation"),
                        v.clone(),
                        Some(json!(false)),
                        format!(
                            "container {:?} allows privilege escalation; Pod Security restricted requires false{}, but {why}",
                            c.name,
                            if policy.spec.enforce { " (not enforced)" } else { "" }
                        ),
                    ),
                }
                continue;
            }
            match current {
                Some(Value::Bool(false)) => {}
                None if !blocked => {
                    out.add(
                        ID,
                        c.sc_path("allowPrivilegeEscalation"),
                        json!(false),
                        format!("container {:?} cannot escalate privileges", c.name),
                    );
                }
                None => {}
                Some(v) => {
                    if policy.spec.enforce && !blocked {
                        out.replace(
                            ID,
                            c.sc_path("allowPrivilegeEscalation"),
                            v.clone(),
                            json!(false),
                            format!(
                                "enforce: container {:?} allowPrivilegeEscalation set to false",
                                c.name
                            ),
                        );
                    } else {
                        out.warn(ID, c.sc_path("allowPrivilegeEscalation"), v.clone(), Some(json!(false)),
                            format!("container {:?} allows privilege escalation; Pod Security restricted requires false", c.name));
                    }
                }
            }
        }
    }
}

/// Why setting allowPrivilegeEscalation false could stop this container, or `None` when the
/// evidence says it cannot; the flag is true when the binary is known to rely on privileges
/// (then not even enforce sets it).
fn why_not(c: &Container<'_>, pod: &PodView<'_>, policy: &Policy) -> Option<(String, bool)> {
    let ev = Evidence::of(c, pod, policy, None);
    match ev.privileged_binary() {
        Ok(None) => None,
        Ok(Some(file)) => Some((
            format!(
                "its command runs {file}: with no_new_privs the kernel ignores setuid and file capabilities, so it would lose what it relies on. This conflicts with Pod Security restricted; fix the image (grant the capability through capabilities.add instead of the file, or drop the setuid bit), then set allowPrivilegeEscalation: false"
            ),
            true,
        )),
        // Facts about the binary unknown: a known uid decides. Root gains nothing from setuid
        // or file capabilities, so no_new_privs takes nothing from it; a non-root uid is the
        // ordinary case, and the filesystem facts, where known, catch the binaries that need
        // them.
        Err(_) if matches!(ev.user, RuntimeUser::Uid(_)) => None,
        Err(_) if Evidence::trust_unknown(policy) => None,
        Err(_) => Some((
            format!(
                "it runs as {}; a binary that relies on setuid or file capabilities would stop working. Fix: set securityContext.runAsUser, or {}",
                ev.describe_user(),
                ev.facts_fix()
            ),
            false,
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rules::testing::{changes, findings, pod, policy, run};
    use serde_json::json;

    #[test]
    fn false_for_a_known_non_root_user_and_explicit_true_is_reported() {
        let none = policy(json!({}));
        let out = run(
            &NoPrivilegeEscalation,
            &pod(json!({}), json!({"runAsUser": 1000})),
            &none,
        );
        assert_eq!(
            changes(&out),
            ["spec.containers[0].securityContext.allowPrivilegeEscalation = false"]
        );
        let explicit = pod(
            json!({}),
            json!({"runAsUser": 1000, "allowPrivilegeEscalation": true}),
        );
        let out = run(&NoPrivilegeEscalation, &explicit, &none);
        assert!(out.changes.is_empty());
        assert_eq!(
            findings(&out),
            ["warning: container \"app\" allows privilege escalation; Pod Security restricted requires false"]
        );
        // An unknown user and an unknown image: left alone unless the policy says harden.
        let unknown = pod(json!({}), json!({}));
        assert!(run(&NoPrivilegeEscalation, &unknown, &none)
            .changes
            .is_empty());
        let harden = policy(json!({"unknownImages": "harden"}));
        assert_eq!(
            run(&NoPrivilegeEscalation, &unknown, &harden).changes.len(),
            1
        );
    }
}
