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
            Plan::Skip { warning, message } => sink.push(KrmResult {
                rule: rule.id(),
                severity: if warning {
                    Severity::Warning
                } else {
                    Severity::Info
                },
                message,
                resource: Some(ResourceRef::of(object)),
                path: None,
                current: None,
                proposed: None,
                file: file.map(str::to_string).or_else(|| item_file(object)),
                fields: Vec::new(),
                change: false,
            }),
        }
    }
    planned
}

/// Runs every enabled rule on the object's pod (and pins the image fields the policy names for
/// its kind); returns true when something changed.
pub fn harden_object(
    object: &mut Value,
    policy: &Policy,
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
                for rule in rules::registry()
                    .iter()
                    .filter(|r| r.per_pod() && policy.is_enabled(r.id()))
                {
                    let mut findings = Findings::default();
                    {
                        let Ok(Some(view)) = PodView::new(object, location.clone()) else {
                            break;
                        };
                        rule.check(&view, policy, &mut findings);
                    }
                    apply(object, findings, sink);
                }
            }
        }
    }
    // Rules that work on the whole object (custom resources' image fields), after the pod's.
    for rule in object_rules() {
        let mut findings = Findings::default();
        rule.check_object(object, policy, &mut findings);
        apply(object, findings, sink);
    }
    finish(sink, found, done, &labels, changed);
    sink.stats.changes += changed;
    if changed > 0 {
        sink.stats.changed += 1;
    }
    changed > 0
}
