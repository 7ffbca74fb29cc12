//! Sources that let one run ask its digest questions synchronously while the network work
//! happens before it, all at once: a [`Recorder`] notes every question its inner source could
//! not answer, the caller resolves those concurrently (e.g. `RegistrySource::resolve_all`), and
//! an [`Answers`] serves the replies to the second run.
//!
//! ```
//! use kube_harden::digest::{Answers, DigestSource, ImageRef, LockSource, Recorder};
//!
//! let recorder = Recorder::new(LockSource::default());
//! let image = ImageRef::parse("nginx:1.27").unwrap();
//! assert!(recorder.resolve(&image, None).is_err()); // not in the (empty) lock
//! assert_eq!(recorder.misses().len(), 1);
//!
//! let mut answers = Answers::default();
//! let digest = format!("sha256:{}", "a".repeat(64));
//! answers.insert_resolved(&recorder.misses()[0], Ok(digest.clone()));
//! assert_eq!(answers.resolve(&image, None).unwrap(), digest);
//! ```

use std::collections::{HashMap, HashSet};
use std::sync::Mutex;

use super::{DigestSource, ImageRef, Platform, Request, ResolveError};

/// Replies gathered ahead of a run, served without I/O. Questions it has no reply for are
/// "unknown" ([`ResolveError::is_unknown`]), so it chains like a lock.
#[derive(Debug, Default)]
pub struct Answers {
    resolved: HashMap<(String, Option<Platform>), Result<String, ResolveError>>,
    exists: HashMap<(String, String), Result<bool, ResolveError>>,
}

impl Answers {
    /// Records the reply to a resolve request.
    pub fn insert_resolved(&mut self, request: &Request, reply: Result<String, ResolveError>) {
        self.resolved
            .insert((request.0.normalized_tag(), request.1.clone()), reply);
    }

    /// Records the reply to "does `image`'s repository have `digest`".
    pub fn insert_exists(
        &mut self,
        image: &ImageRef,
        digest: &str,
        reply: Result<bool, ResolveError>,
    ) {
        self.exists
            .insert((image.name(), digest.to_string()), reply);
    }

    /// Number of replies held.
    pub fn len(&self) -> usize {
        self.resolved.len() + self.exists.len()
    }

    /// True when it holds no reply.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

impl DigestSource for Answers {
    fn resolve(
        &self,
        image: &ImageRef,
        platform: Option<&Platform>,
    ) -> Result<String, ResolveError> {
        match self
            .resolved
            .get(&(image.normalized_tag(), platform.cloned()))
        {
            Some(reply) => reply.clone(),
            None => Err(ResolveError::NotInLock {
                image: image.to_string(),
                platform: platform.map(Platform::to_string),
            }),
        }
    }

    fn exists(&self, image: &ImageRef, digest: &str) -> Result<bool, ResolveError> {
        match self.exists.get(&(image.name(), digest.to_string())) {
            Some(reply) => reply.clone(),
            None => Err(ResolveError::Offline {
                image: image.to_string(),
                what: format!("whether {digest} exists"),
            }),
        }
    }
}

/// Wraps a source and records the questions it could not answer (with
/// [`Recorder::recording_all`], every question), each distinct question once, in the order first
/// asked.
#[derive(Debug, Default)]
pub struct Recorder<S> {
    inner: S,
    log: Mutex<Log>,
}

#[derive(Debug, Default)]
struct Log {
    /// Also record questions the source answered (`asked`).
    all: bool,
    seen: HashSet<(String, Option<Platform>)>,
    asked: Vec<Request>,
    misses: Vec<Request>,
    seen_exists: HashSet<(String, String)>,
    exists_misses: Vec<(ImageRef, String)>,
}

impl<S: DigestSource> Recorder<S> {
    /// Wraps `inner`, recording what it could not answer.
    pub fn new(inner: S) -> Self {
        Recorder {
            inner,
            log: Mutex::new(Log::default()),
        }
    }

    /// Wraps `inner`, recording every question as well ([`Recorder::requests`]).
    pub fn recording_all(inner: S) -> Self {
        Recorder {
            inner,
            log: Mutex::new(Log {
                all: true,
                ..Log::default()
            }),
        }
    }

    /// The wrapped source.
    pub fn inner(&self) -> &S {
        &self.inner
    }

    /// The wrapped source, the recording dropped.
    pub fn into_inner(self) -> S {
        self.inner
    }

    /// Every distinct resolve request, answered or not (empty unless made with
    /// [`Recorder::recording_all`]).
    pub fn requests(&self) -> Vec<Request> {
        self.lock().asked.clone()
    }

