//! The rule pipeline for one object: rules → changes → the one applier → results, and the
//! objects rules plan to create after it.

use serde_json::Value;

use super::form::{is_local_config, item_file};
use super::results::{Sink, NOTED_OBJECTS};
use crate::change::{self, Findings, KrmResult, Op, ResourceRef, Severity};
use crate::config::{Policy, Verbosity};
use crate::model::workload::{pod_location, PodView};
use crate::rules::{self, Note, Plan, Rule, StreamIndex};

/// Asks every enabled rule whether to create an object after `object`, and reports why not.
pub(super) fn plan_objects(
    object: &Value,
    policy: &Policy,
    index: &StreamIndex,
    file: Option<&str>,
    sink: &mut Sink,
    repeated: bool,
) -> Vec<(&'static dyn Rule, Box<Note>)> {
    let mut planned = Vec::new();
    if is_local_config(object) {
        return planned;
    }
    for &rule in rules::registry() {
        if !policy.is_enabled(rule.id()) {
            continue;
        }
        match rule.plan(object, policy, index, repeated) {
            Plan::Nothing => {}
            Plan::Create(p) => planned.push((rule, p)),
            Plan::Skip { warning, message } => sink.push(KrmResult::new(
                rule.id(),
                if warning {
                    Severity::Warning
                } else {
                    Severity::Info
                },
                message,
                Some(ResourceRef::of(object)),
                file.map(str::to_string).or_else(|| item_file(object)),
            )),
        }
    }
    planned
}

/// Runs every enabled rule on the object's pod (and the rules that read whole objects, such as
/// the image fields the policy names for its kind); returns true when something changed. For an
/// object on its own: the rules' stream index is empty (see [`harden_in_stream`]).
pub fn harden_object(
    object: &mut Value,
    policy: &Policy,
    file: Option<&str>,
    sink: &mut Sink,
) -> bool {
    harden_in_stream(object, policy, &StreamIndex::default(), file, sink)
}

