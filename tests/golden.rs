//! Golden tests, one named test per case (`cargo test --test golden -- seccomp/` runs a folder).
//!
//! A case is a folder `testdata/<area>/<case>/` with an `input.yaml`, an optional `config.yaml`
//! (a HardeningPolicy) and `images.lock` (the run's only digest source, never the network), and
//! what must come out:
//! - `expected.yaml` + `results.yaml`: the output and the warnings/errors/decisions, compared byte
//!   for byte; the output is then processed again and must come out unchanged (idempotency).
//!   `UPDATE_GOLDEN=1 cargo test --test golden` rewrites these two files (review the diff).
//! - or `error.yaml`: the run must fail. The case runs through the `kube-harden` binary, as a user
//!   runs it, and `error.yaml` says how it fails (see [`ErrorSpec`]). Never rewritten.
//!
//! Which rules run is decided by the area (the folder under `testdata/`):
//! - an area named by a rule id (`testdata/seccomp/`) runs that rule alone, plus any rule the
//!   case's `config.yaml` names in `spec.enable` (writable-tmp cases enable
//!   read-only-root-filesystem, whose read-only containers are the ones it gives a writable /tmp):
//!   a change to one rule only touches its own folder;
//! - [`ALL_RULES_AREAS`] (`all-rules/`, `io/`, `opt-out/`, `image-facts/`) run every rule (the
//!   defaults and `config.yaml`), as a user's run does; pin-image-digests only with an
//!   `images.lock`.
//!
//! Any other area is a failing test, so a misspelt folder never runs silently with the wrong rules.

use std::fmt::Write as _;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use kube_harden::change::KrmResult;
use kube_harden::config::{PolicySpec, Verbosity};
use kube_harden::{process, Options};
use libtest_mimic::{Arguments, Failed, Trial};
use serde::Deserialize;
use serde_json::Value;

/// Areas that are not a rule: their cases run every rule.
const ALL_RULES_AREAS: [&str; 4] = ["all-rules", "image-facts", "io", "opt-out"];

const PIN: &str = kube_harden::rules::pin_image_digests::ID;

fn main() {
    let args = Arguments::from_args();
    let update = std::env::var_os("UPDATE_GOLDEN").is_some_and(|v| v == "1");
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("testdata");
    let mut trials = Vec::new();
    for area in sorted_dirs(&root) {
        let area_name = file_name(&area);
        if !is_known_area(&area_name) {
            trials.push(Trial::test(area_name.clone(), move || {
                Err(format!(
                    "testdata/{area_name}/ is neither a rule id (`kube-harden rules`) nor one of \
                     {ALL_RULES_AREAS:?}: rename it, or add it to ALL_RULES_AREAS in tests/golden.rs"
                )
                .into())
            }));
            continue;
        }
        for dir in sorted_dirs(&area) {
            let case = Case {
                name: format!("{area_name}/{}", file_name(&dir)),
                area: area_name.clone(),
                dir,
            };
            trials.push(Trial::test(case.name.clone(), move || {
                run_case(&case, update).map_err(Failed::from)
            }));
        }
    }
    if trials.is_empty() {
        trials.push(Trial::test("no-cases", || {
            Err("no golden cases under testdata/<area>/<case>/".into())
        }));
    }
    libtest_mimic::run(&args, trials).exit();
}

/// One case directory.
struct Case {
    /// `<area>/<case>`, the test's name.
    name: String,
    area: String,
    dir: PathBuf,
}

fn is_known_area(area: &str) -> bool {
    ALL_RULES_AREAS.contains(&area) || kube_harden::rules::by_id(area).is_some()
}

fn file_name(path: &Path) -> String {
    path.file_name()
        .unwrap_or_default()
        .to_string_lossy()
        .into_owned()
}

fn sorted_dirs(dir: &Path) -> Vec<PathBuf> {
    let mut dirs: Vec<PathBuf> = fs::read_dir(dir)
        .map(|entries| {
            entries
                .filter_map(Result::ok)
                .map(|e| e.path())
                .filter(|p| p.is_dir())
                .collect()
        })
        .unwrap_or_default();
    dirs.sort();
    dirs
}

