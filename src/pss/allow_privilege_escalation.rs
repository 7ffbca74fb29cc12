//! `allowPrivilegeEscalation` (restricted, v1.8+): every container sets
//! `allowPrivilegeEscalation: false`; from v1.25 Windows pods are exempt.

use serde_json::Value;

use super::{containers_named, Control, Failure, Level, Outcome, Pod, Variant};

pub(super) const CONTROL: Control = Control {
    id: "allowPrivilegeEscalation",
    level: Level::Restricted,
    variants: &[
        Variant {
            since: 8,
            check,
            overrides: &[],
        },
        Variant {
            since: 25,
            check: unless_windows,
            overrides: &[],
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
    let bad: Vec<_> = pod
        .containers()
        .into_iter()
        .filter(|c| !matches!(c.sc("allowPrivilegeEscalation"), Some(Value::Bool(false))))
        .collect();
    if bad.is_empty() {
        return None;
    }
    let names: Vec<_> = bad.iter().map(|c| c.name).collect();
    Some(Failure {
        message: format!(
            "{} must set securityContext.allowPrivilegeEscalation=false",
            containers_named(&names)
        ),
        paths: bad
            .iter()
            .map(|c| c.sc_path("allowPrivilegeEscalation"))
            .collect(),
    })
}
