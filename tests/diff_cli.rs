//! `--diff` and `--exit-code`: the diff names each input file, `patch -p0` applied to the inputs
//! gives exactly the output of a normal run, and an unchanged input diffs to nothing (exit 0).

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn bin() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_kube-harden"))
}

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn run(dir: &Path, args: &[&str]) -> Output {
    let basic = repo().join("examples/basic");
    Command::new(bin())
        .current_dir(dir)
        .args(["-q", "--offline", "--lock"])
        .arg(basic.join("images.lock"))
        .arg("--config")
        .arg(basic.join("policy.yaml"))
        .args(args)
        .output()
        .expect("run kube-harden")
}

const FILES: [&str; 3] = ["deploy.yaml", "service.yaml", "config.yaml"];

fn setup(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("kube-harden-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::copy(
        repo().join("examples/basic/deployment.yaml"),
        dir.join(FILES[0]),
    )
    .unwrap();
    std::fs::write(
        dir.join(FILES[1]),
        "apiVersion: v1\nkind: Service\nmetadata:\n  name: cache\n",
    )
    .unwrap();
    // No final newline: joining the files adds one, the diff must not.
    std::fs::write(
        dir.join(FILES[2]),
        "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: c}",
    )
    .unwrap();
    dir
}

#[test]
fn diff_applies_with_patch_and_gives_the_output() {
    let dir = setup("diff");
    let normal = run(&dir, &FILES);
    assert!(normal.status.success(), "{normal:?}");
    let diff = run(&dir, &["--diff", FILES[0], FILES[1], FILES[2]]);
    assert!(diff.status.success(), "{diff:?}");
    let text = String::from_utf8(diff.stdout.clone()).unwrap();
    assert!(
        text.starts_with("--- deploy.yaml\n+++ deploy.yaml\n@@ "),
        "{text}"
    );
    assert!(
        !text.contains("--- service.yaml"),
        "unchanged files are left out:\n{text}"
    );
    assert!(!text.contains("--- config.yaml"), "{text}");
    assert!(
        text.contains("+          allowPrivilegeEscalation: false"),
        "{text}"
    );

    let Ok(patch) = Command::new("patch")
        .current_dir(&dir)
        .args(["-p0", "-s", "-i", "-"])
        .stdin(std::process::Stdio::piped())
        .spawn()
    else {
        eprintln!("skipped applying the diff: `patch` is not installed");
        return;
    };
    let mut patch = patch;
    std::io::Write::write_all(patch.stdin.as_mut().unwrap(), &diff.stdout).unwrap();
    drop(patch.stdin.take());
    assert!(patch.wait().unwrap().success());
    // The patched files, joined as kube-harden joins its inputs, are the normal output.
    let mut joined = String::new();
    for (i, f) in FILES.iter().enumerate() {
        if i > 0 {
            if !joined.ends_with('\n') {
                joined.push('\n');
            }
            joined.push_str("---\n");
        }
        joined.push_str(&std::fs::read_to_string(dir.join(f)).unwrap());
    }
    assert_eq!(joined, String::from_utf8(normal.stdout).unwrap());
    // Hardened input: nothing more to change.
    let again = run(
        &dir,
        &["--diff", "--exit-code", FILES[0], FILES[1], FILES[2]],
    );
    assert_eq!(again.status.code(), Some(0), "{again:?}");
    assert!(again.stdout.is_empty());
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn exit_code_reports_changes() {
    let dir = setup("exit-code");
    let out = run(&dir, &["--diff", "--exit-code", FILES[0]]);
    assert_eq!(out.status.code(), Some(1));
    assert!(!out.stdout.is_empty());
    let out = run(&dir, &["--exit-code", FILES[0]]);
    assert_eq!(
        out.status.code(),
        Some(1),
        "without --diff the output is written"
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("kind: Deployment"));
    let out = run(&dir, &["--diff", "--exit-code", FILES[1]]);
    assert_eq!(out.status.code(), Some(0));
    assert!(out.stdout.is_empty());
    std::fs::remove_dir_all(&dir).unwrap();
}
