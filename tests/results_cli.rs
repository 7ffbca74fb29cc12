//! Results people can read: one per object and rule (`--results FILE`, KRM), info results only
//! with a verbosity, and a stderr summary that lists per object what was hardened and what stays
//! insecure, bounded for large inputs.

mod common;

use std::process::Command;

use serde_json::Value;

/// Runs the CLI with `input` on stdin, without a lock or log file from the environment: (exit
/// code, stdout, stderr).
fn run(args: &[&str], input: &str) -> (i32, String, String) {
    let out = common::run(
        Command::new(common::bin())
            .args(args)
            .env_remove("KUBE_HARDEN_LOCK")
            .env_remove("KUBE_HARDEN_LOG_FILE"),
        Some(input.as_bytes()),
    );
    (out.status.code().unwrap(), out.stdout, out.stderr)
}

fn deployment(name: &str, extra: &str) -> String {
    format!(
        "---\napiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: {name}\nspec:\n  selector:\n    matchLabels: {{app: {name}}}\n  template:\n    metadata:\n      labels: {{app: {name}}}\n    spec:\n      containers:\n      - name: app\n        image: nginx:1.27\n        ports: [{{containerPort: 8080}}]\n{extra}      - name: side\n        image: busybox:1.36\n        ports: [{{containerPort: 9090}}]\n"
    )
}

const PRIVILEGED: &str = "        securityContext: {privileged: true}\n";

fn yaml(text: &str) -> Value {
    let doc = kube_harden::yaml::tree::parse_document(text).unwrap();
    doc.root.unwrap().to_value()
}

#[test]
fn the_summary_lists_each_object_and_is_bounded() {
    let mut input = deployment("insecure", PRIVILEGED);
    for i in 0..24 {
        input.push_str(&deployment(&format!("web-{i}"), ""));
    }
    let (code, _, stderr) = run(
        &[
            "--disable",
            "pin-image-digests",
            "--offline",
            "--verbosity",
            "problems",
        ],
        &input,
    );
    assert_eq!(code, 0, "{stderr}");
    let lines: Vec<&str> = stderr.lines().collect();
    assert!(
        lines[0].starts_with("kube-harden: 25 of 25 workloads changed"),
        "{stderr}"
    );
    // The first object: one line saying what was hardened, then one line per insecure item.
    assert!(
        lines[1].starts_with("  Deployment insecure: hardened ")
            && lines[1].contains("seccomp RuntimeDefault")
            && lines[1].ends_with(" fields)"),
        "{stderr}"
    );
    assert!(
        lines[2].starts_with("    warning: ") && lines.iter().any(|l| l.contains("is privileged")),
        "{stderr}"
    );
    let objects = lines
        .iter()
        .filter(|l| l.starts_with("  Deployment "))
        .count();
    assert_eq!(objects, 20, "the first 20 objects are listed:\n{stderr}");
    let last = *lines.last().unwrap();
    assert!(
        last.starts_with("  … and 5 more changed objects, ")
            && last.ends_with(" more warnings and errors (--results FILE lists them all)"),
        "{stderr}"
    );
    // One line per insecure item: both containers' run-as-non-root findings of web-0.
    let web0 = stderr.split("  Deployment web-0:").nth(1).unwrap();
    let web0 = web0.split("  Deployment web-1:").next().unwrap();
    assert_eq!(
        web0.lines()
            .filter(|l| l.starts_with("    warning: container") && l.ends_with("[run-as-non-root]"))
            .count(),
        2,
        "{web0}"
    );
}

