//! `kube-harden check`: levels, exit status, the three output formats, and checking
//! kube-harden's own output.

use std::io::Write;
use std::path::PathBuf;
use std::process::{Command, Output, Stdio};

use serde_json::Value;

fn bin() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_kube-harden"))
}

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn run(args: &[&str], stdin: Option<&[u8]>) -> Output {
    let mut child = Command::new(bin())
        .args(args)
        .current_dir(repo())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run kube-harden");
    let mut pipe = child.stdin.take().unwrap();
    pipe.write_all(stdin.unwrap_or_default()).unwrap();
    drop(pipe);
    child.wait_with_output().unwrap()
}

const MANIFEST: &str = "\
# a node agent
apiVersion: apps/v1
kind: DaemonSet
metadata:
  name: agent
  namespace: kube-system
spec:
  template:
    spec:
      hostPID: true
      containers:
      - name: agent
        image: agent:1
---
apiVersion: v1
kind: Service
metadata:
  name: svc
---
apiVersion: batch/v1
kind: CronJob
metadata:
  name: tidy
spec:
  jobTemplate:
    spec:
      template:
        spec:
          securityContext:
            runAsNonRoot: true
            seccompProfile: {type: RuntimeDefault}
          containers:
          - name: tidy
            image: tidy:1
            securityContext:
              allowPrivilegeEscalation: false
              capabilities: {drop: [ALL]}
";

#[test]
fn level_sets_the_exit_status() {
    let out = run(
        &["check", "--level", "restricted"],
        Some(MANIFEST.as_bytes()),
    );
    assert_eq!(out.status.code(), Some(1));
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(text.contains("DaemonSet/kube-system/agent"), "{text}");
    assert!(text.contains("hostNamespaces"), "{text}");
    assert!(text.contains("spec.template.spec.hostPID"), "{text}");
    assert!(text.contains("CronJob/tidy"), "{text}");
    assert!(!text.contains("Service"), "{text}");
    let out = run(
        &["check", "--level", "privileged", "-"],
        Some(MANIFEST.as_bytes()),
    );
    assert_eq!(out.status.code(), Some(0));
    // Without --level the report never fails the run.
    assert_eq!(
        run(&["check"], Some(MANIFEST.as_bytes())).status.code(),
        Some(0)
    );
}

#[test]
fn json_and_versions() {
    let out = run(
        &[
            "check",
            "-o",
            "json",
            "--level",
            "baseline",
            "--pss-version",
            "v1.22",
        ],
        Some(MANIFEST.as_bytes()),
    );
    assert_eq!(out.status.code(), Some(1));
    let report: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(report["pssVersion"], "v1.22");
    assert_eq!(report["pass"], false);
    assert_eq!(report["summary"]["privileged"], 1);
    assert_eq!(report["summary"]["restricted"], 1);
    let agent = &report["objects"][0];
    assert_eq!(agent["kind"], "DaemonSet");
    assert_eq!(agent["line"], 2);
    assert_eq!(agent["failures"][0]["control"], "hostNamespaces");
    assert_eq!(agent["failures"][0]["line"], 10);
    let cron = &report["objects"][1];
    assert_eq!(cron["level"], "restricted");
    assert_eq!(cron["line"], 20);
    // Before v1.8 allowPrivilegeEscalation is no restricted control.
    let bare = "apiVersion: v1\nkind: Pod\nmetadata: {name: p}\nspec:\n  securityContext: {runAsNonRoot: true}\n  containers: [{name: c, image: x}]\n";
    let level = |v: &str| {
        let out = run(
            &["check", "-o", "json", "--pss-version", v],
            Some(bare.as_bytes()),
        );
        let r: Value = serde_json::from_slice(&out.stdout).unwrap();
        r["objects"][0]["level"].as_str().unwrap().to_string()
    };
    assert_eq!(level("v1.7"), "restricted");
    assert_eq!(level("v1.8"), "baseline");
    let bad = run(&["check", "--pss-version", "v2.1"], Some(b""));
    assert_eq!(bad.status.code(), Some(2));
}

