//! `seccompProfile_restricted` (v1.19+): the pod, or every container, sets a seccomp profile of
//! type `RuntimeDefault` or `Localhost`; from v1.25 Windows pods are exempt. Replaces
//! `seccompProfile_baseline`.

use super::seccomp_baseline::{valid_type, ID as BASELINE};
use super::{
    containers_named, quoted, sorted_set, str_of, Control, Failure, Level, Outcome, Pod, Variant,
};

pub(super) const CONTROL: Control = Control {
    id: "seccompProfile_restricted",
    level: Level::Restricted,
    variants: &[
        Variant {
            since: 19,
            check,
            overrides: &[BASELINE],
        },
        Variant {
            since: 25,
            check: unless_windows,
            overrides: &[BASELINE],
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
    let mut setters = Vec::new();
    let mut values = Vec::new();
    let mut paths = Vec::new();
    let mut pod_set = false;
    if let Some(p) = pod.sc("seccompProfile") {
        let t = str_of(p.get("type"));
        if valid_type(t) {
            pod_set = true;
        } else {
            setters.push("pod".to_string());
            values.push(t.to_string());
            paths.push(pod.sc_path("seccompProfile").key("type"));
        }
    }
    let mut explicit = Vec::new();
    let mut implicit = Vec::new();
    let mut implicit_paths = Vec::new();
    for c in pod.containers() {
        match c.sc("seccompProfile") {
            Some(p) => {
                let t = str_of(p.get("type"));
                if !valid_type(t) {
                    explicit.push(c.name);
                    values.push(t.to_string());
                    paths.push(c.sc_path("seccompProfile").key("type"));
                }
            }
            None if !pod_set => {
                implicit.push(c.name);
                implicit_paths.push(c.sc_path("seccompProfile").key("type"));
            }
            None => {}
        }
    }
    if !explicit.is_empty() {
        setters.push(containers_named(&explicit));
    }
    if !setters.is_empty() {
        return Some(Failure {
            message: format!(
                "{} must not set securityContext.seccompProfile.type to {}",
                setters.join(" and "),
                quoted(&sorted_set(values))
            ),
            paths,
        });
    }
    if implicit.is_empty() {
        return None;
    }
    let mut paths = vec![pod.sc_path("seccompProfile").key("type")];
    paths.extend(implicit_paths);
    Some(Failure {
        message: format!(
            "pod or {} must set securityContext.seccompProfile.type to \"RuntimeDefault\" or \"Localhost\"",
            containers_named(&implicit)
        ),
        paths,
    })
}
