//! Created objects (`Op::Create`): the rules' `plan`/`settle`/`create` hooks driven generically,
//! the identities that decide a repeated workload, and where created objects are placed.

use std::collections::{HashMap, HashSet};

use serde_json::Value;

use super::document::SegmentOut;
use super::form::{is_list, is_local_config};
use super::results::{Sink, NOTED_OBJECTS};
use super::{resource_list, Chunk, Output};
use crate::change::{self, Change, KrmResult, Op, ResourceRef, Severity};
use crate::config::{Policy, Verbosity};
use crate::error::Error;
use crate::model::path::FieldPath;
use crate::model::workload::pod_location;
use crate::rules::{self, Note, Rule, StreamIndex};
use crate::yaml::emit;
use crate::yaml::emit::Layout;
use crate::yaml::split::Segment;
use std::borrow::Cow;

/// A workload's identity to the API server: apiVersion group, kind, namespace, name.
pub(super) type Identity = (String, String, Option<String>, String);

pub(super) fn identity(
    api_version: &str,
    kind: &str,
    namespace: Option<&str>,
    name: &str,
) -> Identity {
    let group = api_version.rsplit_once('/').map_or("", |(g, _)| g);
    (
        group.to_string(),
        kind.to_string(),
        namespace.map(str::to_string),
        name.to_string(),
    )
}

/// A named workload's identity and where it is.
#[derive(Debug, Clone)]
pub struct Placed {
    pub(super) identity: Identity,
    pub(super) doc: usize,
    pub(super) line: usize,
    /// `items[i]` (nested: `items[i].items[j]`) for a list's item.
    pub(super) item: Option<String>,
}

/// Records `object` (or, for a list, its items) when it is a named workload.
pub(super) fn record_workloads(
    object: &Value,
    policy: &Policy,
    (doc, line): (usize, usize),
    item: Option<String>,
    out: &mut Vec<Placed>,
) {
    if is_list(object) {
        if let Some(Value::Array(items)) = object.get("items") {
            for (i, it) in items.iter().enumerate() {
                let path = match &item {
                    Some(p) => format!("{p}.items[{i}]"),
                    None => format!("items[{i}]"),
                };
                record_workloads(it, policy, (doc, line), Some(path), out);
            }
        }
        return;
    }
    let s = |p: &str| object.pointer(p).and_then(Value::as_str);
    let (Some(api_version), Some(kind), Some(name)) =
        (s("/apiVersion"), s("/kind"), s("/metadata/name"))
    else {
        return;
    };
    if name.is_empty()
        || is_local_config(object)
        || pod_location(api_version, kind, policy).is_none()
    {
        return;
    }
    out.push(Placed {
        identity: identity(api_version, kind, s("/metadata/namespace"), name),
        doc,
        line,
        item,
    });
}

/// The identities that are in `placed` more than once.
pub(super) fn repeated(placed: &[Placed]) -> HashSet<Identity> {
    let mut seen = HashSet::with_capacity(placed.len());
    placed
        .iter()
        .filter(|p| !seen.insert(&p.identity))
        .map(|p| p.identity.clone())
        .collect()
}

/// Two workloads of one identity in different documents, one of them a list's item: the list
/// decides its items' budgets on its own, so the pair is an error (a repeat within one list, or
/// among documents, leaves the repeated workloads without a budget instead).
pub(super) fn repeated_across_a_list(placed: &[Placed]) -> Option<(&Placed, &Placed)> {
    let mut first: HashMap<&Identity, &Placed> = HashMap::with_capacity(placed.len());
    for p in placed {
        match first.get(&p.identity) {
            None => {
                first.insert(&p.identity, p);
            }
            Some(f) if f.doc != p.doc && (f.item.is_some() || p.item.is_some()) => {
                return Some((f, p));
            }
            Some(_) => {}
        }
    }
    None
}

/// Why an object planned for a repeated workload is not created.
pub(super) fn repeated_result(
    rule: &dyn Rule,
    resource: ResourceRef,
    file: Option<String>,
) -> KrmResult {
    let message = rule.withdrawn(&resource);
    KrmResult::new(rule.id(), Severity::Info, message, Some(resource), file)
}

/// An object a rule plans to create after a document of a plain stream, settled, named and
/// written once the whole stream is done.
pub(super) struct PendingCreate {
    pub(super) rule: &'static dyn Rule,
    pub(super) planned: Box<Note>,
    /// The workload's `# Source:` (Helm 3 groups output by it).
    pub(super) source: Option<String>,
    pub(super) layout: Layout,
    pub(super) resource: ResourceRef,
}

