//! The segment/thread scheduler: a stream's documents numbered, cut into contiguous runs and
//! processed side by side, joined in order.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{mpsc, Condvar, Mutex};

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

/// Whether this build runs everything on the calling thread: WASM without threads
/// (`wasm32-wasip1`, `wasm32-unknown-unknown`). The `wasm32-wasip1-threads` build has them
/// (`cfg(wasm_threads)`, set by `build.rs`).
pub(super) const ONE_THREAD: bool = cfg!(all(target_family = "wasm", not(wasm_threads)));

/// Worker threads for `threads` (0: one per core). On WASM with threads the host says how many
/// cores there are: `KUBE_HARDEN_THREADS` (a positive number; `wasm/wasi/run-node-threads.mjs`
/// sets it to node's `os.availableParallelism()`), else std's answer, else 1.
pub(super) fn thread_count(threads: usize) -> usize {
    match threads {
        0 => host_threads()
            .or_else(|| std::thread::available_parallelism().ok().map(|n| n.get()))
            .unwrap_or(1),
        n => n,
    }
}

/// `KUBE_HARDEN_THREADS` on WASM with threads; `None` elsewhere (native builds count cores).
fn host_threads() -> Option<usize> {
    if !cfg!(wasm_threads) {
        return None;
    }
    std::env::var("KUBE_HARDEN_THREADS")
        .ok()?
        .trim()
        .parse::<usize>()
        .ok()
        .filter(|&n| n > 0)
}

/// Below this many documents a stream is processed on one thread.
const MIN_PARALLEL: usize = 64;

/// Documents a worker takes at a time (fewer when that would leave a worker idle).
const PIECE: usize = 256;

/// Pieces a worker may be ahead of the join: what waits there is held in memory.
const AHEAD: usize = 2;

