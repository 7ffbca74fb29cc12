//! Test helpers for the rule modules: run one rule's `check` on an object and read what it
//! returned, without the engine.

use serde_json::Value;

use super::Rule;
use crate::change::{Findings, Op};
use crate::config::Policy;
use crate::model::workload::{pod_location, PodView};
use crate::policy::spec_from_value;

/// A policy from a spec's JSON.
pub fn policy(spec: Value) -> Policy {
    spec_from_value(spec)
        .and_then(Policy::from_spec)
        .expect("a valid test policy")
}

/// A policy read from a whole `HardeningPolicy` object with this spec, as `--config` reads it,
/// or the error that reading or validating it gives (for settings' validation tests).
pub fn try_policy(spec: Value) -> Result<Policy, crate::error::Error> {
    use crate::config::{API_VERSION, KIND};
    crate::policy::spec_from_object(
        &serde_json::json!({"apiVersion": API_VERSION, "kind": KIND, "spec": spec}),
    )
    .and_then(Policy::from_spec)
}

/// Runs `rule` on the object's pod.
pub fn run(rule: &dyn Rule, object: &Value, policy: &Policy) -> Findings {
    let api_version = object["apiVersion"].as_str().unwrap_or_default();
    let kind = object["kind"].as_str().unwrap_or_default();
    let location = pod_location(api_version, kind, policy).expect("an object that holds a pod");
    let pod = PodView::new(object, location)
        .expect("a readable pod")
        .expect("a pod");
    let mut out = Findings::default();
    rule.check(&pod, policy, &mut out);
    out
}

/// Each change as `path = value` (the value of a set or an append).
pub fn changes(out: &Findings) -> Vec<String> {
    out.changes
        .iter()
        .map(|c| {
            let value = match &c.op {
                Op::Add(v) | Op::Replace { to: v, .. } | Op::Append(v) => v.to_string(),
                #[allow(unreachable_patterns)]
                other => format!("{other:?}"),
            };
            format!("{} = {value}", c.path)
        })
        .collect()
}

/// A Pod with one container `app` (image `nginx:1.27`) with this securityContext, and this pod
/// securityContext.
pub fn pod(pod_sc: Value, container_sc: Value) -> Value {
    serde_json::json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p"},
        "spec": {"securityContext": pod_sc,
            "containers": [{"name": "app", "image": "nginx:1.27", "securityContext": container_sc}]}})
}

/// Each finding as `severity: message`.
pub fn findings(out: &Findings) -> Vec<String> {
    out.findings
        .iter()
        .map(|f| format!("{}: {}", f.severity.as_str(), f.message))
        .collect()
}
