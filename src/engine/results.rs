//! Results assembly: where a run (or one worker) collects results, counters and the notes of
//! the stream hooks, what each verbosity keeps, and how workers' sinks are joined in order; the
//! run's [`Output`] (text in chunks, results, counters).

use std::borrow::Cow;
use std::io::{self, Write};

use super::form::InputForm;
use super::identity::Placed;
use crate::change::{KrmResult, Severity};
use crate::config::{PolicySpec, Verbosity};
use crate::digest::ResolveError;
use crate::rules::Note;
use crate::yaml::emit::{self, Layout};
use crate::yaml::patch::Patched;

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

impl Sink {
    pub(super) fn new(verbosity: Verbosity, render: bool) -> Self {
        Sink {
            verbosity,
            render,
            ..Sink::default()
        }
    }

    /// Keeps a result: as a value, or as YAML text (a warning or an error as both).
    pub(super) fn keep(&mut self, result: KrmResult) {
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
        self.stats.add(&part.stats);
        self.unresolved.extend(part.unresolved);
        self.observed.extend(part.observed);
        self.workloads.extend(part.workloads);
        self.notes.extend(part.notes);
        self.notes.truncate(NOTED_OBJECTS);
    }

    /// Moves the results, notes, counters and unresolved images (each once) into `out`.
    pub(super) fn finish(self, out: &mut Output<'_>) {
        out.results = self.results;
        out.results_yaml = self.render.then_some(self.rendered);
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
}

impl Stats {
    pub(super) fn add(&mut self, other: &Stats) {
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
}
