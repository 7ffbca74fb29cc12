//! Image digests: the reference model, the lock file, and (feature `registry`) the OCI
//! distribution client that turns `nginx:1.27` into `sha256:…`.
//!
//! The core reaches registries only through the [`DigestSource`] trait, which has no network
//! types in it. Three sources implement it:
//!
//! - [`LockSource`] — an [`ImageLock`] (the `kind: ImageLock` YAML file): offline, and the only
//!   source in WASM builds and under `--offline`;
//! - `RegistrySource` (feature `registry`, on for the CLI) — OCI distribution v2 over HTTPS
//!   with auth, retries, timeouts, bounded concurrency and a per-run cache;
//! - [`ChainSource`] — asks a first source (the lock) and falls back to a second (the registry)
//!   only for what the first does not know.
//!
//! A rule pinning images would do, per run:
//!
//! ```
//! use kube_harden::digest::{ChainSource, DigestSource, ImageLock, ImageRef, LockSource, Platform};
//!
//! let lock = ImageLock::from_yaml_str(
//!     "apiVersion: kube-harden.dev/v1alpha1\nkind: ImageLock\nimages:\n\
//!      - image: nginx:1.27\n  digest: sha256:0000000000000000000000000000000000000000000000000000000000000000\n",
//! ).unwrap();
//! let source = LockSource::new(lock); // or ChainSource::new(LockSource::new(lock), registry)
//! let image = ImageRef::parse("nginx:1.27").unwrap();
//! let requests = vec![(image.clone(), None::<Platform>)];
//! let results = source.resolve_all(&requests);
//! let digest = results[0].as_ref().unwrap();
//! assert_eq!(image.with_digest(digest), format!("nginx:1.27@{digest}"));
//! ```
//!
//! Errors ([`ResolveError`]) name the image and the registry, never credentials, and carry a
//! [`ResolveError::hint`] on how to fix them (lock file, credentials, `--offline`).

mod lock;
mod reference;
mod session;

#[cfg(all(feature = "registry", not(target_family = "wasm")))]
pub mod auth;
#[cfg(all(feature = "registry", not(target_family = "wasm")))]
pub mod registry;

pub use lock::{
    ImageLock, LockEntry, LockError, LockSource, LOCK_API_VERSION, LOCK_API_VERSION_FACTS,
    LOCK_KIND,
};
pub use reference::{
    is_sha256_digest, ImageRef, ReferenceError, DEFAULT_TAG, DOCKER_HUB, DOCKER_HUB_API_HOST,
};
#[cfg(all(feature = "registry", not(target_family = "wasm")))]
pub use registry::{
    FactsQuestion, RegistryConfig, RegistrySource, DEFAULT_DEADLINE_SECONDS, DEFAULT_PLATFORM,
};
pub use session::{Answers, Recorder};

use std::fmt;
use std::time::Duration;

/// A platform to pin inside a multi-arch index: `linux/amd64`, `linux/arm64/v8`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Platform {
    /// Operating system (`linux`, `windows`).
    pub os: String,
    /// CPU architecture as OCI spells it (`amd64`, `arm64`, `arm`, `s390x`).
    pub architecture: String,
    /// Variant (`v7`, `v8`), if any.
    pub variant: Option<String>,
}

impl Platform {
    /// Parses `os/arch[/variant]` (lowercase letters, digits, `_`, `.`, `-`).
    pub fn parse(text: &str) -> Result<Platform, String> {
        let parts: Vec<&str> = text.split('/').collect();
        let ok = |p: &str| {
            !p.is_empty()
                && p.bytes().all(|b| {
                    b.is_ascii_lowercase() || b.is_ascii_digit() || matches!(b, b'_' | b'.' | b'-')
                })
        };
        if !(2..=3).contains(&parts.len()) || !parts.iter().all(|p| ok(p)) {
            return Err(format!(
                "invalid platform {text:?}: expected os/architecture[/variant], e.g. linux/amd64"
            ));
        }
        Ok(Platform {
            os: parts[0].to_string(),
            architecture: parts[1].to_string(),
            variant: parts.get(2).map(|v| v.to_string()),
        })
    }

