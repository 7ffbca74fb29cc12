//! A `ResourceList`'s items handled like the documents of a stream: each item's own text is
//! parsed, hardened and edited in place, on every core, and only items a rule touches get a
//! tree. The list as a whole is never parsed into one tree (kpt sends packages of thousands of
//! objects as one document).
//!
//! The items are found by their lines: in a block sequence, an item starts at a `-` in the
//! sequence's column and nothing else of the list's own structure can be at or left of that
//! column. Each item is read as a document of its own whose first line keeps its column (the
//! dash becomes a space), so positions, indentation and the patcher's edits are those the whole
//! list would get. The rest of the list (its `apiVersion`, `kind`, `functionConfig`) is read
//! with the items cut out.
//!
//! Whenever anything is outside what this path can vouch for — an item that does not parse on
//! its own (an alias to another item, a multi-line scalar crossing the item column), a nested
//! list, existing `results` (a second run of the same pipeline), a flow or JSON list, CRLF line
//! ends, a document that would be re-emitted — it answers `None` and the caller reads the list
//! as one tree, exactly as before. Outputs are byte-identical either way (tests below and the
//! golden cases run both).

use std::borrow::Cow;

use serde_json::{Map, Value};

use super::document::SegmentOut;
use super::form::InputForm;
use super::form::{function_config_spec, item_file, results_to_add, sniff_document, Root};
use super::hooks::{settle_and_create, take_created, ListPlans};
use super::identity::{identity, record_workloads, repeated};
use super::pipeline::{harden_in_stream, plan_objects};
use super::results::Chunk;
use super::results::{Sink, NOTED_OBJECTS};
use crate::change::ResourceRef;
use crate::config::Verbosity;
use crate::config::{Overrides, Policy};
use crate::krm::{Field, ResourceList};
use crate::model::workload::pod_location;
use crate::rules::{object_rule_reads, StreamIndex};
use crate::yaml::emit::{self, Layout};
use crate::yaml::patch::{patch, Written};
use crate::yaml::split::Segment;
use crate::yaml::tree::{
    build_document, check_keys, collect_events, parse_document, Data, Document, Node,
};

/// Off: every list is read as one tree (tests and the fuzz targets compare the two paths).
static ENABLED: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(true);

/// Switches this path on or off for the whole process; for differential tests only.
#[doc(hidden)]
pub fn set_enabled(on: bool) {
    ENABLED.store(on, std::sync::atomic::Ordering::Relaxed);
}

/// Items per worker at least: threads do not pay for a few small items.
const MIN_ITEMS_PER_THREAD: usize = 8;

/// Where a list's items are in its text.
struct Items {
    /// The column of the items' dashes.
    dash: usize,
    /// Each item's line start (its dash at `dash`).
    lines: Vec<usize>,
    /// Where the sequence ends: the start of the first line after it, or the text's end.
    end: usize,
}

impl Items {
    /// The item's text, from just past its dash to the next item's line.
    fn span(&self, i: usize) -> (usize, usize) {
        let start = self.lines[i] + self.dash + 1;
        let end = self.lines.get(i + 1).copied().unwrap_or(self.end);
        (start, end)
    }
}