    /// The resolve requests the inner source did not know.
    pub fn misses(&self) -> Vec<Request> {
        self.lock().misses.clone()
    }

    /// The `exists` questions the inner source could not answer.
    pub fn exists_misses(&self) -> Vec<(ImageRef, String)> {
        self.lock().exists_misses.clone()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Log> {
        self.log.lock().unwrap_or_else(|p| p.into_inner())
    }
}

impl<S: DigestSource> DigestSource for Recorder<S> {
    fn resolve(
        &self,
        image: &ImageRef,
        platform: Option<&Platform>,
    ) -> Result<String, ResolveError> {
        let reply = self.inner.resolve(image, platform);
        let miss = matches!(&reply, Err(e) if e.is_unknown());
        let mut log = self.lock();
        // Answered questions are not kept unless asked for: a 10,000-image lock would otherwise
        // be copied once more for nothing.
        if (miss || log.all) && log.seen.insert((image.normalized_tag(), platform.cloned())) {
            let request = (image.tag_only(), platform.cloned());
            if miss {
                log.misses.push(request.clone());
            }
            if log.all {
                log.asked.push(request);
            }
        }
        reply
    }

    fn facts(
        &self,
        image: &ImageRef,
        platform: Option<&Platform>,
    ) -> Option<std::sync::Arc<crate::facts::ImageFacts>> {
        self.inner.facts(image, platform)
    }

    fn exists(&self, image: &ImageRef, digest: &str) -> Result<bool, ResolveError> {
        let reply = self.inner.exists(image, digest);
        if matches!(&reply, Err(e) if e.is_unknown()) {
            let mut log = self.lock();
            if log.seen_exists.insert((image.name(), digest.to_string())) {
                log.exists_misses.push((image.clone(), digest.to_string()));
            }
        }
        reply
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::digest::{ChainSource, ImageLock, LockSource};

    fn d(c: char) -> String {
        format!("sha256:{}", c.to_string().repeat(64))
    }

    #[test]
    fn records_each_question_once_and_separates_misses() {
        let mut lock = ImageLock::new();
        let known = ImageRef::parse("nginx:1.27").unwrap();
        lock.set(&known, None, &d('a'));
        let rec = Recorder::recording_all(LockSource::new(lock));
        let other = ImageRef::parse("docker.io/library/redis:7").unwrap();
        let same_other = ImageRef::parse("redis:7").unwrap();
        assert_eq!(rec.resolve(&known, None).unwrap(), d('a'));
        assert!(rec.resolve(&other, None).is_err());
        assert!(rec.resolve(&same_other, None).is_err());
        assert_eq!(rec.requests().len(), 2);
        assert_eq!(rec.misses(), vec![(other.clone(), None)]);
        assert!(rec.exists(&other, &d('b')).is_err());
        assert!(rec.exists(&same_other, &d('b')).is_err());
        assert_eq!(rec.exists_misses().len(), 1);
        assert!(rec.exists(&known, &d('a')).unwrap());
        assert_eq!(rec.exists_misses().len(), 1);
        // By default only the misses are kept.
        let lean = Recorder::new(LockSource::new(ImageLock::new()));
        assert!(lean.resolve(&known, None).is_err());
        assert!(lean.resolve(&other, None).is_err());
        assert!(lean.resolve(&same_other, None).is_err());
        assert!(lean.requests().is_empty());
        assert_eq!(lean.misses().len(), 2);
    }

    #[test]
    fn answers_serve_registry_replies_and_errors() {
        let image = ImageRef::parse("ghcr.io/o/app:v1").unwrap();
        let mut answers = Answers::default();
        answers.insert_resolved(&(image.clone(), None), Ok(d('c')));
        let amd = Platform::parse("linux/amd64").unwrap();
        let gone = ResolveError::NotFound {
            image: image.to_string(),
            registry: "ghcr.io".into(),
            detail: String::new(),
        };
        answers.insert_resolved(&(image.clone(), Some(amd.clone())), Err(gone.clone()));
        answers.insert_exists(&image, &d('e'), Ok(false));
        let chain = ChainSource::new(LockSource::default(), answers);
        assert_eq!(chain.resolve(&image, None).unwrap(), d('c'));
        assert_eq!(chain.resolve(&image, Some(&amd)).unwrap_err(), gone);
        assert!(!chain.exists(&image, &d('e')).unwrap());
        let unknown = ImageRef::parse("quay.io/x/y:1").unwrap();
        assert!(chain.resolve(&unknown, None).unwrap_err().is_unknown());
    }
}