#[test]
fn sarif_shape() {
    let dir = std::env::temp_dir().join(format!("kube-harden-check-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("manifest.yaml");
    std::fs::write(&file, MANIFEST).unwrap();
    let out = run(
        &[
            "check",
            "-o",
            "sarif",
            "--level",
            "baseline",
            file.to_str().unwrap(),
        ],
        None,
    );
    assert_eq!(out.status.code(), Some(1));
    let sarif: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(sarif["version"], "2.1.0");
    assert!(sarif["$schema"].as_str().unwrap().contains("sarif"));
    let run0 = &sarif["runs"][0];
    assert_eq!(run0["tool"]["driver"]["name"], "kube-harden");
    let rules = run0["tool"]["driver"]["rules"].as_array().unwrap();
    assert!(rules.iter().any(|r| r["id"] == "hostNamespaces"));
    let results = run0["results"].as_array().unwrap();
    let host = results
        .iter()
        .find(|r| r["ruleId"] == "hostNamespaces")
        .expect("a hostNamespaces result");
    assert_eq!(host["level"], "error");
    assert!(host["message"]["text"]
        .as_str()
        .unwrap()
        .contains("hostPID"));
    let loc = &host["locations"][0]["physicalLocation"];
    assert_eq!(loc["artifactLocation"]["uri"], file.to_str().unwrap());
    assert_eq!(loc["region"]["startLine"], 10);
    // Restricted-only controls are warnings when baseline is required.
    assert!(results
        .iter()
        .any(|r| r["ruleId"] == "runAsNonRoot" && r["level"] == "warning"));
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn checks_kube_hardens_own_output() {
    let hardened = run(
        &[
            "-q",
            "--offline",
            "--lock",
            "examples/basic/images.lock",
            "--config",
            "examples/basic/policy.yaml",
            "examples/basic/deployment.yaml",
        ],
        None,
    );
    assert!(hardened.status.success(), "{hardened:?}");
    let before = run(
        &[
            "check",
            "--level",
            "restricted",
            "examples/basic/deployment.yaml",
        ],
        None,
    );
    assert_eq!(before.status.code(), Some(1));
    let after = run(&["check", "--level", "restricted"], Some(&hardened.stdout));
    assert_eq!(
        after.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&after.stdout)
    );
}

#[test]
fn bad_input_is_an_error() {
    let out = run(&["check"], Some(b"apiVersion: v1\nkind: Pod\nspec: [\n"));
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("error"));
}

/// The failure of `control` in the JSON report of the first object.
fn failure<'v>(report: &'v Value, control: &str) -> &'v Value {
    report["objects"][0]["failures"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["control"] == control)
        .unwrap_or_else(|| panic!("no {control} failure in {report}"))
}