/// Reads a file byte for byte (CRLF and BOMs stay).
fn read(path: &Path) -> Result<String, String> {
    let bytes = fs::read(path).map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    String::from_utf8(bytes).map_err(|e| format!("{} is not UTF-8: {e}", path.display()))
}

/// Runs one case: an `error.yaml` case through the binary, any other through the library.
fn run_case(case: &Case, update: bool) -> Result<(), String> {
    if !case.dir.join("input.yaml").is_file() {
        return Err(format!("{}: no input.yaml", case.dir.display()));
    }
    let error = case.dir.join("error.yaml");
    if error.exists() {
        if case.dir.join("expected.yaml").exists() || case.dir.join("results.yaml").exists() {
            return Err(
                "a case has error.yaml or expected.yaml/results.yaml, not both".to_string(),
            );
        }
        return run_error_case(case);
    }
    run_output_case(case, update)
}

// ---------------------------------------------------------------------------------------------
// Which rules run

/// The case's policy from its `config.yaml`, if any.
fn policy(dir: &Path) -> Result<Option<PolicySpec>, String> {
    let path = dir.join("config.yaml");
    if !path.exists() {
        return Ok(None);
    }
    let text = read(&path)?;
    let doc = kube_harden::yaml::tree::parse_document(&text)
        .map_err(|e| format!("config.yaml: {}", e.message))?;
    let value = doc
        .root
        .ok_or_else(|| "config.yaml is empty".to_string())?
        .to_value();
    kube_harden::policy::spec_from_object(&value)
        .map(Some)
        .map_err(|e| format!("config.yaml: {e}"))
}

/// The rules the case switches off on top of its policy (the CLI's `--disable`): in a rule's
/// area every other rule but those `spec.enable` names; elsewhere pin-image-digests when the
/// case has no `images.lock`.
fn disabled_rules(case: &Case, spec: Option<&PolicySpec>) -> Vec<String> {
    let has_lock = case.dir.join("images.lock").exists();
    if ALL_RULES_AREAS.contains(&case.area.as_str()) {
        return if has_lock {
            Vec::new()
        } else {
            vec![PIN.to_string()]
        };
    }
    let enabled_by_config =
        |id: &str| spec.is_some_and(|s| s.enable.iter().any(|e| e.trim() == id));
    kube_harden::rules::registry()
        .iter()
        .map(|r| r.id())
        .filter(|id| *id != case.area && !enabled_by_config(id))
        .map(str::to_string)
        .collect()
}

/// The library options of a case: its policy, its rules, its lock.
fn options(case: &Case) -> Result<Options, String> {
    let spec = policy(&case.dir)?;
    let mut options = Options {
        verbosity: Verbosity::All,
        ..Options::default()
    };
    options.overrides.disable = disabled_rules(case, spec.as_ref());
    options.spec = spec;
    let lock = case.dir.join("images.lock");
    if lock.exists() {
        let lock = kube_harden::digest::ImageLock::load(&lock).map_err(|e| e.to_string())?;
        options.overrides.digests = Some(kube_harden::config::DigestHandle(std::sync::Arc::new(
            kube_harden::digest::LockSource::new(lock),
        )));
    }
    Ok(options)
}

// ---------------------------------------------------------------------------------------------
// expected.yaml + results.yaml cases

/// Warnings, errors and info findings (decisions such as "no probe: no port"; not the record of
/// changes, which the expected output shows), one per object and rule, one per line:
/// `<severity> <rule> <Kind/name> <field path, …>: <message>` (run with `verbosity: all`).
fn results_text<'r>(results: impl Iterator<Item = &'r KrmResult>) -> String {
    let mut text = String::new();
    for r in results {
        let resource = r
            .resource
            .as_ref()
            .map_or_else(|| "-".to_string(), |r| format!("{}/{}", r.kind, r.name));
        let paths: Vec<&str> = r.field_notes().iter().filter_map(|(p, _)| *p).collect();
        let path = if paths.is_empty() {
            "-".to_string()
        } else {
            paths.join(", ")
        };
        let _ = writeln!(
            text,
            "{} {} {} {}: {}",
            r.severity.as_str(),
            r.rule,
            resource,
            path,
            r.message
        );
    }
    text
}

