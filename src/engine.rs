//! The one core every integration calls: reads a stream, a `List` or a KRM `ResourceList`, runs
//! the enabled rules on every pod it finds, and writes the answer in the form it was given.
//! Documents no rule changes are passed through as the very same bytes.

use std::borrow::Cow;
use std::collections::{HashMap, HashSet};
use std::io::{self, Write};

use saphyr_parser::Event;
use serde_json::Value;

use crate::change::{self, Change, Findings, KrmResult, Op, ResourceRef, Severity};
use crate::config::{self, Overrides, Policy, PolicySpec, Verbosity};
use crate::digest::ResolveError;
use crate::error::Error;
use crate::model::path::FieldPath;
use crate::model::workload::{pod_location, PodView, LOCAL_CONFIG};
use crate::rules::{self, object_rule_reads, Note, Plan, Rule, StreamIndex};
use crate::yaml::emit::{self, Layout};
use crate::yaml::patch::{layout_of, patch, Patched, Written};
use crate::yaml::split::{split_documents, Segment};
use crate::yaml::tree::{
    build_document, check_keys, collect_events, empty_document_end, SpannedEvent, SyntaxError,
};

mod resource_list;
#[doc(hidden)]
pub use resource_list::set_enabled as set_resource_list_fast_path;

/// How a run is configured.
#[derive(Debug, Clone)]
pub struct Options {
    /// Settings from `--config FILE`; a KRM functionConfig replaces them.
    pub spec: Option<PolicySpec>,
    /// Command-line switches applied on top.
    pub overrides: Overrides,
    /// The verbosity when neither the policy (`spec.verbosity`, a ResourceList's
    /// functionConfig) nor `--verbosity` sets one. The CLI uses `all` for `--results FILE` and
    /// `explain`, `problems` otherwise, so a large stream does not hold a result per change.
    pub verbosity: Verbosity,
    /// Keep a stream's results as YAML text ([`Output::results_yaml`], what `--results FILE`
    /// writes) rather than as values: memory about the size of that text. Warnings and errors are
    /// kept as values too. A ResourceList carries its results as values whatever this says.
    pub render_results: bool,
    /// Worker threads for a stream (0: one per core). Documents are independent, so a stream is
    /// cut into contiguous runs processed side by side and joined in order.
    pub threads: usize,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            spec: None,
            overrides: Overrides::default(),
            verbosity: Verbosity::Problems,
            render_results: false,
            threads: 0,
        }
    }
}

/// The shape the input came in, which is also the shape of the output.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum InputForm {
    /// A multi-document YAML/JSON stream (a `List` document is processed in place).
    Stream,
    /// A KRM `ResourceList`.
    ResourceList,
}

/// Counters for the summary line.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Stats {
    /// Objects that hold a pod.
    pub workloads: usize,
    /// Objects at least one rule changed.
    pub changed: usize,
    /// Changes applied.
    pub changes: usize,
    /// Documents rewritten in block style because an in-place edit was impossible.
    pub reemitted: usize,
    /// Objects generated (PodDisruptionBudgets).
    pub generated: usize,
}

impl Stats {
    fn add(&mut self, other: &Stats) {
        self.workloads += other.workloads;
        self.changed += other.changed;
        self.changes += other.changes;
        self.reemitted += other.reemitted;
        self.generated += other.generated;
    }
}

/// The result of a run.
#[derive(Debug)]
pub struct Output<'a> {
    /// The output text, in pieces: untouched documents borrow the input, documents edited in
    /// place hold only their edits.
    pub chunks: Vec<Chunk<'a>>,
    /// For each chunk, the byte offset in the input of the document it comes from (for a new
    /// budget, its workload's document): how `--diff` gives each input file its own output.
    pub origins: Vec<usize>,
    /// Every result (info, warning, error).
    pub results: Vec<KrmResult>,
    /// The input's form.
    pub form: InputForm,
    /// Counters.
    pub stats: Stats,
    /// Images pin-image-digests could not pin, each once, for
    /// [`unresolved_report`](crate::digest::unresolved_report).
    pub unresolved: Vec<ResolveError>,
    /// The settings in effect (a ResourceList's functionConfig replaces `--config`'s).
    pub policy: PolicySpec,
    /// The "hardened …" line of the first [`NOTED_OBJECTS`] changed or generated objects, in
    /// stream order, whatever the verbosity (for the stderr summary).
    pub notes: Vec<KrmResult>,
    /// With [`Options::render_results`] (a stream): every result as YAML sequence items, in
    /// order, in blocks to be written one after the other; `results` then holds only the warnings
    /// and errors.
    pub results_yaml: Option<Vec<String>>,
}

impl Output<'_> {
    /// True when a result has severity error (the run must exit 1).
    pub fn has_errors(&self) -> bool {
        self.results.iter().any(|r| r.severity == Severity::Error)
    }

    /// Whether the output text is to be delivered (the CLI writes it to stdout): not for a stream
    /// with error results, as a half-hardened stream applied by Helm is worse than none; always for
    /// a ResourceList, whose results are how kpt and kustomize show the errors.
    pub fn delivered(&self) -> bool {
        !self.has_errors() || self.form == InputForm::ResourceList
    }

    /// Writes the output text.
    pub fn write_to(&self, w: &mut impl Write) -> io::Result<()> {
        self.pieces().try_for_each(|p| w.write_all(p.as_bytes()))
    }

    /// The output text as one string.
    pub fn text(&self) -> String {
        let mut text = String::with_capacity(self.chunks.iter().map(Chunk::len).sum());
        self.pieces().for_each(|p| text.push_str(p));
        text
    }

    /// The output text in pieces, in order.
    pub fn pieces(&self) -> impl Iterator<Item = &str> + '_ {
        self.chunks.iter().flat_map(Chunk::pieces)
    }

    /// Results that are warnings or errors.
    pub fn problems(&self) -> impl Iterator<Item = &KrmResult> {
        self.results.iter().filter(|r| r.severity != Severity::Info)
    }
}

