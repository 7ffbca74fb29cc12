//! The `kube-harden` command: flags to options, input from files or stdin, one call to the core,
//! the output to stdout (written in exactly one place) and a summary to stderr.

use std::ffi::OsString;
use std::fs;
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context, Result};
use clap::{CommandFactory, Parser, Subcommand};
use clap_complete::Shell;

use kube_harden::config::{self, Overrides, PolicySpec, Verbosity};
use kube_harden::policy;
use kube_harden::{openapi, pss, rules, InputForm, Options};

mod argocd;
mod diff;
mod explain;
mod pinning;

// On WASM: std's allocator, growing the memory in large steps (see `kube_harden::wasm_alloc`;
// with a lock on `wasm32-wasip1-threads`, `cfg(wasm_threads)`).
#[cfg(target_family = "wasm")]
#[global_allocator]
static ALLOC: kube_harden::wasm_alloc::WasmAlloc = kube_harden::wasm_alloc::WasmAlloc::new();

// Natively: mimalloc (its v2 line). A stream run allocates and frees a few small values per
// scalar on every core; glibc's malloc spent about a fifth of the CPU time there.
#[cfg(all(not(target_family = "wasm"), not(target_os = "linux")))]
#[global_allocator]
static ALLOC: mimalloc::MiMalloc = mimalloc::MiMalloc;

// On Linux: huge blocks (the input read from a pipe) are mapped on their own (`huge_alloc`).
#[cfg(target_os = "linux")]
mod huge_alloc;
#[cfg(target_os = "linux")]
#[global_allocator]
static ALLOC: huge_alloc::Alloc = huge_alloc::Alloc;

/// mimalloc commits its arenas up front by default (a purge then only marks pages free, which
/// leaves them in RSS), and gives freed pages back to the system 10 ms after they empty. Here
/// peak RSS is part of the contract (benches/speed.rs), so pages are committed as they are used
/// and given back after 1 ms. Giving them back at once (delay 0) cost a stream run a sixth of
/// its time in page faults and TLB shootdowns between the cores; 1 ms costs no time measurably
/// and about 1.5 MB of peak RSS less than 10 ms. [`release_free_memory`] gives back at once
/// what the lock's parse freed. `MIMALLOC_*` variables set by the user still win (these only
/// replace the defaults). It has to run before the first allocation, which the Rust runtime
/// makes before `main`: on ELF targets it is a constructor (`.init_array`), elsewhere `main`
/// calls it.
#[cfg(not(target_family = "wasm"))]
extern "C" fn tune_allocator() {
    use std::ffi::{c_int, c_long};
    // `mi_option_e` in mimalloc.h (the same numbers in its v2 and v3 lines).
    const ARENA_EAGER_COMMIT: c_int = 4;
    const PURGE_DELAY: c_int = 15;
    unsafe extern "C" {
        fn mi_option_set_default(option: c_int, value: c_long);
    }
    // SAFETY: stores two integers in mimalloc's option table; it allocates nothing and may run
    // before mimalloc's own initialisation (an option's value survives it unless the
    // environment sets that option).
    unsafe {
        mi_option_set_default(ARENA_EAGER_COMMIT, 0);
        mi_option_set_default(PURGE_DELAY, 1);
    }
}

/// Gives the pages freed so far back to the system now rather than after mimalloc's delay: the
/// lock's parse frees about ten times the lock's size just before the documents are processed,
/// and this thread, which freed them, allocates little afterwards.
pub(crate) fn release_free_memory() {
    #[cfg(not(target_family = "wasm"))]
    {
        unsafe extern "C" {
            fn mi_collect(force: bool);
        }
        // SAFETY: mimalloc's own collection of this thread's heap; no pointer is handed over.
        unsafe { mi_collect(true) };
    }
}

#[cfg(any(target_os = "linux", target_os = "android", target_os = "freebsd"))]
#[used]
#[link_section = ".init_array"]
static TUNE_ALLOCATOR: extern "C" fn() = tune_allocator;