/// A unified diff of `expected` against `actual` (3 lines of context), and the first differing
/// line escaped, which shows what a diff cannot (a `\r`, trailing spaces, a missing final newline).
fn diff(expected_label: &str, expected: &str, actual_label: &str, actual: &str) -> String {
    let mut out = similar::TextDiff::from_lines(expected, actual)
        .unified_diff()
        .context_radius(3)
        .header(expected_label, actual_label)
        .to_string();
    let mut e = expected.split_inclusive('\n');
    let mut a = actual.split_inclusive('\n');
    let mut line = 1;
    loop {
        match (e.next(), a.next()) {
            (None, None) => break,
            (Some(x), Some(y)) if x == y => line += 1,
            (x, y) => {
                let show = |s: Option<&str>| s.map_or("<end of text>".into(), |s| format!("{s:?}"));
                let _ = write!(
                    out,
                    "first difference, line {line}:\n  {expected_label}: {}\n  {actual_label}: {}",
                    show(x),
                    show(y)
                );
                break;
            }
        }
    }
    out
}

/// Compares `actual` with the golden file, or rewrites it under `UPDATE_GOLDEN=1`.
fn check_golden(path: &Path, actual: &str, update: bool, failures: &mut Vec<String>) {
    let file = file_name(path);
    if update {
        if fs::read(path).ok().as_deref() != Some(actual.as_bytes()) {
            if let Err(e) = fs::write(path, actual) {
                failures.push(format!("cannot write {}: {e}", path.display()));
            }
        }
        return;
    }
    match read(path) {
        Err(e) => failures.push(format!("{e} (run with UPDATE_GOLDEN=1 to create it)")),
        Ok(expected) if expected != actual => failures.push(format!(
            "{file} differs (UPDATE_GOLDEN=1 rewrites it; review the diff):\n{}",
            diff(&format!("{file} (golden)"), &expected, "actual", actual)
        )),
        Ok(_) => {}
    }
}

fn run_output_case(case: &Case, update: bool) -> Result<(), String> {
    let input = read(&case.dir.join("input.yaml"))?;
    let options = options(case)?;
    let first = process(&input, &options)
        .map_err(|e| format!("process failed: {e} (an expected failure belongs in error.yaml)"))?;
    let output = first.text();
    let mut failures = Vec::new();
    check_golden(
        &case.dir.join("expected.yaml"),
        &output,
        update,
        &mut failures,
    );
    check_golden(
        &case.dir.join("results.yaml"),
        &results_text(first.results.iter().filter(|r| !r.change)),
        update,
        &mut failures,
    );
    match process(&output, &options) {
        Ok(second) => {
            let again = second.text();
            if again != output {
                failures.push(format!(
                    "not idempotent: the second run changed the first run's output:\n{}",
                    diff("first run", &output, "second run", &again)
                ));
            }
        }
        Err(e) => failures.push(format!("second run failed: {e}")),
    }
    if failures.is_empty() {
        Ok(())
    } else {
        Err(failures.join("\n"))
    }
}

// ---------------------------------------------------------------------------------------------
// error.yaml cases

/// `error.yaml`: how the run of `kube-harden [--config config.yaml] [--offline --lock
/// images.lock] [--disable …] input.yaml` (in the case's folder) must fail.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct ErrorSpec {
    /// The exit status (default 1).
    #[serde(default = "exit_one")]
    exit_status: i32,
    /// Text that must appear in stderr, each entry on its own (for example the file, document and
    /// line the message names, and the reason).
    #[serde(default)]
    stderr: Vec<String>,
    /// For a ResourceList: the list still comes back on stdout, and its `results` must hold these
    /// (in any order, among others). Without it, stdout must be empty (a stream writes nothing).
    #[serde(default)]
    results: Option<Vec<ExpectedResult>>,
}

