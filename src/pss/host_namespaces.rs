//! `hostNamespaces` (baseline): no `hostNetwork`, `hostPID` or `hostIPC`.

use super::{is_true, Control, Failure, Level, Outcome, Pod, Variant};

pub(super) const CONTROL: Control = Control {
    id: "hostNamespaces",
    level: Level::Baseline,
    variants: &[Variant {
        since: 0,
        check,
        overrides: &[],
    }],
};

fn check(pod: &Pod<'_>) -> Outcome {
    let set: Vec<&str> = ["hostNetwork", "hostPID", "hostIPC"]
        .into_iter()
        .filter(|f| is_true(pod.field(f)))
        .collect();
    if set.is_empty() {
        return None;
    }
    Some(Failure {
        message: format!(
            "must not share host namespaces: {}",
            set.iter()
                .map(|f| format!("{f}=true"))
                .collect::<Vec<_>>()
                .join(", ")
        ),
        paths: set.iter().map(|f| pod.field_path(f)).collect(),
    })
}