const EXAMPLES: &str = "\
Examples:
  kube-harden deploy.yaml > hardened.yaml
  helm template my-release ./chart | kube-harden --disable read-only-root-filesystem
  helm install my-release ./chart --post-renderer kube-harden
  kube-harden --config policy.yaml --results results.yaml manifests/*.yaml
  kpt fn eval ./pkg --exec kube-harden -- disable=writable-tmp
  kube-harden lock manifests.yaml -o images.lock   # record image digests
  kube-harden check --level restricted hardened.yaml   # Pod Security levels, exit 1 below restricted
  kube-harden deploy.yaml | kube-harden check -o sarif > pss.sarif
  kube-harden explain --offline --lock images.lock deploy.yaml   # JSON Patch per changed object
  kube-harden --offline --lock images.lock manifests.yaml
  kube-harden rules          # list rule ids
  kube-harden docs seccomp   # what a rule does, its settings and how to opt out";

/// Hardens Kubernetes workloads: securityContext defaults, a writable /tmp for read-only root
/// filesystems, and more, adding only what is absent.
#[derive(Parser, Debug)]
#[command(name = "kube-harden", version, about, after_help = EXAMPLES, args_conflicts_with_subcommands = true)]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
    #[command(flatten)]
    run: RunArgs,
}

/// The input and policy flags of a hardening run, shared by the run and `explain`.
#[derive(clap::Args, Debug)]
struct PolicyArgs {
    /// Manifest files (YAML or JSON streams, a List, or a KRM ResourceList); stdin when none or `-`.
    #[arg(value_name = "FILE")]
    files: Vec<PathBuf>,
    /// A HardeningPolicy (or ConfigMap) file.
    #[arg(short, long, value_name = "FILE")]
    config: Option<PathBuf>,
    /// Rules to switch on, comma-separated.
    #[arg(long, value_name = "RULE[,RULE…]", value_delimiter = ',')]
    enable: Vec<String>,
    /// Rules to switch off, comma-separated.
    #[arg(long, value_name = "RULE[,RULE…]", value_delimiter = ',')]
    disable: Vec<String>,
    /// Overwrite explicit insecure values where the API server still accepts the result.
    #[arg(long)]
    enforce: bool,
}

impl PolicyArgs {
    /// `--enable`, `--disable` and `--enforce` as the core's overrides.
    fn overrides(&self) -> Overrides {
        Overrides {
            enable: self.enable.clone(),
            disable: self.disable.clone(),
            enforce: self.enforce,
            ..Overrides::default()
        }
    }
}

#[derive(clap::Args, Debug)]
struct RunArgs {
    #[command(flatten)]
    policy: PolicyArgs,
    /// Write the results to this file as YAML (every result, one per object and rule, unless
    /// `--verbosity` or the policy's `spec.verbosity` says otherwise).
    #[arg(long, value_name = "FILE")]
    results: Option<PathBuf>,
    /// Which results to report (warnings and errors always): `problems` (the default), `changes`
    /// (also one line per changed or generated object) or `all` (also one per object and rule
    /// for every change and decision). Replaces the policy's `spec.verbosity`.
    #[arg(long, value_enum, value_name = "LEVEL")]
    verbosity: Option<Verbosity>,
    /// No summary on stderr.
    #[arg(short, long)]
    quiet: bool,
    /// Also append every message meant for stderr to this file (Helm and kustomize hide a
    /// plugin's stderr); default $KUBE_HARDEN_LOG_FILE.
    #[arg(long, value_name = "FILE")]
    log_file: Option<PathBuf>,
    /// Argo CD config-management plugin mode: policy settings from `ARGOCD_APP_PARAMETERS` and
    /// `ARGOCD_ENV_KUBE_HARDEN_*`, and an input without any object is an error (Argo CD would
    /// prune everything on an empty manifest).
    #[arg(long)]
    argocd: bool,
    /// Print a unified diff of the input against the output instead of the output (`patch -p0`
    /// applies it; stdin is labelled `stdin`).
    #[arg(long)]
    diff: bool,
    /// Exit 1 when the output differs from the input, as `git diff --exit-code` does.
    #[arg(long)]
    exit_code: bool,
    /// Exit 1 when a result is at least this severe: `error` (always) or `warning` (something
    /// stays insecure or was left out; the output is still written).
    #[arg(long, value_enum, value_name = "SEVERITY", default_value_t = FailOn::Error)]
    fail_on: FailOn,
    #[command(flatten)]
    digests: pinning::DigestArgs,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// List the rules, one line each.
    Rules,
    /// Print a rule's documentation (all rules when none is named).
    Docs {
        /// Rule id.
        rule: Option<String>,
    },
    /// Print the HardeningPolicy JSON schema.
    Schema {
        /// The OpenAPI v3 (structural) form embedded in function.yaml's KRMFunctionDefinition.
        #[arg(long)]
        openapi: bool,
    },
    /// Make kube-harden a kustomize exec plugin for `kubectl kustomize --enable-alpha-plugins`:
    /// links this executable to `<plugin home>/kube-harden.dev/v1alpha1/hardeningpolicy/HardeningPolicy`.
    InstallKustomizePlugin {
        /// Plugin home (default: $KUSTOMIZE_PLUGIN_HOME, else $XDG_CONFIG_HOME/kustomize/plugin,
        /// else ~/.config/kustomize/plugin).
        #[arg(long, value_name = "DIR")]
        plugin_home: Option<PathBuf>,
        /// Copy the executable instead of linking to it.
        #[arg(long)]
        copy: bool,
    },
    /// Copy this executable into DIR (an init container uses it to hand the binary to the Argo CD
    /// repo-server sidecar; the image has no shell to do it).
    InstallBinary {
        /// Target directory.
        dir: PathBuf,
    },
    /// Write or update an image lock file (`kind: ImageLock`) with the digest of every image the
    /// manifests use, for `--lock` and `--offline` runs. Progress goes to stderr on a terminal.
    Lock(pinning::LockArgs),
    /// Report the Pod Security level (privileged, baseline, restricted) of every object that holds
    /// a pod, and each failing control with its field path, as Pod Security Admission evaluates
    /// them. Changes nothing. Exit status 1 when `--level` is given and an object is below it.
    Check(CheckArgs),
    /// Print, per object the run would change, an RFC 6902 JSON Patch from the input object to the
    /// output object and a line per change saying which rule made it and why. Changes nothing.
    Explain(ExplainArgs),
    /// Print a shell completion script.
    Completions {
        /// bash, zsh or fish.
        shell: Shell,
    },
}

/// `kube-harden check`.
#[derive(clap::Args, Debug)]
struct CheckArgs {
    /// Manifest files (YAML or JSON streams, Lists, ResourceLists); stdin when none or `-`.
    #[arg(value_name = "FILE")]
    files: Vec<PathBuf>,
    /// Pod Security Admission version to evaluate: v1.0 … v1.37, or latest.
    #[arg(long, value_name = "VERSION", default_value = "latest")]
    pss_version: pss::Version,
    /// Exit 1 unless every object meets this level (privileged, baseline or restricted).
    #[arg(long, value_name = "LEVEL")]
    level: Option<pss::Level>,
    /// Output format.
    #[arg(short, long, value_enum, default_value_t = CheckFormat::Text)]
    output: CheckFormat,
    /// A HardeningPolicy: its `spec.workloads` names custom kinds that hold pods, and the
    /// "would kube-harden fix it" answer hardens with its settings.
    #[arg(short, long, value_name = "FILE")]
    config: Option<PathBuf>,
    /// Image lock file whose image facts the "would kube-harden fix it" answer uses (without
    /// one, images are unknown, as in a run without a lock).
    #[arg(long, value_name = "FILE")]
    lock: Option<PathBuf>,
}

/// `--fail-on`.
#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
enum FailOn {
    /// Error results only (the default; the output is then not written).
    Error,
    /// Warning results too (the output is written).
    Warning,
}

/// `kube-harden explain`.
#[derive(clap::Args, Debug)]
struct ExplainArgs {
    #[command(flatten)]
    policy: PolicyArgs,
    /// Output format.
    #[arg(short, long, value_enum, default_value_t = ExplainFormat::Text)]
    output: ExplainFormat,
    #[command(flatten)]
    digests: pinning::DigestArgs,
}

/// `explain -o`.
#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
enum ExplainFormat {
    /// Per object: the changes, then the patch.
    Text,
    /// `{"objects": [{apiVersion, kind, namespace, name, generated, patch, changes}]}`.
    Json,
}

/// `check -o`.
#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
enum CheckFormat {
    /// A table for people.
    Text,
    /// The report as JSON.
    Json,
    /// SARIF 2.1.0 (GitHub code scanning).
    Sarif,
}

/// The kind kustomize looks up exec plugins by, and so the file name it runs.
const KUSTOMIZE_PLUGIN_FILE: &str = "HardeningPolicy";
/// `<group>/<version>/<lowercase kind>` under the kustomize plugin home.
const KUSTOMIZE_PLUGIN_DIR: &str = "kube-harden.dev/v1alpha1/hardeningpolicy";

fn main() -> ExitCode {
    #[cfg(not(any(
        target_family = "wasm",
        target_os = "linux",
        target_os = "android",
        target_os = "freebsd"
    )))]
    tune_allocator();
    let cli = Cli::parse_from(kustomize_plugin_args(std::env::args_os().collect()));
    // $KUBE_HARDEN_LOG_FILE where flags cannot be passed (a kustomize exec plugin gets only its
    // config file's path).
    let log_file = cli
        .run
        .log_file
        .clone()
        .or_else(|| std::env::var_os("KUBE_HARDEN_LOG_FILE").map(PathBuf::from));
    let log = Log::new(log_file);
    match run(cli, &log) {
        Ok(code) => code,
        Err(e) => {
            if e.downcast_ref::<io::Error>()
                .is_some_and(|e| e.kind() == io::ErrorKind::BrokenPipe)
            {
                return ExitCode::SUCCESS;
            }
            log.line(&format!("kube-harden: error: {e:#}"));
            ExitCode::from(1)
        }
    }
}

/// Run as a kustomize exec plugin (the executable is named `HardeningPolicy`), kustomize passes
/// the config object's file as the only argument and the resources as a plain stream on stdin:
/// that is `kube-harden --config FILE`.
fn kustomize_plugin_args(mut args: Vec<OsString>) -> Vec<OsString> {
    let invoked_as_plugin = args
        .first()
        .and_then(|a| Path::new(a).file_name())
        .is_some_and(|name| name == KUSTOMIZE_PLUGIN_FILE);
    if invoked_as_plugin && args.len() == 2 {
        args.insert(1, "--config".into());
    }
    args
}

/// Where messages for the user go: stderr, and the `--log-file` when one is given.
struct Log {
    file: Option<PathBuf>,
}

impl Log {
    fn new(file: Option<PathBuf>) -> Self {
        Log { file }
    }

    fn line(&self, text: &str) {
        eprintln!("{text}");
        if let Some(path) = &self.file {
            // The log is a side channel: failing to write it must not change the outcome.
            if let Ok(mut f) = fs::OpenOptions::new().create(true).append(true).open(path) {
                let _ = writeln!(f, "{text}");
            }
        }
    }
}

fn run(cli: Cli, log: &Log) -> Result<ExitCode> {
    let mut stdout = io::stdout().lock();
    match cli.command {
        Some(Command::Rules) => {
            for r in rules::registry() {
                writeln!(stdout, "{:<28} {}", r.id(), r.summary())?;
            }
            return Ok(ExitCode::SUCCESS);
        }
        Some(Command::Docs { rule }) => {
            let selected: Vec<_> = match &rule {
                Some(id) => vec![rules::by_id(id)
                    .with_context(|| format!("unknown rule id `{id}`; see `kube-harden rules`"))?],
                None => rules::registry().to_vec(),
            };
            for r in selected {
                writeln!(stdout, "{}", r.docs())?;
            }
            return Ok(ExitCode::SUCCESS);
        }
        Some(Command::Schema { openapi }) => {
            let schema = if openapi {
                openapi::policy_schema()
            } else {
                policy::json_schema()
            };
            writeln!(stdout, "{}", serde_json::to_string_pretty(&schema)?)?;
            return Ok(ExitCode::SUCCESS);
        }
        Some(Command::InstallKustomizePlugin { plugin_home, copy }) => {
            let home = match plugin_home {
                Some(dir) => dir,
                None => default_kustomize_plugin_home()?,
            };
            let dir = home.join(KUSTOMIZE_PLUGIN_DIR);
            let target = dir.join(KUSTOMIZE_PLUGIN_FILE);
            install_self(&dir, &target, copy)?;
            writeln!(stdout, "{}", target.display())?;
            return Ok(ExitCode::SUCCESS);
        }
        Some(Command::InstallBinary { dir }) => {
            let target = dir.join(format!("kube-harden{}", std::env::consts::EXE_SUFFIX));
            install_self(&dir, &target, true)?;
            writeln!(stdout, "{}", target.display())?;
            return Ok(ExitCode::SUCCESS);
        }
        Some(Command::Lock(args)) => {
            let spec = args.config.as_deref().map(read_policy).transpose()?;
            let input = read_input(&args.files)?;
            let summary = pinning::lock(&input.bytes, spec, &args).map_err(|e| input.locate(e))?;
            log.line(&format!(
                "kube-harden: {}: {} images ({} added, {} updated, {} removed, facts read for {})",
                args.output.display(),
                summary.entries,
                summary.added,
                summary.updated,
                summary.removed,
                summary.facts
            ));
            return Ok(ExitCode::SUCCESS);
        }
        Some(Command::Explain(args)) => {
            let spec = args.policy.config.as_deref().map(read_policy).transpose()?;
            let lock = pinning::LockLoad::start(&args.digests);
            let input = read_input(&args.policy.files)?;
            // explain reads every change record, whatever the policy's verbosity.
            let options = Options {
                spec,
                overrides: Overrides {
                    verbosity: Some(Verbosity::All),
                    ..args.policy.overrides()
                },
                verbosity: Verbosity::All,
                render_results: false,
                threads: 0,
                summary_only: false,
                results_to: None,
            };
            let output = pinning::process(&input.bytes, options, &args.digests, lock)
                .map_err(|e| input.locate(e))?;
            if output.has_errors() {
                summarize(&output, true, log);
                return Ok(ExitCode::from(1));
            }
            let text = std::str::from_utf8(&input.bytes).context("the input is not UTF-8")?;
            let explained = explain::explain(text, &output.text(), &output.results)?;
            match args.output {
                ExplainFormat::Text => stdout.write_all(explain::to_text(&explained).as_bytes())?,
                ExplainFormat::Json => {
                    serde_json::to_writer_pretty(&mut stdout, &explain::to_json(&explained))?;
                    stdout.write_all(b"\n")?;
                }
            }
            stdout.flush()?;
            return Ok(ExitCode::SUCCESS);
        }
        Some(Command::Check(args)) => {
            return match check(&args) {
                Ok((report, pass)) => {
                    stdout.write_all(report.as_bytes())?;
                    stdout.flush()?;
                    Ok(if pass {
                        ExitCode::SUCCESS
                    } else {
                        ExitCode::from(1)
                    })
                }
                // 2, as diff and grep do: 1 is the verdict "below the level".
                Err(e) => {
                    if e.downcast_ref::<io::Error>()
                        .is_some_and(|e| e.kind() == io::ErrorKind::BrokenPipe)
                    {
                        return Ok(ExitCode::SUCCESS);
                    }
                    log.line(&format!("kube-harden: error: {e:#}"));
                    Ok(ExitCode::from(2))
                }
            };
        }
        Some(Command::Completions { shell }) => {
            clap_complete::generate(shell, &mut Cli::command(), "kube-harden", &mut stdout);
            return Ok(ExitCode::SUCCESS);
        }
        None => {}
    }
    let mut args = cli.run;
    let argocd = if args.argocd {
        Some(argocd::Settings::from_env()?)
    } else {
        None
    };
    // In Argo CD mode the Application's `config` parameter names the policy file.
    let config_path = argocd
        .as_ref()
        .and_then(|a| a.config.clone())
        .or_else(|| args.policy.config.clone());
    let mut spec = config_path.as_deref().map(read_policy).transpose()?;
    if let Some(a) = &argocd {
        args.policy.enable.extend(a.enable.iter().cloned());
        args.policy.disable.extend(a.disable.iter().cloned());
        args.policy.enforce |= a.enforce;
        if let Some(settings) = &a.settings {
            spec = Some(settings.overlay(spec.unwrap_or_default())?);
        }
    }
    let options = Options {
        spec,
        overrides: Overrides {
            verbosity: args.verbosity,
            ..args.policy.overrides()
        },
        // A results file asked for without a verbosity gets every result.
        verbosity: if args.results.is_some() {
            Verbosity::All
        } else {
            Verbosity::Problems
        },
        // The results file is written as the run goes (`results_to`, below).
        render_results: false,
        threads: 0,
        // The results held only feed the stderr summary and the exit status (the results file
        // gets every one as it is made): a stream's warnings past the objects it lists are
        // counted, not held.
        summary_only: true,
        results_to: None,
    };
    let lock = pinning::LockLoad::start(&args.digests);
    let input = read_input(&args.policy.files)?;
    if argocd.is_some() && !has_content(&input.bytes) {
        anyhow::bail!(
            "no manifests to harden: an empty answer would make Argo CD prune every resource of the application"
        );
    }
    let results = args
        .results
        .as_deref()
        .map(|path| {
            ResultsFile::create(path)
                .map(|file| (path, file))
                .with_context(|| format!("writing {}", path.display()))
        })
        .transpose()?;
    let options = Options {
        results_to: results
            .as_ref()
            .map(|(_, file)| kube_harden::engine::ResultsTo::new(file.clone())),
        ..options
    };
    let output = match pinning::process(&input.bytes, options, &args.digests, lock) {
        Ok(output) => output,
        Err(e) => {
            let Some((path, file)) = results else {
                return Err(input.locate(e));
            };
            // Only a run that finished leaves a results file, never part of one.
            file.discard();
            return Err(match e.downcast_ref() {
                Some(kube_harden::Error::Results(io)) => {
                    anyhow::anyhow!("writing {}: {io}", path.display())
                }
                _ => input.locate(e),
            });
        }
    };
    if let Some((path, file)) = results {
        file.commit()
            .with_context(|| format!("writing {}", path.display()))?;
    }
    let failed = output.has_errors();
    let mut changed = false;
    if args.diff {
        if !failed {
            let diffs = diff::unified(&input.bytes, &input.sources, &output);
            changed = !diffs.is_empty();
            stdout.write_all(diffs.as_bytes())?;
            stdout.flush()?;
        }
    } else if output.delivered() {
        // A half-hardened stream applied by Helm is worse than none: on error, stdout stays empty,
        // except for a ResourceList, whose results are how kpt and kustomize show the errors.
        let mut buffered = io::BufWriter::with_capacity(1 << 16, &mut stdout);
        output.write_to(&mut buffered)?;
        buffered.flush()?;
        changed = args.exit_code && !unchanged(&output, &input.bytes);
    }
    if !args.quiet || failed {
        summarize(&output, failed, log);
    }
    let warned = args.fail_on == FailOn::Warning
        && (output.stats.warnings_not_kept > 0
            || output
                .results
                .iter()
                .any(|r| r.severity == kube_harden::change::Severity::Warning));
    let code = if failed || warned || (args.exit_code && changed) {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    };
    // The process ends here and its memory goes with it: not freeing the output's values and
    // the input one by one saves a few percent of a ResourceList run (its results).
    std::mem::forget(output);
    std::mem::forget(input);
    Ok(code)
}

/// `kube-harden check`: the rendered report, and whether every object meets `--level`.
fn check(args: &CheckArgs) -> Result<(String, bool)> {
    let spec = args.config.as_deref().map(read_policy).transpose()?;
    let spec = spec.unwrap_or_default();
    let policy = config::Policy::from_spec(spec.clone())?;
    // "Would kube-harden fix it": the run's rules with the policy's settings and the lock's
    // image facts. Rules that set no Pod Security field run after those that do and cannot
    // change their outcome, so they stay out (digests, probes, budgets, the root filesystem).
    let digests = match &args.lock {
        Some(path) => {
            let lock = kube_harden::digest::ImageLock::load(path)
                .map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))?;
            Some(config::DigestHandle(std::sync::Arc::new(
                kube_harden::digest::LockSource::new(lock),
            )))
        }
        None => None,
    };
    let fix_policy = config::Policy::with_overrides(
        spec,
        &Overrides {
            disable: [
                "read-only-root-filesystem",
                "writable-tmp",
                "default-probes",
                "pin-image-digests",
                "pod-disruption-budget",
            ]
            .map(String::from)
            .to_vec(),
            digests,
            ..Overrides::default()
        },
    )?;
    let mut inputs: Vec<(String, Vec<u8>)> = Vec::new();
    if args.files.is_empty() {
        inputs.push(("stdin".into(), read_input(&[])?.bytes));
    }
    for f in &args.files {
        if f.as_os_str() == "-" {
            inputs.push(("stdin".into(), read_input(&[])?.bytes));
        } else {
            let bytes = fs::read(f).with_context(|| format!("reading {}", f.display()))?;
            inputs.push((f.display().to_string(), bytes));
        }
    }
    let mut files = Vec::with_capacity(inputs.len());
    for (uri, bytes) in inputs {
        let text = std::str::from_utf8(&bytes).map_err(|e| {
            anyhow::anyhow!(
                "{uri}: not UTF-8 (invalid byte at offset {})",
                e.valid_up_to()
            )
        })?;
        let objects = pss::report::check_with(text, &policy, args.pss_version, Some(&fix_policy))
            .with_context(|| uri.clone())?;
        files.push(pss::report::FileReport { uri, objects });
    }
    let version = args.pss_version;
    let report = match args.output {
        CheckFormat::Text => pss::report::text(&files, version, args.level),
        CheckFormat::Json => {
            serde_json::to_string_pretty(&pss::report::json(&files, version, args.level))? + "\n"
        }
        CheckFormat::Sarif => {
            serde_json::to_string_pretty(&pss::report::sarif(
                &files,
                version,
                args.level,
                env!("CARGO_PKG_VERSION"),
            ))? + "\n"
        }
    };
    let pass = args
        .level
        .is_none_or(|level| pss::report::all_meet(&files, level));
    Ok((report, pass))
}

/// Reads a HardeningPolicy (or ConfigMap) file.
fn read_policy(path: &Path) -> Result<PolicySpec> {
    let text = fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    let doc = kube_harden::yaml::tree::parse_document(&text)
        .map_err(|e| anyhow::anyhow!("{}:{}: {}", path.display(), e.line, e.message))?;
    let value = doc.root.map(|r| r.to_value()).unwrap_or_default();
    policy::spec_from_object(&value).with_context(|| format!("in {}", path.display()))
}

/// True when the input holds something besides blank lines, comments and `---` separators.
fn has_content(input: &[u8]) -> bool {
    String::from_utf8_lossy(input).lines().any(|line| {
        let t = line.trim_start_matches('\u{feff}').trim();
        !(t.is_empty() || t.starts_with('#') || t == "---" || t == "...")
    })
}

/// kustomize's default plugin home, as kustomize computes it.
fn default_kustomize_plugin_home() -> Result<PathBuf> {
    if let Some(dir) = std::env::var_os("KUSTOMIZE_PLUGIN_HOME").filter(|d| !d.is_empty()) {
        return Ok(PathBuf::from(dir));
    }
    if let Some(dir) = std::env::var_os("XDG_CONFIG_HOME").filter(|d| !d.is_empty()) {
        return Ok(PathBuf::from(dir).join("kustomize").join("plugin"));
    }
    let home = std::env::var_os("HOME").filter(|d| !d.is_empty()).context(
        "neither KUSTOMIZE_PLUGIN_HOME, XDG_CONFIG_HOME nor HOME is set; use --plugin-home",
    )?;
    Ok(PathBuf::from(home)
        .join(".config")
        .join("kustomize")
        .join("plugin"))
}

/// Puts this executable at `target` (in `dir`): a copy, or a symbolic link where links exist.
fn install_self(dir: &Path, target: &Path, copy: bool) -> Result<()> {
    let exe = std::env::current_exe()
        .and_then(fs::canonicalize)
        .context("finding this executable")?;
    fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    if target.symlink_metadata().is_ok() {
        fs::remove_file(target).with_context(|| format!("replacing {}", target.display()))?;
    }
    #[cfg(unix)]
    if !copy {
        std::os::unix::fs::symlink(&exe, target)
            .with_context(|| format!("linking {} to {}", target.display(), exe.display()))?;
        return Ok(());
    }
    let _ = copy;
    fs::copy(&exe, target)
        .with_context(|| format!("copying {} to {}", exe.display(), target.display()))?;
    Ok(())
}

/// The input stream and, when it was joined from several files, where each file starts in it.
struct Input {
    bytes: Vec<u8>,
    /// Per file, in order: its name and the 1-based line of the stream its first line is on.
    files: Vec<(String, usize)>,
    /// Per file, in order: where it sits in the stream, for `--diff`.
    sources: Vec<diff::Source>,
}

impl Input {
    /// An input error located in the joined stream, told in the terms of the file it is in:
    /// the file's name, the document's number in that file and the line in that file. Other
    /// errors, and errors in stdin, are returned as they are.
    fn locate(&self, err: anyhow::Error) -> anyhow::Error {
        // stdin has no name; one file's documents and lines are the stream's, named too.
        if self.files.is_empty() {
            return err;
        }
        match err.downcast_ref() {
            Some(kube_harden::Error::Input { line, message, .. }) => match self.place(*line) {
                Some(at) => anyhow::anyhow!("{at}: {message}"),
                None => err,
            },
            Some(kube_harden::Error::SameObject {
                line,
                message,
                first_line,
                first_item,
                ..
            }) => match (self.place(*line), self.place(*first_line)) {
                (Some(at), Some(first)) => {
                    anyhow::anyhow!("{at}: {message} (the first is {first}{first_item})")
                }
                _ => err,
            },
            _ => err,
        }
    }

    /// A line of the joined stream as `file: document N (line L)`, in the file's own terms.
    fn place(&self, line: usize) -> Option<String> {
        let index = self.files.iter().rposition(|(_, start)| *start <= line)?;
        let (name, start) = &self.files[index];
        let line_in_file = line - start + 1;
        // The file's own text: from its first line to the `---` line that joins the next file.
        let text = std::str::from_utf8(&self.bytes).unwrap_or("");
        let from = nth_line_start(text, *start);
        let to = self
            .files
            .get(index + 1)
            .map_or(text.len(), |(_, next)| nth_line_start(text, next - 1));
        let doc = kube_harden::yaml::split::split_documents(&text[from..to.max(from)])
            .iter()
            .filter(|seg| !seg.is_blank() && seg.first_line <= line_in_file)
            .count()
            .max(1);
        Some(format!("{name}: document {doc} (line {line_in_file})"))
    }
}

/// The byte offset where 1-based line `n` of `text` starts.
fn nth_line_start(text: &str, n: usize) -> usize {
    if n <= 1 {
        return 0;
    }
    text.match_indices('\n')
        .nth(n - 2)
        .map_or(text.len(), |(i, _)| i + 1)
}

/// True when the output's text is exactly the input.
fn unchanged(output: &kube_harden::Output<'_>, input: &[u8]) -> bool {
    let mut rest = input;
    for piece in output.pieces().map(str::as_bytes) {
        match rest.strip_prefix(piece) {
            Some(r) => rest = r,
            None => return false,
        }
    }
    rest.is_empty()
}

/// Reads the files (stdin when none or `-`) into one stream, `---` between files, and where
/// each file sits in it (its first line, for errors; its bytes, for `--diff`).
fn read_input(files: &[PathBuf]) -> Result<Input> {
    let mut input = Vec::new();
    if files.is_empty() || files.iter().all(|f| f.as_os_str() == "-") && files.len() == 1 {
        io::stdin()
            .lock()
            .read_to_end(&mut input)
            .context("reading stdin")?;
        // The input lives as long as the output (untouched documents borrow it): give back what
        // read_to_end's doubling reserved (up to half again; glibc shrinks large blocks in place).
        input.shrink_to_fit();
        let sources = vec![diff::Source {
            name: "stdin".into(),
            region_start: 0,
            content: 0..input.len(),
        }];
        return Ok(Input {
            bytes: input,
            files: Vec::new(),
            sources,
        });
    }
    let mut starts = Vec::with_capacity(files.len());
    let mut sources = Vec::with_capacity(files.len());
    let mut line = 1;
    for (i, f) in files.iter().enumerate() {
        let mut file = Vec::new();
        if f.as_os_str() == "-" {
            io::stdin()
                .lock()
                .read_to_end(&mut file)
                .context("reading stdin")?;
        } else {
            file = fs::read(f).with_context(|| format!("reading {}", f.display()))?;
        }
        let own_len = file.len();
        if i + 1 < files.len() && !file.is_empty() && !file.ends_with(b"\n") {
            // The next file starts a new document on a line of its own. A line break after a
            // final block scalar would become part of its value: written so that it does not.
            match std::str::from_utf8(&file) {
                Ok(text) => {
                    file = kube_harden::yaml::patch::with_final_line_break(text).into_bytes()
                }
                Err(_) => file.push(b'\n'),
            }
        }
        let region_start = input.len();
        if i > 0 {
            input.extend_from_slice(b"---\n");
            line += 1;
        }
        let name = if f.as_os_str() == "-" {
            "<stdin>".to_string()
        } else {
            f.display().to_string()
        };
        starts.push((name.clone(), line));
        line += file.iter().filter(|&&b| b == b'\n').count();
        let start = input.len();
        // For --diff, the file's own bytes: without the line break joining added after them
        // (a final block scalar rewritten for the join keeps its rewritten text).
        let own_end = if file.len() == own_len + 1 {
            start + own_len
        } else {
            start + file.len()
        };
        input.extend_from_slice(&file);
        sources.push(diff::Source {
            name: if f.as_os_str() == "-" {
                "stdin".into()
            } else {
                name
            },
            region_start,
            content: start..own_end,
        });
    }
    input.shrink_to_fit();
    Ok(Input {
        bytes: input,
        files: starts,
        sources,
    })
}

/// The `--results FILE` destination. For a regular file (or a new one) the results are written
/// as the run goes to a temporary file beside it (emptied again if the run starts over, a second
/// pass with the registry's answers), which replaces the file only when the run succeeds: a run
/// that fails leaves an existing results file as it was and no partial one. Anything else (a
/// pipe, `/dev/stderr`), which cannot be emptied again nor replaced, gets the bytes when the run
/// is over.
#[derive(Clone)]
struct ResultsFile(std::sync::Arc<std::sync::Mutex<ResultsDestination>>);

enum ResultsDestination {
    /// The temporary file, its path, and the path it replaces.
    Streamed(io::BufWriter<fs::File>, PathBuf, PathBuf),
    Held(fs::File, Vec<u8>),
}

impl ResultsFile {
    /// Opens the destination: a temporary file beside a regular (or new) one, or the path itself.
    fn create(path: &Path) -> io::Result<Self> {
        let destination = match fs::metadata(path) {
            Ok(meta) if !meta.is_file() => {
                ResultsDestination::Held(fs::File::create(path)?, Vec::new())
            }
            found => {
                // Through a symbolic link to the file it names, which is what gets replaced
                // (where the platform resolves links: WASI cannot, and replaces the link).
                let linked = found.is_ok()
                    && fs::symlink_metadata(path).is_ok_and(|m| m.file_type().is_symlink());
                let target = match linked {
                    true => fs::canonicalize(path).unwrap_or_else(|_| path.to_path_buf()),
                    false => path.to_path_buf(),
                };
                let name = target.file_name().unwrap_or_default().to_string_lossy();
                let temp = target.with_file_name(format!(".{name}.kube-harden-{}.tmp", run_tag()));
                let file = fs::File::create(&temp)?;
                ResultsDestination::Streamed(
                    io::BufWriter::with_capacity(1 << 16, file),
                    temp,
                    target,
                )
            }
        };
        Ok(ResultsFile(std::sync::Arc::new(std::sync::Mutex::new(
            destination,
        ))))
    }

    fn destination(&self) -> std::sync::MutexGuard<'_, ResultsDestination> {
        self.0.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The run succeeded: the temporary file replaces the results file.
    fn commit(self) -> io::Result<()> {
        match &mut *self.destination() {
            ResultsDestination::Streamed(file, temp, target) => {
                file.flush()?;
                fs::rename(&*temp, &*target)
            }
            ResultsDestination::Held(..) => Ok(()),
        }
    }

    /// The run failed: the temporary file is removed (an existing results file stays as it was).
    fn discard(self) {
        if let ResultsDestination::Streamed(_, temp, _) = &*self.destination() {
            let _ = fs::remove_file(temp);
        }
    }
}

/// What tells this run's temporary files from another's: the process id, or on WASI (which has
/// none) the clock's nanoseconds.
fn run_tag() -> String {
    #[cfg(not(target_os = "wasi"))]
    return std::process::id().to_string();
    #[cfg(target_os = "wasi")]
    return std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos())
        .to_string();
}

impl kube_harden::engine::ResultsWriter for ResultsFile {
    fn write(&mut self, bytes: &[u8]) -> io::Result<()> {
        match &mut *self.destination() {
            ResultsDestination::Streamed(file, ..) => file.write_all(bytes),
            ResultsDestination::Held(_, held) => {
                held.extend_from_slice(bytes);
                Ok(())
            }
        }
    }

    fn restart(&mut self) -> io::Result<()> {
        use std::io::Seek;
        match &mut *self.destination() {
            ResultsDestination::Streamed(file, ..) => {
                file.flush()?;
                file.get_mut().set_len(0)?;
                file.get_mut().rewind()
            }
            ResultsDestination::Held(_, held) => {
                held.clear();
                Ok(())
            }
        }
    }

    fn finish(&mut self) -> io::Result<()> {
        match &mut *self.destination() {
            ResultsDestination::Streamed(file, ..) => file.flush(),
            ResultsDestination::Held(file, held) => {
                file.write_all(held)?;
                *held = Vec::new();
                file.flush()
            }
        }
    }
}

/// Objects the stderr summary lists (changed ones first, then unchanged ones with warnings or
/// errors); the rest are counted.
const SUMMARY_OBJECTS: usize = kube_harden::engine::NOTED_OBJECTS;

/// The stderr summary: the totals, then per object one line saying what was hardened and one
/// line per warning or error (one per rule), for the first [`SUMMARY_OBJECTS`] objects.
fn summarize(output: &kube_harden::Output<'_>, failed: bool, log: &Log) {
    use kube_harden::change::{KrmResult, Severity};
    let s = &output.stats;
    let problems: Vec<&KrmResult> = output.problems().collect();
    let warnings = problems
        .iter()
        .filter(|r| r.severity == Severity::Warning)
        .count()
        + s.warnings_not_kept;
    log.line(&format!(
        "kube-harden: {} of {} workloads changed ({} changes), {} warnings, {} errors",
        s.changed,
        s.workloads,
        s.changes,
        warnings,
        problems.len() + s.warnings_not_kept - warnings
    ));
    // A ResourceList carries its results, which kpt and kustomize show: the totals suffice (kpt
    // truncates a function's stderr after a few lines).
    if output.form != InputForm::ResourceList {
        list_objects(output, &problems, log);
    }
    if failed && !output.unresolved.is_empty() {
        for line in kube_harden::digest::unresolved_report(&output.unresolved).lines() {
            log.line(&format!("kube-harden: {line}"));
        }
    }
    if failed && output.form == InputForm::Stream {
        log.line("kube-harden: nothing written to stdout because of the errors above");
    }
}

/// The summary's per-object lines: what was hardened, then each item that stays insecure.
fn list_objects(
    output: &kube_harden::Output<'_>,
    problems: &[&kube_harden::change::KrmResult],
    log: &Log,
) {
    use kube_harden::change::{KrmResult, ResourceRef};
    let s = &output.stats;
    // Problems by object, in order.
    let mut by_object: Vec<(Option<&ResourceRef>, Vec<&KrmResult>)> = Vec::new();
    // Each object's place in `by_object` (a linear search would be quadratic in big streams).
    let mut place: std::collections::HashMap<Option<String>, usize> =
        std::collections::HashMap::new();
    for r in problems {
        let key = r
            .resource
            .as_ref()
            .map(|o| format!("{} {}", o.api_version, o.display()));
        match place.get(&key) {
            Some(&i) => by_object[i].1.push(r),
            None => {
                place.insert(key, by_object.len());
                by_object.push((r.resource.as_ref(), vec![r]));
            }
        }
    }
    // One line per insecure item: a result grouping several fields gives one line for each.
    let problem_lines = |r: &KrmResult| -> Vec<String> {
        r.field_notes()
            .into_iter()
            .map(|(_, message)| format!("    {}: {message} [{}]", r.severity.as_str(), r.rule))
            .collect()
    };
    let mut shown_objects = 0;
    let mut shown_problems = 0;
    let mut done = vec![false; by_object.len()];
    for note in output.notes.iter().take(SUMMARY_OBJECTS) {
        let who = note
            .resource
            .as_ref()
            .map(ResourceRef::display)
            .unwrap_or_default();
        log.line(&format!("  {who}: {}", note.message));
        shown_objects += 1;
        if let Some(i) = by_object
            .iter()
            .position(|(o, _)| *o == note.resource.as_ref())
            .filter(|i| !done[*i])
        {
            done[i] = true;
            for r in &by_object[i].1 {
                problem_lines(r).iter().for_each(|l| log.line(l));
                shown_problems += 1;
            }
        }
    }
    for (i, (object, list)) in by_object.iter().enumerate() {
        if done[i] || shown_objects >= SUMMARY_OBJECTS {
            continue;
        }
        let who = object.map_or_else(|| "the input".to_string(), ResourceRef::display);
        log.line(&format!("  {who}:"));
        shown_objects += 1;
        for r in list {
            problem_lines(r).iter().for_each(|l| log.line(l));
            shown_problems += 1;
        }
    }
    let more_changed = (s.changed + s.generated).saturating_sub(output.notes.len());
    let more_problems = problems.len() + s.warnings_not_kept - shown_problems;
    if more_changed > 0 || more_problems > 0 {
        let mut parts = Vec::new();
        if more_changed > 0 {
            parts.push(format!("{more_changed} more changed objects"));
        }
        if more_problems > 0 {
            parts.push(format!("{more_problems} more warnings and errors"));
        }
        log.line(&format!(
            "  … and {} (--results FILE lists them all)",
            parts.join(", ")
        ));
    }
}
