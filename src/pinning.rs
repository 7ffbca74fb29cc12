//! The CLI side of pin-image-digests: the lock file, the registry, and the two passes that keep
//! the core free of I/O. The first pass runs with the lock behind a [`Recorder`]; whatever the
//! lock could not answer is then resolved from the registry all at once (bounded concurrency, each
//! image once), and a second pass runs with those answers. With everything in the lock (or
//! `--offline`) there is only one pass.

use std::io::{IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::{Context, Result};

use kube_harden::config::{DigestHandle, PolicySpec};
use kube_harden::digest::{
    Answers, ChainSource, ImageLock, ImageRef, LockSource, Recorder, Request, ResolveError,
};
use kube_harden::{engine, Options, Output};

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

/// Runs the core with digests from the policy, the lock, then (unless offline) the registry.
pub fn process<'a>(
    input: &'a [u8],
    mut options: Options,
    args: &DigestArgs,
    log: &dyn Fn(&str),
) -> Result<Output<'a>> {
    let lock = match args.lock_path() {
        Some(path) => load_lock(&path)?,
        None => ImageLock::new(),
    };
    options.overrides.verify_digests |= args.verify_digests;
    let recorder = Arc::new(Recorder::new(LockSource::new(lock)));
    options.overrides.digests = Some(DigestHandle(recorder.clone()));
    let first = engine::process_bytes(input, &options)?;
    let misses = recorder.misses();
    let exists = recorder.exists_misses();
    if args.offline || (misses.is_empty() && exists.is_empty()) {
        return Ok(first);
    }
    let Some(answers) = ask_registry(&misses, &exists, &first.policy, args, log) else {
        return Ok(first);
    };
    let lock = recorder.inner().lock().clone();
    options.overrides.digests = Some(DigestHandle(Arc::new(ChainSource::new(
        LockSource::new(lock),
        answers,
    ))));
    drop(first);
    Ok(engine::process_bytes(input, &options)?)
}

/// Resolves `misses` and checks `exists` at the registries, concurrently. `None` when this
/// build has no registry client (WASM).
#[allow(unused_variables)]
fn ask_registry(
    misses: &[Request],
    exists: &[(ImageRef, String)],
    policy: &PolicySpec,
    args: &DigestArgs,
    log: &dyn Fn(&str),
) -> Option<Answers> {
    #[cfg(not(target_family = "wasm"))]
    {
        use kube_harden::digest::{DigestSource, RegistryConfig, RegistrySource};
        let mut config = RegistryConfig::default();
        config.insecure_registries = args.insecure_registry.clone();
        config
            .insecure_registries
            .extend(policy.images.insecure_registries.iter().cloned());
        let registry = RegistrySource::new(config);
        let mut answers = Answers::default();
        let progress = Progress::new("resolving image digests", misses.len() + exists.len());
        let replies = registry.resolve_all_with_progress(misses, &|done, _| progress.show(done));
        for (request, reply) in misses.iter().zip(replies) {
            answers.insert_resolved(request, reply);
        }
        let base = misses.len();
        let done = std::sync::atomic::AtomicUsize::new(0);
        let next = std::sync::atomic::AtomicUsize::new(0);
        let found = std::sync::Mutex::new(Vec::new());
        std::thread::scope(|scope| {
            for _ in 0..exists.len().min(registry.config().concurrency.max(1)) {
                scope.spawn(|| loop {
                    let i = next.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                    let Some((image, digest)) = exists.get(i) else {
                        break;
                    };
                    let reply = registry.exists(image, digest);
                    found
                        .lock()
                        .unwrap_or_else(|p| p.into_inner())
                        .push((i, reply));
                    let n = done.fetch_add(1, std::sync::atomic::Ordering::SeqCst) + 1;
                    progress.show(base + n);
                });
            }
        });
        for (i, reply) in found.into_inner().unwrap_or_else(|p| p.into_inner()) {
            answers.insert_exists(&exists[i].0, &exists[i].1, reply);
        }
        progress.finish();
        Some(answers)
    }
    #[cfg(target_family = "wasm")]
    {
        log("kube-harden: note: this build has no registry client; digests come from the lock file and the policy only");
        None
    }
}

/// A one-line progress counter on stderr, shown only when stderr is a terminal.
struct Progress {
    what: &'static str,
    total: usize,
    tty: bool,
}

impl Progress {
    fn new(what: &'static str, total: usize) -> Self {
        Progress {
            what,
            total,
            tty: std::io::stderr().is_terminal() && total > 0,
        }
    }

    fn show(&self, done: usize) {
        if self.tty {
            let mut e = std::io::stderr().lock();
            let _ = write!(e, "\r{}: {done}/{}", self.what, self.total);
            let _ = e.flush();
        }
    }

    fn finish(&self) {
        if self.tty {
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
}

/// Writes or updates the lock file. Nothing is written when an image cannot be resolved.
pub fn lock(
    input: &[u8],
    spec: Option<PolicySpec>,
    args: &LockArgs,
    log: &dyn Fn(&str),
) -> Result<LockSummary> {
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
        info_results: false,
        ..Options::default()
    };
    options.overrides.enable = vec![kube_harden::rules::pin_image_digests::ID.to_string()];
    let recorder = Arc::new(Recorder::new(LockSource::new(known)));
    options.overrides.digests = Some(DigestHandle(recorder.clone()));
    let out = engine::process_bytes(input, &options)?;
    let requests = recorder.requests();
    let misses = recorder.misses();
    let digest_args = DigestArgs {
        insecure_registry: args.insecure_registry.clone(),
        ..DigestArgs::default()
    };
    let answers = if misses.is_empty() {
        Answers::default()
    } else {
        ask_registry(&misses, &[], &out.policy, &digest_args, log).ok_or_else(|| {
            anyhow::anyhow!("this build has no registry client: `kube-harden lock` needs one")
        })?
    };
    let mut lock = existing.clone();
    let mut failed: Vec<ResolveError> = Vec::new();
    let (mut added, mut updated) = (0, 0);
    for request in &misses {
        match answers.resolve_request(request) {
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
    let mut removed = 0;
    if args.prune {
        let before = lock.len();
        let used: std::collections::HashSet<(String, Option<String>)> = requests
            .iter()
            .map(|(i, p)| (i.normalized_tag(), p.as_ref().map(|p| p.to_string())))
            .collect();
        lock.retain(|e| {
            used.contains(&(
                e.image.normalized_tag(),
                e.platform.as_ref().map(|p| p.to_string()),
            ))
        });
        removed = before - lock.len();
    }
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
    })
}
