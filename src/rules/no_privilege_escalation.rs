//! `no-privilege-escalation`: containers cannot gain more privileges than their parent process.

use serde_json::{json, Value};

use super::{skip_windows, Rule};
use crate::change::Findings;
use crate::config::Policy;
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