/// The result for a budget left out because of an overlap.
/// True when the document's last node is a block scalar that runs to the end of its text.
pub(super) fn ends_in_block_scalar(text: &str) -> bool {
    use crate::yaml::tree::{parse_document, Data};
    use saphyr_parser::ScalarStyle;
    let Ok(doc) = parse_document(text) else {
        return false;
    };
    let Some(mut node) = doc.root.as_ref() else {
        return false;
    };
    loop {
        node = match &node.data {
            Data::Map { entries, .. } => match entries.last() {
                Some(e) => &e.value,
                None => return false,
            },
            Data::Seq { items, .. } => match items.last() {
                Some(n) => n,
                None => return false,
            },
            Data::Scalar { style, .. } => {
                return matches!(style, ScalarStyle::Literal | ScalarStyle::Folded)
                    && text.get(node.end..).is_some_and(|t| t.trim().is_empty());
            }
            Data::Alias(_) => return false,
        };
    }
}

/// For each planned object (with the rule that planned it), in order: `Some(message)` when its
/// rule's `settle` hook drops it (`notes`: what the rules observed of the workloads concerned).
pub(super) fn settle(
    planned: &[(&'static dyn Rule, &Note)],
    notes: &[(&'static str, Box<Note>)],
    index: &StreamIndex,
) -> Vec<Option<String>> {
    let mut out = vec![None; planned.len()];
    for rule in rules::registry() {
        let (at, mine): (Vec<usize>, Vec<&Note>) = planned
            .iter()
            .enumerate()
            .filter(|(_, (r, _))| r.id() == rule.id())
            .map(|(i, (_, p))| (i, *p))
            .unzip();
        if mine.is_empty() {
            continue;
        }
        let observed: Vec<&Note> = notes
            .iter()
            .filter(|(id, _)| *id == rule.id())
            .map(|(_, n)| &**n)
            .collect();
        for (i, why) in at.into_iter().zip(rule.settle(&mine, &observed, index)) {
            out[i] = why;
        }
    }
    out
}

/// The `Op::Create` changes for the planned objects kept, in order (each rule names its own
/// against the stream index, in order).
pub(super) fn create(kept: &[(&'static dyn Rule, &Note)], index: &StreamIndex) -> Vec<Change> {
    let mut out: Vec<Option<Change>> = kept.iter().map(|_| None).collect();
    for rule in rules::registry() {
        let (at, mine): (Vec<usize>, Vec<&Note>) = kept
            .iter()
            .enumerate()
            .filter(|(_, (r, _))| r.id() == rule.id())
            .map(|(i, (_, p))| (i, *p))
            .unzip();
        if mine.is_empty() {
            continue;
        }
        for (i, change) in at.into_iter().zip(rule.create(&mine, index)) {
            out[i] = Some(change);
        }
    }
    out.into_iter().flatten().collect()
}

/// Reports a created object (the `generated: …` result, the counters) and returns it for
/// placing; `None` for a change that creates nothing.
pub(super) fn take_created(change: Change, file: Option<String>, sink: &mut Sink) -> Option<Value> {
    let Op::Create(object) = change.op else {
        return None;
    };
    let result = KrmResult::new_change(
        change.rule,
        Severity::Info,
        change.message,
        Some(ResourceRef::of(&object)),
        file,
    );
    if sink.notes.len() < NOTED_OBJECTS {
        sink.notes.push(result.clone());
    }
    if sink.verbosity >= Verbosity::Changes {
        sink.keep(result);
    }
    sink.stats.changes += 1;
    sink.stats.generated += 1;
    Some(object)
}

/// Places a created object at the end of a list's items through the one applier, and reports
/// it; true when it was placed.
pub(super) fn place_in_list(
    list: &mut Value,
    change: Change,
    file: Option<String>,
    sink: &mut Sink,
) -> bool {
    let rule = change.rule;
    let message = change.message.clone();
    let Some(object) = take_created(change, file, sink) else {
        return false;
    };
    let placed = Change {
        rule,
        path: FieldPath::root().key("items"),
        op: Op::Create(object),
        message,
    };
    change::apply(list, &placed).unwrap_or(false)
}

/// Runs every rule's `index` hook over the stream: only documents some rule's `indexes` says
/// may matter are parsed; a ResourceList (the first document) item by item, as one tree of a
/// whole kpt package would cost more memory than everything else.
pub(super) fn index_stream(segments: &[(Segment<'_>, usize)], first: usize) -> StreamIndex {
    let mut index = StreamIndex::default();
    for (n, (seg, _)) in segments.iter().enumerate() {
        if StreamIndex::may_matter(seg.text) {
            if n <= first && resource_list::index_items(seg.text, &mut index) {
                continue;
            }
            if let Ok(doc) = crate::yaml::tree::parse_document(seg.text) {
                if let Some(root) = &doc.root {
                    index.record(&root.to_value());
                }
            }
        }
    }
    index
}

/// Two workloads of one identity in different documents, one of them a list's item: an error
/// naming both (a list decides its items' created objects on its own, and the next run would
/// take an object created for one as the other's).
pub(super) fn check_repeated(workloads: &[Placed]) -> Result<(), Error> {
    if let Some((first, second)) = repeated_across_a_list(workloads) {
        let (_, kind, namespace, name) = &second.identity;
        let ns = namespace
            .as_ref()
            .map_or(String::new(), |n| format!(" in namespace {n}"));
        return Err(Error::SameObject {
            doc: second.doc,
            line: second.line,
            message: format!(
                "{}{kind} {name}{ns} is in the input twice (the same apiVersion group, kind, \
                 namespace and name), once as a list's item: applied, one would replace the \
                 other; rename or remove one",
                second
                    .item
                    .as_ref()
                    .map_or(String::new(), |i| format!("{i}: "))
            ),
            first_doc: first.doc,
            first_line: first.line,
            first_item: first
                .item
                .as_ref()
                .map_or(String::new(), |i| format!(", {i}")),
        });
    }
    Ok(())
}

/// Objects planned for a workload that is in the stream more than once are not created: the
/// next run would take the one created for one as the other's, and decide otherwise.
pub(super) fn withdraw_repeated(parts: &mut [SegmentOut<'_>], sink: &mut Sink) {
    let twice = repeated(&sink.workloads);
    if !twice.is_empty() {
        for part in parts.iter_mut() {
            let created = std::mem::take(&mut part.created);
            for pending in created {
                let r = &pending.resource;
                let id = identity(&r.api_version, &r.kind, r.namespace.as_deref(), &r.name);
                if twice.contains(&id) {
                    sink.push(repeated_result(
                        pending.rule,
                        pending.resource,
                        pending.source,
                    ));
                } else {
                    part.created.push(pending);
                }
            }
        }
    }
}

/// Settles, creates and places the objects planned after the documents of a stream: every
/// rule settles its planned objects against the whole stream (no pod under two budgets), then
/// the kept ones that can be placed are created (named) in stream order, each written as a
/// document right after the one it was planned for.
pub(super) fn place_in_stream<'a>(
    parts: Vec<SegmentOut<'a>>,
    segments: &[(Segment<'a>, usize)],
    index: &StreamIndex,
    sink: &mut Sink,
    out: &mut Output<'a>,
) {
    let planned: Vec<(&'static dyn Rule, &Note)> = parts
        .iter()
        .flat_map(|p| p.created.iter().map(|c| (c.rule, &*c.planned)))
        .collect();
    let dropped = settle(&planned, &sink.observed, index);
    // The line break an object needs before it would become part of a block scalar that ends
    // the input (`|`/`>` keep the last line break): the value would change.
    let mut blocked = Vec::with_capacity(planned.len());
    for (part, (seg, _)) in parts.iter().zip(segments) {
        let open_end = !(part.text.is_empty() || part.text.ends_with_newline());
        let block = !part.created.is_empty() && open_end && ends_in_block_scalar(seg.text);
        blocked.extend(part.created.iter().map(|_| block));
    }
    let kept: Vec<(&'static dyn Rule, &Note)> = planned
        .iter()
        .zip(dropped.iter().zip(&blocked))
        .filter(|(_, (why, block))| why.is_none() && !**block)
        .map(|(p, _)| *p)
        .collect();
    let mut made = create(&kept, index).into_iter();
    drop(planned);
    let mut dropped = dropped.into_iter().zip(blocked);
    out.chunks.reserve(parts.len());
    out.origins.reserve(parts.len());
    // `parts` holds one output per segment, in segment order: each created object goes right
    // after the document it was planned for.
    for (part, (seg, _)) in parts.into_iter().zip(segments) {
        out.chunks.push(part.text);
        out.origins.push(seg.start);
        for pending in part.created {
            let Some((why, block)) = dropped.next() else {
                break;
            };
            if let Some(message) = why {
                sink.push(KrmResult::new(
                    pending.rule.id(),
                    Severity::Info,
                    message,
                    Some(pending.resource),
                    pending.source,
                ));
                continue;
            }
            if block {
                sink.push(KrmResult {
                    rule: pending.rule.id(),
                    severity: Severity::Warning,
                    message: pending.rule.not_placed(),
                    resource: Some(pending.resource),
                    path: None,
                    current: None,
                    proposed: None,
                    file: pending.source,
                    fields: Vec::new(),
                    change: false,
                });
                continue;
            }
            let Some(object) = made
                .next()
                .and_then(|c| take_created(c, pending.source.clone(), sink))
            else {
                continue;
            };
            let nl = pending.layout.newline;
            let mut text = String::new();
            if !out
                .chunks
                .last()
                .is_some_and(|c| c.is_empty() || c.ends_with_newline())
            {
                text.push_str(nl);
            }
            text.push_str("---");
            text.push_str(nl);
            if let Some(source) = &pending.source {
                text.push_str("# Source: ");
                text.push_str(source);
                text.push_str(nl);
            }
            text.push_str(&emit::document(&object, &pending.layout));
            out.chunks.push(Chunk::Text(Cow::Owned(text)));
            out.origins.push(seg.start);
        }
    }
}