/// Processes the documents after the first, in order: on one thread, or cut into contiguous
/// pieces that `threads` workers take in turn, each piece's output and sink joined in order as
/// soon as the pieces before it are (so results go to the results file as the run goes, and
/// only the pieces in flight are held). A worker never runs more than [`AHEAD`] pieces per
/// worker ahead of the join. The first error in document order is returned, as on one thread.
pub(super) fn run<'a>(
    rest: &[(Segment<'a>, usize)],
    threads: usize,
    policy: &mut Policy,
    overrides: &Overrides,
    index: &StreamIndex,
    sink: &mut Sink,
) -> Result<Vec<SegmentOut<'a>>, Error> {
    if threads <= 1 || rest.len() < MIN_PARALLEL || ONE_THREAD {
        return process_run(rest, policy, overrides, index, sink);
    }
    let per = rest.len().div_ceil(threads).min(PIECE);
    let pieces: Vec<&[(Segment<'a>, usize)]> = rest.chunks(per).collect();
    let window = threads * AHEAD;
    // The next piece to take, and the number of pieces joined (or `usize::MAX` to stop).
    let next = AtomicUsize::new(0);
    let joined = (Mutex::new(0usize), Condvar::new());
    let (tx, rx) = mpsc::channel::<(usize, Result<WorkerOutput<'a>, Error>)>();
    let template = sink.worker();
    let mut parts = Vec::with_capacity(rest.len());
    let mut failed: Option<Error> = None;
    std::thread::scope(|scope| {
        for _ in 0..threads {
            let tx = tx.clone();
            let mut policy = policy.clone();
            let (pieces, next, joined, template) = (&pieces, &next, &joined, &template);
            scope.spawn(move || {
                // A worker that panics stops the others (the join would wait for its piece).
                let _stop = StopOnPanic(joined);
                loop {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    let Some(piece) = pieces.get(i) else {
                        return;
                    };
                    if !may_start(joined, i, window) {
                        return;
                    }
                    let mut sink = template.worker();
                    let out = process_run(piece, &mut policy, overrides, index, &mut sink)
                        .map(|chunks| (chunks, sink));
                    if tx.send((i, out)).is_err() {
                        return;
                    }
                }
            });
        }
        drop(tx);
        // Join in order on this thread, as the pieces come.
        let mut waiting: BTreeMap<usize, Result<WorkerOutput<'a>, Error>> = BTreeMap::new();
        let mut want = 0;
        for (i, out) in rx.iter() {
            waiting.insert(i, out);
            while let Some(out) = waiting.remove(&want) {
                want += 1;
                if failed.is_some() {
                    continue;
                }
                match out {
                    Ok((chunks, part_sink)) => {
                        parts.extend(chunks);
                        sink.absorb(part_sink);
                    }
                    Err(e) => failed = Some(e),
                }
            }
            let stop = failed.is_some() || sink.write_failed();
            let (done, moved) = &joined;
            *done.lock().unwrap_or_else(|e| e.into_inner()) = if stop { usize::MAX } else { want };
            moved.notify_all();
            if stop {
                waiting.clear();
            }
        }
    });
    match failed {
        Some(e) => Err(e),
        None => Ok(parts),
    }
}

/// Runs `work` on pieces `0..count` on `threads` threads, while `consume` takes the pieces'
/// outputs in order from the iterator it is given, each as soon as it and the ones before it are
/// done. `threads - 1` scoped workers take pieces in turn; the thread that consumes works on the
/// next piece itself whenever the one it wants is not done yet (one heap fewer than a thread
/// that only waits: each thread's allocator holds pages of its own). No piece is started more
/// than [`AHEAD`] pieces per thread ahead of the one `consume` took last, so only the pieces in
/// flight are held. On one thread pieces are worked on only as they are asked for.
pub(super) fn in_order<T: Send, R>(
    count: usize,
    threads: usize,
    work: impl Fn(usize) -> T + Sync,
    consume: impl FnOnce(&mut dyn Iterator<Item = T>) -> R,
) -> R {
    if threads <= 1 || count <= 1 || ONE_THREAD {
        return consume(&mut (0..count).map(work));
    }
    let window = threads * AHEAD;
    let next = AtomicUsize::new(0);
    let joined = (Mutex::new(0usize), Condvar::new());
    let (tx, rx) = mpsc::channel::<(usize, T)>();
    std::thread::scope(|scope| {
        for _ in 1..threads.min(count) {
            let tx = tx.clone();
            let (work, next, joined) = (&work, &next, &joined);
            scope.spawn(move || {
                let _stop = StopOnPanic(joined);
                loop {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    if i >= count {
                        return;
                    }
                    if !may_start(joined, i, window) {
                        return;
                    }
                    if tx.send((i, work(i))).is_err() {
                        return;
                    }
                }
            });
        }
        drop(tx);
        let mut pieces = InOrder {
            rx,
            waiting: BTreeMap::new(),
            want: 0,
            count,
            window,
            next: &next,
            work: &work,
            joined: &joined,
        };
        consume(&mut pieces)
    })
}

/// Below this many items [`in_order_items`] works on one thread.
const MIN_PARALLEL_ITEMS: usize = 64;

/// Items a thread of [`in_order_items`] works on at a time (fewer when that would leave a thread
/// idle).
const ITEMS_PER_PIECE: usize = 64;

/// [`in_order`] item by item: `work(k)` for every `k` in `0..count`, done in pieces of up to
/// [`ITEMS_PER_PIECE`] on `threads` threads (one below [`MIN_PARALLEL_ITEMS`] items), and taken
/// by `consume` one by one, in order.
pub(super) fn in_order_items<T: Send, R>(
    count: usize,
    threads: usize,
    work: impl Fn(usize) -> T + Sync,
    consume: impl FnOnce(&mut dyn Iterator<Item = T>) -> R,
) -> R {
    let threads = if count < MIN_PARALLEL_ITEMS {
        1
    } else {
        threads
    };
    let per = count.div_ceil(threads.max(1)).clamp(1, ITEMS_PER_PIECE);
    let piece = |p: usize| -> Vec<T> { (p * per..((p + 1) * per).min(count)).map(&work).collect() };
    in_order(count.div_ceil(per), threads, piece, |pieces| {
        consume(&mut pieces.flatten())
    })
}

/// The pieces of [`in_order`] as `consume` takes them; dropped (also when `consume` panics),
/// it stops the workers.
struct InOrder<'s, T> {
    rx: mpsc::Receiver<(usize, T)>,
    waiting: BTreeMap<usize, T>,
    want: usize,
    count: usize,
    window: usize,
    next: &'s AtomicUsize,
    work: &'s (dyn Fn(usize) -> T + Sync),
    joined: &'s (Mutex<usize>, Condvar),
}

impl<T> InOrder<'_, T> {
    /// Takes the next piece nobody took yet, if it is inside the window.
    fn claim(&self) -> Option<usize> {
        let limit = (self.want + self.window).min(self.count);
        self.next
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |i| {
                (i < limit).then_some(i + 1)
            })
            .ok()
    }
}

