//! `privileged` (baseline): no container may set `securityContext.privileged: true`.

use super::{containers_named, is_true, Control, Failure, Level, Outcome, Pod, Variant};

pub(super) const CONTROL: Control = Control {
    id: "privileged",
    level: Level::Baseline,
    variants: &[Variant {
        since: 0,
        check,
        overrides: &[],
    }],
};

fn check(pod: &Pod<'_>) -> Outcome {
    let bad: Vec<_> = pod
        .containers()
        .into_iter()
        .filter(|c| is_true(c.sc("privileged")))
        .collect();
    if bad.is_empty() {
        return None;
    }
    let names: Vec<_> = bad.iter().map(|c| c.name).collect();
    Some(Failure {
        message: format!(
            "{} must not set securityContext.privileged=true",
            containers_named(&names)
        ),
        paths: bad.iter().map(|c| c.sc_path("privileged")).collect(),
    })
}
