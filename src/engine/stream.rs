//! The stream-wide steps around the documents: the rules' index hooks over the whole stream
//! first; at the end, objects planned for a repeated workload withdrawn, and the created objects
//! settled, named and placed after the documents they were planned for.

use super::document::SegmentOut;
use super::hooks::{create, repeated_result, settle, take_created};
use super::identity::{identity, repeated};
use super::resource_list;
use super::results::Sink;
use super::results::{Chunk, Output};
use crate::change::{KrmResult, Severity};
use crate::rules::{Note, Rule, StreamIndex};
use crate::yaml::emit;
use crate::yaml::split::Segment;
use std::borrow::Cow;

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

/// Settles, creates and places the objects planned after the documents of a stream: every
/// rule settles its planned objects against the whole stream (no pod under two budgets), then
/// the kept ones that can be placed are created (named) in stream order, each written as a
/// document right after the one it was planned for.
pub(super) fn place_in_stream<'a>(
    mut parts: Vec<SegmentOut<'a>>,
    segments: &[(Segment<'a>, usize)],
    index: &StreamIndex,
    sink: &mut Sink,
    out: &mut Output<'a>,
) {
    // The plans move out of the documents' outputs, which are written while objects are created.
    let mut notes: Vec<(&'static dyn Rule, Box<Note>)> = Vec::new();
    for part in &mut parts {
        for c in &mut part.created {
            notes.push((c.rule, std::mem::replace(&mut c.planned, Box::new(()))));
        }
    }
    let planned: Vec<(&'static dyn Rule, &Note)> =
        notes.iter().map(|(rule, p)| (*rule, &**p)).collect();
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
    let mut made = create(&kept, index);
    let mut dropped = dropped.into_iter().zip(blocked);
    // Room for every document and every object that may be created, so the vectors never grow
    // by doubling (a copy of the whole list at the peak).
    out.chunks.reserve(parts.len() + kept.len());
    out.origins.reserve(parts.len() + kept.len());
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
                sink.push(KrmResult::new(
                    pending.rule.id(),
                    Severity::Warning,
                    pending.rule.not_placed(),
                    Some(pending.resource),
                    pending.source,
                ));
                continue;
            }
            let Some(object) = made
                .next()
                .flatten()
                .and_then(|c| take_created(c, pending.source.clone(), sink))
            else {
                continue;
            };
            let nl = pending.layout.newline;
            let document = emit::document(&object, &pending.layout);
            let source_len = pending.source.as_ref().map_or(0, |s| s.len() + 16);
            let mut text = String::with_capacity(document.len() + source_len + 8);
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
            text.push_str(&document);
            out.chunks.push(Chunk::Text(Cow::Owned(text)));
            out.origins.push(seg.start);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::schedule::number_segments;
    use crate::rules::pod_disruption_budget::{BudgetIndex, ID};

    #[test]
    fn the_index_sees_only_documents_a_rule_may_care_about() {
        let input = "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: c}\n---\napiVersion: policy/v1\nkind: PodDisruptionBudget\nmetadata: {name: web}\nspec: {selector: {matchLabels: {app: web}}}\n";
        let (segments, first) = number_segments(input);
        let index = index_stream(&segments, first);
        let budgets = index.get::<BudgetIndex>(ID).unwrap().budget_names();
        assert!(budgets.contains(&(None, "web".to_string())));
        let (segments, first) = number_segments("apiVersion: v1\nkind: ConfigMap\n");
        assert!(index_stream(&segments, first)
            .get::<BudgetIndex>(ID)
            .is_none());
    }

    #[test]
    fn a_block_scalar_at_the_end() {
        assert!(ends_in_block_scalar("a:\n  b: |\n    text"));
        assert!(!ends_in_block_scalar("a:\n  b: |\n    text\nc: 1"));
        assert!(!ends_in_block_scalar("a: plain"));
    }
}