/// Finds the block sequence under a top-level `items:` whose items are all on lines of their
/// own, when everything before it is plain top-level `key: value` lines.
fn find_items(text: &str) -> Option<Items> {
    let mut pos = 0;
    let mut key_line_end = None;
    // The part before `items:`: top-level scalars only (a block collection there would be seen
    // by the layout before the items are).
    while pos < text.len() {
        let end = text[pos..].find('\n').map_or(text.len(), |i| pos + i + 1);
        let line = &text[pos..end];
        let content = line.trim_end_matches(['\n', '\r']);
        if let Some(rest) = content.strip_prefix("items:") {
            let rest = rest.trim_start_matches(' ');
            if !(rest.is_empty() || rest.starts_with('#')) {
                return None;
            }
            key_line_end = Some(end);
            pos = end;
            break;
        }
        let blank = content.trim().is_empty() || content.trim_start().starts_with('#');
        if !blank
            && (content.starts_with([' ', '\t', '%', '\u{feff}', '"', '\'', '{', '[', '?', '-'])
                && content != "---")
        {
            return None;
        }
        if !blank && content != "---" && !plain_scalar_entry(content) {
            return None;
        }
        pos = end;
    }
    key_line_end?;
    let mut dash = None;
    let mut lines = Vec::new();
    let mut end = text.len();
    while pos < text.len() {
        let line_end = text[pos..].find('\n').map_or(text.len(), |i| pos + i + 1);
        let line = &text[pos..line_end];
        let content = line.trim_end_matches(['\n', '\r']);
        let indent = content.len() - content.trim_start_matches(' ').len();
        let rest = &content[indent..];
        if rest.is_empty() || rest.starts_with('#') {
            pos = line_end;
            continue;
        }
        if rest.starts_with('\t') {
            return None;
        }
        let is_item = rest == "-" || rest.starts_with("- ");
        match dash {
            None => {
                if !is_item {
                    return None;
                }
                dash = Some(indent);
                lines.push(pos);
            }
            Some(d) if indent == d && is_item => lines.push(pos),
            Some(d) if indent > d => {}
            // The next top-level key.
            Some(_) if indent == 0 => {
                end = pos;
                break;
            }
            Some(_) => return None,
        }
        pos = line_end;
    }
    Some(Items {
        dash: dash?,
        lines,
        end,
    })
}

/// A top-level `key: value` line whose value is a plain or quoted scalar on that line (or a
/// flow collection that closes on it).
fn plain_scalar_entry(line: &str) -> bool {
    let Some(colon) = line
        .find(": ")
        .or_else(|| line.ends_with(':').then(|| line.len() - 1))
    else {
        return false;
    };
    let value = line[colon + 1..].trim();
    // `key:` alone would open a block collection on the next lines.
    !value.is_empty() && !value.starts_with(['|', '>', '&', '*', '!'])
}

/// One item's text as a document of its own: the dash becomes a space, so every column stays.
fn item_text(text: &str, items: &Items, i: usize) -> String {
    let (start, end) = items.span(i);
    let mut s = String::with_capacity(items.dash + 1 + end - start);
    s.extend(std::iter::repeat_n(' ', items.dash + 1));
    s.push_str(&text[start..end]);
    s
}

/// Records a list's items in the stream index item by item, without one tree of the whole list;
/// false when its items cannot be cut apart (the caller then reads the list as one tree). Items
/// that cannot be one of the index's kinds are not parsed (an escape could spell the kind, so an
/// item with a backslash is).
pub(super) fn index_items(text: &str, index: &mut StreamIndex) -> bool {
    if text.contains('\r') {
        return false;
    }
    let Some(items) = find_items(text) else {
        return false;
    };
    let mut values = Vec::new();
    for i in 0..items.lines.len() {
        let (start, end) = items.span(i);
        let own = &text[start..end];
        if !StreamIndex::may_matter(own) && !own.contains('\\') {
            continue;
        }
        let virtual_text = item_text(text, &items, i);
        let Ok(doc) = parse_document(&virtual_text) else {
            return false;
        };
        if let Some(root) = doc.root {
            values.push(root.to_value());
        }
    }
    // Only a list's items are recorded one by one (as `StreamIndex::record` does).
    let rest_text = format!("{}{}", &text[..items.lines[0]], &text[items.end..]);
    let Ok(rest) = parse_document(&rest_text) else {
        return false;
    };
    let kind = rest
        .root
        .map(|r| r.to_value())
        .and_then(|v| v.get("kind").and_then(Value::as_str).map(str::to_string));
    if !kind.is_some_and(|k| k.ends_with("List")) {
        return false;
    }
    values.iter().for_each(|v| index.record(v));
    true
}

/// What became of one item.
struct ItemOut {
    /// Its new text (without the virtual indentation), when a rule changed it.
    text: Option<String>,
    /// Where its results are in its worker's sink.
    results: std::ops::Range<usize>,
    /// A workload: its value and file, for the rules' `plan` hooks, asked once every item is
    /// known (a workload in the list twice gets nothing created).
    workload: Option<(Value, Option<String>)>,
}

