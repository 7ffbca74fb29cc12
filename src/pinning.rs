//! The CLI side of pin-image-digests: the lock file, the registry client and `kube-harden lock`.
//! The two passes that keep the core free of I/O are
//! [`process_prefetched`](kube_harden::prefetch::process_prefetched): the registry is asked only
//! what the lock could not answer, all at once.

use std::io::{IsTerminal, Write};
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};

use kube_harden::config::PolicySpec;
use kube_harden::digest::{DigestSource, ImageLock, ResolveError};
use kube_harden::prefetch::{process_prefetched, survey};
use kube_harden::{Options, Output};

/// Environment variable naming the lock file when `--lock` is not given.
pub const LOCK_ENV: &str = "KUBE_HARDEN_LOCK";

/// Flags of the digest rule.
#[derive(clap::Args, Debug, Clone, Default)]
pub struct DigestArgs {
    /// Image lock file (`kind: ImageLock`, written by `kube-harden lock`); default
    /// $KUBE_HARDEN_LOCK.
    #[arg(long, value_name = "FILE")]
    pub lock: Option<PathBuf>,
    /// Never touch the network: digests come from the lock file and the policy only.
    #[arg(long)]
    pub offline: bool,
    /// Ask the registry whether digests already written in the manifests exist.
    #[arg(long)]
    pub verify_digests: bool,
    /// Reach this registry (`host:port`) over plain HTTP; repeatable or comma-separated.
    #[arg(long, value_name = "HOST[:PORT]", value_delimiter = ',')]
    pub insecure_registry: Vec<String>,
    /// One deadline in seconds for all registry traffic of the run, retries included (default
    /// `spec.images.registryTimeoutSeconds`, else 30).
    #[arg(long, value_name = "SECONDS", value_parser = clap::value_parser!(u64).range(1..))]
    pub registry_timeout: Option<u64>,
}

impl DigestArgs {
    /// The lock file to read: `--lock`, else `$KUBE_HARDEN_LOCK`.
    pub fn lock_path(&self) -> Option<PathBuf> {
        self.lock.clone().or_else(|| {
            std::env::var_os(LOCK_ENV)
                .filter(|v| !v.is_empty())
                .map(PathBuf::from)
        })
    }
}

fn load_lock(path: &Path) -> Result<ImageLock> {
    ImageLock::load(path).map_err(|e| anyhow::anyhow!("{e}"))
}

/// The run's lock, read while the input is: [`LockLoad::start`] before reading the input,
/// [`process`] takes it. Natively the lock is parsed on a thread of its own (a lock of 10,000
/// images takes as long to parse as a 26 MB stream takes to arrive through a pipe); on WASM, when
/// it is taken. A lock error is reported after an input error, as when it was read second.
pub struct LockLoad {
    path: Option<PathBuf>,
    #[cfg(not(target_family = "wasm"))]
    thread: Option<std::thread::JoinHandle<Result<ImageLock>>>,
}

impl LockLoad {
    /// Starts reading the lock `args` names (none: an empty lock).
    pub fn start(args: &DigestArgs) -> LockLoad {
        let path = args.lock_path();
        #[cfg(not(target_family = "wasm"))]
        {
            let thread = path.clone().and_then(|path| {
                std::thread::Builder::new()
                    .name("lock".into())
                    .spawn(move || load_lock(&path))
                    .ok()
            });
            LockLoad { path, thread }
        }
        #[cfg(target_family = "wasm")]
        LockLoad { path }
    }

    /// The lock, once read.
    fn take(self) -> Result<ImageLock> {
        #[cfg(not(target_family = "wasm"))]
        if let Some(thread) = self.thread {
            return thread
                .join()
                .unwrap_or_else(|panic| std::panic::resume_unwind(panic));
        }
        match &self.path {
            Some(path) => load_lock(path),
            None => Ok(ImageLock::new()),
        }
    }
}

/// Runs the core with digests from the policy, the lock, then (unless offline) the registry.
pub fn process<'a>(
    input: &'a [u8],
    mut options: Options,
    args: &DigestArgs,
    lock: LockLoad,
) -> Result<Output<'a>> {
    let lock = lock.take()?;
    // The lock's parse freed several times its size; the documents are processed next.
    crate::release_free_memory();
    options.overrides.verify_digests |= args.verify_digests;
    let progress = Progress::new("resolving image digests");
    let remote = |policy: &PolicySpec| {
        if args.offline {
            None
        } else {
            registry(&args.insecure_registry, policy, args.registry_timeout)
        }
    };
    let out = process_prefetched(input, &options, lock, &remote, &|done, total| {
        progress.show(done, total)
    })?;
    progress.finish();
    Ok(out)
}

/// The registry client with the insecure registries of the flags and the policy; `None` in
/// builds without one (WASM).
#[allow(unused_variables)]
fn registry(
    flags: &[String],
    policy: &PolicySpec,
    timeout: Option<u64>,
) -> Option<Box<dyn DigestSource>> {
    #[cfg(not(target_family = "wasm"))]
    {
        Some(Box::new(registry_client(
            flags,
            policy,
            Some(deadline(policy, timeout)),
        )))
    }
    #[cfg(target_family = "wasm")]
    {
        let _ = (flags, policy, timeout);
        None
    }
}

