//! One document of a stream: sniffed, passed through untouched when no rule can care, else
//! parsed, hardened (an object, a `List`'s items, the ResourceList read as one tree) and edited
//! in place.

use std::borrow::Cow;
use std::collections::HashSet;

use serde_json::Value;

use super::form::InputForm;
use super::form::{
    bad_items, content_line, function_config_spec, is_list, item_file, results_to_add,
    sniff_document, source_of, Root,
};
use super::hooks::{place_in_list, settle_and_create, ListPlans, PendingCreate};
use super::identity::{identity, record_workloads, repeated, Identity};
use super::pipeline::{harden_in_stream, plan_objects};
use super::results::Chunk;
use super::results::Sink;
use crate::change::{KrmResult, ResourceRef, Severity};
use crate::config::{Overrides, Policy};
use crate::error::Error;
use crate::model::workload::pod_location;
use crate::rules::{object_rule_reads, StreamIndex};
use crate::yaml::patch::{layout_of, patch, Written};
use crate::yaml::split::Segment;
use crate::yaml::tree::{
    build_document, check_keys, collect_events, empty_document_end, SyntaxError,
};

/// One document's output.
pub(super) struct SegmentOut<'a> {
    /// Its text.
    pub(super) text: Chunk<'a>,
    /// For the first document: the input's form.
    pub(super) form: Option<InputForm>,
    /// Objects rules plan to create right after it.
    pub(super) created: Vec<PendingCreate>,
}

/// Processes one document: its output text, the form (for a ResourceList) and the objects rules
/// plan to create after it.
pub(super) fn process_segment<'a>(
    seg: &Segment<'a>,
    doc_no: usize,
    is_first: bool,
    policy: &mut Policy,
    overrides: &Overrides,
    index: &StreamIndex,
    sink: &mut Sink,
) -> Result<SegmentOut<'a>, Error> {
    let keep = || {
        Ok(SegmentOut {
            text: Chunk::Text(Cow::Borrowed(seg.text)),
            form: None,
            created: Vec::new(),
        })
    };
    let fail = |e: SyntaxError| Error::Input {
        doc: doc_no,
        line: seg.first_line + e.line.saturating_sub(1),
        message: e.message,
    };
    if seg.is_blank() {
        // kubectl cuts the stream at `---` lines: a piece that starts with `...` is a document
        // go-yaml refuses (a `...` after a document's own `...` stays in that document's piece).
        let starts_piece =
            seg.start == 0 || seg.text.trim_start_matches('\u{feff}').starts_with("---");
        if let Some(e) = starts_piece.then(|| empty_document_end(seg.text)).flatten() {
            // Not numbered as a document (it holds none): named as the one after the last.
            return Err(Error::Input {
                doc: doc_no + 1,
                line: seg.first_line + e.line.saturating_sub(1),
                message: e.message,
            });
        }
        return keep();
    }
    let events = collect_events(seg.text).map_err(fail)?;
    let sniff = sniff_document(seg.text, &events);
    match sniff.root {
        Root::Empty => return keep(),
        Root::Other => {
            return Err(Error::Input {
                doc: doc_no,
                line: content_line(seg),
                message: "not a Kubernetes object: expected a mapping with apiVersion and kind"
                    .into(),
            })
        }
        Root::Map => {}
    }
    let (Some(api_version), Some(kind)) = (sniff.api_version.as_deref(), sniff.kind.as_deref())
    else {
        let missing = if sniff.api_version.is_none() {
            "apiVersion"
        } else {
            "kind"
        };
        return Err(Error::Input {
            doc: doc_no,
            line: content_line(seg),
            message: format!("object has no {missing}"),
        });
    };
    let is_resource_list = kind == "ResourceList";
    let is_list = kind == "List" || kind.ends_with("List");
    if !is_resource_list
        && !is_list
        && pod_location(api_version, kind, policy).is_none()
        && !object_rule_reads(api_version, kind, policy)
    {
        // No rule reads it and it goes out as it came in, but Kubernetes must be able to read it:
        // kubectl's strict decoding refuses a key set twice (a ConfigMap's `data` too).
        check_keys(&events).map_err(fail)?;
        return keep();
    }
    let doc = build_document(seg.text, &events).map_err(fail)?;
    drop(events);
    let Some(root) = doc.root.as_ref() else {
        return keep();
    };
    let mut value = root.to_value();
    let source = source_of(seg);
    let mut form = None;
    let mut created = Vec::new();
    let changed = if is_resource_list && is_first {
        form = Some(InputForm::ResourceList);
        // The list carries its results as values.
        sink.render = false;
        let before = sink.results.len();
        let config = match value.get("functionConfig").filter(|v| !v.is_null()) {
            Some(fc) => function_config_spec(fc)
                .and_then(|spec| Policy::with_overrides(spec, overrides))
                .map(Some),
            None => Ok(None),
        };
        let mut changed = match config {
            Ok(new_policy) => {
                if let Some(p) = new_policy {
                    *policy = p;
                }
                // The functionConfig's verbosity (or `--verbosity`) decides what the list shows.
                sink.verbosity = policy.verbosity(sink.default_verbosity);
                harden_items(&mut value, policy, None, index, sink, None)
            }
            // The KRM function spec: a function that cannot run still answers with the list,
            // its items untouched, and an error result (exit 1).
            Err(e) => {
                sink.push(KrmResult::new(
                    "kube-harden",
                    Severity::Error,
                    e.to_string(),
                    None,
                    None,
                ));
                false
            }
        };
        let results = results_to_add(&sink.results[before..], value.get("results"));
        if !results.is_empty() {
            match value.get_mut("results") {
                Some(Value::Array(list)) => list.extend(results),
                _ => {
                    value["results"] = Value::Array(results);
                }
            }
            changed = true;
        }
        changed
    } else if value.get("items").is_some_and(Value::is_array) && (is_list || is_resource_list) {
        harden_items(&mut value, policy, source.as_deref(), index, sink, None)
    } else if (is_list || is_resource_list) && value.get("items").is_some() {
        if let Some(result) = bad_items(&value, source.as_deref()) {
            sink.push(result);
        }
        false
    } else {
        let changed = harden_in_stream(&mut value, policy, index, source.as_deref(), sink);
        let planned = plan_objects(&value, policy, index, source.as_deref(), sink, false);
        if !planned.is_empty() {
            // Usually one: an exact allocation (a first push reserves four).
            created.reserve_exact(planned.len());
            let layout = layout_of(seg.text, &doc);
            for (rule, planned) in planned {
                created.push(PendingCreate {
                    rule,
                    planned,
                    source: source.clone(),
                    layout,
                    resource: ResourceRef::of(&value),
                });
            }
        }
        changed
    };
    if form.is_none() {
        record_workloads(
            &value,
            policy,
            (doc_no, content_line(seg)),
            None,
            &mut sink.workloads,
        );
    }
    if !changed {
        return Ok(SegmentOut {
            text: Chunk::Text(Cow::Borrowed(seg.text)),
            form,
            created,
        });
    }
    let text = match patch(seg.text, &doc, &value) {
        Written::Edited(patched) => Chunk::Patched(patched),
        Written::Reemitted(text) => {
            sink.stats.reemitted += 1;
            Chunk::Text(Cow::Owned(text))
        }
    };
    Ok(SegmentOut {
        text,
        form,
        created,
    })
}