/// The list cannot be handled here; read it as one tree.
struct Fallback;

fn process_item(
    text: &str,
    items: &Items,
    i: usize,
    layout: &Layout,
    policy: &Policy,
    index: &StreamIndex,
    sink: &mut Sink,
) -> Result<ItemOut, Fallback> {
    let from = sink.results.len();
    let unchanged = ItemOut {
        text: None,
        results: from..from,
        workload: None,
    };
    let virtual_text = item_text(text, items, i);
    let events = collect_events(&virtual_text).map_err(|_| Fallback)?;
    let sniff = sniff_document(&virtual_text, &events);
    if !matches!(sniff.root, Root::Map) || sniff.indirect {
        return Err(Fallback);
    }
    let (Some(api_version), Some(kind)) = (sniff.api_version.as_deref(), sniff.kind.as_deref())
    else {
        return Err(Fallback);
    };
    // Lists inside the list are flattened by the tree path.
    if kind == "List" || kind.ends_with("List") {
        return Err(Fallback);
    }
    if pod_location(api_version, kind, policy).is_none()
        && !object_rule_reads(api_version, kind, policy)
    {
        // Read by no rule, but Kubernetes must read it (a key set twice): an error is the tree
        // path's to report.
        check_keys(&events).map_err(|_| Fallback)?;
        return Ok(unchanged);
    }
    let mut doc = build_document(&virtual_text, &events).map_err(|_| Fallback)?;
    drop(events);
    if doc.uses_aliases {
        return Err(Fallback);
    }
    // A block mapping: the patcher adds to a flow item otherwise than to a flow document.
    let Some(
        root @ Node {
            data: Data::Map { flow: false, .. },
            ..
        },
    ) = doc.root.as_ref()
    else {
        return Err(Fallback);
    };
    let mut value = root.to_value();
    let file = item_file(&value);
    let changed = harden_in_stream(&mut value, policy, index, file.as_deref(), sink);
    let results = from..sink.results.len();
    if !changed {
        return Ok(ItemOut {
            text: None,
            results,
            workload: Some((value, file)),
        });
    }
    // The whole list's habits, not the item's.
    doc.indent_step = layout.indent_step;
    doc.compact_sequences = layout.compact_sequences;
    match patch(&virtual_text, &doc, &value) {
        Written::Edited(patched) => {
            let out = patched.text();
            let prefix = items.dash + 1;
            if !out.as_bytes()[..prefix].iter().all(|&b| b == b' ') {
                return Err(Fallback);
            }
            Ok(ItemOut {
                text: Some(out[prefix..].to_string()),
                results,
                workload: Some((value, file)),
            })
        }
        Written::Reemitted(_) => Err(Fallback),
    }
}

/// A sink as the tree path sets one up for a list: results kept as values, the verbosity the
/// list's policy (its functionConfig) says.
fn list_sink(policy: &Policy, default_verbosity: Verbosity) -> Sink {
    Sink {
        verbosity: policy.verbosity(default_verbosity),
        default_verbosity,
        ..Sink::default()
    }
}

/// Runs `process_item` over `range`, in order, into its own sink.
fn process_range(
    text: &str,
    items: &Items,
    range: std::ops::Range<usize>,
    layout: &Layout,
    policy: &Policy,
    index: &StreamIndex,
    default_verbosity: Verbosity,
) -> Result<(Vec<ItemOut>, Sink), Fallback> {
    let mut sink = list_sink(policy, default_verbosity);
    let outs = range
        .map(|i| process_item(text, items, i, layout, policy, index, &mut sink))
        .collect::<Result<Vec<_>, _>>()?;
    Ok((outs, sink))
}

