//! Results assembly: where a run (or one worker) collects results, counters and the notes of
//! the stream hooks, what each verbosity keeps, and how workers' sinks are joined in order; the
//! run's [`Output`] (text in chunks, results, counters).

use std::borrow::Cow;
use std::fmt;
use std::io::{self, Write};
use std::sync::{Arc, Mutex};

use super::form::InputForm;
use super::identity::Placed;
use crate::change::{KrmResult, ResourceRef, Severity};
use crate::config::{PolicySpec, Verbosity};
use crate::digest::ResolveError;
use crate::rules::Note;
use crate::yaml::emit::{self, Layout};
use crate::yaml::patch::Patched;

/// Objects whose hardened line a sink keeps for the stderr summary when results leave it out.
pub const NOTED_OBJECTS: usize = 20;

/// A `summary_only` sink trims its results once it holds this many (and then twice what it
/// kept), so trimming costs a constant per result.
const TRIM_AT: usize = 1024;

/// Where a run writes its results file (`--results FILE`) as it goes: [`ResultsTo`] calls it.
pub trait ResultsWriter: Send {
    /// Appends bytes.
    fn write(&mut self, bytes: &[u8]) -> io::Result<()>;
    /// Discards everything written so far: a run starts (again, when a first pass asked only the
    /// lock and a second pass brings the registry's answers).
    fn restart(&mut self) -> io::Result<()>;
    /// The run is over: everything is written (flush).
    fn finish(&mut self) -> io::Result<()>;
}

impl ResultsWriter for Vec<u8> {
    fn write(&mut self, bytes: &[u8]) -> io::Result<()> {
        self.extend_from_slice(bytes);
        Ok(())
    }

    fn restart(&mut self) -> io::Result<()> {
        self.clear();
        Ok(())
    }

    fn finish(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// The results file a run writes as it goes ([`Options::results_to`]): `results:` and one YAML
/// sequence item per result, in order, or `results: []`, the bytes the CLI's `--results FILE`
/// holds. Items are written as soon as the documents before them are done, so a run holds only
/// the results of the documents in flight. Cloning shares the writer.
///
/// [`Options::results_to`]: super::Options::results_to
#[derive(Clone)]
pub struct ResultsTo(Arc<Mutex<ResultsState>>);

struct ResultsState {
    writer: Box<dyn ResultsWriter>,
    /// Whether an item (and so `results:`) was written.
    items: bool,
}

impl fmt::Debug for ResultsTo {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("ResultsTo(..)")
    }
}

impl ResultsTo {
    /// Results written to `writer`.
    pub fn new(writer: impl ResultsWriter + 'static) -> Self {
        ResultsTo(Arc::new(Mutex::new(ResultsState {
            writer: Box::new(writer),
            items: false,
        })))
    }

    fn state(&self) -> std::sync::MutexGuard<'_, ResultsState> {
        // A worker that panicked holds no lock on it (only the joining thread writes).
        self.0.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// A run starts: nothing written yet.
    pub(super) fn start(&self) -> io::Result<()> {
        let mut state = self.state();
        state.items = false;
        state.writer.restart()
    }

    /// Writes sequence items (after `results:` when they are the first).
    pub(super) fn items(&self, text: &str) -> io::Result<()> {
        if text.is_empty() {
            return Ok(());
        }
        let mut state = self.state();
        if !state.items {
            state.items = true;
            state.writer.write(b"results:\n")?;
        }
        state.writer.write(text.as_bytes())
    }

    /// The run is over: `results: []` when there was no item, and everything flushed.
    pub(super) fn end(&self) -> io::Result<()> {
        let mut state = self.state();
        if !state.items {
            state.writer.write(b"results: []\n")?;
        }
        state.writer.finish()
    }
}

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
    /// block is ever copied into a larger one: memory stays at the text's size). A sink that
    /// writes a results file holds only the block being filled.
    pub rendered: Vec<String>,
    /// Keep only the results the CLI's stderr summary shows ([`Options::summary_only`]): a
    /// stream's warnings and info results of other objects are counted, not held.
    ///
    /// [`Options::summary_only`]: super::Options::summary_only
    pub summary_only: bool,
    /// With `summary_only`: trim the kept results when there are this many (0: the default).
    pub trim_at: usize,
    /// The run's results file, on the sink that holds the results in order (not a worker's):
    /// `rendered` blocks are written to it as they fill, and a worker's when it is joined.
    pub(crate) results_to: Option<ResultsTo>,
    /// The first error writing `results_to` (nothing more is written then; the run fails).
    pub(crate) write_error: Option<io::Error>,
}

