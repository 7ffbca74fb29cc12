//! `seLinuxOptions` (baseline): SELinux `type` only from the container types (v1.31 adds
//! `container_engine_t`), and no custom `user` or `role`.

use serde_json::Value;

use super::{
    containers_named, quoted, sorted_set, str_of, Control, Failure, Level, Outcome, Pod, Variant,
};

pub(super) const CONTROL: Control = Control {
    id: "seLinuxOptions",
    level: Level::Baseline,
    variants: &[
        Variant {
            since: 0,
            check: v1_0,
            overrides: &[],
        },
        Variant {
            since: 31,
            check: v1_31,
            overrides: &[],
        },
    ],
};

const TYPES_1_0: &[&str] = &["", "container_t", "container_init_t", "container_kvm_t"];
const TYPES_1_31: &[&str] = &[
    "",
    "container_t",
    "container_init_t",
    "container_kvm_t",
    "container_engine_t",
];

fn v1_0(pod: &Pod<'_>) -> Outcome {
    check(pod, TYPES_1_0)
}

fn v1_31(pod: &Pod<'_>) -> Outcome {
    check(pod, TYPES_1_31)
}

#[derive(Default)]
struct Found {
    types: Vec<String>,
    user: bool,
    role: bool,
}

fn check(pod: &Pod<'_>, allowed: &[&str]) -> Outcome {
    let mut found = Found::default();
    let mut paths = Vec::new();
    let mut valid = |opts: &Value, base: crate::model::path::FieldPath, found: &mut Found| {
        let mut ok = true;
        let t = str_of(opts.get("type"));
        if !allowed.contains(&t) {
            ok = false;
            found.types.push(t.to_string());
            paths.push(base.key("type"));
        }
        if !str_of(opts.get("user")).is_empty() {
            ok = false;
            found.user = true;
            paths.push(base.key("user"));
        }
        if !str_of(opts.get("role")).is_empty() {
            ok = false;
            found.role = true;
            paths.push(base.key("role"));
        }
        ok
    };
    let mut setters = Vec::new();
    if let Some(opts) = pod.sc("seLinuxOptions") {
        if !valid(opts, pod.sc_path("seLinuxOptions"), &mut found) {
            setters.push("pod".to_string());
        }
    }
    let mut names = Vec::new();
    for c in pod.containers() {
        if let Some(opts) = c.sc("seLinuxOptions") {
            if !valid(opts, c.sc_path("seLinuxOptions"), &mut found) {
                names.push(c.name);
            }
        }
    }
    if !names.is_empty() {
        setters.push(containers_named(&names));
    }
    if setters.is_empty() {
        return None;
    }
    let mut what = Vec::new();
    let types = sorted_set(found.types);
    if !types.is_empty() {
        what.push(format!(
            "{} {}",
            if types.len() == 1 { "type" } else { "types" },
            quoted(&types)
        ));
    }
    if found.user {
        what.push("user may not be set".to_string());
    }
    if found.role {
        what.push("role may not be set".to_string());
    }
    Some(Failure {
        message: format!(
            "{} set forbidden securityContext.seLinuxOptions: {}",
            setters.join(" and "),
            what.join("; ")
        ),
        paths,
    })
}