/// The list's layout as the tree of the whole list would learn it: from the first items that
/// show each habit, then the `items` sequence itself, then the rest of the list.
fn layout_of_list(text: &str, items: &Items, rest: &Document<'_>) -> Option<Layout> {
    let (mut step, mut compact) = (None, None);
    for i in 0..items.lines.len() {
        if step.is_some() && compact.is_some() {
            break;
        }
        let virtual_text = item_text(text, items, i);
        let doc = parse_document(&virtual_text).ok()?;
        step = step.or(doc.observed.0);
        compact = compact.or(doc.observed.1);
    }
    compact = compact.or(Some(items.dash == 0));
    Some(Layout {
        indent_step: step.or(rest.observed.0).unwrap_or(2),
        compact_sequences: compact.or(rest.observed.1).unwrap_or(true),
        newline: "\n",
    })
}

/// Processes the first document of the input when it is a `ResourceList` this path can handle;
/// `None` otherwise (nothing has been changed then).
pub(super) fn process<'a>(
    seg: &Segment<'a>,
    policy: &mut Policy,
    overrides: &Overrides,
    index: &StreamIndex,
    sink: &mut Sink,
    threads: usize,
) -> Option<SegmentOut<'a>> {
    let text = seg.text;
    if !ENABLED.load(std::sync::atomic::Ordering::Relaxed) || text.contains('\r') {
        return None;
    }
    let items = find_items(text)?;
    let (first, _) = items.span(0);
    let head = &text[..items.lines[0]];
    let tail = &text[items.end..];
    // The list without its items: `items:` then reads as null.
    let rest_text = format!("{head}{tail}");
    let rest = parse_document(&rest_text).ok()?;
    let rest_value = rest.root.as_ref()?.to_value();
    // With its items cut out, `items` reads as null; earlier results send it the one-tree way.
    let list = ResourceList::of(&rest_value)?;
    if list.kind != "ResourceList"
        || list.items != Field::Null
        || list.results != Field::Absent
        || rest.uses_aliases
    {
        return None;
    }
    let mut new_policy = None;
    if let Some(fc) = &list.function_config {
        new_policy = Some(
            function_config_spec(fc)
                .and_then(|spec| Policy::with_overrides(spec, overrides))
                .ok()?,
        );
    }
    let policy_ref: &Policy = new_policy.as_ref().unwrap_or(policy);
    let layout = layout_of_list(text, &items, &rest)?;
    let n = items.lines.len();
    let threads = if cfg!(target_family = "wasm") {
        1
    } else {
        threads.clamp(1, n.div_ceil(MIN_ITEMS_PER_THREAD))
    };
    let per = n.div_ceil(threads);
    let default_verbosity = sink.default_verbosity;
    let parts: Vec<Result<(Vec<ItemOut>, Sink), Fallback>> = if threads == 1 {
        vec![process_range(
            text,
            &items,
            0..n,
            &layout,
            policy_ref,
            index,
            default_verbosity,
        )]
    } else {
        std::thread::scope(|scope| {
            let handles: Vec<_> = (0..n)
                .step_by(per)
                .map(|from| {
                    let (items, layout) = (&items, &layout);
                    scope.spawn(move || {
                        process_range(
                            text,
                            items,
                            from..(from + per).min(n),
                            layout,
                            policy_ref,
                            index,
                            default_verbosity,
                        )
                    })
                })
                .collect();
            handles
                .into_iter()
                .map(|h| h.join().expect("worker panicked"))
                .collect()
        })
    };
    let mut outs = Vec::with_capacity(n);
    let mut merged = list_sink(policy_ref, sink.default_verbosity);
    // Each item's results in item order, then (once every item is known) what
    // the rules' `plan` hooks decide for it, as the tree path does item by item.
    let mut sinks = Vec::with_capacity(parts.len());
    for part in parts {
        let (part_outs, mut part_sink) = part.ok()?;
        outs.push(part_outs);
        merged.stats.add(&part_sink.stats);
        merged.unresolved.append(&mut part_sink.unresolved);
        merged.observed.append(&mut part_sink.observed);
        merged.notes.append(&mut part_sink.notes);
        for rule in part_sink.changed_rules {
            if !merged.changed_rules.contains(&rule) {
                merged.changed_rules.push(rule);
            }
        }
        sinks.push(part_sink.results);
    }
    merged.notes.truncate(NOTED_OBJECTS);
    let mut placed = Vec::new();
    for (i, o) in outs.iter().flatten().enumerate() {
        if let Some((value, _)) = &o.workload {
            record_workloads(
                value,
                policy_ref,
                (0, 0),
                Some(format!("items[{i}]")),
                &mut placed,
            );
        }
    }
    let twice = repeated(&placed);
    let mut plans: ListPlans = Vec::new();
    for (part_outs, results) in outs.iter_mut().zip(&sinks) {
        for o in part_outs.iter_mut() {
            merged
                .results
                .extend_from_slice(&results[o.results.clone()]);
            let Some((value, file)) = o.workload.take() else {
                continue;
            };
            let resource = ResourceRef::of(&value);
            let is_repeated = twice.contains(&identity(
                &resource.api_version,
                &resource.kind,
                resource.namespace.as_deref(),
                &resource.name,
            ));
            for (rule, p) in plan_objects(
                &value,
                policy_ref,
                index,
                file.as_deref(),
                &mut merged,
                is_repeated,
            ) {
                plans.push(((rule, resource.clone(), file.clone()), p));
            }
        }
    }
    drop(sinks);
    let outs: Vec<ItemOut> = outs.into_iter().flatten().collect();
    // Created objects, in item order, once every item is known (settled as the tree path does).
    let mut created = Vec::new();
    settle_and_create(plans, 0, index, &mut merged, |change, file, sink| {
        created.extend(take_created(change, file, sink));
    });
    let results = results_to_add(&merged.results, None);
    // New lines go where the tree's patcher puts them: created objects after the last item's content,
    // results after the list's last entry (the same place when the items come last).
    let mut added = String::new();
    if !created.is_empty() {
        emit::sequence_items(&mut added, &created, items.dash, &layout);
        if !reads_alone_as(&added, &Value::Array(created)) {
            return None;
        }
    }
    let items_at = {
        let last = n - 1;
        let virtual_text = item_text(text, &items, last);
        let doc = parse_document(&virtual_text).ok()?;
        let end = doc.root.as_ref()?.end;
        let line_end = virtual_text[end..].find('\n').map(|i| end + i + 1)?;
        // In the original text.
        line_end - (items.dash + 1) + items.span(last).0
    };
    let mut results_text = String::new();
    let results_at = if results.is_empty() {
        None
    } else {
        let mut entry = Map::new();
        entry.insert("results".into(), Value::Array(results));
        emit::mapping_entries(&mut results_text, &entry, 0, &layout);
        if !reads_alone_as(&results_text, &Value::Object(entry)) {
            return None;
        }
        Some(
            if tail
                .lines()
                .all(|l| l.trim().is_empty() || l.trim_start().starts_with('#'))
            {
                items_at
            } else {
                // The end of the rest's last entry, moved past the cut-out items.
                let end = rest.root.as_ref()?.end;
                let line_end = rest_text[end..].find('\n').map(|i| end + i + 1)?;
                if line_end < head.len() {
                    return None;
                }
                let at = line_end - head.len() + items.end;
                if starts_with_blank_line(&text[at..]) {
                    return None;
                }
                at
            },
        )
    };
    // Write the list: its head, every item (new or as it was), then the rest, with the new
    // lines at their places.
    let mut out =
        String::with_capacity(text.len() + added.len() + results_text.len() + text.len() / 4);
    out.push_str(&text[..first]);
    let mut changed = !added.is_empty() || results_at.is_some();
    for (i, o) in outs.iter().enumerate() {
        let (start, end) = items.span(i);
        if i > 0 {
            out.push_str(&text[items.lines[i]..start]);
        }
        let item: Cow<'_, str> = match &o.text {
            Some(t) => {
                changed = true;
                Cow::Borrowed(t.as_str())
            }
            None => Cow::Borrowed(&text[start..end]),
        };
        if i + 1 == n && (!added.is_empty() || results_at == Some(items_at)) {
            // Split the last item at the end of its content (its edits there come first).
            let at = position_in_item(text, &items, i, o, items_at)?;
            out.push_str(&item[..at]);
            out.push_str(&added);
            if results_at == Some(items_at) {
                out.push_str(&results_text);
            }
            out.push_str(&item[at..]);
        } else {
            out.push_str(&item);
        }
    }
    match results_at {
        Some(at) if at != items_at => {
            out.push_str(&text[items.end..at]);
            out.push_str(&results_text);
            out.push_str(&text[at..]);
        }
        _ => out.push_str(tail),
    }
    if let Some(p) = new_policy {
        *policy = p;
    }
    sink.render = merged.render;
    sink.verbosity = merged.verbosity;
    sink.results.extend(merged.results);
    sink.stats.add(&merged.stats);
    sink.unresolved.extend(merged.unresolved);
    sink.observed.extend(merged.observed);
    sink.notes.extend(merged.notes);
    sink.notes.truncate(NOTED_OBJECTS);
    for rule in merged.changed_rules {
        if !sink.changed_rules.contains(&rule) {
            sink.changed_rules.push(rule);
        }
    }
    Some(SegmentOut {
        text: if changed {
            Chunk::Text(Cow::Owned(out))
        } else {
            Chunk::Text(Cow::Borrowed(text))
        },
        form: Some(InputForm::ResourceList),
        created: Vec::new(),
    })
}

