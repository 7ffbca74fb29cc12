//! `hostPorts` (baseline): no container port may set a non-zero `hostPort`.

use serde_json::Value;

use super::{containers_named, sorted_set, Control, Failure, Level, Outcome, Pod, Variant};

pub(super) const CONTROL: Control = Control {
    id: "hostPorts",
    level: Level::Baseline,
    variants: &[Variant {
        since: 0,
        check,
        overrides: &[],
    }],
};

fn check(pod: &Pod<'_>) -> Outcome {
    let mut names = Vec::new();
    let mut ports = Vec::new();
    let mut paths = Vec::new();
    for c in pod.containers() {
        let Some(Value::Array(list)) = c.value.get("ports") else {
            continue;
        };
        let mut bad = false;
        for (i, p) in list.iter().enumerate() {
            match p.get("hostPort") {
                Some(Value::Number(n)) if n.as_f64() != Some(0.0) => {
                    bad = true;
                    ports.push(n.to_string());
                    paths.push(c.path.key("ports").index(i).key("hostPort"));
                }
                _ => {}
            }
        }
        if bad {
            names.push(c.name);
        }
    }
    if names.is_empty() {
        return None;
    }
    let ports = sorted_set(ports);
    Some(Failure {
        message: format!(
            "{} must not use {} {}",
            containers_named(&names),
            if ports.len() == 1 {
                "hostPort"
            } else {
                "hostPorts"
            },
            ports.join(", ")
        ),
        paths,
    })
}
