//! The `kube-harden` command: flags to options, input from files or stdin, one call to the core,
//! the output to stdout (written in exactly one place) and a summary to stderr.

use std::fs;
use std::io::{self, Read, Write};
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context, Result};
use clap::{CommandFactory, Parser, Subcommand};
use clap_complete::Shell;

use kube_harden::config::{self, Overrides};
use kube_harden::{engine, rules, InputForm, Options};

const EXAMPLES: &str = "\
Examples:
  kube-harden deploy.yaml > hardened.yaml
  helm template my-release ./chart | kube-harden --disable read-only-root-filesystem
  helm install my-release ./chart --post-renderer kube-harden
  kube-harden --config policy.yaml --results results.yaml manifests/*.yaml
  kpt fn eval ./pkg --exec kube-harden -- disable=writable-tmp
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

#[derive(clap::Args, Debug)]
struct RunArgs {
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
    /// Write every result (info, warning, error) to this file as YAML.
    #[arg(long, value_name = "FILE")]
    results: Option<PathBuf>,
    /// No summary on stderr.
    #[arg(short, long)]
    quiet: bool,
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
    Schema,
    /// Print a shell completion script.
    Completions {
        /// bash, zsh or fish.
        shell: Shell,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match run(cli) {
        Ok(code) => code,
        Err(e) => {
            if e.downcast_ref::<io::Error>()
                .is_some_and(|e| e.kind() == io::ErrorKind::BrokenPipe)
            {
                return ExitCode::SUCCESS;
            }
            eprintln!("kube-harden: error: {e:#}");
            ExitCode::from(1)
        }
    }
}

fn run(cli: Cli) -> Result<ExitCode> {
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
        Some(Command::Schema) => {
            writeln!(
                stdout,
                "{}",
                serde_json::to_string_pretty(&config::json_schema())?
            )?;
            return Ok(ExitCode::SUCCESS);
        }
        Some(Command::Completions { shell }) => {
            clap_complete::generate(shell, &mut Cli::command(), "kube-harden", &mut stdout);
            return Ok(ExitCode::SUCCESS);
        }
        None => {}
    }
    let args = cli.run;
    let spec = match &args.config {
        Some(path) => {
            let text =
                fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
            let doc = kube_harden::yaml::tree::parse_document(&text)
                .map_err(|e| anyhow::anyhow!("{}:{}: {}", path.display(), e.line, e.message))?;
            let value = doc.root.map(|r| r.to_value()).unwrap_or_default();
            Some(
                config::spec_from_object(&value)
                    .with_context(|| format!("in {}", path.display()))?,
            )
        }
        None => None,
    };
    let options = Options {
        spec,
        overrides: Overrides {
            enable: args.enable,
            disable: args.disable,
            enforce: args.enforce,
        },
        info_results: args.results.is_some(),
        threads: 0,
    };
    let input = read_input(&args.files)?;
    let output = engine::process_bytes(&input, &options)?;
    if let Some(path) = &args.results {
        let doc = serde_json::json!({ "results": output.results.iter().map(|r| r.to_value()).collect::<Vec<_>>() });
        let text = kube_harden::yaml::emit::document(&doc, &Default::default());
        fs::write(path, text).with_context(|| format!("writing {}", path.display()))?;
    }
    let failed = output.has_errors();
    // A half-hardened stream applied by Helm is worse than none: on error, stdout stays empty,
    // except for a ResourceList, whose results are how kpt and kustomize show the errors.
    if !failed || output.form == InputForm::ResourceList {
        let mut buffered = io::BufWriter::with_capacity(1 << 16, &mut stdout);
        output.write_to(&mut buffered)?;
        buffered.flush()?;
    }
    if !args.quiet || failed {
        summarize(&output, failed);
    }
    Ok(if failed {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    })
}

fn read_input(files: &[PathBuf]) -> Result<Vec<u8>> {
    let mut input = Vec::new();
    if files.is_empty() || files.iter().all(|f| f.as_os_str() == "-") && files.len() == 1 {
        io::stdin()
            .lock()
            .read_to_end(&mut input)
            .context("reading stdin")?;
        return Ok(input);
    }
    for (i, f) in files.iter().enumerate() {
        if i > 0 {
            if !input.is_empty() && !input.ends_with(b"\n") {
                input.push(b'\n');
            }
            input.extend_from_slice(b"---\n");
        }
        if f.as_os_str() == "-" {
            io::stdin()
                .lock()
                .read_to_end(&mut input)
                .context("reading stdin")?;
        } else {
            input.extend(fs::read(f).with_context(|| format!("reading {}", f.display()))?);
        }
    }
    Ok(input)
}

fn summarize(output: &kube_harden::Output<'_>, failed: bool) {
    const SHOWN: usize = 20;
    let s = &output.stats;
    let problems: Vec<_> = output.problems().collect();
    let warnings = problems
        .iter()
        .filter(|r| r.severity == kube_harden::change::Severity::Warning)
        .count();
    eprintln!(
        "kube-harden: {} of {} workloads changed ({} changes), {} warnings, {} errors",
        s.changed,
        s.workloads,
        s.changes,
        warnings,
        problems.len() - warnings
    );
    for r in problems.iter().take(SHOWN) {
        let who = r.resource.as_ref().map(|r| r.display()).unwrap_or_default();
        eprintln!(
            "  {}: {who}: {} [{}]",
            r.severity.as_str(),
            r.message,
            r.rule
        );
    }
    if problems.len() > SHOWN {
        eprintln!(
            "  … and {} more (--results FILE lists them all)",
            problems.len() - SHOWN
        );
    }
    if failed && output.form == InputForm::Stream {
        eprintln!("kube-harden: nothing written to stdout because of the errors above");
    }
}