    /// Whether an index entry's platform (`os`, `architecture`, `variant`) satisfies this
    /// request. An unset variant accepts any variant; `arm64` treats `v8` and no variant alike.
    pub fn matches(&self, os: &str, architecture: &str, variant: Option<&str>) -> bool {
        if self.os != os || self.architecture != architecture {
            return false;
        }
        let norm = |v: Option<&str>| -> Option<String> {
            match (architecture, v) {
                ("arm64", Some("v8")) | ("arm64", None) => None,
                (_, v) => v.map(str::to_string),
            }
        };
        match &self.variant {
            None => true,
            Some(want) => norm(Some(want)) == norm(variant),
        }
    }
}

impl fmt::Display for Platform {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.os, self.architecture)?;
        if let Some(v) = &self.variant {
            write!(f, "/{v}")?;
        }
        Ok(())
    }
}

impl std::str::FromStr for Platform {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Platform::parse(s)
    }
}

/// Why a digest could not be found. Messages name the image (as written) and registry host;
/// they never contain credentials, tokens or authorization headers.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ResolveError {
    /// The registry has no such repository, tag or digest (HTTP 404).
    #[error("{image}: not found at {registry}{}", detail_suffix(detail))]
    NotFound {
        /// Image as written.
        image: String,
        /// Registry API host.
        registry: String,
        /// Extra words from the registry, if any.
        detail: String,
    },
    /// The registry refused the credentials, or needs some and none were found (HTTP 401/403).
    #[error("{image}: access denied by {registry}{}", detail_suffix(detail))]
    Unauthorized {
        /// Image as written.
        image: String,
        /// Registry API host.
        registry: String,
        /// What was tried (never the secret itself).
        detail: String,
    },
    /// No answer in time (after the configured retries).
    #[error("{image}: {registry} did not answer within {:.1}s (after {attempts} attempt(s))", after.as_secs_f64())]
    Timeout {
        /// Image as written.
        image: String,
        /// Registry API host.
        registry: String,
        /// The per-request time limit.
        after: Duration,
        /// How many requests were made.
        attempts: u32,
    },
    /// Connection, TLS or I/O failure, or the registry kept answering 429/5xx.
    #[error("{image}: cannot reach {registry}: {detail}")]
    Network {
        /// Image as written.
        image: String,
        /// Registry API host.
        registry: String,
        /// What failed.
        detail: String,
    },
    /// The registry answered something that breaks the distribution protocol (bad digest
    /// header, a body whose sha256 differs from `Docker-Content-Digest`, unparsable manifest).
    #[error("{image}: unexpected answer from {registry}: {detail}")]
    Protocol {
        /// Image as written.
        image: String,
        /// Registry API host.
        registry: String,
        /// What was wrong.
        detail: String,
    },
    /// A platform was asked for and the image has no manifest for it.
    #[error("{image}: no manifest for platform {platform} (available: {})", if available.is_empty() { "none listed".to_string() } else { available.join(", ") })]
    PlatformNotFound {
        /// Image as written.
        image: String,
        /// The platform asked for.
        platform: String,
        /// The platforms the index lists.
        available: Vec<String>,
    },
    /// Not in the lock file, and no other source may be asked (`--offline`, WASM).
    #[error("{image}: not in the lock file{}", platform.as_ref().map(|p| format!(" for platform {p}")).unwrap_or_default())]
    NotInLock {
        /// Image as written.
        image: String,
        /// The platform asked for, if any.
        platform: Option<String>,
    },
    /// The question needs the network and the source is offline (e.g. `exists` on a lock).
    #[error("{image}: cannot check {what} offline")]
    Offline {
        /// Image as written.
        image: String,
        /// What could not be checked.
        what: String,
    },
    /// The manifest's image field holds no valid image reference (a placeholder, an unset chart
    /// value).
    #[error("{image}: not a valid image reference: {detail}")]
    BadReference {
        /// The field's text.
        image: String,
        /// What is wrong.
        detail: String,
    },
    /// The image string is not a valid reference, or plain HTTP was needed but not allowed.
    #[error("{image}: {detail}")]
    Invalid {
        /// Image as written.
        image: String,
        /// What is wrong.
        detail: String,
    },
}

fn detail_suffix(detail: &str) -> String {
    if detail.is_empty() {
        String::new()
    } else {
        format!(" ({detail})")
    }
}