/// The run's registry deadline: `--registry-timeout`, else `spec.images.registryTimeoutSeconds`,
/// else 30 s.
#[cfg(not(target_family = "wasm"))]
fn deadline(policy: &PolicySpec, flag: Option<u64>) -> std::time::Duration {
    let seconds = flag
        .or(policy.images.registry_timeout_seconds)
        .unwrap_or(kube_harden::digest::DEFAULT_DEADLINE_SECONDS);
    std::time::Duration::from_secs(seconds)
}

/// A registry client with the insecure registries of the flags and the policy; `deadline` bounds
/// all of its traffic (`None`: per-request limits only).
#[cfg(not(target_family = "wasm"))]
fn registry_client(
    flags: &[String],
    policy: &PolicySpec,
    deadline: Option<std::time::Duration>,
) -> kube_harden::digest::RegistrySource {
    use kube_harden::digest::{RegistryConfig, RegistrySource};
    let mut config = RegistryConfig {
        insecure_registries: flags.to_vec(),
        deadline,
        ..RegistryConfig::default()
    };
    config
        .insecure_registries
        .extend(policy.images.insecure_registries.iter().cloned());
    if let Some(n) = std::env::var(CONCURRENCY_ENV)
        .ok()
        .and_then(|v| v.parse::<usize>().ok())
        .filter(|n| *n > 0)
    {
        config.concurrency = n;
    }
    RegistrySource::new(config)
}

/// Environment variable capping registry requests in flight (default 16).
#[cfg_attr(target_family = "wasm", allow(dead_code))]
pub const CONCURRENCY_ENV: &str = "KUBE_HARDEN_REGISTRY_CONCURRENCY";

/// A one-line progress counter on stderr, shown only when stderr is a terminal.
struct Progress {
    what: &'static str,
    tty: bool,
    shown: std::sync::atomic::AtomicBool,
}

impl Progress {
    fn new(what: &'static str) -> Self {
        Progress {
            what,
            tty: std::io::stderr().is_terminal(),
            shown: std::sync::atomic::AtomicBool::new(false),
        }
    }

    fn show(&self, done: usize, total: usize) {
        if self.tty {
            self.shown.store(true, std::sync::atomic::Ordering::Relaxed);
            let mut e = std::io::stderr().lock();
            let _ = write!(e, "\r{}: {done}/{total}", self.what);
            let _ = e.flush();
        }
    }

    fn finish(&self) {
        if self.shown.load(std::sync::atomic::Ordering::Relaxed) {
            eprintln!();
        }
    }
}

/// `kube-harden lock`: records the digest of every image the manifests use.
#[derive(clap::Args, Debug)]
pub struct LockArgs {
    /// Manifest files (stdin when none or `-`).
    #[arg(value_name = "FILE")]
    pub files: Vec<PathBuf>,
    /// The lock file to write (updated in place when it exists).
    #[arg(short, long, value_name = "FILE", default_value = "images.lock")]
    pub output: PathBuf,
    /// A HardeningPolicy (or ConfigMap) file: its `images` settings (platform, custom-resource
    /// fields, insecure registries) decide what is recorded.
    #[arg(short, long, value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// Ask the registry again for every image, not only for those the lock does not have yet.
    #[arg(long)]
    pub refresh: bool,
    /// Drop entries for images the manifests no longer use.
    #[arg(long)]
    pub prune: bool,
    /// Record digests only: do not read image configs and layers for image facts.
    #[arg(long)]
    pub no_facts: bool,
    /// One deadline in seconds for resolving the digests, retries included (default
    /// `spec.images.registryTimeoutSeconds`, else 30). Reading image facts afterwards is bounded
    /// per request and per layer instead.
    #[arg(long, value_name = "SECONDS", value_parser = clap::value_parser!(u64).range(1..))]
    pub registry_timeout: Option<u64>,
    /// Reach this registry (`host:port`) over plain HTTP; repeatable or comma-separated.
    #[arg(long, value_name = "HOST[:PORT]", value_delimiter = ',')]
    pub insecure_registry: Vec<String>,
}

/// What `lock` did, for the summary line.
pub struct LockSummary {
    /// Entries in the written lock.
    pub entries: usize,
    /// Entries added.
    pub added: usize,
    /// Entries whose digest changed.
    pub updated: usize,
    /// Entries removed by `--prune`.
    pub removed: usize,
    /// Entries whose image facts were read.
    pub facts: usize,
}

