//! `capabilities_restricted` (v1.22+): containers drop `ALL` and add at most
//! `NET_BIND_SERVICE`; from v1.25 Windows pods are exempt. Replaces `capabilities_baseline`.

use serde_json::Value;

use super::{containers_named, quoted, sorted_set, Control, Failure, Level, Outcome, Pod, Variant};

pub(super) const CONTROL: Control = Control {
    id: "capabilities_restricted",
    level: Level::Restricted,
    variants: &[
        Variant {
            since: 22,
            check,
            overrides: &[super::capabilities_baseline::ID],
        },
        Variant {
            since: 25,
            check: unless_windows,
            overrides: &[super::capabilities_baseline::ID],
        },
    ],
};

fn unless_windows(pod: &Pod<'_>) -> Outcome {
    if pod.is_windows() {
        return None;
    }
    check(pod)
}

fn check(pod: &Pod<'_>) -> Outcome {
    let mut missing_drop = Vec::new();
    let mut adding = Vec::new();
    let mut caps = Vec::new();
    let mut paths = Vec::new();
    for c in pod.containers() {
        let Some(k) = c.sc("capabilities") else {
            missing_drop.push(c.name);
            paths.push(c.sc_path("capabilities").key("drop"));
            continue;
        };
        let list = |field: &str| match k.get(field) {
            Some(Value::Array(a)) => a.iter().map(|v| v.as_str().unwrap_or("")).collect(),
            _ => Vec::new(),
        };
        if !list("drop").contains(&"ALL") {
            missing_drop.push(c.name);
            paths.push(c.sc_path("capabilities").key("drop"));
        }
        let mut bad = false;
        for (i, cap) in list("add").into_iter().enumerate() {
            if cap != "NET_BIND_SERVICE" {
                bad = true;
                caps.push(cap.to_string());
                paths.push(c.sc_path("capabilities").key("add").index(i));
            }
        }
        if bad {
            adding.push(c.name);
        }
    }
    let mut parts = Vec::new();
    if !missing_drop.is_empty() {
        parts.push(format!(
            "{} must set securityContext.capabilities.drop=[\"ALL\"]",
            containers_named(&missing_drop)
        ));
    }
    if !adding.is_empty() {
        parts.push(format!(
            "{} must not add {} (only NET_BIND_SERVICE)",
            containers_named(&adding),
            quoted(&sorted_set(caps))
        ));
    }
    if parts.is_empty() {
        return None;
    }
    Some(Failure {
        message: parts.join("; "),
        paths,
    })
}