#[test]
fn results_file_has_one_result_per_object_and_rule() {
    let dir = std::env::temp_dir().join(format!("kh-results-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let input = deployment("web", "");
    let file = dir.join("all.yaml");
    let (code, _, stderr) = run(
        &[
            "--disable",
            "pin-image-digests",
            "--results",
            file.to_str().unwrap(),
        ],
        &input,
    );
    assert_eq!(code, 0, "{stderr}");
    let all = yaml(&std::fs::read_to_string(&file).unwrap());
    let results = all["results"].as_array().unwrap();
    // `--results` without a verbosity: every result (all), one per object, rule and severity.
    let mut keys: Vec<(String, String)> = results
        .iter()
        .map(|r| {
            (
                r["tags"]["rule"].as_str().unwrap().to_string(),
                r["severity"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    let n = keys.len();
    keys.sort();
    keys.dedup();
    assert_eq!(
        keys.len(),
        n,
        "one result per object, rule and severity: {results:?}"
    );
    // Both containers' probes are one default-probes result carrying six field paths.
    let probes = results
        .iter()
        .find(|r| r["tags"]["rule"] == "default-probes" && r["severity"] == "info")
        .expect("a default-probes result");
    assert!(probes["field"].is_null(), "{probes}");
    let paths = probes["fieldPaths"].as_array().unwrap();
    assert_eq!(paths.len(), 6, "{probes}");
    assert!(paths.contains(&Value::from(
        "spec.template.spec.containers[1].startupProbe"
    )));
    // `--verbosity changes`: one info line per changed object, no per-rule records.
    let file = dir.join("changes.yaml");
    let (code, _, stderr) = run(
        &[
            "--disable",
            "pin-image-digests",
            "--verbosity",
            "changes",
            "--results",
            file.to_str().unwrap(),
        ],
        &input,
    );
    assert_eq!(code, 0, "{stderr}");
    let changes = yaml(&std::fs::read_to_string(&file).unwrap());
    let info: Vec<&Value> = changes["results"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| r["severity"] == "info")
        .collect();
    assert_eq!(info.len(), 1, "{info:?}");
    assert!(info[0]["message"]
        .as_str()
        .unwrap()
        .starts_with("hardened "));
    // The policy's verbosity applies too; `--verbosity` replaces it.
    let policy = dir.join("policy.yaml");
    std::fs::write(
        &policy,
        "apiVersion: kube-harden.dev/v1alpha1\nkind: HardeningPolicy\nspec:\n  verbosity: problems\n",
    )
    .unwrap();
    let file = dir.join("problems.yaml");
    let (code, _, stderr) = run(
        &[
            "--disable",
            "pin-image-digests",
            "--config",
            policy.to_str().unwrap(),
            "--results",
            file.to_str().unwrap(),
        ],
        &input,
    );
    assert_eq!(code, 0, "{stderr}");
    let problems = yaml(&std::fs::read_to_string(&file).unwrap());
    assert!(
        problems["results"]
            .as_array()
            .unwrap()
            .iter()
            .all(|r| r["severity"] != "info"),
        "{problems}"
    );
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn a_resource_list_shows_info_only_with_a_verbosity() {
    let list = |verbosity: &str| {
        format!(
            "apiVersion: config.kubernetes.io/v1\nkind: ResourceList\nfunctionConfig:\n  apiVersion: v1\n  kind: ConfigMap\n  data:\n    disable: pin-image-digests\n{verbosity}items:\n{}",
            (0..700)
                .map(|i| {
                    deployment(&format!("web-{i}"), "")
                        .trim_start_matches("---\n")
                        .lines()
                        .enumerate()
                        .map(|(n, l)| {
                            if n == 0 {
                                format!("- {l}\n")
                            } else {
                                format!("  {l}\n")
                            }
                        })
                        .collect::<String>()
                })
                .collect::<String>()
        )
    };
    let results = |text: &str| -> Vec<Value> {
        yaml(text)["results"]
            .as_array()
            .cloned()
            .unwrap_or_default()
    };
    let (code, out, stderr) = run(&[], &list(""));
    assert_eq!(code, 0, "{stderr}");
    assert!(
        results(&out).iter().all(|r| r["severity"] != "info"),
        "no info results by default"
    );
    let (code, out, stderr) = run(&[], &list("    verbosity: changes\n"));
    assert_eq!(code, 0, "{stderr}");
    let info: Vec<Value> = results(&out)
        .into_iter()
        .filter(|r| r["severity"] == "info")
        .collect();
    // 700 Deployments: 700 lines, not one per changed field (about 8,400 before).
    assert_eq!(info.len(), 700);
    assert!(info
        .iter()
        .all(|r| r["message"].as_str().unwrap().starts_with("hardened ")));
}

/// Without `--results` a stream's warnings past the objects the summary lists are counted, not
/// held: the summary and `--fail-on warning` are the same as when every result is held (a
/// results file holds them all), also past the point where the sink starts trimming (1,024
/// results) and across worker threads.
#[test]
fn the_summary_is_the_same_whether_results_are_held_or_counted() {
    let mut input = String::new();
    for i in 0..700 {
        // Unchanged objects with warnings first, then changed ones, then an error-free tail.
        let extra = if i < 30 { PRIVILEGED } else { "" };
        input.push_str(&deployment(&format!("web-{i}"), extra));
    }
    let dir = std::env::temp_dir().join(format!("kh-summary-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("results.yaml");
    let args = [
        "--disable",
        "pin-image-digests",
        "--offline",
        "--fail-on",
        "warning",
    ];
    let (counted_code, counted_out, counted_err) = run(&args, &input);
    let mut with_file: Vec<&str> = args.to_vec();
    let file_arg = file.to_str().unwrap();
    with_file.extend(["--results", file_arg]);
    let (held_code, held_out, held_err) = run(&with_file, &input);
    std::fs::remove_dir_all(&dir).ok();
    assert_eq!(counted_code, 1, "warnings fail the run: {counted_err}");
    assert_eq!(counted_code, held_code);
    assert_eq!(counted_out, held_out);
    assert_eq!(counted_err, held_err);
    assert!(
        counted_err.contains("more warnings and errors"),
        "{counted_err}"
    );
}

/// A results file that cannot be written: a clear error naming it, exit 1, nothing on stdout
/// (the stream is not delivered), no summary; the same when the disk is full (`/dev/full`).
/// A run that fails on its input leaves no results file, not part of one.
#[test]
fn a_results_file_that_cannot_be_written_fails_the_run() {
    let harden = |path: &str, input: &str| {
        let args = [
            "--disable",
            "pin-image-digests",
            "--offline",
            "--results",
            path,
        ];
        run(&args, input)
    };
    let input = deployment("web", "") + &deployment("api", "");
    let dir = std::env::temp_dir().join(format!("kh-results-error-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let missing = dir.join("no-such-dir").join("results.yaml");
    let mut targets = vec![(missing.to_str().unwrap().to_string(), "No such file")];
    if std::path::Path::new("/dev/full").exists() {
        targets.push(("/dev/full".into(), "No space left"));
    }
    for (target, why) in targets {
        let (code, out, err) = harden(&target, &input);
        assert_eq!(code, 1, "{err}");
        assert!(out.is_empty(), "{out}");
        assert_eq!(err.lines().count(), 1, "{err}");
        assert!(
            err.starts_with(&format!("kube-harden: error: writing {target}: {why}")),
            "{err}"
        );
    }
    // Bad input after a hundred good documents: the error, and no results file.
    let file = dir.join("results.yaml");
    let mut bad = String::new();
    for i in 0..100 {
        bad.push_str(&deployment(&format!("web-{i}"), ""));
    }
    bad.push_str("---\na: [\n");
    let (code, out, err) = harden(file.to_str().unwrap(), &bad);
    assert_eq!(code, 1, "{err}");
    assert!(out.is_empty() && err.contains("document 101"), "{err}");
    assert!(!file.exists(), "a partial results file was left");
    // An existing results file (here through a symbolic link) stays as it was when a run fails,
    // and is replaced when one succeeds; no temporary file is left beside it either way.
    std::fs::write(&file, "results: []\n").unwrap();
    let link = dir.join("link.yaml");
    std::os::unix::fs::symlink(&file, &link).unwrap();
    for path in [&file, &link] {
        let (code, _, err) = harden(path.to_str().unwrap(), &bad);
        assert_eq!(code, 1, "{err}");
        assert_eq!(std::fs::read_to_string(&file).unwrap(), "results: []\n");
    }
    let (code, _, err) = harden(link.to_str().unwrap(), &input);
    assert_eq!(code, 0, "{err}");
    assert!(
        link.is_symlink(),
        "the link was replaced instead of the file it names"
    );
    let written = std::fs::read_to_string(&file).unwrap();
    assert!(written.starts_with("results:\n- "), "{written}");
    let names: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert!(
        names.iter().all(|n| !n.ends_with(".tmp")),
        "a temporary file was left: {names:?}"
    );
    std::fs::remove_dir_all(&dir).ok();
}
