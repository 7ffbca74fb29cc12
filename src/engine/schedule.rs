//! The segment/thread scheduler: a stream's documents numbered, cut into contiguous runs and
//! processed side by side, joined in order.

use super::document::{process_segment, SegmentOut};
use super::results::Sink;
use crate::config::{Overrides, Policy};
use crate::error::Error;
use crate::rules::StreamIndex;
use crate::yaml::split::{split_documents, Segment};

/// Processes a contiguous run of documents (none of them the first) in order.
pub(super) fn process_run<'a>(
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
pub(super) type WorkerOutput<'a> = (Vec<SegmentOut<'a>>, Sink);

/// A stream's segments with the number of the document each is (blank ones share the number of
/// the document before), and the position of the first that is not blank.
pub(super) fn number_segments(input: &str) -> (Vec<(Segment<'_>, usize)>, usize) {
    let mut doc_no = 0usize;
    let segments: Vec<(Segment<'_>, usize)> = split_documents(input)
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
    (segments, first)
}

/// Worker threads for `threads` (0: one per core).
pub(super) fn thread_count(threads: usize) -> usize {
    match threads {
        0 => std::thread::available_parallelism().map_or(1, |n| n.get()),
        n => n,
    }
}

/// Below this many documents a stream is processed on one thread.
const MIN_PARALLEL: usize = 64;

/// Processes the documents after the first, in order: on one thread, or cut into `threads`
/// contiguous runs processed side by side, whose outputs and sinks are joined in order.
pub(super) fn run<'a>(
    rest: &[(Segment<'a>, usize)],
    threads: usize,
    policy: &mut Policy,
    overrides: &Overrides,
    index: &StreamIndex,
    sink: &mut Sink,
) -> Result<Vec<SegmentOut<'a>>, Error> {
    if threads <= 1 || rest.len() < MIN_PARALLEL || cfg!(target_family = "wasm") {
        return process_run(rest, policy, overrides, index, sink);
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
                        let chunks = process_run(part, &mut policy, overrides, index, &mut sink)?;
                        Ok((chunks, sink))
                    })
                })
                .collect();
            handles
                .into_iter()
                .map(|h| h.join().expect("worker panicked"))
                .collect()
        });
        let mut parts = Vec::with_capacity(rest.len());
        for part in worker_parts {
            let (chunks, part_sink) = part?;
            parts.extend(chunks);
            sink.absorb(part_sink);
        }
        Ok(parts)
    }
}