/// A piece of the output: a document or a budget.
#[derive(Debug)]
pub enum Chunk<'a> {
    /// Text borrowed from the input (untouched documents) or written anew.
    Text(Cow<'a, str>),
    /// A document edited in place.
    Patched(Patched<'a>),
}

impl Chunk<'_> {
    /// The chunk's text in pieces.
    pub fn pieces(&self) -> Box<dyn Iterator<Item = &str> + '_> {
        match self {
            Chunk::Text(t) => Box::new(std::iter::once(t.as_ref())),
            Chunk::Patched(p) => Box::new(p.pieces()),
        }
    }

    /// The length of its text in bytes.
    pub fn len(&self) -> usize {
        match self {
            Chunk::Text(t) => t.len(),
            Chunk::Patched(p) => p.len(),
        }
    }

    /// True when its text is empty.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn ends_with_newline(&self) -> bool {
        match self {
            Chunk::Text(t) => t.ends_with('\n'),
            Chunk::Patched(p) => p.last_byte() == Some(b'\n'),
        }
    }
}

/// Objects whose hardened line a sink keeps for the stderr summary when results leave it out.
pub const NOTED_OBJECTS: usize = 20;

/// Where one run (or one worker) collects results and counters.
#[derive(Debug, Default)]
pub struct Sink {
    /// Results kept.
    pub results: Vec<KrmResult>,
    /// Counters.
    pub stats: Stats,
    /// Which info results to keep.
    pub verbosity: Verbosity,
    /// The verbosity when the policy sets none (a ResourceList's functionConfig replaces the
    /// policy, and with it `verbosity`).
    pub default_verbosity: Verbosity,
    /// Images that could not be pinned.
    pub unresolved: Vec<ResolveError>,
    /// What rules' `observe` hooks noted of every workload seen, with the rule's id, in order
    /// (their `settle` hooks see them: pod-disruption-budget's overlap check).
    pub observed: Vec<(&'static str, Box<Note>)>,
    /// Every named workload seen and where, to find two the API server would take as one.
    pub workloads: Vec<Placed>,
    /// The "hardened …" line of the first [`NOTED_OBJECTS`] changed or generated objects, kept
    /// whatever the verbosity (the stderr summary lists them).
    pub notes: Vec<KrmResult>,
    /// Keep results as YAML items in `rendered` (warnings and errors as values too).
    pub render: bool,
    /// Record no change (not even at `verbosity: all`, nor the "hardened" line): `check` only
    /// needs the findings and which rules changed something.
    pub no_change_records: bool,
    /// The rules that changed something, each once.
    pub changed_rules: Vec<&'static str>,
    /// The results as YAML sequence items, when `render` is on, in blocks of about 1 MiB (no
    /// block is ever copied into a larger one: memory stays at the text's size).
    pub rendered: Vec<String>,
}

/// A workload's identity to the API server: apiVersion group, kind, namespace, name.
type Identity = (String, String, Option<String>, String);

fn identity(api_version: &str, kind: &str, namespace: Option<&str>, name: &str) -> Identity {
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
    identity: Identity,
    doc: usize,
    line: usize,
    /// `items[i]` (nested: `items[i].items[j]`) for a list's item.
    item: Option<String>,
}

/// Records `object` (or, for a list, its items) when it is a named workload.
fn record_workloads(
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
fn repeated(placed: &[Placed]) -> HashSet<Identity> {
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
fn repeated_across_a_list(placed: &[Placed]) -> Option<(&Placed, &Placed)> {
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
fn repeated_result(rule: &dyn Rule, resource: ResourceRef, file: Option<String>) -> KrmResult {
    let message = rule.withdrawn(&resource);
    KrmResult::new(rule.id(), Severity::Info, message, Some(resource), file)
}

impl Sink {
    fn new(verbosity: Verbosity, render: bool) -> Self {
        Sink {
            verbosity,
            render,
            ..Sink::default()
        }
    }

    /// Keeps a result: as a value, or as YAML text (a warning or an error as both).
    fn keep(&mut self, result: KrmResult) {
        if !self.render {
            self.results.push(result);
            return;
        }
        const BLOCK: usize = 1 << 20;
        if self
            .rendered
            .last()
            .is_none_or(|b| b.capacity() - b.len() < BLOCK / 64)
        {
            self.rendered.push(String::with_capacity(BLOCK));
        }
        let block = self.rendered.last_mut().expect("a block was just added");
        emit::sequence_items(block, &[result.to_value()], 0, &Layout::default());
        if result.severity != Severity::Info {
            self.results.push(result);
        }
    }

    /// Keeps a warning or an error, or an info decision under `verbosity: all`.
    fn push(&mut self, result: KrmResult) {
        if result.severity != Severity::Info || self.verbosity == Verbosity::All {
            self.keep(result);
        }
    }

    /// Keeps the one info line of a changed or generated object (`verbosity: changes`; under
    /// `all` the per-rule change results stand for it), and notes it for the summary.
    fn push_change(&mut self, result: KrmResult) {
        if self.notes.len() < NOTED_OBJECTS {
            self.notes.push(result.clone());
        }
        if self.verbosity == Verbosity::Changes {
            self.keep(result);
        }
    }
}
/// Processes raw bytes (must be UTF-8; a leading BOM is kept).
pub fn process_bytes<'a>(input: &'a [u8], options: &Options) -> Result<Output<'a>, Error> {
    let text = std::str::from_utf8(input).map_err(|e| Error::NotUtf8(e.valid_up_to()))?;
    process(text, options)
}

/// Processes a stream, a `List` or a `ResourceList`.
pub fn process<'a>(input: &'a str, options: &Options) -> Result<Output<'a>, Error> {
    let mut policy =
        Policy::with_overrides(options.spec.clone().unwrap_or_default(), &options.overrides)?;
    // Number the documents first: errors name the document, and workers need their numbers.
    let mut doc_no = 0usize;
    let segments: Vec<(Segment<'a>, usize)> = split_documents(input)
        .into_iter()
        .map(|seg| {
            if !seg.is_blank() {
                doc_no += 1;
            }
            (seg, doc_no)
        })
        .collect();
    let first = segments
        .iter()
        .position(|(seg, _)| !seg.is_blank())
        .unwrap_or(segments.len());
    // Budgets depend on the whole stream (autoscalers, budgets already written): index it first,
    // parsing only documents that mention those kinds.
    let mut index = StreamIndex::default();
    for (n, (seg, _)) in segments.iter().enumerate() {
        if StreamIndex::may_matter(seg.text) {
            // A ResourceList (the first document) item by item: one tree of a whole kpt package
            // would cost more memory than everything else.
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
    let index = &index;
    let mut parts: Vec<SegmentOut<'a>> = Vec::with_capacity(segments.len());
    let mut out = Output {
        chunks: Vec::new(),
        origins: Vec::new(),
        results: Vec::new(),
        form: InputForm::Stream,
        stats: Stats::default(),
        unresolved: Vec::new(),
        policy: PolicySpec::default(),
        notes: Vec::new(),
        results_yaml: None,
    };
    let mut sink = Sink::new(policy.verbosity(options.verbosity), options.render_results);
    sink.default_verbosity = options.verbosity;
    // The first document decides the form; a ResourceList brings its own policy.
    let threads = match options.threads {
        0 => std::thread::available_parallelism().map_or(1, |n| n.get()),
        n => n,
    };
    for (seg, no) in &segments[..(first + 1).min(segments.len())] {
        let fast = resource_list::process(
            seg,
            &mut policy,
            &options.overrides,
            index,
            &mut sink,
            threads,
        );
        let part = match fast {
            Some(part) => part,
            None => process_segment(
                seg,
                *no,
                true,
                &mut policy,
                &options.overrides,
                index,
                &mut sink,
            )?,
        };
        if let Some(form) = part.form {
            out.form = form;
        }
        parts.push(part);
    }
    let rest = &segments[(first + 1).min(segments.len())..];
    // A KRM function reads one ResourceList: documents after it would be hardened as a stream
    // whose results the list never shows, and delivered with it even when they fail.
    if out.form == InputForm::ResourceList {
        if let Some((seg, no)) = rest.iter().find(|(seg, _)| !seg.is_blank()) {
            return Err(Error::Input {
                doc: *no,
                line: content_line(seg),
                message: "a ResourceList must be the only document of its input".into(),
            });
        }
    }
    if threads <= 1 || rest.len() < 64 || cfg!(target_family = "wasm") {
        parts.extend(process_run(
            rest,
            &mut policy,
            &options.overrides,
            index,
            &mut sink,
        )?);
    } else {
        let per = rest.len().div_ceil(threads);
        let worker_parts: Vec<Result<WorkerOutput<'a>, Error>> = std::thread::scope(|scope| {
            let handles: Vec<_> = rest
                .chunks(per)
                .map(|part| {
                    let mut policy = policy.clone();
                    let (verbosity, render) = (sink.verbosity, sink.render);
                    scope.spawn(move || {
                        let mut sink = Sink::new(verbosity, render);
                        let chunks =
                            process_run(part, &mut policy, &options.overrides, index, &mut sink)?;
                        Ok((chunks, sink))
                    })
                })
                .collect();
            handles
                .into_iter()
                .map(|h| h.join().expect("worker panicked"))
                .collect()
        });
        for part in worker_parts {
            let (chunks, part_sink) = part?;
            parts.extend(chunks);
            sink.results.extend(part_sink.results);
            sink.rendered.extend(part_sink.rendered);
            sink.stats.add(&part_sink.stats);
            sink.unresolved.extend(part_sink.unresolved);
            sink.observed.extend(part_sink.observed);
            sink.workloads.extend(part_sink.workloads);
            sink.notes.extend(part_sink.notes);
        }
        sink.notes.truncate(NOTED_OBJECTS);
    }
    // A workload in the input twice gets no budget: the next run would take the budget generated
    // for one as the other's, and decide otherwise.
    if let Some((first, second)) = repeated_across_a_list(&sink.workloads) {
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
    let twice = repeated(&sink.workloads);
    if !twice.is_empty() {
        for part in &mut parts {
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
    // Every rule settles its planned objects against the whole stream (no pod under two
    // budgets), then the kept ones that can be placed are created (named) in stream order.
    let planned: Vec<(&'static dyn Rule, &Note)> = parts
        .iter()
        .flat_map(|p| p.created.iter().map(|c| (c.rule, &*c.planned)))
        .collect();
    let dropped = settle(&planned, &sink.observed, index);
    // The line break an object needs before it would become part of a block scalar that ends
    // the input (`|`/`>` keep the last line break): the value would change.
    let mut blocked = Vec::with_capacity(planned.len());
    for (part, (seg, _)) in parts.iter().zip(&segments) {
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
    for (part, (seg, _)) in parts.into_iter().zip(&segments) {
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
                .and_then(|c| take_created(c, pending.source.clone(), &mut sink))
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
    out.results = sink.results;
    out.results_yaml = sink.render.then_some(sink.rendered);
    out.notes = sink.notes;
    out.stats = sink.stats;
    out.policy = policy.spec.clone();
    let mut seen = std::collections::HashSet::new();
    out.unresolved = sink
        .unresolved
        .into_iter()
        .filter(|e| seen.insert(e.to_string()))
        .collect();
    Ok(out)
}

/// Processes a contiguous run of documents (none of them the first) in order.
fn process_run<'a>(
    run: &[(Segment<'a>, usize)],
    policy: &mut Policy,
    overrides: &Overrides,
    index: &StreamIndex,
    sink: &mut Sink,
) -> Result<Vec<SegmentOut<'a>>, Error> {
    run.iter()
        .map(|(seg, no)| process_segment(seg, *no, false, policy, overrides, index, sink))
        .collect()
}

/// What one worker produced: its documents' output, in order, and its results.
type WorkerOutput<'a> = (Vec<SegmentOut<'a>>, Sink);

/// One document's output.
struct SegmentOut<'a> {
    /// Its text.
    text: Chunk<'a>,
    /// For the first document: the input's form.
    form: Option<InputForm>,
    /// Objects rules plan to create right after it.
    created: Vec<PendingCreate>,
}

/// An object a rule plans to create after a document of a plain stream, settled, named and
/// written once the whole stream is done.
struct PendingCreate {
    rule: &'static dyn Rule,
    planned: Box<Note>,
    /// The workload's `# Source:` (Helm 3 groups output by it).
    source: Option<String>,
    layout: Layout,
    resource: ResourceRef,
}

/// The result for a budget left out because of an overlap.
/// True when the document's last node is a block scalar that runs to the end of its text.
fn ends_in_block_scalar(text: &str) -> bool {
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
fn settle(
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
fn create(kept: &[(&'static dyn Rule, &Note)], index: &StreamIndex) -> Vec<Change> {
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
fn take_created(change: Change, file: Option<String>, sink: &mut Sink) -> Option<Value> {
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

/// Processes one document: its output text, the form (for a ResourceList) and new budgets.
fn process_segment<'a>(
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
                sink.push(KrmResult {
                    rule: "kube-harden",
                    severity: Severity::Error,
                    message: e.to_string(),
                    resource: None,
                    path: None,
                    current: None,
                    proposed: None,
                    file: None,
                    fields: Vec::new(),
                    change: false,
                });
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
        let changed = harden_object(&mut value, policy, source.as_deref(), sink);
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
                    layout: layout.clone(),
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

/// The results a ResourceList gains from this run. Results already in the list (an earlier
/// function's, or ours from an earlier run of the same pipeline) are kept once: a second run must
/// not repeat its warnings.
fn results_to_add(results: &[KrmResult], existing: Option<&Value>) -> Vec<Value> {
    let existing: std::collections::HashSet<String> = match existing {
        Some(Value::Array(list)) => list.iter().map(Value::to_string).collect(),
        _ => Default::default(),
    };
    results
        .iter()
        .map(KrmResult::to_value)
        .filter(|r| !existing.contains(&r.to_string()))
        .collect()
}

/// Asks every enabled rule whether to create an object after `object`, and reports why not.
fn plan_objects(
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

fn is_local_config(object: &Value) -> bool {
    object
        .pointer("/metadata/annotations")
        .and_then(|a| a.get(LOCAL_CONFIG))
        .and_then(Value::as_str)
        == Some("true")
}

fn function_config_spec(fc: &Value) -> Result<PolicySpec, Error> {
    // `functionConfig: {}` is "no settings", as the kpt functions catalog reads it.
    if fc.as_object().is_some_and(|m| m.is_empty()) {
        return Ok(PolicySpec::default());
    }
    config::spec_from_object(fc).map_err(|e| match e {
        Error::Config(m) => Error::Config(format!("functionConfig: {m}")),
        other => other,
    })
}

/// Hardens every item of a `List`/`ResourceList` and appends the budgets they need; returns
/// true when something changed.
fn harden_items(
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
    let mut planned = Vec::new();
    let first_note = sink.observed.len();
    if let Some(Value::Array(items)) = list.get_mut("items") {
        for item in items.iter_mut() {
            let file = item_file(item).or_else(|| source.map(str::to_string));
            // A List inside a list (kubectl flattens them): its items are hardened in place.
            if is_list(item) {
                changed |= harden_items(item, policy, file.as_deref(), index, sink, Some(twice));
                continue;
            }
            changed |= harden_object(item, policy, file.as_deref(), sink);
            let resource = ResourceRef::of(item);
            let repeated = twice.contains(&identity(
                &resource.api_version,
                &resource.kind,
                resource.namespace.as_deref(),
                &resource.name,
            ));
            for (rule, p) in plan_objects(item, policy, index, file.as_deref(), sink, repeated) {
                planned.push((rule, p, resource.clone(), file.clone()));
            }
        }
    }
    // Once every item is known: settle, create (name) and append the objects, in item order.
    let refs: Vec<(&'static dyn Rule, &Note)> =
        planned.iter().map(|(r, p, _, _)| (*r, &**p)).collect();
    let dropped = settle(&refs, &sink.observed[first_note..], index);
    let kept: Vec<_> = refs
        .iter()
        .zip(&dropped)
        .filter(|(_, why)| why.is_none())
        .map(|(p, _)| *p)
        .collect();
    let mut made = create(&kept, index).into_iter();
    drop(refs);
    for ((rule, _, resource, file), why) in planned.into_iter().zip(dropped) {
        if let Some(message) = why {
            sink.push(KrmResult::new(
                rule.id(),
                Severity::Info,
                message,
                Some(resource),
                file,
            ));
            continue;
        }
        let Some(change) = made.next() else { break };
        changed |= place_in_list(list, change, file, sink);
    }
    changed
}

/// Places a created object at the end of a list's items through the one applier, and reports
/// it; true when it was placed.
fn place_in_list(list: &mut Value, change: Change, file: Option<String>, sink: &mut Sink) -> bool {
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

/// True for a `List` (`v1 List` or any `*List` kind with `items`) or a nested ResourceList.
fn is_list(object: &Value) -> bool {
    let kind = object.get("kind").and_then(Value::as_str).unwrap_or("");
    (kind == "List" || kind.ends_with("List") || kind == "ResourceList")
        && object.get("items").is_some()
}

/// The result for a list whose `items` is not a list: a warning for `null` (nothing to harden),
/// an error for anything else (kubectl refuses it too).
fn bad_items(list: &Value, file: Option<&str>) -> Option<KrmResult> {
    let (severity, message) = match list.get("items")? {
        Value::Array(_) => return None,
        Value::Null => (
            Severity::Warning,
            "items is null: the list holds nothing to harden".to_string(),
        ),
        other => (
            Severity::Error,
            format!(
                "items must be a list, found {}: nothing in it can be hardened",
                match other {
                    Value::Object(_) => "a mapping",
                    Value::String(_) => "a string",
                    _ => "a scalar",
                }
            ),
        ),
    };
    Some(KrmResult {
        rule: "kube-harden",
        severity,
        message,
        resource: Some(ResourceRef::of(list)),
        path: Some("items".into()),
        current: None,
        proposed: None,
        file: file.map(str::to_string),
        fields: Vec::new(),
        change: false,
    })
}

fn item_file(item: &Value) -> Option<String> {
    let annotations = item.pointer("/metadata/annotations")?;
    [
        "internal.config.kubernetes.io/path",
        "config.kubernetes.io/path",
        "postrenderer.helm.sh/postrender-filename",
    ]
    .iter()
    .find_map(|k| {
        annotations
            .get(*k)
            .and_then(Value::as_str)
            .map(str::to_string)
    })
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

/// The file a document came from: Helm 3's `# Source:` header.
fn source_of(seg: &Segment<'_>) -> Option<String> {
    seg.header_comments()
        .iter()
        .find_map(|c| c.strip_prefix("# Source:").map(|s| s.trim().to_string()))
}

/// The stream line of the document's first content line.
fn content_line(seg: &Segment<'_>) -> usize {
    let mut line = seg.first_line;
    for l in seg.text.lines() {
        let t = l.trim_start_matches('\u{feff}').trim();
        if !(t.is_empty() || t.starts_with('#') || t == "---") {
            break;
        }
        line += 1;
    }
    line
}

/// The shape of a document's root.
pub(crate) enum Root {
    Empty,
    Map,
    Other,
}

/// What [`sniff`] reads of a document.
pub(crate) struct Sniff {
    pub(crate) root: Root,
    pub(crate) api_version: Option<String>,
    pub(crate) kind: Option<String>,
    /// The root mapping has an alias as a key or a merge key, so `apiVersion` or `kind` may come
    /// through one: [`sniff_document`] then reads them from the tree.
    pub(crate) indirect: bool,
}

/// [`sniff`], reading `apiVersion` and `kind` from the built tree when they may come through an
/// alias or a merge key (Kubernetes' reader resolves both).
pub(crate) fn sniff_document(text: &str, events: &[SpannedEvent<'_>]) -> Sniff {
    let mut s = sniff(events);
    if s.indirect && (s.api_version.is_none() || s.kind.is_none()) {
        if let Ok(Some(root)) = build_document(text, events).map(|d| d.root) {
            let value = root.to_value();
            let field = |name: &str| {
                value
                    .get(name)
                    .and_then(serde_json::Value::as_str)
                    .filter(|v| !v.is_empty())
                    .map(String::from)
            };
            s.api_version = s.api_version.or_else(|| field("apiVersion"));
            s.kind = s.kind.or_else(|| field("kind"));
        }
    }
    s
}

/// Reads the root's shape and its top-level `apiVersion` and `kind` without building a tree.
pub(crate) fn sniff(events: &[SpannedEvent<'_>]) -> Sniff {
    let mut s = Sniff {
        root: Root::Empty,
        api_version: None,
        kind: None,
        indirect: false,
    };
    let mut depth = 0usize;
    let mut key: Option<&str> = None;
    let mut expect_key = true;
    for (event, _) in events {
        match event {
            Event::StreamStart
            | Event::StreamEnd
            | Event::DocumentStart(_)
            | Event::DocumentEnd
            | Event::Nothing => {}
            Event::MappingStart(..) | Event::SequenceStart(..) => {
                if depth == 0 {
                    s.root = if matches!(event, Event::MappingStart(..)) {
                        Root::Map
                    } else {
                        Root::Other
                    };
                }
                depth += 1;
            }
            Event::MappingEnd | Event::SequenceEnd => {
                depth = depth.saturating_sub(1);
                if depth == 1 {
                    expect_key = !expect_key;
                    key = None;
                }
            }
            Event::Scalar(text, style, _, _) => {
                if depth == 0 {
                    let empty =
                        text.is_empty() && matches!(style, saphyr_parser::ScalarStyle::Plain);
                    s.root = if empty { Root::Empty } else { Root::Other };
                } else if depth == 1 {
                    if expect_key {
                        key = Some(text.as_ref());
                        s.indirect |= text == "<<";
                    } else {
                        match key {
                            Some("apiVersion") => s.api_version = Some(text.to_string()),
                            Some("kind") => s.kind = Some(text.to_string()),
                            _ => {}
                        }
                        key = None;
                    }
                    expect_key = !expect_key;
                }
            }
            Event::Alias(_) => {
                if depth == 1 {
                    s.indirect |= expect_key;
                    expect_key = !expect_key;
                }
            }
        }
    }
    s.api_version = s.api_version.filter(|v| !v.is_empty());
    s.kind = s.kind.filter(|v| !v.is_empty());
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    fn input_error(input: &str) -> (usize, usize, String) {
        match process(input, &Options::default()) {
            Err(Error::Input { doc, line, message }) => (doc, line, message),
            Err(e) => panic!("unexpected error {e}"),
            Ok(out) => panic!("accepted: {}", out.text()),
        }
    }

    /// Issue 13, item 13: Kubernetes' reader resolves aliases and merge keys before it looks at
    /// `kind`, so a workload whose `kind` comes through one is still hardened.
    #[test]
    fn kind_through_an_alias_or_a_merge_key() {
        let pod = "metadata: {name: a}\nspec:\n  containers:\n  - name: c\n    image: nginx:1\n";
        for head in [
            "apiVersion: v1\nk: &k kind\n*k : Pod\n",
            "base: &b {apiVersion: v1, kind: Pod}\n<<: *b\n",
            "<<: {kind: Pod}\napiVersion: v1\n",
        ] {
            let input = format!("{head}{pod}");
            let out = process(&input, &Options::default()).expect(&input);
            let text = out.text();
            let value = crate::yaml::tree::parse_document(&text)
                .unwrap()
                .root
                .unwrap()
                .to_value();
            assert_eq!(value["kind"], "Pod", "{text}");
            assert_eq!(
                value.pointer("/spec/securityContext/seccompProfile/type"),
                Some(&serde_json::json!("RuntimeDefault")),
                "{input:?} was not hardened:\n{text}"
            );
        }
    }

    /// Issue 13, item 13: kubectl drops `---` lines, so a later document may start with a byte
    /// order mark, which go-yaml skips.
    #[test]
    fn a_byte_order_mark_after_a_document_marker_is_read() {
        let input = "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: a}\n---\n\u{feff}\
                     apiVersion: v1\nkind: Pod\nmetadata: {name: p}\nspec:\n  containers:\n  \
                     - name: c\n    image: nginx:1\n";
        let out = process(input, &Options::default()).unwrap().text();
        assert!(out.contains("RuntimeDefault"), "{out}");
        let (_, line, message) = input_error("a: 1\n\u{feff}b: 2\n");
        assert_eq!(line, 2, "{message}");
        assert!(message.contains("byte order mark"), "{message}");
    }

    #[test]
    fn alias_bombs_are_rejected_on_every_path() {
        // The budget index parses any document that mentions PodDisruptionBudget, even in a
        // comment; the bomb must be refused there too, naming the document.
        let mut bomb = String::from(
            "# not a PodDisruptionBudget\napiVersion: v1\nkind: ConfigMap\nl0: &l0 [\"lol\"]\n",
        );
        for n in 1..=9 {
            let items = vec![format!("*l{}", n - 1); 10].join(", ");
            bomb.push_str(&format!("l{n}: &l{n} [{items}]\n"));
        }
        let input = format!("apiVersion: v1\nkind: Namespace\nmetadata: {{name: a}}\n---\n{bomb}");
        let (doc, line, message) = input_error(&input);
        assert_eq!(doc, 2);
        assert_eq!(
            line, 12,
            "line of the alias that crosses the limit in the stream"
        );
        assert!(message.contains("excessive aliasing"), "{message}");
    }

    #[test]
    fn duplicate_keys_name_key_document_and_line() {
        let input = "apiVersion: v1\nkind: Namespace\nmetadata: {name: a}\n---\napiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: web\nspec:\n  replicas: 1\n  replicas: 3\n  template:\n    spec:\n      containers: [{name: c, image: nginx}]\n";
        let (doc, line, message) = input_error(input);
        assert_eq!((doc, line), (2, 11));
        assert!(message.contains("duplicate key \"replicas\""), "{message}");
    }

    #[test]
    fn duplicate_keys_in_documents_no_rule_reads_are_errors() {
        // A ConfigMap passes through unread, but kubectl refuses it all the same.
        let input = "apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: web}\nspec:\n  template:\n    spec:\n      containers: [{name: c, image: nginx}]\n---\n# Source: c.yaml\napiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: web\ndata:\n  mode: a\n  other: b\n  mode: c\n";
        let (doc, line, message) = input_error(input);
        assert_eq!((doc, line), (2, 17));
        assert!(message.contains("duplicate key \"mode\""), "{message}");
        // Repeated merge keys are still fine, and the document still passes through untouched.
        let fine = "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: web}\nbase: &b {a: x}\nextra: &e {b: y}\ndata:\n  <<: *b\n  <<: *e\n  c: z # kept\n";
        let out = process(fine, &Options::default()).unwrap();
        assert!(!out.has_errors());
        assert_eq!(out.text(), fine);
    }

    /// A workload written with go-yaml's allowances (a tab after `:`, `[-]`) is hardened in place:
    /// the parser reads a copy with the same byte offsets, the edits go into the original text.
    #[test]
    fn go_reader_allowances_are_edited_in_place() {
        let input = "apiVersion: v1\nkind: Pod\nmetadata:\n  name:\tweb\nspec:\n  containers:\n  - name: c\n    image: nginx\n    args: [-, x]\n";
        let out = process(input, &Options::default()).unwrap();
        let text = out.text();
        assert!(
            text.contains("  name:\tweb\n") && text.contains("args: [-, x]"),
            "{text}"
        );
        assert!(text.contains("seccompProfile"), "{text}");
        assert_eq!(out.stats.reemitted, 0);
        assert_eq!(process(&text, &Options::default()).unwrap().text(), text);
        // A piece of the stream that is only `...` is refused, as kubectl refuses it.
        let (doc, line, message) =
            input_error("apiVersion: v1\nkind: Namespace\nmetadata: {name: a}\n---\n...\n");
        assert_eq!((doc, line), (2, 5));
        assert!(
            message.contains("nothing before its end marker"),
            "{message}"
        );
        // A second `...` after a document's own stays with it.
        assert!(process(
            "apiVersion: v1\nkind: Namespace\nmetadata: {name: a}\n...\n...\n",
            &Options::default()
        )
        .is_ok());
    }

    /// Found by the `resource_list` fuzz target
    /// (fuzz/regressions/resourcelist-budget-results-second-run.yaml): a workload left without a
    /// budget for its own reason (its selector does not match its pods) was told, on the second
    /// run, that the budget generated for a sibling already selects its pods: a new result.
    #[test]
    fn a_second_run_decides_budgets_alike() {
        let input = include_str!("../fuzz/regressions/resourcelist-budget-results-second-run.yaml");
        let mut options = Options {
            threads: 1,
            ..Options::default()
        };
        options.overrides.disable.push("pin-image-digests".into());
        let first = process(input, &options).unwrap();
        assert_eq!(first.form, InputForm::ResourceList);
        let text = first.text();
        assert!(
            text.contains("generated-for: Deployment/hello-v2"),
            "{text}"
        );
        let mismatch = "the selector does not match the pod template's labels";
        assert!(text.contains(mismatch), "{text}");
        let second = process(&text, &options).unwrap();
        assert_eq!(second.text(), text);
        let hello_v1: Vec<&str> = second
            .results
            .iter()
            .filter(|r| r.rule == crate::rules::pod_disruption_budget::ID)
            .filter(|r| r.resource.as_ref().is_some_and(|r| r.name == "hello-v1"))
            .map(|r| r.message.as_str())
            .collect();
        assert_eq!(hello_v1.len(), 1);
        assert!(hello_v1[0].contains(mismatch), "{hello_v1:?}");
    }

    /// Found by the `list` fuzz target (fuzz/regressions/list-duplicate-workload-names.yaml): two
    /// workloads of one kind, namespace and name each got a budget generated for `Kind/name`, and
    /// the second run took one's budget for the other's and decided otherwise. A workload in the
    /// input twice now gets no budget (real streams have such repeats: concatenated examples),
    /// the same on every run.
    #[test]
    fn a_workload_in_the_input_twice_gets_no_budget() {
        let deployment = |ns: &str, app: &str| {
            format!("apiVersion: apps/v1\nkind: Deployment\nmetadata: {{name: web, namespace: {ns}}}\nspec:\n  replicas: 2\n  selector: {{matchLabels: {{app: {app}}}}}\n  template:\n    metadata: {{labels: {{app: {app}}}}}\n    spec:\n      containers: [{{name: c, image: nginx}}]\n")
        };
        // The info results saying why are kept at `verbosity: all`.
        let mut options = Options {
            threads: 1,
            verbosity: crate::config::Verbosity::All,
            ..Options::default()
        };
        options.overrides.disable.push("pin-image-digests".into());
        let repeated = |out: &Output<'_>| -> Vec<String> {
            out.results
                .iter()
                .filter(|r| r.message.contains("is in the input more than once"))
                .map(|r| format!("{:?}", r.resource.as_ref().map(|r| &r.namespace)))
                .collect()
        };
        let twice_then_again = |input: &str, want: usize| {
            let first = process(input, &options).unwrap();
            assert!(!first.has_errors(), "{:?}", first.results);
            let text = first.text();
            assert_eq!(
                text.matches("generated-for: Deployment/web").count(),
                want,
                "{text}"
            );
            assert_eq!(repeated(&first).len(), 2, "{:?}", first.results);
            let second = process(&text, &options).unwrap();
            assert_eq!(second.text(), text);
            assert_eq!(repeated(&second), repeated(&first));
        };
        // A stream: the same name in another namespace, or of another kind, is another object;
        // namespace b's web gets its budget, namespace a's two get none.
        let stream = format!(
            "{}---\napiVersion: v1\nkind: Service\nmetadata: {{name: web, namespace: a}}\n---\n{}---\n{}",
            deployment("a", "p"),
            deployment("b", "p"),
            deployment("a", "q")
        );
        twice_then_again(&stream, 1);
        // In a List (and a List in it), and in a ResourceList.
        let items = |a: &str, b: &str| {
            format!(
                "items:\n- {}\n- apiVersion: v1\n  kind: List\n  items:\n  - {}\n",
                a.trim_end().replace('\n', "\n  "),
                b.trim_end().replace('\n', "\n    ")
            )
        };
        let pair = items(&deployment("a", "p"), &deployment("a", "q"));
        twice_then_again(&format!("apiVersion: v1\nkind: List\n{pair}"), 0);
        twice_then_again(
            &format!("apiVersion: config.kubernetes.io/v1\nkind: ResourceList\n{pair}"),
            0,
        );
        // Once as a list's item and once as a document: the list decides its budgets alone, so
        // this is an error naming both.
        let mixed = format!(
            "{}---\napiVersion: v1\nkind: List\nitems:\n- {}",
            deployment("a", "p"),
            deployment("a", "q").trim_end().replace('\n', "\n  ")
        );
        match process(&mixed, &options) {
            Err(Error::SameObject {
                doc,
                line,
                message,
                first_doc,
                first_line,
                first_item,
            }) => {
                assert_eq!((doc, line, first_doc, first_line), (2, 12, 1, 1));
                assert_eq!(first_item, "");
                assert!(
                    message.starts_with(
                        "items[0]: Deployment web in namespace a is in the input twice"
                    ),
                    "{message}"
                );
            }
            other => panic!("{other:?}"),
        }
    }

    /// Found by the `stream` fuzz target (fuzz/regressions/block-scalar-at-end-then-budget.yaml):
    /// the budget placed after a workload whose block scalar ended the input without a line
    /// break added one to that value.
    #[test]
    fn no_budget_after_a_block_scalar_that_ends_the_input() {
        // The document ends in an init container's `|` script, with no line break after it;
        // nothing the rules add comes after it, but the budget would.
        let workload = include_str!("../fuzz/regressions/block-scalar-at-end-then-budget.yaml");
        assert!(!workload.ends_with('\n'));
        // The script that ends the input, as a value (`..` with no line break after it).
        fn scripts(v: &Value, out: &mut Vec<String>) {
            match v {
                Value::String(s) if s.contains("FRONTEND_ADDR}..") => out.push(s.clone()),
                Value::Array(a) => a.iter().for_each(|x| scripts(x, out)),
                Value::Object(m) => m.values().for_each(|x| scripts(x, out)),
                _ => {}
            }
        }
        let script = |text: &str| -> Vec<String> {
            let mut out = Vec::new();
            for seg in split_documents(text) {
                if let Some(root) = crate::yaml::tree::parse_document(seg.text).unwrap().root {
                    scripts(&root.to_value(), &mut out);
                }
            }
            out
        };
        let before = script(workload);
        assert!(before.iter().any(|s| s.ends_with("..")), "{before:?}");
        let mut options = Options::default();
        options.overrides.disable.push("pin-image-digests".into());
        let out = process(workload, &options).unwrap();
        let text = out.text();
        assert_eq!(script(&text), before, "{text}");
        assert!(!text.contains("kind: PodDisruptionBudget"), "{text}");
        assert!(out
            .problems()
            .any(|r| r.message.contains("ends inside a block scalar")));
        // With a final line break the budget comes as usual.
        let ended = format!("{workload}\n");
        let out = process(&ended, &options).unwrap();
        let text = out.text();
        assert!(text.contains("kind: PodDisruptionBudget"), "{text}");
        assert_eq!(script(&text), script(&ended));
    }

    /// Found by the `stream` fuzz target (fuzz/regressions/resourcelist-then-stream.yaml): the
    /// documents after a ResourceList were hardened as a stream whose error results the list never
    /// showed, and the whole output was delivered even so.
    #[test]
    fn documents_after_a_resource_list_are_refused() {
        let input = "apiVersion: config.kubernetes.io/v1\nkind: ResourceList\nitems: []\n---\n# c\n---\napiVersion: apps/v1\nkind: Deployment\nmetadata: {name: web}\nspec:\n  template:\n    spec:\n      containers: [{name: c, image: nginx}]\n";
        let (doc, line, message) = input_error(input);
        assert_eq!((doc, line), (2, 7));
        assert!(message.contains("only document"), "{message}");
        // Blank documents around it are fine.
        let alone =
            "---\napiVersion: config.kubernetes.io/v1\nkind: ResourceList\nitems: []\n---\n# c\n";
        let out = process(alone, &Options::default()).unwrap();
        assert_eq!(out.form, InputForm::ResourceList);
    }
}