impl ResolveError {
    /// One line on how to fix this kind of failure, for the "unresolved images" report.
    pub fn hint(&self) -> &'static str {
        match self {
            ResolveError::NotFound { .. } => {
                "check the image name and tag, or add the digest to the lock file (kube-harden lock)"
            }
            ResolveError::Unauthorized { .. } => {
                "log in (docker login / $DOCKER_CONFIG) or set KUBE_HARDEN_REGISTRY_<HOST>_USERNAME and _PASSWORD, or pin it in the lock file"
            }
            ResolveError::Timeout { .. } => {
                "check network access to the registry (the run's registry deadline is spec.images.registryTimeoutSeconds or --registry-timeout, default 30 s), or resolve it where the registry is reachable with `kube-harden lock` and pass --lock (use --offline to never touch the network)"
            }
            ResolveError::Network { .. } => {
                "check network access to the registry, or resolve it where the registry is reachable with `kube-harden lock` and pass --lock (use --offline to never touch the network)"
            }
            ResolveError::Protocol { .. } => {
                "the registry answered inconsistently; retry, or pin the digest in the lock file"
            }
            ResolveError::PlatformNotFound { .. } => {
                "pick a platform the image provides in the policy, or drop `platform` to pin the index"
            }
            ResolveError::NotInLock { .. } | ResolveError::Offline { .. } => {
                "run `kube-harden lock` where the registry is reachable and pass the file with --lock, or drop --offline"
            }
            ResolveError::BadReference { .. } => {
                "fix the image (often a chart value left unset), or opt the container out with the annotation kube-harden.dev/skip.<container>: pin-image-digests"
            }
            ResolveError::Invalid { .. } => {
                "fix the image reference, or list the registry with --insecure-registry if it only speaks plain HTTP"
            }
        }
    }

    /// True when the failure is "the source does not know this image" (so a chained source may
    /// ask the next one), as opposed to a real error from a source that was asked.
    pub fn is_unknown(&self) -> bool {
        matches!(
            self,
            ResolveError::NotInLock { .. } | ResolveError::Offline { .. }
        )
    }
}

/// The fail-closed report for images that could not be pinned: one line per image with the
/// reason, then one line per distinct fix. Holds no credentials (errors never do).
///
/// ```
/// use kube_harden::digest::{unresolved_report, ResolveError};
/// let e = ResolveError::NotInLock { image: "nginx:1.27".into(), platform: None };
/// let text = unresolved_report(&[e]);
/// assert!(text.starts_with("1 image could not be pinned to a digest:\n  - nginx:1.27: not in the lock file\n"));
/// ```
pub fn unresolved_report(errors: &[ResolveError]) -> String {
    let mut out = format!(
        "{} image{} could not be pinned to a digest:\n",
        errors.len(),
        if errors.len() == 1 { "" } else { "s" }
    );
    let mut hints: Vec<&str> = Vec::new();
    for e in errors {
        out.push_str(&format!("  - {e}\n"));
        if !hints.contains(&e.hint()) {
            hints.push(e.hint());
        }
    }
    out.push_str("How to fix:\n");
    for h in hints {
        out.push_str(&format!("  - {h}\n"));
    }
    out
}

/// One resolution request: an image and, for multi-arch images, the platform to pin (`None`
/// pins the index itself).
pub type Request = (ImageRef, Option<Platform>);

/// Where digests come from. Implementations must be usable from many threads.
pub trait DigestSource: Send + Sync {
    /// The digest (`sha256:<64 hex>`) of `image`'s tag (its effective tag; any digest in `image`
    /// is ignored): the index (or single manifest) digest when `platform` is `None`, else the
    /// digest of that platform's manifest inside the index.
    fn resolve(
        &self,
        image: &ImageRef,
        platform: Option<&Platform>,
    ) -> Result<String, ResolveError>;

    /// Whether `image`'s repository has a manifest with `digest` (for `--verify-digests`).
    /// `Ok(false)` means the registry said "no such manifest".
    fn exists(&self, image: &ImageRef, digest: &str) -> Result<bool, ResolveError>;

