//! `sysctls` (baseline): only the safe, namespaced sysctls; the set grows with the version.

use serde_json::Value;

use super::{quoted, str_of, Control, Failure, Level, Outcome, Pod, Variant};

pub(super) const CONTROL: Control = Control {
    id: "sysctls",
    level: Level::Baseline,
    variants: &[
        Variant {
            since: 0,
            check: v1_0,
            overrides: &[],
        },
        Variant {
            since: 27,
            check: v1_27,
            overrides: &[],
        },
        Variant {
            since: 29,
            check: v1_29,
            overrides: &[],
        },
        Variant {
            since: 32,
            check: v1_32,
            overrides: &[],
        },
        Variant {
            since: 37,
            check: v1_37,
            overrides: &[],
        },
    ],
};

/// Every safe sysctl with the minor version it became allowed at.
const SAFE: &[(&str, u32)] = &[
    ("kernel.shm_rmid_forced", 0),
    ("net.ipv4.ip_local_port_range", 0),
    ("net.ipv4.tcp_syncookies", 0),
    ("net.ipv4.ping_group_range", 0),
    ("net.ipv4.ip_unprivileged_port_start", 0),
    ("net.ipv4.ip_local_reserved_ports", 27),
    ("net.ipv4.tcp_keepalive_time", 29),
    ("net.ipv4.tcp_fin_timeout", 29),
    ("net.ipv4.tcp_keepalive_intvl", 29),
    ("net.ipv4.tcp_keepalive_probes", 29),
    ("net.ipv4.tcp_rmem", 32),
    ("net.ipv4.tcp_wmem", 32),
    ("net.ipv4.tcp_slow_start_after_idle", 37),
    ("net.ipv4.tcp_notsent_lowat", 37),
];

fn v1_0(pod: &Pod<'_>) -> Outcome {
    check(pod, 0)
}
fn v1_27(pod: &Pod<'_>) -> Outcome {
    check(pod, 27)
}
fn v1_29(pod: &Pod<'_>) -> Outcome {
    check(pod, 29)
}
fn v1_32(pod: &Pod<'_>) -> Outcome {
    check(pod, 32)
}
fn v1_37(pod: &Pod<'_>) -> Outcome {
    check(pod, 37)
}

fn check(pod: &Pod<'_>, minor: u32) -> Outcome {
    let Some(Value::Array(list)) = pod.sc("sysctls") else {
        return None;
    };
    let safe = |name: &str| SAFE.iter().any(|(n, since)| *n == name && *since <= minor);
    let bad: Vec<(usize, &str)> = list
        .iter()
        .enumerate()
        .map(|(i, s)| (i, str_of(s.get("name"))))
        .filter(|(_, name)| !safe(name))
        .collect();
    if bad.is_empty() {
        return None;
    }
    let names: Vec<_> = bad.iter().map(|(_, n)| *n).collect();
    Some(Failure {
        message: format!("must not set unsafe sysctls {}", quoted(&names)),
        paths: bad
            .iter()
            .map(|(i, _)| pod.sc_path("sysctls").index(*i).key("name"))
            .collect(),
    })
}