/// Hardens every item of a `List`/`ResourceList` and appends the objects rules create for them; returns
/// true when something changed.
pub(super) fn harden_items(
    list: &mut Value,
    policy: &Policy,
    source: Option<&str>,
    index: &StreamIndex,
    sink: &mut Sink,
    twice: Option<&HashSet<Identity>>,
) -> bool {
    if let Some(result) = bad_items(list, source) {
        sink.push(result);
        return false;
    }
    // Workloads that are items of this list (nested lists included) more than once.
    let local;
    let twice = match twice {
        Some(t) => t,
        None => {
            let mut placed = Vec::new();
            record_workloads(list, policy, (0, 0), None, &mut placed);
            local = repeated(&placed);
            &local
        }
    };
    let mut changed = false;
    let mut plans: ListPlans = Vec::new();
    let first_note = sink.observed.len();
    if let Some(Value::Array(items)) = list.get_mut("items") {
        for item in items.iter_mut() {
            let file = item_file(item).or_else(|| source.map(str::to_string));
            // A List inside a list (kubectl flattens them): its items are hardened in place.
            if is_list(item) {
                changed |= harden_items(item, policy, file.as_deref(), index, sink, Some(twice));
                continue;
            }
            changed |= harden_in_stream(item, policy, index, file.as_deref(), sink);
            let resource = ResourceRef::of(item);
            let repeated = twice.contains(&identity(
                &resource.api_version,
                &resource.kind,
                resource.namespace.as_deref(),
                &resource.name,
            ));
            for (rule, p) in plan_objects(item, policy, index, file.as_deref(), sink, repeated) {
                plans.push(((rule, resource.clone(), file.clone()), p));
            }
        }
    }
    // Once every item is known: settle, create (name) and append the objects, in item order.
    settle_and_create(plans, first_note, index, sink, 1, |change, file, sink| {
        changed |= place_in_list(list, change, file, sink);
    });
    changed
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::PolicySpec;
    use crate::yaml::split::split_documents;

    fn one(text: &str) -> (Result<SegmentOut<'_>, Error>, Sink) {
        let segs = split_documents(text);
        let seg = segs.into_iter().find(|s| !s.is_blank()).unwrap();
        let mut policy =
            Policy::with_overrides(PolicySpec::default(), &Overrides::default()).unwrap();
        let mut sink = Sink::default();
        let out = process_segment(
            &seg,
            1,
            false,
            &mut policy,
            &Overrides::default(),
            &StreamIndex::default(),
            &mut sink,
        );
        // The segment borrows `text`, not `segs`.
        (out, sink)
    }

    #[test]
    fn a_document_no_rule_reads_is_passed_through_as_its_bytes() {
        let text = "apiVersion: v1\nkind: ConfigMap\ndata: {a: '1'}\n";
        let (out, sink) = one(text);
        let out = out.unwrap();
        assert!(matches!(out.text, Chunk::Text(Cow::Borrowed(t)) if t == text));
        assert!(out.created.is_empty() && sink.results.is_empty());
    }

    #[test]
    fn a_workload_is_edited_in_place_and_plans_its_budget() {
        let text = "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: web # keep\nspec:\n  replicas: 2\n  selector:\n    matchLabels: {app: web}\n  template:\n    metadata:\n      labels: {app: web}\n    spec:\n      containers:\n      - name: c\n        image: nginx:1\n";
        let (out, sink) = one(text);
        let out = out.unwrap();
        assert!(matches!(out.text, Chunk::Patched(_)));
        let text: String = out.text.pieces().collect();
        assert!(text.contains("name: web # keep"), "{text}");
        assert_eq!(out.created.len(), 1);
        assert_eq!(sink.stats.workloads, 1);
    }

    #[test]
    fn not_an_object_is_an_input_error() {
        let (out, _) = one("- a\n");
        assert!(matches!(out, Err(Error::Input { doc: 1, .. })));
        let (out, _) = one("kind: Deployment\n");
        assert!(matches!(out, Err(e) if e.to_string().contains("apiVersion")));
    }
}