/// Where `at` (a position of the original text inside item `i`) is in the item's output text,
/// after anything the item's own edits inserted there.
fn position_in_item(
    text: &str,
    items: &Items,
    i: usize,
    out: &ItemOut,
    at: usize,
) -> Option<usize> {
    let (start, end) = items.span(i);
    if at < start || at > end || starts_with_blank_line(&text[at..end]) {
        return None;
    }
    let Some(new) = &out.text else {
        return Some(at - start);
    };
    // The item's own edits end at `at` at the latest (new lines go right after the content, the
    // patcher's first try): the text after it is the same, so count back from the end.
    let suffix = &text[at..end];
    if !new.ends_with(suffix) {
        return None;
    }
    Some(new.len() - suffix.len())
}

/// True when `text` begins with a line of nothing but spaces (a keep block scalar's value may
/// run on through such lines: new lines are not put before them here).
fn starts_with_blank_line(text: &str) -> bool {
    text.split_inclusive('\n')
        .next()
        .is_some_and(|l| l.trim().is_empty() && l.ends_with('\n'))
}

/// True when `lines`, read as a document of its own, means `expected`.
fn reads_alone_as(lines: &str, expected: &Value) -> bool {
    if let Some(verdict) = crate::yaml::verify::reads_back_as(lines, expected) {
        return verdict;
    }
    parse_document(lines)
        .ok()
        .and_then(|d| d.root.map(|r| r.to_value()))
        .as_ref()
        == Some(expected)
}