impl Sink {
    pub(super) fn new(verbosity: Verbosity, render: bool) -> Self {
        Sink {
            verbosity,
            render,
            ..Sink::default()
        }
    }

    /// A worker's sink, keeping what this one keeps.
    pub(super) fn worker(&self) -> Self {
        Sink {
            summary_only: self.summary_only,
            ..Sink::new(self.verbosity, self.render)
        }
    }

    /// Keeps a result: as a value, or as YAML text (a warning or an error as both).
    pub(super) fn keep(&mut self, result: KrmResult) {
        if !self.render {
            self.results.push(result);
            if self.summary_only && self.results.len() >= self.trim_at.max(TRIM_AT) {
                self.trim();
            }
            return;
        }
        const BLOCK: usize = 1 << 20;
        if self
            .rendered
            .last()
            .is_none_or(|b| b.capacity() - b.len() < BLOCK / 64)
        {
            // Full blocks go to the results file, if this sink writes one; the memory of the
            // last is used again.
            let mut reuse = None;
            if self.results_to.is_some() {
                for mut block in std::mem::take(&mut self.rendered) {
                    self.write_items(&block);
                    block.clear();
                    reuse = Some(block);
                }
            }
            self.rendered
                .push(reuse.unwrap_or_else(|| String::with_capacity(BLOCK)));
        }
        let block = self.rendered.last_mut().expect("a block was just added");
        emit::sequence_items(block, &[result.to_value()], 0, &Layout::default());
        if result.severity != Severity::Info {
            self.results.push(result);
            if self.summary_only && self.results.len() >= self.trim_at.max(TRIM_AT) {
                self.trim();
            }
        }
    }

    /// Writes rendered items to the results file (after an error, nothing more).
    fn write_items(&mut self, text: &str) {
        if let (Some(to), None) = (&self.results_to, &self.write_error) {
            if let Err(e) = to.items(text) {
                self.write_error = Some(e);
            }
        }
    }

    /// Writes the rendered blocks held to the results file, if this sink writes one.
    fn flush_rendered(&mut self) {
        if self.results_to.is_some() {
            for block in std::mem::take(&mut self.rendered) {
                self.write_items(&block);
            }
        }
    }

    /// Sets the results file this sink writes (the run's sink, whose results are in order) and
    /// starts it.
    pub(super) fn write_results_to(&mut self, to: ResultsTo) -> io::Result<()> {
        to.start()?;
        self.results_to = Some(to);
        Ok(())
    }

    /// True once writing the results file failed (the run stops as soon as it can).
    pub(super) fn write_failed(&self) -> bool {
        self.write_error.is_some()
    }

    /// Ends the results file, if this sink writes one: what is still held (a ResourceList's
    /// results, which it carries as values, rendered one by one), then `results: []` if there
    /// was none, flushed. The first write error, if any.
    pub(super) fn end_results(&mut self) -> io::Result<()> {
        let Some(to) = self.results_to.clone() else {
            return Ok(());
        };
        if self.render {
            self.flush_rendered();
        } else {
            let mut item = String::new();
            for r in &self.results {
                item.clear();
                emit::sequence_items(&mut item, &[r.to_value()], 0, &Layout::default());
                if let Err(e) = to.items(&item) {
                    self.write_error.get_or_insert(e);
                    break;
                }
            }
        }
        if let Some(e) = self.write_error.take() {
            return Err(e);
        }
        to.end()
    }

    /// Keeps a warning or an error, or an info decision under `verbosity: all`.
    pub(super) fn push(&mut self, result: KrmResult) {
        if result.severity != Severity::Info || self.verbosity == Verbosity::All {
            self.keep(result);
        }
    }

