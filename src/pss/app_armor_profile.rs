//! `appArmorProfile` (baseline): no AppArmor profile other than the runtime default or a
//! localhost one, neither in `securityContext.appArmorProfile` nor in the beta annotations.

use super::{
    containers_named, quoted, sorted_set, str_of, Control, Failure, Level, Outcome, Pod, Variant,
};

pub(super) const CONTROL: Control = Control {
    id: "appArmorProfile",
    level: Level::Baseline,
    variants: &[Variant {
        since: 0,
        check,
        overrides: &[],
    }],
};

const ANNOTATION_PREFIX: &str = "container.apparmor.security.beta.kubernetes.io/";

fn allowed_type(t: &str) -> bool {
    matches!(t, "RuntimeDefault" | "Localhost")
}

fn allowed_annotation(v: &str) -> bool {
    v.is_empty() || v == "runtime/default" || v.starts_with("localhost/")
}

fn check(pod: &Pod<'_>) -> Outcome {
    let mut setters = Vec::new();
    let mut values = Vec::new();
    let mut paths = Vec::new();
    if let Some(p) = pod.sc("appArmorProfile") {
        let t = str_of(p.get("type"));
        if !allowed_type(t) {
            setters.push("pod".to_string());
            values.push(t.to_string());
            paths.push(pod.sc_path("appArmorProfile").key("type"));
        }
    }
    let mut names = Vec::new();
    for c in pod.containers() {
        if let Some(p) = c.sc("appArmorProfile") {
            let t = str_of(p.get("type"));
            if !allowed_type(t) {
                names.push(c.name);
                values.push(t.to_string());
                paths.push(c.sc_path("appArmorProfile").key("type"));
            }
        }
    }
    if !names.is_empty() {
        setters.push(containers_named(&names));
    }
    let mut values = sorted_set(values);
    let mut annotations: Vec<String> = Vec::new();
    for (k, v) in pod.annotations() {
        if k.starts_with(ANNOTATION_PREFIX) && !allowed_annotation(v) {
            annotations.push(format!("{k}={v:?}"));
            paths.push(pod.annotation_path(k));
        }
    }
    if !annotations.is_empty() {
        annotations.sort();
        setters.push(
            if annotations.len() == 1 {
                "annotation"
            } else {
                "annotations"
            }
            .to_string(),
        );
        values.extend(annotations);
    }
    if setters.is_empty() {
        return None;
    }
    Some(Failure {
        message: format!(
            "{} must not set AppArmor profile type to {}",
            setters.join(" and "),
            quoted(&values)
        ),
        paths,
    })
}
