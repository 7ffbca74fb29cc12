//! The stream-wide steps around the documents: the rules' index hooks over the whole stream
//! first; at the end, objects planned for a repeated workload withdrawn, and the created objects
//! settled, named and placed after the documents they were planned for.

use super::document::SegmentOut;
use super::hooks::{
    create, created_result, repeated_result, report_created, settle, PendingCreate,
};
use super::identity::{identity, repeated};
use super::resource_list;
use super::results::Sink;
use super::results::{Chunk, Output};
use super::schedule::in_order_items;
use crate::change::{KrmResult, Severity};
use crate::rules::{Note, Rule, StreamIndex};
use crate::yaml::emit::{self, Layout};
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

/// A created object built and written (on any thread): its `generated: …` result and its
/// document (the object's lines).
type Built = Option<(KrmResult, String)>;

/// Settles, creates and places the objects planned after the documents of a stream: every
/// rule settles its planned objects against the whole stream (no pod under two budgets), then
/// the kept ones that can be placed are created (named) in stream order, each written as a
/// document right after the one it was planned for. Settling and naming are sequential; the
/// objects are built and written in pieces on `threads` threads ([`in_order_items`]) and taken
/// in order, so the output and the results are the same on any number of threads.
pub(super) fn place_in_stream<'a>(
    parts: Vec<SegmentOut<'a>>,
    segments: &[(Segment<'a>, usize)],
    index: &StreamIndex,
    threads: usize,
    sink: &mut Sink,
    out: &mut Output<'a>,
) {
    // The texts go out while the objects planned after them are built from the plans.
    let (texts, mut created): (Vec<Chunk<'a>>, Vec<Vec<PendingCreate>>) =
        parts.into_iter().map(|p| (p.text, p.created)).unzip();
    let mut notes: Vec<(&'static dyn Rule, Box<Note>)> = Vec::new();
    for pending in created.iter_mut().flatten() {
        notes.push((
            pending.rule,
            std::mem::replace(&mut pending.planned, Box::new(())),
        ));
    }
    let planned: Vec<(&'static dyn Rule, &Note)> =
        notes.iter().map(|(rule, p)| (*rule, &**p)).collect();
    let dropped = settle(&planned, &sink.observed, index);
    // The line break an object needs before it would become part of a block scalar that ends
    // the input (`|`/`>` keep the last line break): the value would change.
    let mut blocked = Vec::with_capacity(planned.len());
    for ((text, created), (seg, _)) in texts.iter().zip(&created).zip(segments) {
        let open_end = !(text.is_empty() || text.ends_with_newline());
        let block = !created.is_empty() && open_end && ends_in_block_scalar(seg.text);
        blocked.extend(created.iter().map(|_| block));
    }
    let keep = |(why, block): (&Option<String>, &bool)| why.is_none() && !*block;
    let kept: Vec<(&'static dyn Rule, &Note)> = planned
        .iter()
        .zip(dropped.iter().zip(&blocked))
        .filter(|(_, d)| keep(*d))
        .map(|(p, _)| *p)
        .collect();
    // How each kept object is written (the plans themselves go as the walk below passes them).
    let layouts: Vec<Layout> = created
        .iter()
        .flatten()
        .zip(dropped.iter().zip(&blocked))
        .filter(|(_, d)| keep(*d))
        .map(|(p, _)| p.layout)
        .collect();
    let made = create(&kept, index);
    let build = |k: usize| -> Built {
        // The result's file is set in order, from the plan.
        let (result, object) = created_result(made.build(k)?, None)?;
        Some((result, emit::document(&object, &layouts[k])))
    };
    // Room for every document and every object that may be created, so the vectors never grow
    // by doubling (a copy of the whole list at the peak).
    out.chunks.reserve(texts.len() + kept.len());
    out.origins.reserve(texts.len() + kept.len());
    in_order_items(kept.len(), threads, build, |built| {
        let mut dropped = dropped.into_iter().zip(blocked);
        // One output per segment, in segment order: each created object goes right after the
        // document it was planned for.
        for ((text, created), (seg, _)) in texts.into_iter().zip(created).zip(segments) {
            out.chunks.push(text);
            out.origins.push(seg.start);
            for pending in created {
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
                let Some((mut result, document)) = built.next().flatten() else {
                    continue;
                };
                let open = !out
                    .chunks
                    .last()
                    .is_some_and(|c| c.is_empty() || c.ends_with_newline());
                // The text that stays is made here, on this thread: its memory then comes from
                // what this thread freed before (a worker's would be new pages, 4 MB more peak
                // RSS on the bench stream).
                let text = write_created(&document, &pending, open);
                result.file = pending.source;
                report_created(result, sink);
                out.chunks.push(Chunk::Text(Cow::Owned(text)));
                out.origins.push(seg.start);
            }
        }
    });
}

/// A created object's text: a line break when the output before it is `open` (does not end
/// with one), its `---` line, its workload's `# Source:` and its `document`.
fn write_created(document: &str, pending: &PendingCreate, open: bool) -> String {
    let nl = pending.layout.newline;
    let source_len = pending.source.as_ref().map_or(0, |s| s.len() + 16);
    let mut text = String::with_capacity(document.len() + source_len + 8);
    if open {
        text.push_str(nl);
    }
    text.push_str("---");
    text.push_str(nl);
    if let Some(source) = &pending.source {
        text.push_str("# Source: ");
        text.push_str(source);
        text.push_str(nl);
    }
    text.push_str(document);
    text
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
    fn created_objects_are_the_same_on_any_number_of_threads() {
        let deployment = |name: &str, app: &str, source: &str| {
            format!(
                "---\n# Source: chart/templates/{source}.yaml\napiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: {name}\nspec:\n  replicas: 3\n  selector:\n    matchLabels: {{app: {app}}}\n  template:\n    metadata:\n      labels: {{app: {app}}}\n    spec:\n      containers:\n      - name: c\n        image: nginx:1\n"
            )
        };
        // A budget already named `d7` (selecting other pods): d7's is named otherwise.
        let mut input = String::from("apiVersion: policy/v1\nkind: PodDisruptionBudget\nmetadata:\n  name: d7\nspec:\n  minAvailable: 1\n  selector:\n    matchLabels: {app: elsewhere}\n");
        for i in 0..300 {
            input.push_str(&deployment(
                &format!("d{i}"),
                &format!("a{i}"),
                &format!("d{i}"),
            ));
            input.push_str(&format!(
                "---\napiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: c{i}\n"
            ));
        }
        // Two workloads with the same pods: neither gets a budget (dropped when settling).
        input.push_str(&deployment("twin-a", "twin", "twins"));
        input.push_str(&deployment("twin-b", "twin", "twins"));
        // The last document without its final line break: its budget starts with one.
        input.push_str(deployment("last", "last", "last").trim_end());
        let run = |threads| {
            let options = crate::engine::Options {
                threads,
                spec: Some(
                    crate::policy::spec_from_object(&serde_json::json!({
                        "apiVersion": "kube-harden.dev/v1alpha1", "kind": "HardeningPolicy",
                        "spec": {"verbosity": "all"}}))
                    .unwrap(),
                ),
                ..crate::engine::Options::default()
            };
            let out = crate::engine::process(&input, &options).unwrap();
            (out.text(), out.results, out.stats, out.origins, out.notes)
        };
        let one = run(1);
        assert_eq!(one.2.generated, 301);
        let text = &one.0;
        assert!(text.contains("kind: PodDisruptionBudget\nmetadata:\n  name: d7-pdb\n"));
        assert!(
            !text.contains("name: twin-a\n  namespace")
                && !text.contains("generated-for: Deployment/twin")
        );
        let last =
            text.rfind("\n---\n# Source: chart/templates/last.yaml\napiVersion: policy/v1\n");
        assert!(!text[..last.unwrap()].ends_with('\n'), "{text}");
        let messages: Vec<&str> = one.1.iter().map(|r| r.message.as_str()).collect();
        assert_eq!(
            messages
                .iter()
                .filter(|m| m.starts_with("no PodDisruptionBudget"))
                .count(),
            2
        );
        assert_eq!(
            messages
                .iter()
                .filter(|m| m.starts_with("generated: "))
                .count(),
            301
        );
        for threads in [2, 3] {
            assert!(run(threads) == one, "{threads} threads");
        }
    }

    #[test]
    fn a_block_scalar_at_the_end() {
        assert!(ends_in_block_scalar("a:\n  b: |\n    text"));
        assert!(!ends_in_block_scalar("a:\n  b: |\n    text\nc: 1"));
        assert!(!ends_in_block_scalar("a: plain"));
    }
}