    /// Keeps the one info line of a changed or generated object (`verbosity: changes`; under
    /// `all` the per-rule change results stand for it), and notes it for the summary.
    pub(super) fn push_change(&mut self, result: KrmResult) {
        if self.notes.len() < NOTED_OBJECTS {
            self.notes.push(result.clone());
        }
        if self.verbosity == Verbosity::Changes {
            self.keep(result);
        }
    }

    /// Joins a worker's sink that processed the documents after this one's.
    pub(super) fn absorb(&mut self, part: Sink) {
        self.results.extend(part.results);
        self.rendered.extend(part.rendered);
        self.flush_rendered();
        self.stats.add(&part.stats);
        self.unresolved.extend(part.unresolved);
        self.observed.extend(part.observed);
        self.workloads.extend(part.workloads);
        self.notes.extend(part.notes);
        self.notes.truncate(NOTED_OBJECTS);
        if self.summary_only {
            self.trim();
        }
    }

    /// With `summary_only`: drops the warnings and info results the summary will not show, and
    /// counts the warnings. It shows the problems of the first [`NOTED_OBJECTS`] objects that
    /// have any and of the objects noted as changed; the most recent object's are kept too,
    /// since its "hardened" note comes after its results. Each part of a stream keeps at least
    /// what the whole shows of it (its first objects and its first notes), so trimming parts
    /// and then their join keeps all the summary needs. Errors and results about no object are
    /// always kept.
    pub(super) fn trim(&mut self) {
        let last = self.results.last().and_then(|r| r.resource.clone());
        let mut shown: Vec<Option<ResourceRef>> = Vec::new();
        let mut not_kept = 0;
        self.results.retain(|r| {
            // Errors, results about the input as a whole, and the most recent object's.
            if r.severity == Severity::Error || r.resource.is_none() || r.resource == last {
                return true;
            }
            let is_problem = r.severity == Severity::Warning;
            let keep = shown.contains(&r.resource)
                || self.notes.iter().any(|n| n.resource == r.resource)
                || (is_problem && shown.len() < NOTED_OBJECTS && {
                    shown.push(r.resource.clone());
                    true
                });
            if !keep && is_problem {
                not_kept += 1;
            }
            keep
        });
        self.stats.warnings_not_kept += not_kept;
        self.trim_at = self.results.len() * 2;
    }

    /// Moves the results, notes, counters and unresolved images (each once) into `out`.
    pub(super) fn finish(self, out: &mut Output<'_>) {
        out.results = self.results;
        out.results_yaml = (self.render && self.results_to.is_none()).then_some(self.rendered);
        out.notes = self.notes;
        out.stats = self.stats;
        let mut seen = std::collections::HashSet::new();
        out.unresolved = self
            .unresolved
            .into_iter()
            .filter(|e| seen.insert(e.to_string()))
            .collect();
    }
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
    /// Objects generated (rules' `create` hooks: PodDisruptionBudgets).
    pub generated: usize,
    /// Warnings counted but not kept (`Options::summary_only`: objects the summary does not
    /// list).
    pub warnings_not_kept: usize,
}

impl Stats {
    pub(super) fn add(&mut self, other: &Stats) {
        self.workloads += other.workloads;
        self.changed += other.changed;
        self.changes += other.changes;
        self.reemitted += other.reemitted;
        self.generated += other.generated;
        self.warnings_not_kept += other.warnings_not_kept;
    }
}

/// The result of a run.
#[derive(Debug)]
pub struct Output<'a> {
    /// The output text, in pieces: untouched documents borrow the input, documents edited in
    /// place hold only their edits.
    pub chunks: Vec<Chunk<'a>>,
    /// For each chunk, the byte offset in the input of the document it comes from (for a new
    /// object, the document it was planned for): how `--diff` gives each input file its own output.
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
    /// and errors. `None` when [`Options::results_to`] wrote them.
    ///
    /// [`Options::render_results`]: super::Options::render_results
    /// [`Options::results_to`]: super::Options::results_to
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