fn exit_one() -> i32 {
    1
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ExpectedResult {
    /// `error` (the default), `warning` or `info`.
    #[serde(default = "error_severity")]
    severity: String,
    /// Text the result's `message` must contain.
    message: String,
}

fn error_severity() -> String {
    "error".to_string()
}

fn read_error_spec(path: &Path) -> Result<ErrorSpec, String> {
    let text = read(path)?;
    let doc = kube_harden::yaml::tree::parse_document(&text)
        .map_err(|e| format!("error.yaml: {}", e.message))?;
    let value = doc.root.map(|r| r.to_value()).unwrap_or(Value::Null);
    serde_json::from_value(value).map_err(|e| format!("error.yaml: {e}"))
}

fn run_error_case(case: &Case) -> Result<(), String> {
    let spec = read_error_spec(&case.dir.join("error.yaml"))?;
    let mut failures = Vec::new();

    // The library (what the WASM builds and the npm package run) fails too: an error or an error
    // result.
    let input = read(&case.dir.join("input.yaml"))?;
    if let Ok(Ok(false)) = options(case).map(|o| process(&input, &o).map(|out| out.has_errors())) {
        failures.push(
            "the library run succeeded without an error result (kube_harden::process)".into(),
        );
    }

    // The binary, as a user runs it.
    let config = policy(&case.dir).ok().flatten();
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_kube-harden"));
    cmd.current_dir(&case.dir)
        .env_remove("KUBE_HARDEN_LOCK")
        .env_remove("KUBE_HARDEN_LOG_FILE")
        .arg("--offline");
    if case.dir.join("images.lock").exists() {
        cmd.args(["--lock", "images.lock"]);
    }
    if case.dir.join("config.yaml").exists() {
        cmd.args(["--config", "config.yaml"]);
    }
    let disabled = disabled_rules(case, config.as_ref());
    if !disabled.is_empty() {
        cmd.arg("--disable").arg(disabled.join(","));
    }
    cmd.arg("input.yaml")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let command = format!("{cmd:?}");
    let out = cmd
        .output()
        .map_err(|e| format!("cannot run {command}: {e}"))?;
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    if out.status.code() != Some(spec.exit_status) {
        failures.push(format!(
            "exit status {:?}, expected {}",
            out.status.code(),
            spec.exit_status
        ));
    }
    for want in &spec.stderr {
        if !stderr.contains(want.as_str()) {
            failures.push(format!("stderr does not contain {want:?}"));
        }
    }
    match &spec.results {
        None if !stdout.is_empty() => {
            failures.push("stdout is not empty (a failed stream writes nothing)".into())
        }
        None => {}
        Some(expected) => match list_results(&stdout) {
            Err(e) => failures.push(e),
            Ok(results) => {
                for want in expected {
                    let found = results.iter().any(|r| {
                        r["severity"] == want.severity.as_str()
                            && r["message"]
                                .as_str()
                                .is_some_and(|m| m.contains(want.message.as_str()))
                    });
                    if !found {
                        failures.push(format!(
                            "no {} result whose message contains {:?} in the ResourceList's results: {}",
                            want.severity,
                            want.message,
                            serde_json::to_string_pretty(&results).unwrap_or_default()
                        ));
                    }
                }
            }
        },
    }
    if failures.is_empty() {
        Ok(())
    } else {
        Err(format!(
            "{}\n--- command: {command}\n--- stderr:\n{stderr}--- stdout:\n{stdout}",
            failures.join("\n")
        ))
    }
}

/// The `results` of the ResourceList on stdout.
fn list_results(stdout: &str) -> Result<Vec<Value>, String> {
    let doc = kube_harden::yaml::tree::parse_document(stdout)
        .map_err(|e| format!("stdout is not one YAML document: {}", e.message))?;
    let list = doc.root.map(|r| r.to_value()).unwrap_or(Value::Null);
    if list["kind"] != "ResourceList" {
        return Err("stdout is not a ResourceList (error.yaml names results)".into());
    }
    Ok(list["results"].as_array().cloned().unwrap_or_default())
}
