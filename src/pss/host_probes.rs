//! `hostProbesAndHostLifecycle` (baseline, v1.34+): probes and lifecycle handlers must not set
//! `httpGet.host` or `tcpSocket.host`.

use super::{
    containers_named, present, quoted, sorted_set, str_of, Control, Failure, Level, Outcome, Pod,
    Variant,
};

pub(super) const CONTROL: Control = Control {
    id: "hostProbesAndHostLifecycle",
    level: Level::Baseline,
    variants: &[Variant {
        since: 34,
        check,
        overrides: &[],
    }],
};

fn check(pod: &Pod<'_>) -> Outcome {
    let mut names = Vec::new();
    let mut hosts = Vec::new();
    let mut paths = Vec::new();
    for c in pod.containers() {
        let mut bad = false;
        let handlers = ["livenessProbe", "readinessProbe", "startupProbe"]
            .into_iter()
            .map(|p| (c.path.key(p), present(c.value.get(p))))
            .chain(["postStart", "preStop"].into_iter().map(|h| {
                (
                    c.path.key("lifecycle").key(h),
                    present(c.value.get("lifecycle")).and_then(|l| present(l.get(h))),
                )
            }));
        for (path, handler) in handlers {
            let Some(handler) = handler else { continue };
            for kind in ["httpGet", "tcpSocket"] {
                let host = str_of(present(handler.get(kind)).and_then(|k| k.get("host")));
                if !host.is_empty() {
                    bad = true;
                    hosts.push(host.to_string());
                    paths.push(path.key(kind).key("host"));
                }
            }
        }
        if bad {
            names.push(c.name);
        }
    }
    if names.is_empty() {
        return None;
    }
    let hosts = sorted_set(hosts);
    Some(Failure {
        message: format!(
            "{} must not set host {} in probes or lifecycle handlers",
            containers_named(&names),
            quoted(&hosts)
        ),
        paths,
    })
}
