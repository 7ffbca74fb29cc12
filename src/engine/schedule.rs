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
        process_run(rest, policy, overrides, index, sink)
    } else {
        let per = rest.len().div_ceil(threads);
        let worker_parts: Vec<Result<WorkerOutput<'a>, Error>> = std::thread::scope(|scope| {
            let handles: Vec<_> = rest
                .chunks(per)
                .map(|part| {
                    let mut policy = policy.clone();
                    let mut sink = sink.worker();
                    scope.spawn(move || {
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

#[cfg(test)]
mod tests {
    use super::super::{process, Options};

    /// Results of the first objects (a few per object, well inside the first NOTED_OBJECTS).
    const NOTED_FIRST: usize = 20;

    #[test]
    fn documents_are_numbered_past_blank_ones() {
        let (segments, first) = super::number_segments("# header\n---\na: 1\n---\n---\nb: 2\n");
        assert_eq!(segments[first].1, 1);
        let numbers: Vec<usize> = segments.iter().map(|(_, n)| *n).collect();
        assert_eq!(*numbers.last().unwrap(), 2);
        assert!(numbers.windows(2).all(|w| w[0] <= w[1]));
        assert_eq!(super::thread_count(3), 3);
        assert!(super::thread_count(0) >= 1);
    }

    #[test]
    fn runs_on_many_threads_join_as_on_one() {
        let mut input = String::new();
        for i in 0..150 {
            input.push_str(&format!(
                "---\napiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: d{i}\nspec:\n  replicas: {}\n  selector:\n    matchLabels: {{app: d{i}}}\n  template:\n    metadata:\n      labels: {{app: d{i}}}\n    spec:\n      containers:\n      - name: c\n        image: nginx:1\n",
                i % 3 + 1
            ));
            input.push_str(&format!(
                "---\napiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: c{i}\n"
            ));
        }
        let run = |threads| {
            let options = Options {
                threads,
                ..Options::default()
            };
            let out = process(&input, &options).unwrap();
            (out.text(), out.results, out.stats, out.origins)
        };
        let one = run(1);
        let four = run(4);
        assert_eq!(one, four);
        assert_eq!(one.2.generated, 100);
        // Results for a summary only: the same warnings the first objects have, on any number
        // of threads, the others counted.
        for threads in [1, 4] {
            let options = Options {
                threads,
                summary_only: true,
                spec: Some(
                    crate::policy::spec_from_object(&serde_json::json!({
                        "apiVersion": "kube-harden.dev/v1alpha1", "kind": "HardeningPolicy",
                        "spec": {"disable": ["pod-disruption-budget"]}}))
                    .unwrap(),
                ),
                ..Options::default()
            };
            let out = process(&input, &options).unwrap();
            let all = process(
                &input,
                &Options {
                    summary_only: false,
                    ..options.clone()
                },
            )
            .unwrap();
            assert_eq!(out.text(), all.text());
            let warnings = |r: &[crate::change::KrmResult]| {
                r.iter()
                    .filter(|r| r.severity == crate::change::Severity::Warning)
                    .count()
            };
            assert!(warnings(&all.results) > 100, "{}", warnings(&all.results));
            assert_eq!(
                warnings(&out.results) + out.stats.warnings_not_kept,
                warnings(&all.results)
            );
            assert!(out.stats.warnings_not_kept > 0);
            let first: Vec<_> = all.results.iter().take(NOTED_FIRST).collect();
            assert_eq!(
                first,
                out.results.iter().take(NOTED_FIRST).collect::<Vec<_>>()
            );
        }
    }
}