/// A piece of the output: a document or a created object.
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

    pub(super) fn ends_with_newline(&self) -> bool {
        match self {
            Chunk::Text(t) => t.ends_with('\n'),
            Chunk::Patched(p) => p.last_byte() == Some(b'\n'),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn result(severity: Severity) -> KrmResult {
        KrmResult::new("r", severity, "m".into(), None, None)
    }

    #[test]
    fn each_verbosity_keeps_its_results() {
        let mut sink = Sink::new(Verbosity::Problems, false);
        sink.push(result(Severity::Info));
        sink.push(result(Severity::Warning));
        sink.push_change(result(Severity::Info));
        assert_eq!(sink.results.len(), 1);
        assert_eq!(sink.notes.len(), 1, "the summary keeps the hardened line");
        let mut sink = Sink::new(Verbosity::All, false);
        sink.push(result(Severity::Info));
        assert_eq!(sink.results.len(), 1);
        let mut sink = Sink::new(Verbosity::Changes, false);
        sink.push_change(result(Severity::Info));
        assert_eq!(sink.results.len(), 1);
    }

    #[test]
    fn rendered_results_keep_only_problems_as_values() {
        let mut sink = Sink::new(Verbosity::All, true);
        sink.push(result(Severity::Info));
        sink.push(result(Severity::Error));
        assert_eq!(sink.results.len(), 1);
        let text: String = sink.rendered.concat();
        assert_eq!(text.matches("- message: m").count(), 2, "{text}");
    }

    #[test]
    fn workers_join_in_order_and_the_summary_stays_bounded() {
        let mut sink = Sink::new(Verbosity::Problems, false);
        for n in 0..2 {
            let mut part = Sink::new(Verbosity::Problems, false);
            for _ in 0..NOTED_OBJECTS {
                part.push_change(KrmResult::new(
                    "r",
                    Severity::Info,
                    format!("{n}"),
                    None,
                    None,
                ));
            }
            part.stats.changes = 3;
            sink.absorb(part);
        }
        assert_eq!(sink.notes.len(), NOTED_OBJECTS);
        assert!(sink.notes.iter().all(|r| r.message == "0"));
        assert_eq!(sink.stats.changes, 6);
    }

    fn about(severity: Severity, object: usize) -> KrmResult {
        let resource = ResourceRef {
            api_version: "v1".into(),
            kind: "Pod".into(),
            name: format!("p{object}"),
            ..ResourceRef::default()
        };
        KrmResult::new("r", severity, format!("{object}"), Some(resource), None)
    }

    #[test]
    fn a_summary_only_sink_keeps_what_the_summary_shows_and_counts_the_rest() {
        let mut sink = Sink::new(Verbosity::Problems, false);
        sink.summary_only = true;
        // 3000 objects with two warnings each; every 100th is changed (noted); object 2500 has
        // an error.
        for object in 0..3000 {
            sink.push(about(Severity::Warning, object));
            sink.push(about(Severity::Warning, object));
            if object == 2500 {
                sink.push(about(Severity::Error, object));
            }
            if object % 100 == 0 {
                sink.push_change(about(Severity::Info, object));
            }
        }
        sink.trim();
        let kept = |object: usize| {
            sink.results
                .iter()
                .filter(|r| r.message == object.to_string())
                .count()
        };
        for object in 0..NOTED_OBJECTS {
            assert_eq!(kept(object), 2, "first objects' warnings, object {object}");
        }
        for note in &sink.notes {
            let object: usize = note.message.parse().unwrap();
            assert_eq!(
                kept(object),
                2,
                "a noted object's warnings, object {object}"
            );
        }
        assert_eq!(kept(2500), 1, "the error is kept, not its warnings");
        assert_eq!(kept(2999), 2, "the last object's, whose note may follow");
        let kept_warnings = sink
            .results
            .iter()
            .filter(|r| r.severity == Severity::Warning)
            .count();
        assert_eq!(kept_warnings + sink.stats.warnings_not_kept, 6000);
        assert!(sink.results.len() < 100, "{}", sink.results.len());
    }
}