#[test]
fn says_whether_kube_harden_would_fix_each_failure() {
    let file = "examples/basic/deployment.yaml";
    // Without the image's facts: seccomp is fixed; runAsNonRoot is not, and the reason names
    // the unknown image and the fix.
    let out = run(&["check", "-o", "json", file], None);
    let report: Value = serde_json::from_slice(&out.stdout).unwrap();
    let seccomp = failure(&report, "seccompProfile_restricted");
    assert_eq!(seccomp["fix"]["fixed"], true, "{seccomp}");
    assert_eq!(seccomp["fix"]["rules"][0], "seccomp");
    let non_root = failure(&report, "runAsNonRoot");
    assert_eq!(non_root["fix"]["fixed"], false, "{non_root}");
    assert!(
        non_root["fix"]["reason"]
            .as_str()
            .unwrap()
            .contains("nothing is known about the user of image \"memcached:1.6.45-alpine\""),
        "{non_root}"
    );
    // With the lock's facts (a numeric user), every failing control is fixed, and hardening
    // really gives restricted.
    let lock = "examples/basic/images.lock";
    let out = run(&["check", "-o", "json", "--lock", lock, file], None);
    let report: Value = serde_json::from_slice(&out.stdout).unwrap();
    for f in report["objects"][0]["failures"].as_array().unwrap() {
        assert_eq!(f["fix"]["fixed"], true, "{f}");
    }
    assert_eq!(
        failure(&report, "runAsNonRoot")["fix"]["rules"][0],
        "run-as-non-root"
    );
    let hardened = run(&["--offline", "--lock", lock, file], None);
    assert!(hardened.status.success());
    let after = run(
        &["check", "--level", "restricted", "-"],
        Some(&hardened.stdout),
    );
    assert_eq!(
        after.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&after.stdout)
    );
    // An explicit value no rule changes, and a disabled rule.
    let dir = std::env::temp_dir().join(format!("kube-harden-fix-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let policy = dir.join("policy.yaml");
    std::fs::write(
        &policy,
        "apiVersion: kube-harden.dev/v1alpha1\nkind: HardeningPolicy\nspec:\n  disable: [seccomp]\n",
    )
    .unwrap();
    let out = run(
        &["check", "-o", "json", "-c", policy.to_str().unwrap(), "-"],
        Some(MANIFEST.as_bytes()),
    );
    let report: Value = serde_json::from_slice(&out.stdout).unwrap();
    let host = failure(&report, "hostNamespaces");
    assert_eq!(host["fix"]["fixed"], false);
    assert!(
        host["fix"]["reason"]
            .as_str()
            .unwrap()
            .contains("no kube-harden rule changes"),
        "{host}"
    );
    assert_eq!(
        failure(&report, "seccompProfile_restricted")["fix"]["reason"],
        "rule seccomp is disabled"
    );
    // Text and SARIF say it too (SARIF: in the message and the result's properties).
    let text = run(&["check", file], None);
    let text = String::from_utf8(text.stdout).unwrap();
    assert!(text.contains("→ kube-harden fixes it (seccomp)"), "{text}");
    assert!(
        text.contains("→ kube-harden does not fix it: container \"memcached\""),
        "{text}"
    );
    let sarif = run(&["check", "-o", "sarif", file], None);
    let sarif: Value = serde_json::from_slice(&sarif.stdout).unwrap();
    let results = sarif["runs"][0]["results"].as_array().unwrap();
    let seccomp = results
        .iter()
        .find(|r| r["ruleId"] == "seccompProfile_restricted")
        .unwrap();
    assert!(seccomp["message"]["text"]
        .as_str()
        .unwrap()
        .ends_with(" — kube-harden fixes it (seccomp)"));
    assert_eq!(seccomp["properties"]["fix"]["fixed"], true);
    std::fs::remove_dir_all(&dir).unwrap();
}

/// GitHub code scanning takes SARIF 2.1.0: `check -o sarif` on the whole pinned corpus (every
/// file, failing controls and the "would fix" answers included) validates against the OASIS
/// schema (pinned in tests/fixtures/sarif/, with its notice).
#[test]
fn sarif_of_the_corpus_validates_against_the_2_1_0_schema() {
    let schema: Value = serde_json::from_str(
        &std::fs::read_to_string(repo().join("tests/fixtures/sarif/sarif-schema-2.1.0.json"))
            .unwrap(),
    )
    .unwrap();
    let validator = jsonschema::draft4::new(&schema).expect("the SARIF schema compiles");
    let corpus = repo().join("tests/corpus");
    let mut files: Vec<String> = std::fs::read_dir(&corpus)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "yaml"))
        .map(|p| p.to_str().unwrap().to_string())
        .collect();
    files.sort();
    assert!(files.len() > 10, "corpus files: {files:?}");
    let mut args = vec!["check", "-o", "sarif"];
    args.extend(files.iter().map(String::as_str));
    let out = run(&args, None);
    let sarif: Value = serde_json::from_slice(&out.stdout).expect("SARIF is JSON");
    let results = sarif["runs"][0]["results"].as_array().unwrap();
    assert!(results.len() > 100, "{} results", results.len());
    let errors: Vec<String> = validator
        .iter_errors(&sarif)
        .take(10)
        .map(|e| format!("{} at {}", e, e.instance_path()))
        .collect();
    assert!(
        errors.is_empty(),
        "SARIF does not validate:\n{}",
        errors.join("\n")
    );
    // A document that breaks the schema is refused (the validator is not vacuous).
    let mut broken = sarif.clone();
    broken["runs"][0]["results"][0]["level"] = Value::from("fatal");
    assert!(!validator.is_valid(&broken));
}