    /// Resolves many requests; results are in request order. The default asks one by one and
    /// reports progress; network sources override it with bounded concurrency and de-duplication.
    /// `progress(done, total)` is called after each request finishes (from any thread).
    fn resolve_all_with_progress(
        &self,
        requests: &[Request],
        progress: &(dyn Fn(usize, usize) + Sync),
    ) -> Vec<Result<String, ResolveError>> {
        one_by_one(requests, progress, |(image, platform)| {
            self.resolve(image, platform.as_ref())
        })
    }

    /// Answers many `exists` questions; results in question order. The default asks one by
    /// one; network sources override it with bounded concurrency.
    fn exists_all(
        &self,
        questions: &[(ImageRef, String)],
        progress: &(dyn Fn(usize, usize) + Sync),
    ) -> Vec<Result<bool, ResolveError>> {
        one_by_one(questions, progress, |(image, digest)| {
            self.exists(image, digest)
        })
    }

    /// What is known about the image (`image`'s digest if it has one, else its tag for
    /// `platform`): the lock's recorded facts. `None` when this source knows nothing.
    fn facts(
        &self,
        _image: &ImageRef,
        _platform: Option<&Platform>,
    ) -> Option<std::sync::Arc<crate::facts::ImageFacts>> {
        None
    }

    /// [`DigestSource::resolve_all_with_progress`] without progress reports.
    fn resolve_all(&self, requests: &[Request]) -> Vec<Result<String, ResolveError>> {
        self.resolve_all_with_progress(requests, &|_, _| {})
    }
}

/// Asks `ask` each question in turn, reporting `progress(done, total)` after each: the
/// sequential counterpart of the registry client's concurrent fan-out.
fn one_by_one<Q, R>(
    questions: &[Q],
    progress: &(dyn Fn(usize, usize) + Sync),
    ask: impl Fn(&Q) -> R,
) -> Vec<R> {
    let total = questions.len();
    questions
        .iter()
        .enumerate()
        .map(|(i, q)| {
            let r = ask(q);
            progress(i + 1, total);
            r
        })
        .collect()
}

impl<T: DigestSource + ?Sized> DigestSource for Box<T> {
    fn resolve(
        &self,
        image: &ImageRef,
        platform: Option<&Platform>,
    ) -> Result<String, ResolveError> {
        (**self).resolve(image, platform)
    }
    fn exists(&self, image: &ImageRef, digest: &str) -> Result<bool, ResolveError> {
        (**self).exists(image, digest)
    }
    fn facts(
        &self,
        image: &ImageRef,
        platform: Option<&Platform>,
    ) -> Option<std::sync::Arc<crate::facts::ImageFacts>> {
        (**self).facts(image, platform)
    }
    fn resolve_all_with_progress(
        &self,
        requests: &[Request],
        progress: &(dyn Fn(usize, usize) + Sync),
    ) -> Vec<Result<String, ResolveError>> {
        (**self).resolve_all_with_progress(requests, progress)
    }
    fn exists_all(
        &self,
        questions: &[(ImageRef, String)],
        progress: &(dyn Fn(usize, usize) + Sync),
    ) -> Vec<Result<bool, ResolveError>> {
        (**self).exists_all(questions, progress)
    }
}

/// Asks `first` (typically a [`LockSource`]) and falls back to `second` (typically the
/// registry) for requests `first` does not know ([`ResolveError::is_unknown`]). `exists` goes
/// to `second` (verifying a digest means asking the registry), unless `first` can answer.
pub struct ChainSource<A, B> {
    first: A,
    second: B,
}

impl<A: DigestSource, B: DigestSource> ChainSource<A, B> {
    /// Chains two sources.
    pub fn new(first: A, second: B) -> Self {
        ChainSource { first, second }
    }

    /// The first source.
    pub fn first(&self) -> &A {
        &self.first
    }

    /// The fallback source.
    pub fn second(&self) -> &B {
        &self.second
    }
}

impl<A: DigestSource, B: DigestSource> DigestSource for ChainSource<A, B> {
    fn resolve(
        &self,
        image: &ImageRef,
        platform: Option<&Platform>,
    ) -> Result<String, ResolveError> {
        match self.first.resolve(image, platform) {
            Err(e) if e.is_unknown() => self.second.resolve(image, platform),
            other => other,
        }
    }

    fn exists(&self, image: &ImageRef, digest: &str) -> Result<bool, ResolveError> {
        match self.second.exists(image, digest) {
            Err(e) if e.is_unknown() => self.first.exists(image, digest),
            other => other,
        }
    }

