//! `drop-capabilities`: containers drop every Linux capability they do not explicitly add back.

use serde_json::{json, Value};

use super::evidence::{self, Evidence};
use super::{skip_windows, Rule};
use crate::change::Findings;
use crate::config::Policy;
use crate::facts::RuntimeUser;
use crate::model::workload::Container;
use crate::model::workload::PodView;

const ID: &str = "drop-capabilities";

/// Adds `capabilities.drop: [ALL]` where no drop list is set.
pub struct DropCapabilities;

impl Rule for DropCapabilities {
    fn id(&self) -> &'static str {
        ID
    }

    fn summary(&self) -> &'static str {
        "containers drop all Linux capabilities (capabilities.drop: [ALL]); explicit add lists stay"
    }

    fn docs(&self) -> &'static str {
        include_str!("../../docs/rules/drop-capabilities.md")
    }

    fn check(&self, pod: &PodView<'_>, policy: &Policy, out: &mut Findings) {
        if pod.skips(ID) || skip_windows(ID, pod, out) {
            return;
        }
        for c in pod.containers.iter().filter(|c| !c.skips(ID)) {
            if c.privileged() {
                out.info(
                    ID,
                    Some(c.path.clone()),
                    format!(
                        "privileged container {:?}: capabilities left as they are",
                        c.name
                    ),
                );
                continue;
            }
            let extra: Vec<String> = c
                .added_capabilities()
                .into_iter()
                .filter(|cap| cap != "NET_BIND_SERVICE")
                .collect();
            if !extra.is_empty() {
                out.warn(ID, c.path.key("securityContext").keys("capabilities.add"), json!(c.added_capabilities()), None,
                    format!("container {:?} adds {}; Pod Security restricted allows only NET_BIND_SERVICE", c.name, extra.join(", ")));
            }
            let drop_path = c.path.key("securityContext").keys("capabilities.drop");
            let current = drop_path.get(pod.object).filter(|v| !v.is_null());
            let lacks_all = !matches!(current, Some(Value::Array(list)) if list.iter().any(|v| v.as_str() == Some("ALL")));
            let unsafe_why = if lacks_all {
                why_not_drop(c, pod, policy)
            } else {
                None
            };
            if let Some(why) = unsafe_why {
                out.withheld(
                    ID,
                    drop_path,
                    json!(["ALL"]),
                    format!(
                        "container {:?}: capabilities.drop ALL not added, {why}",
                        c.name
                    ),
                );
                continue;
            }
            match current {
                None => out.add(
                    ID,
                    drop_path,
                    json!(["ALL"]),
                    format!("container {:?} drops all capabilities", c.name),
                ),
                Some(Value::Array(list)) if list.iter().any(|v| v.as_str() == Some("ALL")) => {}
                Some(current) => {
                    if policy.spec.enforce && current.is_array() {
                        out.append(
                            ID,
                            drop_path,
                            json!("ALL"),
                            format!("enforce: container {:?} drops ALL capabilities", c.name),
                        );
                    } else {
                        out.warn(ID, drop_path, current.clone(), Some(json!(["ALL"])),
                            format!("container {:?} drops only some capabilities; Pod Security restricted requires ALL", c.name));
                    }
                }
            }
        }
    }
}

/// Why dropping ALL could stop this container, or `None` when the evidence says it is safe: it
/// runs as a known non-root uid (a non-root process holds no capabilities to lose), and, where
/// the image's filesystem facts are known, its binary gains none from setuid or file
/// capabilities (which drop ALL takes from the bounding set, so the exec fails or the privilege
/// is gone).
fn why_not_drop(c: &Container<'_>, pod: &PodView<'_>, policy: &Policy) -> Option<String> {
    if let Some(node) = evidence::node_agent(pod, c) {
        return Some(format!("{node}: system daemons keep their capabilities"));
    }
    let ev = Evidence::of(c, pod, policy, None);
    let trust = Evidence::trust_unknown(policy);
    match &ev.user {
        RuntimeUser::Uid(0) => {
            return Some(format!(
                "it runs as {}: root needs capabilities such as CHOWN, DAC_OVERRIDE, SETUID or NET_BIND_SERVICE, and dropping them can stop it. Fix: run it as a non-root uid, then drop ALL (add back only what it needs, e.g. NET_BIND_SERVICE)",
                ev.describe_user()
            ))
        }
        RuntimeUser::Uid(_) => {}
        _ if trust => return None,
        _ => {
            return Some(format!(
                "it runs as {}; if that is root, dropping ALL can stop it. Fix: set securityContext.runAsUser, or {}",
                ev.describe_user(),
                ev.facts_fix()
            ))
        }
    }
    match ev.privileged_binary() {
        Ok(None) => None,
        // The manifest adds capabilities back: its author has decided what the binary needs.
        Ok(Some(_)) if !c.added_capabilities().is_empty() => None,
        Ok(Some(file)) => Some(format!(
            "its command runs {file}, which gains privileges that drop ALL would take away. Fix: drop ALL and add back what the binary needs (capabilities.add, e.g. NET_BIND_SERVICE)"
        )),
        // A known non-root uid holds no capabilities to lose; only a binary that gains them
        // from the file could, which the filesystem facts show when they are known.
        Err(_) => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rules::testing::{changes, findings, pod, policy, run};
    use serde_json::json;

    #[test]
    fn drop_all_for_non_root_and_never_for_root() {
        let none = policy(json!({}));
        let out = run(
            &DropCapabilities,
            &pod(json!({}), json!({"runAsUser": 1000})),
            &none,
        );
        assert_eq!(
            changes(&out),
            ["spec.containers[0].securityContext.capabilities.drop = [\"ALL\"]"]
        );
        let root = pod(json!({}), json!({"runAsUser": 0}));
        let out = run(
            &DropCapabilities,
            &root,
            &policy(json!({"unknownImages": "harden"})),
        );
        assert!(out.changes.is_empty());
        assert!(
            findings(&out)[0].starts_with(
                "warning: container \"app\": capabilities.drop ALL not added, it runs as root"
            ),
            "{:?}",
            findings(&out)
        );
        let dropped = pod(
            json!({}),
            json!({"runAsUser": 1000, "capabilities": {"drop": ["NET_RAW"]}}),
        );
        assert!(!changes(&run(&DropCapabilities, &dropped, &none))
            .iter()
            .any(|c| c.ends_with("= [\"ALL\"]")));
    }
}
