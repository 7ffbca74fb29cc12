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
//! The workers also write each item's results as `- ` items of the list's `results` (each one
//! read back alone, see [`push_item`]) and ask the rules' `plan` hooks (again, once every item
//! is known, for a workload that is in the list twice). The output is the list's text plus
//! edits (a [`Patched`]): each item's edits, the created objects and the results, so neither the
//! list nor its results are copied or read back as a whole (memory stays near the output's size).
//!
//! Whenever anything is outside what this path can vouch for — an item that does not parse on
//! its own (an alias to another item, a multi-line scalar crossing the item column), a nested
//! list, existing `results` (a second run of the same pipeline), a flow or JSON list, CRLF line
//! ends, a document that would be re-emitted — it answers `None` and the caller reads the list
//! as one tree, exactly as before. Outputs are byte-identical either way (tests below and the
//! golden cases run both).

use std::borrow::Cow;

use serde_json::Value;

use super::document::SegmentOut;
use super::form::InputForm;
use super::form::{function_config_spec, item_file, sniff_document, Root};
use super::hooks::{settle_and_create, take_created, ListPlans};
use super::identity::{identity, record_workloads, repeated, Placed};
use super::pipeline::{harden_in_stream, plan_objects};
use super::results::Chunk;
use super::results::{Sink, NOTED_OBJECTS};
use crate::change::ResourceRef;
use crate::config::Verbosity;
use crate::config::{Overrides, Policy};
use crate::krm::{Field, ResourceList};
use crate::model::workload::pod_location;
use crate::rules::{object_rule_reads, Note, Rule, StreamIndex};
use crate::yaml::emit::{self, Layout};
use crate::yaml::patch::{patch, Patched, Written};
use crate::yaml::split::{next_line_starting, Segment};
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
    // Every line of the items is looked at: by bytes, without a searcher or a trim per line.
    let bytes = text.as_bytes();
    // With the dash at column 0 and no tab anywhere, a line that starts with a space is inside
    // an item (or blank, or a comment): such lines are skipped 64 bytes at a time.
    let no_tabs = !bytes[pos..].contains(&b'\t');
    while pos < bytes.len() {
        if dash == Some(0) && no_tabs && bytes[pos] == b' ' {
            pos = next_line_starting(bytes, pos, |b| b != b' ').0;
            continue;
        }
        let line_end = bytes[pos..]
            .iter()
            .position(|&b| b == b'\n')
            .map_or(bytes.len(), |i| pos + i + 1);
        // The line without its line break (and carriage returns), then its indentation.
        let mut content_end = line_end;
        while content_end > pos && matches!(bytes[content_end - 1], b'\n' | b'\r') {
            content_end -= 1;
        }
        let mut at = pos;
        while at < content_end && bytes[at] == b' ' {
            at += 1;
        }
        let indent = at - pos;
        if at == content_end || bytes[at] == b'#' {
            pos = line_end;
            continue;
        }
        if bytes[at] == b'\t' {
            return None;
        }
        let is_item = bytes[at] == b'-' && (at + 1 == content_end || bytes[at + 1] == b' ');
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
    if memchr::memchr(b'\r', text.as_bytes()).is_some() {
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

/// New text for parts of the list: each edit replaces `len` bytes of the list's text at `at`
/// with its piece of `added` (the pieces one after the other), in text order.
#[derive(Default)]
struct Edits {
    added: String,
    /// `(at, len, end of its text in added)`.
    list: Vec<(usize, usize, usize)>,
}

impl Edits {
    fn push(&mut self, at: usize, len: usize, new: &str) {
        self.added.push_str(new);
        self.list.push((at, len, self.added.len()));
    }

    /// Edit `k`: where, how many bytes, its new text.
    fn get(&self, k: usize) -> (usize, usize, &str) {
        let from = k.checked_sub(1).map_or(0, |p| self.list[p].2);
        let (at, len, to) = self.list[k];
        (at, len, &self.added[from..to])
    }
}

/// A workload's reference and file, and what the rules' `plan` hooks planned for it.
type Planned = (
    ResourceRef,
    Option<String>,
    Vec<(&'static dyn Rule, Box<Note>)>,
);

/// What became of one item (its edits, results and plans are in its worker's [`Part`]).
struct ItemOut {
    /// Its edits in the list's text: indices into the part's `edits`.
    edits: std::ops::Range<usize>,
    /// Its results in the part's sink: its own, then from `plan_from` on what the rules' `plan`
    /// hooks said, asked as for a workload that is in the list once.
    results: std::ops::Range<usize>,
    plan_from: usize,
    /// The same results as YAML items in the part's `rendered`.
    rendered: std::ops::Range<usize>,
    rendered_plan_from: usize,
    /// A named workload's identity.
    placed: Vec<Placed>,
    /// A workload: its reference and file, with what the rules' `plan` hooks planned for it
    /// (kept unless the workload is in the list twice, known once every item is).
    planned: Option<Planned>,
}

/// One worker's items, in order, and what they share.
struct Part {
    items: Vec<ItemOut>,
    sink: Sink,
    edits: Edits,
    /// The results of `sink`, each as a `- ` item of the list's `results`.
    rendered: String,
}

/// The list cannot be handled here; read it as one tree.
struct Fallback;

/// Where the `- ` of each result is: under `results:` at column 0, in the list's habit.
fn results_dash(layout: &Layout) -> usize {
    if layout.compact_sequences {
        0
    } else {
        layout.indent_step
    }
}

/// Writes `value` as one `- ` item with its dash at `dash`, and checks that it reads back:
/// each line after the first is right of the item's content column, and the lines, with the
/// dash made a space (a mapping item's content read as a document of its own, columns kept, as
/// items are read), mean `value`; any other item, alone, means `[value]`. Items written one
/// after the other then read as the sequence of them: a check per item, its own size in memory
/// and time, instead of reading back the whole sequence.
fn push_item(out: &mut String, value: Value, dash: usize, layout: &Layout) -> Result<(), Fallback> {
    let from = out.len();
    let one = [value];
    emit::sequence_items(out, &one, dash, layout);
    let [value] = one;
    let lines = &out[from..];
    let inside = lines
        .split_inclusive('\n')
        .skip(1)
        .all(|l| l.len() > dash + 2 && l.as_bytes()[..dash + 2].iter().all(|&b| b == b' '));
    if !inside || !lines.ends_with('\n') || lines.as_bytes().get(dash) != Some(&b'-') {
        return Err(Fallback);
    }
    let reads_back = if value.as_object().is_some_and(|m| !m.is_empty()) {
        let mut content = String::with_capacity(lines.len());
        content.push_str(&lines[..dash]);
        content.push(' ');
        content.push_str(&lines[dash + 1..]);
        reads_alone_as(&content, &value)
    } else {
        reads_alone_as(lines, &Value::Array(vec![value]))
    };
    if reads_back {
        Ok(())
    } else {
        Err(Fallback)
    }
}

/// `values` as `- ` items (see [`push_item`]), in order, on up to `threads` threads.
fn render_items(
    values: Vec<Value>,
    dash: usize,
    layout: &Layout,
    threads: usize,
) -> Result<String, Fallback> {
    let render = |values: Vec<Value>| {
        let mut out = String::new();
        values
            .into_iter()
            .try_for_each(|v| push_item(&mut out, v, dash, layout))
            .map(|()| out)
    };
    let threads = threads.clamp(1, values.len().div_ceil(MIN_ITEMS_PER_THREAD).max(1));
    if threads == 1 {
        return render(values);
    }
    let per = values.len().div_ceil(threads);
    let mut values = values.into_iter();
    let chunks: Vec<Vec<Value>> = std::iter::from_fn(|| {
        let chunk: Vec<Value> = values.by_ref().take(per).collect();
        (!chunk.is_empty()).then_some(chunk)
    })
    .collect();
    let texts = std::thread::scope(|scope| {
        let handles: Vec<_> = chunks
            .into_iter()
            .map(|chunk| scope.spawn(move || render(chunk)))
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().expect("worker panicked"))
            .collect::<Result<Vec<String>, Fallback>>()
    })?;
    Ok(texts.concat())
}

/// Writes results `which` of `sink` as `- ` items into `out`.
fn render_results(
    sink: &Sink,
    which: std::ops::Range<usize>,
    out: &mut String,
    layout: &Layout,
) -> Result<(), Fallback> {
    let dash = results_dash(layout);
    sink.results[which]
        .iter()
        .try_for_each(|r| push_item(out, r.to_value(), dash, layout))
}

#[allow(clippy::too_many_arguments)]
fn process_item(
    text: &str,
    items: &Items,
    i: usize,
    layout: &Layout,
    policy: &Policy,
    index: &StreamIndex,
    sink: &mut Sink,
    edits: &mut Edits,
) -> Result<ItemOut, Fallback> {
    let from = sink.results.len();
    let mut out = ItemOut {
        edits: edits.list.len()..edits.list.len(),
        results: from..from,
        plan_from: from,
        rendered: 0..0,
        rendered_plan_from: 0,
        placed: Vec::new(),
        planned: None,
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
        return Ok(out);
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
    if changed {
        // The whole list's habits, not the item's.
        doc.indent_step = layout.indent_step;
        doc.compact_sequences = layout.compact_sequences;
        let Written::Edited(patched) = patch(&virtual_text, &doc, &value) else {
            return Err(Fallback);
        };
        // The edits, moved from the item's own text to the list's.
        let prefix = items.dash + 1;
        let (start, end) = items.span(i);
        if patched.edits().all(|(at, _, _)| at >= prefix) {
            for (at, len, new) in patched.edits() {
                edits.push(start + at - prefix, len, new);
            }
        } else {
            let new = patched.text();
            if !new.as_bytes()[..prefix].iter().all(|&b| b == b' ') {
                return Err(Fallback);
            }
            edits.push(start, end - start, &new[prefix..]);
        }
        out.edits.end = edits.list.len();
    }
    out.plan_from = sink.results.len();
    record_workloads(&value, policy, (0, 0), None, &mut out.placed);
    let planned = plan_objects(&value, policy, index, file.as_deref(), sink, false);
    out.results.end = sink.results.len();
    out.planned = Some((ResourceRef::of(&value), file, planned));
    Ok(out)
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

/// Runs `process_item` over `range`, in order, into one part, each item's results written as
/// YAML items as soon as it is done.
fn process_range(
    text: &str,
    items: &Items,
    range: std::ops::Range<usize>,
    layout: &Layout,
    policy: &Policy,
    index: &StreamIndex,
    default_verbosity: Verbosity,
) -> Result<Part, Fallback> {
    let mut part = Part {
        items: Vec::with_capacity(range.len()),
        sink: list_sink(policy, default_verbosity),
        edits: Edits::default(),
        rendered: String::new(),
    };
    for i in range {
        let mut o = process_item(
            text,
            items,
            i,
            layout,
            policy,
            index,
            &mut part.sink,
            &mut part.edits,
        )?;
        let from = part.rendered.len();
        render_results(
            &part.sink,
            o.results.start..o.plan_from,
            &mut part.rendered,
            layout,
        )?;
        o.rendered_plan_from = part.rendered.len();
        render_results(
            &part.sink,
            o.plan_from..o.results.end,
            &mut part.rendered,
            layout,
        )?;
        o.rendered = from..part.rendered.len();
        part.items.push(o);
    }
    Ok(part)
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

/// Item `i`'s text now (its edits `which` made), with the virtual indentation of [`item_text`].
fn item_text_now(
    text: &str,
    items: &Items,
    i: usize,
    edits: &Edits,
    which: std::ops::Range<usize>,
) -> String {
    let (start, end) = items.span(i);
    let mut s = String::with_capacity(items.dash + 1 + end - start);
    s.extend(std::iter::repeat_n(' ', items.dash + 1));
    apply_edits(&mut s, text, (start, end), edits, which);
    s
}

/// A piece of the `results` text: a range of a part's `rendered`, or of the results rendered
/// once every item was known (`usize::MAX` as the part).
type Piece = (usize, std::ops::Range<usize>);
const SERIAL: usize = usize::MAX;

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
    if !ENABLED.load(std::sync::atomic::Ordering::Relaxed)
        || memchr::memchr(b'\r', text.as_bytes()).is_some()
    {
        return None;
    }
    let items = find_items(text)?;
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
    let threads = if super::schedule::ONE_THREAD {
        1
    } else {
        threads.clamp(1, n.div_ceil(MIN_ITEMS_PER_THREAD))
    };
    let per = n.div_ceil(threads);
    let default_verbosity = sink.default_verbosity;
    let parts: Vec<Result<Part, Fallback>> = if threads == 1 {
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
    let mut parts = parts.into_iter().collect::<Result<Vec<Part>, _>>().ok()?;
    let mut merged = list_sink(policy_ref, sink.default_verbosity);
    for part in &mut parts {
        merged.stats.add(&part.sink.stats);
        merged.unresolved.append(&mut part.sink.unresolved);
        merged.observed.append(&mut part.sink.observed);
        merged.notes.append(&mut part.sink.notes);
        for rule in part.sink.changed_rules.drain(..) {
            if !merged.changed_rules.contains(&rule) {
                merged.changed_rules.push(rule);
            }
        }
    }
    merged.notes.truncate(NOTED_OBJECTS);
    let placed: Vec<Placed> = parts
        .iter_mut()
        .flat_map(|p| p.items.iter_mut().flat_map(|o| o.placed.drain(..)))
        .collect();
    let twice = repeated(&placed);
    drop(placed);
    // Each item's results in item order, then what the rules' `plan` hooks decided for it, as
    // the tree path does item by item: a workload in the list twice is asked again as such.
    let mut plans: ListPlans = Vec::new();
    let mut pieces: Vec<Piece> = Vec::new();
    let mut serial = String::new();
    let mut i = 0;
    for (p, part) in parts.iter_mut().enumerate() {
        let mut values = std::mem::take(&mut part.sink.results).into_iter();
        for o in &mut part.items {
            merged
                .results
                .extend(values.by_ref().take(o.plan_from - o.results.start));
            pieces.push((p, o.rendered.start..o.rendered_plan_from));
            let plan_results: Vec<_> = values.by_ref().take(o.results.end - o.plan_from).collect();
            if let Some((resource, file, planned)) = o.planned.take() {
                let is_repeated = twice.contains(&identity(
                    &resource.api_version,
                    &resource.kind,
                    resource.namespace.as_deref(),
                    &resource.name,
                ));
                let planned = if is_repeated {
                    let now = item_text_now(text, &items, i, &part.edits, o.edits.clone());
                    let value = parse_document(&now).ok()?.root?.to_value();
                    let from = merged.results.len();
                    let planned = plan_objects(
                        &value,
                        policy_ref,
                        index,
                        file.as_deref(),
                        &mut merged,
                        true,
                    );
                    let at = serial.len();
                    render_results(&merged, from..merged.results.len(), &mut serial, &layout)
                        .ok()?;
                    pieces.push((SERIAL, at..serial.len()));
                    planned
                } else {
                    merged.results.extend(plan_results);
                    pieces.push((p, o.rendered_plan_from..o.rendered.end));
                    planned
                };
                for (rule, note) in planned {
                    plans.push(((rule, resource.clone(), file.clone()), note));
                }
            }
            i += 1;
        }
    }
    // Created objects, in item order, once every item is known (settled as the tree path does).
    let mut created = Vec::new();
    let from = merged.results.len();
    settle_and_create(
        plans,
        0,
        index,
        &mut merged,
        threads,
        |change, file, sink| {
            created.extend(take_created(change, file, sink));
        },
    );
    let at = serial.len();
    render_results(&merged, from..merged.results.len(), &mut serial, &layout).ok()?;
    pieces.push((SERIAL, at..serial.len()));
    // New lines go where the tree's patcher puts them: created objects after the last item's content,
    // results after the list's last entry (the same place when the items come last).
    let added = render_items(created, items.dash, &layout, threads).ok()?;
    let last = n - 1;
    let (last_start, last_end) = items.span(last);
    let items_at = {
        let virtual_text = item_text(text, &items, last);
        let doc = parse_document(&virtual_text).ok()?;
        let end = doc.root.as_ref()?.end;
        let line_end = virtual_text[end..].find('\n').map(|i| end + i + 1)?;
        // In the original text.
        line_end - (items.dash + 1) + last_start
    };
    let results_at = if merged.results.is_empty() {
        None
    } else {
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
    // The list: every item's edits, then the new lines at their places.
    let split_last = !added.is_empty() || results_at == Some(items_at);
    let results_len = pieces.iter().map(|(_, r)| r.len()).sum::<usize>() + "results:\n".len();
    let mut out = Edits {
        added: String::with_capacity(
            parts.iter().map(|p| p.edits.added.len()).sum::<usize>()
                + added.len()
                + results_len
                + if split_last { last_end - last_start } else { 0 },
        ),
        list: Vec::with_capacity(parts.iter().map(|p| p.edits.list.len()).sum::<usize>() + 2),
    };
    let mut i = 0;
    // The last item's text now (without the virtual indentation), when it is split.
    let mut last_now = None;
    for part in &mut parts {
        let edits = std::mem::take(&mut part.edits);
        for o in &part.items {
            if split_last && i == last {
                if !o.edits.is_empty() {
                    let mut now = String::new();
                    apply_edits(&mut now, text, items.span(i), &edits, o.edits.clone());
                    last_now = Some(now);
                }
            } else {
                for k in o.edits.clone() {
                    let (at, len, new) = edits.get(k);
                    out.push(at, len, new);
                }
            }
            i += 1;
        }
    }
    if split_last {
        let item = last_now.as_deref().unwrap_or(&text[last_start..last_end]);
        let at = position_in_item(text, &items, last, last_now.as_deref(), items_at)?;
        out.added.push_str(&item[..at]);
        out.added.push_str(&added);
        if results_at == Some(items_at) {
            write_results(&mut out.added, &pieces, &mut parts, &serial);
        }
        out.added.push_str(&item[at..]);
        out.list
            .push((last_start, last_end - last_start, out.added.len()));
    }
    if let Some(at) = results_at.filter(|&at| at != items_at) {
        write_results(&mut out.added, &pieces, &mut parts, &serial);
        out.list.push((at, 0, out.added.len()));
    }
    let changed = !out.list.is_empty();
    let text_out = if changed {
        Chunk::Patched(Patched::from_edits(text, out.added, out.list)?)
    } else {
        Chunk::Text(Cow::Borrowed(text))
    };
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
        text: text_out,
        form: Some(InputForm::ResourceList),
        created: Vec::new(),
    })
}

/// Writes the `results` entry: its key, then every piece of it in order (each part's rendered
/// results are let go once written).
fn write_results(out: &mut String, pieces: &[Piece], parts: &mut [Part], serial: &str) {
    out.push_str("results:\n");
    let mut done = 0;
    for (p, range) in pieces {
        if *p == SERIAL {
            out.push_str(&serial[range.clone()]);
            continue;
        }
        for part in &mut parts[done..*p] {
            part.rendered = String::new();
        }
        done = done.max(*p);
        out.push_str(&parts[*p].rendered[range.clone()]);
    }
}

/// Writes `text[start..end]` with edits `which` of `edits` (all inside it) made.
fn apply_edits(
    out: &mut String,
    text: &str,
    (start, end): (usize, usize),
    edits: &Edits,
    which: std::ops::Range<usize>,
) {
    let mut cursor = start;
    for k in which {
        let (at, len, new) = edits.get(k);
        out.push_str(&text[cursor..at]);
        out.push_str(new);
        cursor = at + len;
    }
    out.push_str(&text[cursor..end]);
}
/// Where `at` (a position of the original text inside item `i`) is in the item's output text,
/// after anything the item's own edits inserted there.
fn position_in_item(
    text: &str,
    items: &Items,
    i: usize,
    new: Option<&str>,
    at: usize,
) -> Option<usize> {
    let (start, end) = items.span(i);
    if at < start || at > end || starts_with_blank_line(&text[at..end]) {
        return None;
    }
    let Some(new) = new else {
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

    /// Skipping the lines inside items 64 bytes at a time finds what reading every line finds
    /// (a tab anywhere makes it read every line): item starts, the end, blank lines, comments
    /// at column 0 and deeper, `\r\n`, long items, a key after the items.
    #[test]
    fn skipping_item_lines_finds_what_reading_them_finds() {
        let pieces = [
            "- a: 1\n",
            "  b: 2\n",
            "\n",
            "# c\n",
            "    # d\n",
            "  long: xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx\n",
            "- b\r\n",
            "  \n",
        ];
        let mut seed = 11u64;
        for case in 0..2000 {
            let mut text = String::from("apiVersion: v1\nkind: List\nitems:\n- first: 1\n");
            for _ in 0..case % 50 {
                seed = seed
                    .wrapping_mul(6364136223846793005)
                    .wrapping_add(1442695040888963407);
                text.push_str(pieces[(seed >> 33) as usize % pieces.len()]);
            }
            if case % 4 == 0 {
                text.push_str("metadata: {}\n");
            }
            let fast = find_items(&text).unwrap();
            let slow_text = format!("{text}#\t\n");
            let slow = find_items(&slow_text).unwrap();
            assert_eq!(
                (fast.dash, &fast.lines),
                (slow.dash, &slow.lines),
                "{text:?}"
            );
            let slow_end = if slow.end == slow_text.len() {
                text.len()
            } else {
                slow.end
            };
            assert_eq!(fast.end, slow_end, "{text:?}");
        }
    }

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

    /// A workload in the list twice gets nothing created: its plans are asked again, once
    /// every item is known, as for a repeated workload (the info results say so at `all`).
    #[test]
    fn a_workload_in_the_list_twice_is_planned_again_as_such() {
        let mut items = String::new();
        for i in 0..20 {
            items.push_str(&deployment(&format!("d{i}"), ""));
        }
        // d3 again, unchanged by the rules this time (its own securityContext), and d7 again.
        items.push_str(&deployment(
            "d3",
            "          securityContext:\n            privileged: false\n",
        ));
        items.push_str(&deployment("d7", ""));
        for verbosity in ["problems", "changes", "all"] {
            let config = format!("functionConfig:\n  apiVersion: v1\n  kind: ConfigMap\n  metadata:\n    name: c\n  data:\n    verbosity: {verbosity}\n");
            let text = format!("{HEAD}{items}{config}");
            assert_same(&text);
            let (fast, _) = both(&text);
            let out = fast.unwrap().0;
            let budgets = out.matches("- apiVersion: policy/v1\n  kind: PodDisruptionBudget");
            assert_eq!(budgets.count(), 18, "{verbosity}: {out}");
            if verbosity == "all" {
                assert_eq!(
                    out.matches("in the input more than once").count(),
                    4,
                    "{out}"
                );
            }
        }
    }

    /// Results and created objects written one item at a time are the text the whole
    /// sequence would be, in every layout, and each is checked.
    #[test]
    fn items_written_one_by_one_are_the_whole_sequence() {
        let values: Vec<Value> = vec![
            serde_json::json!({"message": "container \"app\": x \\ y: z", "severity": "warning",
                "field": {"path": "a.b[0]", "proposedValue": ["ALL"]}, "tags": {"rule": "r"}}),
            serde_json::json!({"message": "on", "severity": "info", "x": {"y": {"z": [1, {"a": "b"}]}}}),
            serde_json::json!({}),
            serde_json::json!("a string item"),
            serde_json::json!([1, 2]),
        ];
        for (step, compact) in [(2, true), (2, false), (4, true), (4, false)] {
            let layout = Layout {
                indent_step: step,
                compact_sequences: compact,
                newline: "\n",
            };
            let mut entry = serde_json::Map::new();
            entry.insert("results".into(), Value::Array(values.clone()));
            let mut whole = String::new();
            emit::mapping_entries(&mut whole, &entry, 0, &layout);
            let mut one_by_one = String::from("results:\n");
            for v in &values {
                assert!(
                    push_item(&mut one_by_one, v.clone(), results_dash(&layout), &layout).is_ok()
                );
            }
            assert_eq!(one_by_one, whole);
            for threads in [1, 2, 3] {
                let many: Vec<Value> = (0..40).map(|i| values[i % values.len()].clone()).collect();
                let mut expected = String::new();
                emit::sequence_items(&mut expected, &many, 2, &layout);
                let text = render_items(many, 2, &layout, threads).ok().unwrap();
                assert_eq!(text, expected);
            }
        }
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