    fn facts(
        &self,
        image: &ImageRef,
        platform: Option<&Platform>,
    ) -> Option<std::sync::Arc<crate::facts::ImageFacts>> {
        self.first
            .facts(image, platform)
            .or_else(|| self.second.facts(image, platform))
    }

    fn resolve_all_with_progress(
        &self,
        requests: &[Request],
        progress: &(dyn Fn(usize, usize) + Sync),
    ) -> Vec<Result<String, ResolveError>> {
        let total = requests.len();
        let mut results = self.first.resolve_all(requests);
        let misses: Vec<usize> = (0..total)
            .filter(|&i| matches!(&results[i], Err(e) if e.is_unknown()))
            .collect();
        let hits = total - misses.len();
        if hits > 0 {
            progress(hits, total);
        }
        if misses.is_empty() {
            return results;
        }
        let rest: Vec<Request> = misses.iter().map(|&i| requests[i].clone()).collect();
        let answered = self
            .second
            .resolve_all_with_progress(&rest, &|done, _| progress(hits + done, total));
        for (i, r) in misses.into_iter().zip(answered) {
            results[i] = r;
        }
        results
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn platform_parse_and_match() {
        let p = Platform::parse("linux/arm64/v8").unwrap();
        assert_eq!(p.variant.as_deref(), Some("v8"));
        assert_eq!(p.to_string(), "linux/arm64/v8");
        assert!(p.matches("linux", "arm64", None));
        assert!(p.matches("linux", "arm64", Some("v8")));
        let p = Platform::parse("linux/amd64").unwrap();
        assert!(p.matches("linux", "amd64", None));
        assert!(!p.matches("linux", "arm64", None));
        let arm7 = Platform::parse("linux/arm/v7").unwrap();
        assert!(!arm7.matches("linux", "arm", Some("v6")));
        assert!(Platform::parse("linux").is_err());
        assert!(Platform::parse("linux/amd64/v1/x").is_err());
        assert!(Platform::parse("Linux/amd64").is_err());
        assert!(Platform::parse("linux//v7").is_err());
    }

    struct Fixed(&'static str);
    impl DigestSource for Fixed {
        fn resolve(&self, _: &ImageRef, _: Option<&Platform>) -> Result<String, ResolveError> {
            Ok(self.0.to_string())
        }
        fn exists(&self, _: &ImageRef, d: &str) -> Result<bool, ResolveError> {
            Ok(d == self.0)
        }
    }

    #[test]
    fn chain_falls_back_only_for_unknown() {
        let digest = format!("sha256:{}", "1".repeat(64));
        let lock = ImageLock::from_yaml_str(&format!(
            "apiVersion: kube-harden.dev/v1alpha1\nkind: ImageLock\nimages:\n- image: a:1\n  digest: {digest}\n"
        ))
        .unwrap();
        let other = format!("sha256:{}", "2".repeat(64));
        let leaked: &'static str = Box::leak(other.clone().into_boxed_str());
        let chain = ChainSource::new(LockSource::new(lock), Fixed(leaked));
        let reqs = vec![
            (ImageRef::parse("a:1").unwrap(), None),
            (ImageRef::parse("b:1").unwrap(), None),
            (ImageRef::parse("docker.io/library/a:1").unwrap(), None),
        ];
        let seen = std::sync::Mutex::new(Vec::new());
        let out = chain.resolve_all_with_progress(&reqs, &|d, t| seen.lock().unwrap().push((d, t)));
        assert_eq!(out[0].as_deref().unwrap(), digest);
        assert_eq!(out[1].as_deref().unwrap(), other);
        assert_eq!(out[2].as_deref().unwrap(), digest);
        assert_eq!(seen.lock().unwrap().last(), Some(&(3, 3)));
        assert!(chain.exists(&reqs[1].0, &other).unwrap());
    }

    #[test]
    fn errors_have_hints() {
        let e = ResolveError::NotInLock {
            image: "a:1".into(),
            platform: Some("linux/amd64".into()),
        };
        assert_eq!(
            e.to_string(),
            "a:1: not in the lock file for platform linux/amd64"
        );
        assert!(e.hint().contains("kube-harden lock"));
        assert!(e.is_unknown());
    }
}
