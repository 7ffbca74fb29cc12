//! `procMount` (baseline) and `procMount_restricted`: containers keep the `Default` /proc
//! masks. From v1.35 baseline allows any value in a user namespace (`hostUsers: false`);
//! restricted never does.

use super::{containers_named, quoted, sorted_set, Control, Failure, Level, Outcome, Pod, Variant};

pub(super) const CONTROL: Control = Control {
    id: "procMount",
    level: Level::Baseline,
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

pub(super) const RESTRICTED: Control = Control {
    id: "procMount_restricted",
    level: Level::Restricted,
    variants: &[Variant {
        since: 35,
        check,
        overrides: &["procMount"],
    }],
};

fn user_namespace_relaxed(pod: &Pod<'_>) -> Outcome {
    if pod.in_user_namespace() {
        return None;
    }
    check(pod)
}

fn check(pod: &Pod<'_>) -> Outcome {
    let mut names = Vec::new();
    let mut values = Vec::new();
    let mut paths = Vec::new();
    for c in pod.containers() {
        // A value of another type would not decode; only strings other than Default fail.
        if let Some(v) = c.sc("procMount") {
            let v = v.as_str().unwrap_or("");
            if v != "Default" {
                names.push(c.name);
                values.push(v.to_string());
                paths.push(c.sc_path("procMount"));
            }
        }
    }
    if names.is_empty() {
        return None;
    }
    Some(Failure {
        message: format!(
            "{} must not set securityContext.procMount to {}",
            containers_named(&names),
            quoted(&sorted_set(values))
        ),
        paths,
    })
}
