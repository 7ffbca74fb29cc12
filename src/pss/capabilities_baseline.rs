//! `capabilities_baseline`: containers may add only capabilities from the default set.

use serde_json::Value;

use super::{containers_named, quoted, sorted_set, Control, Failure, Level, Outcome, Pod, Variant};

pub(super) const ID: &str = "capabilities_baseline";

pub(super) const CONTROL: Control = Control {
    id: ID,
    level: Level::Baseline,
    variants: &[Variant {
        since: 0,
        check,
        overrides: &[],
    }],
};

/// The container runtime's default capabilities, which baseline lets a container add.
pub(super) const DEFAULT_SET: &[&str] = &[
    "AUDIT_WRITE",
    "CHOWN",
    "DAC_OVERRIDE",
    "FOWNER",
    "FSETID",
    "KILL",
    "MKNOD",
    "NET_BIND_SERVICE",
    "SETFCAP",
    "SETGID",
    "SETPCAP",
    "SETUID",
    "SYS_CHROOT",
];

fn check(pod: &Pod<'_>) -> Outcome {
    let mut names = Vec::new();
    let mut caps = Vec::new();
    let mut paths = Vec::new();
    for c in pod.containers() {
        let Some(Value::Array(add)) = c.sc("capabilities").and_then(|k| k.get("add")) else {
            continue;
        };
        let mut bad = false;
        for (i, cap) in add.iter().enumerate() {
            let cap = cap.as_str().unwrap_or("");
            if !DEFAULT_SET.contains(&cap) {
                bad = true;
                caps.push(cap.to_string());
                paths.push(c.sc_path("capabilities").key("add").index(i));
            }
        }
        if bad {
            names.push(c.name);
        }
    }
    if names.is_empty() {
        return None;
    }
    Some(Failure {
        message: format!(
            "{} must not add {} (securityContext.capabilities.add)",
            containers_named(&names),
            quoted(&sorted_set(caps))
        ),
        paths,
    })
}
