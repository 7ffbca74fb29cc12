//! Results assembly: where a run (or one worker) collects results, counters and the notes of
//! the stream hooks, what each verbosity keeps, and how workers' sinks are joined in order.

use super::hooks::Placed;
use super::{Output, Stats};
use crate::change::{KrmResult, Severity};
use crate::config::Verbosity;
use crate::digest::ResolveError;
use crate::rules::Note;
use crate::yaml::emit::{self, Layout};

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
