//! Comparing an input object with kube-harden's output of it (tests/corpus.rs,
//! tests/go_oracle.rs): every leaf of the input is in the output (the output may only add);
//! where a leaf differs, the test's own `accept` decides whether the change is one the rules may
//! make.
#![allow(dead_code)]

use kube_harden::rules::pod_disruption_budget::GENERATED_FOR;
use serde_json::Value;

/// True when `after` is `before` with a digest appended.
pub fn pinned_from(before: &str, after: &str) -> bool {
    after.strip_prefix(before).is_some_and(|rest| {
        rest.strip_prefix("@sha256:")
            .is_some_and(|h| h.len() == 64 && h.bytes().all(|b| b.is_ascii_hexdigit()))
    }) && !before.contains('@')
}

/// True for a PodDisruptionBudget kube-harden generated.
pub fn is_generated(v: &Value) -> bool {
    v.pointer("/metadata/annotations")
        .and_then(|a| a.get(GENERATED_FOR))
        .is_some()
}

/// Every leaf of `input` is in `output` at the same path: mappings and lists are walked (a key
/// lost or a list shrunk is a problem), and a leaf (or a value of another type) that differs is
/// a problem unless `accept(path, before, after)`.
pub fn contains(
    input: &Value,
    output: &Value,
    path: &str,
    accept: &dyn Fn(&str, &Value, &Value) -> bool,
    problems: &mut Vec<String>,
) {
    match (input, output) {
        (Value::Object(a), Value::Object(b)) => {
            for (k, v) in a {
                match b.get(k) {
                    Some(w) => contains(v, w, &format!("{path}.{k}"), accept, problems),
                    None => problems.push(format!("{path}.{k} lost")),
                }
            }
        }
        (Value::Array(a), Value::Array(b)) => {
            if b.len() < a.len() {
                problems.push(format!("{path}: list shrank"));
            }
            for (i, (v, w)) in a.iter().zip(b).enumerate() {
                contains(v, w, &format!("{path}[{i}]"), accept, problems);
            }
        }
        (a, b) if accept(path, a, b) => {}
        (a, b) => problems.push(format!("{path}: {a} became {b}")),
    }
}
