//! `seccompProfile_baseline`: no seccomp profile but the runtime default or a localhost one.
//! Before v1.19 PSA reads the alpha annotations; from v1.19 `securityContext.seccompProfile`.

use super::{
    containers_named, quoted, sorted_set, str_of, Control, Failure, Level, Outcome, Pod, Variant,
};

pub(super) const ID: &str = "seccompProfile_baseline";

pub(super) const CONTROL: Control = Control {
    id: ID,
    level: Level::Baseline,
    variants: &[
        Variant {
            since: 0,
            check: annotations,
            overrides: &[],
        },
        Variant {
            since: 19,
            check: fields,
            overrides: &[],
        },
    ],
};

const POD_ANNOTATION: &str = "seccomp.security.alpha.kubernetes.io/pod";
const CONTAINER_ANNOTATION_PREFIX: &str = "container.seccomp.security.alpha.kubernetes.io/";

/// A seccomp profile type baseline and restricted allow.
pub(super) fn valid_type(t: &str) -> bool {
    matches!(t, "RuntimeDefault" | "Localhost")
}

fn valid_annotation(v: &str) -> bool {
    v == "runtime/default" || v == "docker/default" || v.starts_with("localhost/")
}

fn annotations(pod: &Pod<'_>) -> Outcome {
    let annotations = pod.annotations();
    let value = |key: &str| annotations.iter().find(|(k, _)| *k == key).map(|(_, v)| *v);
    let mut keys = vec![POD_ANNOTATION.to_string()];
    keys.extend(
        pod.containers()
            .iter()
            .map(|c| format!("{CONTAINER_ANNOTATION_PREFIX}{}", c.name)),
    );
    let mut bad = Vec::new();
    let mut paths = Vec::new();
    for key in keys {
        if let Some(v) = value(&key) {
            if !valid_annotation(v) {
                bad.push(format!("{key}={v:?}"));
                paths.push(pod.annotation_path(&key));
            }
        }
    }
    if bad.is_empty() {
        return None;
    }
    let bad = sorted_set(bad);
    Some(Failure {
        message: format!(
            "forbidden seccomp {} {}",
            if bad.len() == 1 {
                "annotation"
            } else {
                "annotations"
            },
            bad.join(", ")
        ),
        paths,
    })
}

fn fields(pod: &Pod<'_>) -> Outcome {
    let mut setters = Vec::new();
    let mut values = Vec::new();
    let mut paths = Vec::new();
    if let Some(p) = pod.sc("seccompProfile") {
        let t = str_of(p.get("type"));
        if !valid_type(t) {
            setters.push("pod".to_string());
            values.push(t.to_string());
            paths.push(pod.sc_path("seccompProfile").key("type"));
        }
    }
    let mut names = Vec::new();
    for c in pod.containers() {
        if let Some(p) = c.sc("seccompProfile") {
            let t = str_of(p.get("type"));
            if !valid_type(t) {
                names.push(c.name);
                values.push(t.to_string());
                paths.push(c.sc_path("seccompProfile").key("type"));
            }
        }
    }
    if !names.is_empty() {
        setters.push(containers_named(&names));
    }
    if setters.is_empty() {
        return None;
    }
    Some(Failure {
        message: format!(
            "{} must not set securityContext.seccompProfile.type to {}",
            setters.join(" and "),
            quoted(&sorted_set(values))
        ),
        paths,
    })
}
