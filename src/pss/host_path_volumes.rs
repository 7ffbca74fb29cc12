//! `hostPathVolumes` (baseline): no `hostPath` volumes.

use serde_json::Value;

use super::{present, quoted, str_of, Control, Failure, Level, Outcome, Pod, Variant};

pub(super) const ID: &str = "hostPathVolumes";

pub(super) const CONTROL: Control = Control {
    id: ID,
    level: Level::Baseline,
    variants: &[Variant {
        since: 0,
        check,
        overrides: &[],
    }],
};

fn check(pod: &Pod<'_>) -> Outcome {
    let Some(Value::Array(volumes)) = pod.field("volumes") else {
        return None;
    };
    let bad: Vec<(usize, &str)> = volumes
        .iter()
        .enumerate()
        .filter(|(_, v)| present(v.get("hostPath")).is_some())
        .map(|(i, v)| (i, str_of(v.get("name"))))
        .collect();
    if bad.is_empty() {
        return None;
    }
    let names: Vec<_> = bad.iter().map(|(_, n)| *n).collect();
    Some(Failure {
        message: format!(
            "must not use hostPath {} {}",
            if names.len() == 1 {
                "volume"
            } else {
                "volumes"
            },
            quoted(&names)
        ),
        paths: bad
            .iter()
            .map(|(i, _)| pod.field_path("volumes").index(*i).key("hostPath"))
            .collect(),
    })
}
