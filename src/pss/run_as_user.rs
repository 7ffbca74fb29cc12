//! `runAsUser` (restricted, v1.23+): neither the pod nor a container sets `runAsUser: 0`. From
//! v1.35 a pod in a user namespace (`hostUsers: false`) passes.

use serde_json::Value;

use super::{containers_named, Control, Failure, Level, Outcome, Pod, Variant};

pub(super) const CONTROL: Control = Control {
    id: "runAsUser",
    level: Level::Restricted,
    variants: &[
        Variant {
            since: 23,
            check,
            overrides: &[],
        },
        Variant {
            since: 35,
            check: user_namespace_relaxed,
            overrides: &[],
        },
    ],
};

fn user_namespace_relaxed(pod: &Pod<'_>) -> Outcome {
    if pod.in_user_namespace() {
        return None;
    }
    check(pod)
}

fn is_root(v: Option<&Value>) -> bool {
    matches!(v, Some(Value::Number(n)) if n.as_f64() == Some(0.0))
}

fn check(pod: &Pod<'_>) -> Outcome {
    let mut setters = Vec::new();
    let mut paths = Vec::new();
    if is_root(pod.sc("runAsUser")) {
        setters.push("pod".to_string());
        paths.push(pod.sc_path("runAsUser"));
    }
    let bad: Vec<_> = pod
        .containers()
        .into_iter()
        .filter(|c| is_root(c.sc("runAsUser")))
        .collect();
    if !bad.is_empty() {
        let names: Vec<_> = bad.iter().map(|c| c.name).collect();
        setters.push(containers_named(&names));
        paths.extend(bad.iter().map(|c| c.sc_path("runAsUser")));
    }
    if setters.is_empty() {
        return None;
    }
    Some(Failure {
        message: format!("{} must not set runAsUser=0", setters.join(" and ")),
        paths,
    })
}
