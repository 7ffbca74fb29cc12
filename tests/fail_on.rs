//! `--fail-on warning`: a CI job fails when something stays insecure; the output is still
//! written. The default fails on errors only.

use std::process::Command;

fn run(args: &[&str]) -> (i32, String) {
    let root = env!("CARGO_MANIFEST_DIR");
    let out = Command::new(env!("CARGO_BIN_EXE_kube-harden"))
        .args(args)
        .current_dir(root)
        .env_remove("KUBE_HARDEN_LOCK")
        .output()
        .unwrap();
    (
        out.status.code().unwrap(),
        String::from_utf8(out.stdout).unwrap(),
    )
}

#[test]
fn fail_on_warning_exits_1_and_still_writes() {
    // An explicit allowPrivilegeEscalation: true stays, with a warning.
    let case = "testdata/no-privilege-escalation/explicit-true";
    let config = format!("{case}/config.yaml");
    let input = format!("{case}/input.yaml");
    let base = [
        "--offline",
        "--disable",
        "pin-image-digests",
        "--config",
        &config,
        &input,
    ];
    let (code, default_out) = run(&base);
    assert_eq!(code, 0, "warnings alone do not fail by default");
    let mut args = base.to_vec();
    args.extend(["--fail-on", "warning"]);
    let (code, out) = run(&args);
    assert_eq!(code, 1);
    assert_eq!(out, default_out, "the output is written all the same");
    // `--fail-on error` is the default.
    let mut args = base.to_vec();
    args.extend(["--fail-on", "error"]);
    assert_eq!(run(&args), (0, default_out));
}

#[test]
fn log_file_from_the_environment() {
    // A kustomize exec plugin gets no flags: the summary goes to $KUBE_HARDEN_LOG_FILE.
    let dir = std::env::temp_dir().join(format!("kh-log-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let log = dir.join("kh.log");
    let case = "testdata/no-privilege-escalation/explicit-true";
    let out = Command::new(env!("CARGO_BIN_EXE_kube-harden"))
        .args(["--offline", "--disable", "pin-image-digests", "--config"])
        .arg(format!("{case}/config.yaml"))
        .arg(format!("{case}/input.yaml"))
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .env("KUBE_HARDEN_LOG_FILE", &log)
        .output()
        .unwrap();
    assert!(out.status.success());
    let text = std::fs::read_to_string(&log).unwrap();
    assert!(text.contains("workloads changed"), "{text}");
    assert!(text.contains("warning:"), "{text}");
    std::fs::remove_dir_all(&dir).unwrap();
}