/// Writes or updates the lock file. Nothing is written when an image cannot be resolved.
pub fn lock(input: &[u8], spec: Option<PolicySpec>, args: &LockArgs) -> Result<LockSummary> {
    let existing = if args.output.exists() {
        load_lock(&args.output)?
    } else {
        ImageLock::new()
    };
    let known = if args.refresh {
        ImageLock::new()
    } else {
        existing.clone()
    };
    let mut options = Options {
        spec,
        ..Options::default()
    };
    options.overrides.enable = vec![kube_harden::rules::pin_image_digests::ID.to_string()];
    let (out, recorder) = survey(input, &options, known, true)?;
    let requests = recorder.requests();
    let misses = recorder.misses();
    let answers = if misses.is_empty() {
        Vec::new()
    } else {
        let remote = registry(&args.insecure_registry, &out.policy, args.registry_timeout)
            .ok_or_else(|| {
                anyhow::anyhow!("this build has no registry client: `kube-harden lock` needs one")
            })?;
        let progress = Progress::new("resolving image digests");
        let replies =
            remote.resolve_all_with_progress(&misses, &|done, total| progress.show(done, total));
        progress.finish();
        replies
    };
    let mut lock = existing.clone();
    let mut failed: Vec<ResolveError> = Vec::new();
    let (mut added, mut updated) = (0, 0);
    for (request, reply) in misses.iter().zip(answers) {
        match reply {
            Ok(digest) => match lock.set(&request.0, request.1.as_ref(), &digest) {
                None => added += 1,
                Some(old) if old != digest => updated += 1,
                Some(_) => {}
            },
            Err(e) => failed.push(e),
        }
    }
    if !failed.is_empty() {
        anyhow::bail!(
            "{}nothing written to {}",
            kube_harden::digest::unresolved_report(&failed),
            args.output.display()
        );
    }
    let removed = if args.prune {
        lock.retain_requested(&requests)
    } else {
        0
    };
    let facts = if args.no_facts {
        0
    } else {
        record_facts(&mut lock, &requests, &out.policy, args)?
    };
    if lock != existing || !args.output.exists() {
        lock.save(&args.output)
            .map_err(|e| anyhow::anyhow!("{e}"))
            .with_context(|| format!("writing {}", args.output.display()))?;
    }
    Ok(LockSummary {
        entries: lock.len(),
        added,
        updated,
        removed,
        facts,
    })
}

/// Reads the image facts of every requested entry that has none (every one with `--refresh`)
/// and records them; returns how many entries got facts. An image whose config cannot be read
/// keeps no facts, with a warning: the hardening run then reports it as unknown.
#[cfg(not(target_family = "wasm"))]
fn record_facts(
    lock: &mut ImageLock,
    requests: &[kube_harden::digest::Request],
    spec: &PolicySpec,
    args: &LockArgs,
) -> Result<usize> {
    use kube_harden::config::Policy;
    use kube_harden::digest::{FactsQuestion, Platform};
    let policy = Policy::from_spec(spec.clone()).map_err(|e| anyhow::anyhow!("{e}"))?;
    let default_platform = spec
        .images
        .platform
        .as_deref()
        .and_then(|p| Platform::parse(p).ok());
    // The questions, and the lock entry's own platform for each (where its facts go).
    let mut asked: Vec<FactsQuestion> = Vec::new();
    let mut entry_platforms: Vec<Option<Platform>> = Vec::new();
    for (image, platform) in requests {
        let Some(entry) = lock.get(image, platform.as_ref()) else {
            continue;
        };
        if entry.facts.is_some() && !args.refresh {
            continue;
        }
        if asked
            .iter()
            .zip(&entry_platforms)
            .any(|(q, p)| q.image == entry.image && *p == entry.platform)
        {
            continue;
        }
        let stated = policy.stated_facts(image);
        asked.push(FactsQuestion {
            image: entry.image.clone(),
            digest: entry.digest.clone(),
            platform: entry.platform.clone().or_else(|| default_platform.clone()),
            paths: spec
                .settings::<kube_harden::rules::writable_tmp::Settings>()
                .writable_paths
                .clone(),
            filesystem: stated.is_none_or(|f| f.filesystem.is_none()),
        });
        entry_platforms.push(entry.platform.clone());
    }
    if asked.is_empty() {
        return Ok(0);
    }
    let remote = registry_client(&args.insecure_registry, spec, None);
    let progress = Progress::new("reading image facts");
    let answers = remote.image_facts_all(&asked, policy.layer_budget(), &|done, total| {
        progress.show(done, total)
    });
    progress.finish();
    let mut recorded = 0;
    for ((q, platform), answer) in asked.iter().zip(&entry_platforms).zip(answers) {
        match answer {
            Ok(facts) => {
                for unknown in &facts.unknown {
                    eprintln!("kube-harden: {}: {unknown}", q.image);
                }
                if lock.set_facts(&q.image, platform.as_ref(), Some(facts)) {
                    recorded += 1;
                }
            }
            Err(e) => eprintln!("kube-harden: {}: image facts not recorded: {e}", q.image),
        }
    }
    Ok(recorded)
}

#[cfg(target_family = "wasm")]
fn record_facts(
    _lock: &mut ImageLock,
    _requests: &[kube_harden::digest::Request],
    _spec: &PolicySpec,
    _args: &LockArgs,
) -> Result<usize> {
    Ok(0)
}