#[cfg(test)]
mod tests {
    use super::super::{process_segment, Options};
    use super::*;
    use crate::yaml::split::split_documents;

    /// The list through this path (None: it fell back) and through the tree, with results.
    fn both(text: &str) -> (Option<(String, usize)>, (String, usize)) {
        let options = Options::default();
        let run = |fast: bool| {
            let mut policy =
                Policy::with_overrides(Default::default(), &options.overrides).unwrap();
            let mut sink = Sink::default();
            let segs = split_documents(text);
            let seg = segs.iter().find(|s| !s.is_blank()).unwrap();
            let mut index = StreamIndex::default();
            if !(fast && index_items(seg.text, &mut index)) {
                if let Ok(doc) = parse_document(seg.text) {
                    index.record(&doc.root.unwrap().to_value());
                }
            }
            let out = if fast {
                process(seg, &mut policy, &options.overrides, &index, &mut sink, 2)?
            } else {
                process_segment(
                    seg,
                    1,
                    true,
                    &mut policy,
                    &options.overrides,
                    &index,
                    &mut sink,
                )
                .unwrap()
            };
            let text: String = out.text.pieces().collect();
            Some((text, sink.results.len()))
        };
        (run(true), run(false).unwrap())
    }

    fn deployment(name: &str, extra: &str) -> String {
        format!(
            "- apiVersion: apps/v1\n  kind: Deployment\n  metadata:\n    name: {name}\n    annotations:\n      config.kubernetes.io/path: '{name}.yaml'\n  spec:\n    replicas: 2\n    selector:\n      matchLabels: {{app: {name}}}\n    template:\n      metadata:\n        labels: {{app: {name}}}\n      spec:\n        containers:\n        - name: app\n          image: nginx:1.27\n          ports:\n          - containerPort: 8080\n{extra}"
        )
    }