impl<T> Iterator for InOrder<'_, T> {
    type Item = T;

    fn next(&mut self) -> Option<T> {
        if self.want >= self.count {
            return None;
        }
        loop {
            if let Some(out) = self.waiting.remove(&self.want) {
                self.want += 1;
                let (done, moved) = self.joined;
                let mut done = done.lock().unwrap_or_else(|e| e.into_inner());
                if *done != usize::MAX {
                    *done = self.want;
                }
                moved.notify_all();
                return Some(out);
            }
            // Rather than wait, work on the next piece; else what a worker sends. Every
            // worker gone without the piece wanted: one panicked (the scope passes it on).
            let (i, out) = match self.claim() {
                Some(i) => (i, (self.work)(i)),
                None => self.rx.recv().ok()?,
            };
            self.waiting.insert(i, out);
        }
    }
}

impl<T> Drop for InOrder<'_, T> {
    fn drop(&mut self) {
        let (done, moved) = self.joined;
        *done.lock().unwrap_or_else(|e| e.into_inner()) = usize::MAX;
        moved.notify_all();
    }
}

/// Waits until piece `i` is less than `window` pieces ahead of the join; false when the run
/// stops instead (an error, a failed write, a panic).
fn may_start(joined: &(Mutex<usize>, Condvar), i: usize, window: usize) -> bool {
    let (done, moved) = joined;
    let mut done = done.lock().unwrap_or_else(|e| e.into_inner());
    while *done != usize::MAX && i >= *done + window {
        done = moved.wait(done).unwrap_or_else(|e| e.into_inner());
    }
    *done != usize::MAX
}

/// Stops the other workers when a worker panics (the scope then passes the panic on).
struct StopOnPanic<'s>(&'s (Mutex<usize>, Condvar));

impl Drop for StopOnPanic<'_> {
    fn drop(&mut self) {
        if std::thread::panicking() {
            let (done, moved) = self.0;
            *done.lock().unwrap_or_else(|e| e.into_inner()) = usize::MAX;
            moved.notify_all();
        }
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
    fn items_come_in_order_across_pieces() {
        for threads in [1, 2, 3] {
            for count in [0, 1, 63, 64, 65, 200] {
                let all: Vec<usize> =
                    super::in_order_items(count, threads, |k| k * 3, |items| items.collect());
                assert_eq!(all, (0..count).map(|k| k * 3).collect::<Vec<_>>());
            }
        }
    }

    #[test]
    fn pieces_come_in_order_and_a_consumer_may_stop_early() {
        for threads in [1, 2, 3] {
            let all: Vec<usize> = super::in_order(50, threads, |i| i * 10, |p| p.collect());
            assert_eq!(all, (0..50).map(|i| i * 10).collect::<Vec<_>>());
            // The workers wait at the window, then stop when the consumer is done.
            let first: Vec<usize> = super::in_order(50, threads, |i| i, |p| p.take(3).collect());
            assert_eq!(first, [0, 1, 2]);
        }
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
