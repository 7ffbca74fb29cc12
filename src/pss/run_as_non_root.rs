//! `runAsNonRoot` (restricted): the pod sets `runAsNonRoot: true` and no container sets it
//! false, or every container sets it true. From v1.35 a pod in a user namespace
//! (`hostUsers: false`) passes.

use serde_json::Value;

use super::{containers_named, Control, Failure, Level, Outcome, Pod, Variant};

pub(super) const CONTROL: Control = Control {
    id: "runAsNonRoot",
    level: Level::Restricted,
    variants: &[
        Variant {
            since: 0,
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

fn check(pod: &Pod<'_>) -> Outcome {
    let mut setters = Vec::new();
    let mut paths = Vec::new();
    let mut pod_true = false;
    match pod.sc("runAsNonRoot") {
        Some(Value::Bool(true)) => pod_true = true,
        Some(Value::Bool(false)) => {
            setters.push("pod".to_string());
            paths.push(pod.sc_path("runAsNonRoot"));
        }
        _ => {}
    }
    let mut explicit = Vec::new();
    let mut implicit = Vec::new();
    let mut implicit_paths = Vec::new();
    for c in pod.containers() {
        match c.sc("runAsNonRoot") {
            Some(Value::Bool(false)) => {
                explicit.push(c.name);
                paths.push(c.sc_path("runAsNonRoot"));
            }
            Some(Value::Bool(true)) => {}
            _ if !pod_true => {
                implicit.push(c.name);
                implicit_paths.push(c.sc_path("runAsNonRoot"));
            }
            _ => {}
        }
    }
    if !explicit.is_empty() {
        setters.push(containers_named(&explicit));
    }
    if !setters.is_empty() {
        return Some(Failure {
            message: format!(
                "{} must not set securityContext.runAsNonRoot=false",
                setters.join(" and ")
            ),
            paths,
        });
    }
    if implicit.is_empty() {
        return None;
    }
    let mut paths = vec![pod.sc_path("runAsNonRoot")];
    paths.extend(implicit_paths);
    Some(Failure {
        message: format!(
            "pod or {} must set securityContext.runAsNonRoot=true",
            containers_named(&implicit)
        ),
        paths,
    })
}