    fn config_map(name: &str) -> String {
        format!("- apiVersion: v1\n  kind: ConfigMap\n  metadata:\n    name: {name}\n  data:\n    a: \"1\"\n    script: |\n      echo hi\n      - not an item\n")
    }

    const HEAD: &str = "apiVersion: config.kubernetes.io/v1\nkind: ResourceList\nitems:\n";

    fn assert_same(text: &str) {
        let (fast, tree) = both(text);
        let fast = fast.unwrap_or_else(|| panic!("fell back on:\n{text}"));
        assert_eq!(fast.0, tree.0, "output differs for:\n{text}");
        assert_eq!(fast.1, tree.1, "result count differs for:\n{text}");
    }

    #[test]
    fn items_edited_one_by_one_give_the_tree_path_output() {
        let mut items = String::new();
        for i in 0..20 {
            items.push_str(&deployment(&format!("d{i}"), ""));
            items.push_str(&config_map(&format!("c{i}")));
            if i % 5 == 0 {
                items.push_str("# a comment between items\n\n");
            }
        }
        // Items last, then a functionConfig after them, then comments at the end.
        assert_same(&format!("{HEAD}{items}"));
        assert_same(&format!(
            "{HEAD}{items}functionConfig:\n  apiVersion: v1\n  kind: ConfigMap\n  metadata:\n    name: c\n  data:\n    runAsUser: \"20000\"\n"
        ));
        assert_same(&format!("{HEAD}{items}# trailing comment\n"));
        // The last item gains keys where budgets and results go too.
        let last = deployment(
            "last",
            "          securityContext:\n            privileged: false\n",
        );
        assert_same(&format!("{HEAD}{items}{last}"));
        // Budgets and autoscalers already in the list (the index read item by item).
        let hpa = "- apiVersion: autoscaling/v2\n  kind: HorizontalPodAutoscaler\n  metadata:\n    name: d1\n  spec:\n    scaleTargetRef: {apiVersion: apps/v1, kind: Deployment, name: d1}\n    minReplicas: 1\n    maxReplicas: 3\n";
        let pdb = "- apiVersion: policy/v1\n  kind: PodDisruptionBudget\n  metadata:\n    name: d2\n  spec:\n    maxUnavailable: 1\n    selector:\n      matchLabels: {app: d2}\n";
        assert_same(&format!("{HEAD}{hpa}{items}{pdb}"));
        // Indented items (`  - `) and a document marker.
        let indented: String = items.lines().map(|l| format!("  {l}\n")).collect();
        assert_same(&format!("---\n{HEAD}{indented}"));
    }

    #[test]
    fn anything_it_cannot_vouch_for_falls_back() {
        let items = deployment("a", "") + &deployment("b", "");
        for text in [
            // Existing results (a second run).
            format!("{HEAD}{items}results:\n- message: x\n  severity: info\n"),
            // A nested List.
            format!("{HEAD}{items}- apiVersion: v1\n  kind: List\n  items: []\n"),
            // An alias to another item.
            format!("{HEAD}- &a\n  apiVersion: v1\n  kind: ConfigMap\n  metadata: {{name: x}}\n- *a\n"),
            // A flow list, CRLF, a functionConfig before the items.
            "apiVersion: config.kubernetes.io/v1\nkind: ResourceList\nitems: [{apiVersion: v1, kind: Pod}]\n".to_string(),
            format!("{HEAD}{items}").replace('\n', "\r\n"),
            format!("apiVersion: config.kubernetes.io/v1\nkind: ResourceList\nfunctionConfig:\n  data: {{}}\nitems:\n{items}"),
        ] {
            assert!(both(&text).0.is_none(), "did not fall back on:\n{text}");
        }
    }
}
