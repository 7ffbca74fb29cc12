//! One run of the core in which every digest question reaches the slow source (the registry)
//! at once: a first pass asks only the lock (through a [`Recorder`]), the questions it could not
//! answer go to the remote source in one batch (its `resolve_all` brings the concurrency), and a
//! second pass runs with the answers. With everything in the lock there is one pass only.
//!
//! It sits above both `engine` and `digest` (it runs the one and asks the other), so neither
//! depends on the other both ways.

use std::sync::Arc;

use crate::config::{DigestHandle, PolicySpec};
use crate::digest::{Answers, ChainSource, DigestSource, ImageLock, LockSource, Recorder};
use crate::engine::{process_bytes, Options, Output};
use crate::error::Error;

/// Builds the remote source once the settings in effect are known (a ResourceList's
/// functionConfig may name insecure registries); `None` when there is none (offline).
pub type RemoteFactory<'f> = &'f dyn Fn(&PolicySpec) -> Option<Box<dyn DigestSource>>;

/// A first pass over `input` that asks only `lock`: its output, and the [`Recorder`] holding the
/// questions the lock could not answer (with `record_all`, every question as well, as
/// `kube-harden lock` needs to prune).
pub fn survey<'a>(
    input: &'a [u8],
    options: &Options,
    lock: ImageLock,
    record_all: bool,
) -> Result<(Output<'a>, Arc<Recorder<LockSource>>), Error> {
    let source = LockSource::new(lock);
    let recorder = Arc::new(if record_all {
        Recorder::recording_all(source)
    } else {
        Recorder::new(source)
    });
    let mut options = options.clone();
    options.overrides.digests = Some(DigestHandle(recorder.clone()));
    Ok((process_bytes(input, &options)?, recorder))
}

/// Processes `input` with digests from the policy, then `lock`, then the remote source.
/// `progress(done, total)` reports the remote questions as they finish.
pub fn process_prefetched<'a>(
    input: &'a [u8],
    options: &Options,
    lock: ImageLock,
    remote: RemoteFactory<'_>,
    progress: &(dyn Fn(usize, usize) + Sync),
) -> Result<Output<'a>, Error> {
    let (first, recorder) = survey(input, options, lock, false)?;
    let misses = recorder.misses();
    let exists = recorder.exists_misses();
    if misses.is_empty() && exists.is_empty() {
        return Ok(first);
    }
    let Some(remote) = remote(&first.policy) else {
        return Ok(first);
    };
    drop(first);
    let total = misses.len() + exists.len();
    let mut answers = Answers::default();
    let replies = remote.resolve_all_with_progress(&misses, &|done, _| progress(done, total));
    for (request, reply) in misses.iter().zip(replies) {
        answers.insert_resolved(request, reply);
    }
    let base = misses.len();
    let replies = remote.exists_all(&exists, &|done, _| progress(base + done, total));
    for ((image, digest), reply) in exists.iter().zip(replies) {
        answers.insert_exists(image, digest, reply);
    }
    // The first pass is over, so the recorder is ours alone: its lock (and the lock's index)
    // serves the second pass as it is.
    let lock = Arc::try_unwrap(recorder).map_or_else(
        |shared| LockSource::new(shared.inner().lock().clone()),
        Recorder::into_inner,
    );
    let mut options = options.clone();
    options.overrides.digests = Some(DigestHandle(Arc::new(ChainSource::new(lock, answers))));
    process_bytes(input, &options)
}
