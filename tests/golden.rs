//! Golden tests: every `testdata/<area>/<case>/` runs `input.yaml` (with the optional `config.yaml`
//! policy) through `kube_harden::process` and compares the output with `expected.yaml` and the
//! warnings and errors with `results.yaml`; each output must also come out unchanged when it is
//! processed again (idempotency). `UPDATE_GOLDEN=1 cargo test --test golden` rewrites the files.

use std::fmt::Write as _;
use std::fs;
use std::path::{Path, PathBuf};

use kube_harden::change::KrmResult;
use kube_harden::config::Verbosity;
use kube_harden::{process, Options};

/// One case directory.
struct Case {
    name: String,
    dir: PathBuf,
}

/// Every `testdata/<area>/<case>/` that holds an `input.yaml`, sorted by name.
fn cases() -> Vec<Case> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("testdata");
    let mut cases = Vec::new();
    for area in sorted_dirs(&root) {
        for case in sorted_dirs(&area) {
            if case.join("input.yaml").is_file() {
                let name = case
                    .strip_prefix(&root)
                    .unwrap_or(&case)
                    .to_string_lossy()
                    .replace('\\', "/");
                cases.push(Case { name, dir: case });
            }
        }
    }
    cases
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

/// The policy from the case's `config.yaml`, if any, and its digests: the case's `images.lock`
/// is the run's only digest source (no network). Cases outside `testdata/pin-image-digests/`
/// without an `images.lock` run with pin-image-digests off, as they are about other rules.
fn options(dir: &Path) -> Result<Options, String> {
    let mut options = policy_options(dir)?;
    let lock = dir.join("images.lock");
    if lock.exists() {
        let lock = kube_harden::digest::ImageLock::load(&lock).map_err(|e| e.to_string())?;
        options.overrides.digests = Some(kube_harden::config::DigestHandle(std::sync::Arc::new(
            kube_harden::digest::LockSource::new(lock),
        )));
    } else if !dir
        .parent()
        .is_some_and(|p| p.ends_with("pin-image-digests"))
    {
        options
            .overrides
            .disable
            .push(kube_harden::rules::pin_image_digests::ID.to_string());
    }
    Ok(options)
}

fn policy_options(dir: &Path) -> Result<Options, String> {
    let path = dir.join("config.yaml");
    if !path.exists() {
        return Ok(Options {
            verbosity: Verbosity::All,
            ..Options::default()
        });
    }
    let text = read(&path)?;
    let doc = kube_harden::yaml::tree::parse_document(&text)
        .map_err(|e| format!("config.yaml: {}", e.message))?;
    let value = doc
        .root
        .ok_or_else(|| "config.yaml is empty".to_string())?
        .to_value();
    let spec =
        kube_harden::config::spec_from_object(&value).map_err(|e| format!("config.yaml: {e}"))?;
    Ok(Options {
        spec: Some(spec),
        verbosity: Verbosity::All,
        ..Default::default()
    })
}

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

/// Where two texts first differ, for the failure message.
fn first_difference(expected: &str, actual: &str) -> String {
    let mut e = expected.split_inclusive('\n');
    let mut a = actual.split_inclusive('\n');
    let mut line = 1;
    loop {
        match (e.next(), a.next()) {
            (None, None) => return "texts are equal".into(),
            (Some(x), Some(y)) if x == y => line += 1,
            (x, y) => {
                return format!(
                    "line {line}:\n      expected: {}\n      actual:   {}",
                    x.map_or("<end of text>".into(), |s| format!("{s:?}")),
                    y.map_or("<end of text>".into(), |s| format!("{s:?}"))
                )
            }
        }
    }
}

/// Compares `actual` with the golden file, or rewrites it under `UPDATE_GOLDEN=1`.
fn check_golden(path: &Path, actual: &str, update: bool, failures: &mut Vec<String>) {
    let file = path.file_name().unwrap_or_default().to_string_lossy();
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
            "{file} differs at {}",
            first_difference(&expected, actual)
        )),
        Ok(_) => {}
    }
}

/// Runs one case; returns what went wrong.
fn run_case(case: &Case, update: bool) -> Vec<String> {
    let mut failures = Vec::new();
    let input = match read(&case.dir.join("input.yaml")) {
        Ok(t) => t,
        Err(e) => return vec![e],
    };
    let options = match options(&case.dir) {
        Ok(o) => o,
        Err(e) => return vec![e],
    };
    let first = match process(&input, &options) {
        Ok(out) => out,
        Err(e) => return vec![format!("process failed: {e}")],
    };
    let output = first.text();
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
                    "not idempotent: second run differs at {}",
                    first_difference(&output, &again)
                ));
            }
        }
        Err(e) => failures.push(format!("second run failed: {e}")),
    }
    failures
}

#[test]
fn golden() {
    let update = std::env::var_os("UPDATE_GOLDEN").is_some_and(|v| v == "1");
    let cases = cases();
    assert!(
        !cases.is_empty(),
        "no golden cases found under testdata/<area>/<case>/input.yaml"
    );
    let mut report = String::new();
    let mut failed = 0;
    for case in &cases {
        let failures = run_case(case, update);
        if !failures.is_empty() {
            failed += 1;
            let _ = writeln!(report, "{}:", case.name);
            for f in failures {
                let _ = writeln!(report, "    {f}");
            }
        }
    }
    assert!(
        failed == 0,
        "{failed} of {} golden cases failed:\n{report}",
        cases.len()
    );
}
