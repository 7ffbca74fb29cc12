//! `windowsHostProcess` (baseline): no `windowsOptions.hostProcess: true` on the pod or a
//! container.

use super::{containers_named, is_true, Control, Failure, Level, Outcome, Pod, Variant};

pub(super) const CONTROL: Control = Control {
    id: "windowsHostProcess",
    level: Level::Baseline,
    variants: &[Variant {
        since: 0,
        check,
        overrides: &[],
    }],
};

fn check(pod: &Pod<'_>) -> Outcome {
    let host_process =
        |wo: Option<&serde_json::Value>| is_true(wo.and_then(|w| w.get("hostProcess")));
    let mut setters = Vec::new();
    let mut paths = Vec::new();
    if host_process(pod.sc("windowsOptions")) {
        setters.push("pod".to_string());
        paths.push(pod.sc_path("windowsOptions").key("hostProcess"));
    }
    let bad: Vec<_> = pod
        .containers()
        .into_iter()
        .filter(|c| host_process(c.sc("windowsOptions")))
        .collect();
    if !bad.is_empty() {
        let names: Vec<_> = bad.iter().map(|c| c.name).collect();
        setters.push(containers_named(&names));
        paths.extend(
            bad.iter()
                .map(|c| c.sc_path("windowsOptions").key("hostProcess")),
        );
    }
    if setters.is_empty() {
        return None;
    }
    Some(Failure {
        message: format!(
            "{} must not set securityContext.windowsOptions.hostProcess=true",
            setters.join(" and ")
        ),
        paths,
    })
}