/// [`harden_object`] for an object of a stream whose rules' index is `index`.
pub(super) fn harden_in_stream(
    object: &mut Value,
    policy: &Policy,
    index: &StreamIndex,
    file: Option<&str>,
    sink: &mut Sink,
) -> bool {
    if !object.is_object() || is_local_config(object) {
        return false;
    }
    let resource = ResourceRef::of(object);
    let location = pod_location(&resource.api_version, &resource.kind, policy);
    let object_rules = || {
        rules::registry().iter().filter(|r| {
            policy.is_enabled(r.id())
                && r.reads_object(&resource.api_version, &resource.kind, policy)
        })
    };
    let fields = object_rules().next().is_some();
    if location.is_none() && !fields {
        return false;
    }
    if location.is_some() {
        for rule in rules::registry()
            .iter()
            .filter(|r| policy.is_enabled(r.id()))
        {
            if let Some(note) = rule.observe(object, policy) {
                sink.observed.push((rule.id(), note));
            }
        }
    }
    let file = file.map(str::to_string).or_else(|| item_file(object));
    let verbosity = sink.verbosity;
    // The object's findings and change records, grouped per rule once all rules have run.
    let mut found: Vec<KrmResult> = Vec::new();
    let mut done: Vec<KrmResult> = Vec::new();
    let mut labels: Vec<String> = Vec::new();
    let result =
        |rule: &'static str, severity, message: String, path: Option<String>, current, proposed| {
            KrmResult {
                path,
                current,
                proposed,
                ..KrmResult::new(
                    rule,
                    severity,
                    message,
                    Some(resource.clone()),
                    file.clone(),
                )
            }
        };
    let mut changed = 0usize;
    let mut apply = |object: &mut Value, findings: Findings, sink: &mut Sink| {
        sink.unresolved.extend(findings.unresolved);
        for f in findings.findings {
            if f.severity == Severity::Info && verbosity != Verbosity::All {
                continue;
            }
            found.push(result(
                f.rule,
                f.severity,
                f.message,
                f.path.map(|p| p.to_string()),
                f.current,
                f.proposed,
            ));
        }
        for c in findings.changes {
            match change::apply(object, &c) {
                Ok(true) => {
                    changed += 1;
                    if !sink.changed_rules.contains(&c.rule) {
                        sink.changed_rules.push(c.rule);
                    }
                    // The summary line of the first objects is kept whatever the verbosity.
                    if sink.no_change_records
                        || (verbosity == Verbosity::Problems && sink.notes.len() >= NOTED_OBJECTS)
                    {
                        continue;
                    }
                    labels.push(change::change_label(&c.path));
                    if verbosity != Verbosity::All {
                        continue;
                    }
                    let (current, proposed) = match &c.op {
                        Op::Add(v) | Op::Append(v) | Op::Create(v) => (None, Some(v.clone())),
                        Op::Replace { from, to } => (Some(from.clone()), Some(to.clone())),
                    };
                    done.push(KrmResult {
                        change: true,
                        ..result(
                            c.rule,
                            Severity::Info,
                            c.message,
                            Some(c.path.to_string()),
                            current,
                            proposed,
                        )
                    });
                }
                Ok(false) => {}
                Err(problem) => found.push(result(
                    c.rule,
                    Severity::Error,
                    format!("cannot apply change: {problem}"),
                    Some(c.path.to_string()),
                    None,
                    None,
                )),
            }
        }
    };
    let finish = |sink: &mut Sink,
                  found: Vec<KrmResult>,
                  done: Vec<KrmResult>,
                  labels: &[String],
                  changed: usize| {
        for r in change::group(found) {
            sink.keep(r);
        }
        if changed > 0 && !labels.is_empty() {
            sink.push_change(KrmResult::new_change(
                "kube-harden",
                Severity::Info,
                change::hardened_message(labels, changed),
                Some(resource.clone()),
                file.clone(),
            ));
        }
        for r in change::group(done) {
            sink.keep(r);
        }
    };
    if let Some(location) = location {
        match PodView::new(object, location.clone()) {
            Err(problem) => {
                let mut findings = Findings::default();
                findings.error("kube-harden", None, format!("cannot harden: {problem}"));
                apply(object, findings, sink);
                finish(sink, found, done, &labels, 0);
                return false;
            }
            Ok(None) => {}
            Ok(Some(view)) => {
                sink.stats.workloads += 1;
                if view.host_process {
                    let mut findings = Findings::default();
                    findings.info(
                        "kube-harden",
                        Some(location.spec.clone()),
                        "Windows HostProcess pod left as it is",
                    );
                    apply(object, findings, sink);
                    finish(sink, found, done, &labels, 0);
                    return false;
                }
                drop(view);
                // Each rule sees the object as the rules before it left it. A view is built
                // again only after a rule changed something: the rules up to and including
                // that one share one view, and their findings are applied in rule order.
                let mut pod_rules = rules::registry()
                    .iter()
                    .filter(|r| r.per_pod() && policy.is_enabled(r.id()))
                    .peekable();
                while pod_rules.peek().is_some() {
                    let mut batch: Vec<Findings> = Vec::new();
                    {
                        let Ok(Some(view)) = PodView::new(object, location.clone()) else {
                            break;
                        };
                        for rule in pod_rules.by_ref() {
                            let mut findings = Findings::default();
                            rule.check(&view, policy, &mut findings);
                            let changes = !findings.changes.is_empty();
                            batch.push(findings);
                            if changes {
                                break;
                            }
                        }
                    }
                    for findings in batch {
                        apply(object, findings, sink);
                    }
                }
            }
        }
    }
    // Rules that work on the whole object (custom resources' image fields), after the pod's.
    for rule in object_rules() {
        let mut findings = Findings::default();
        rule.check_object(object, policy, index, &mut findings);
        apply(object, findings, sink);
    }
    finish(sink, found, done, &labels, changed);
    sink.stats.changes += changed;
    if changed > 0 {
        sink.stats.changed += 1;
    }
    changed > 0
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{Overrides, PolicySpec};
    use crate::model::workload::LOCAL_CONFIG;
    use serde_json::json;

    fn policy() -> Policy {
        Policy::with_overrides(PolicySpec::default(), &Overrides::default()).unwrap()
    }

    fn deployment(replicas: i64) -> Value {
        json!({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "web"},
            "spec": {"replicas": replicas, "selector": {"matchLabels": {"app": "web"}},
                "template": {"metadata": {"labels": {"app": "web"}},
                    "spec": {"containers": [{"name": "c", "image": "nginx:1"}]}}}})
    }

    #[test]
    fn rules_changes_applier_results() {
        let mut object = deployment(1);
        let mut sink = Sink::new(Verbosity::All, false);
        assert!(harden_object(
            &mut object,
            &policy(),
            Some("f.yaml"),
            &mut sink
        ));
        assert_eq!(
            object.pointer("/spec/template/spec/securityContext/seccompProfile/type"),
            Some(&json!("RuntimeDefault"))
        );
        assert_eq!((sink.stats.workloads, sink.stats.changed), (1, 1));
        assert!(sink.stats.changes > 0);
        // Change records, grouped per rule, name the object and the file.
        let change = sink.results.iter().find(|r| r.change).unwrap();
        assert_eq!(change.file.as_deref(), Some("f.yaml"));
        assert!(sink.changed_rules.contains(&"seccomp"));
        // What the observe hooks noted (pod-disruption-budget: the pods).
        assert_eq!(sink.observed.len(), 1);
        // A second run changes nothing.
        let mut again = Sink::default();
        assert!(!harden_object(&mut object, &policy(), None, &mut again));
    }

    #[test]
    fn local_config_and_objects_without_a_pod_are_left_alone() {
        let mut local = deployment(3);
        local["metadata"]["annotations"] = json!({LOCAL_CONFIG: "true"});
        let mut sink = Sink::default();
        assert!(!harden_object(&mut local, &policy(), None, &mut sink));
        let index = StreamIndex::default();
        assert!(plan_objects(&local, &policy(), &index, None, &mut sink, false).is_empty());
        let mut map = json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c"}});
        assert!(!harden_object(&mut map, &policy(), None, &mut sink));
        assert_eq!(sink.stats.workloads, 0);
    }

    #[test]
    fn rules_plan_objects_or_say_why_not() {
        let index = StreamIndex::default();
        let mut sink = Sink::new(Verbosity::All, false);
        let planned = plan_objects(&deployment(3), &policy(), &index, None, &mut sink, false);
        assert_eq!(planned.len(), 1);
        assert_eq!(planned[0].0.id(), "pod-disruption-budget");
        let planned = plan_objects(&deployment(1), &policy(), &index, None, &mut sink, false);
        assert!(planned.is_empty());
        assert!(sink.results[0]
            .message
            .starts_with("no PodDisruptionBudget: 1 replica"));
    }
}
