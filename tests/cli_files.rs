//! The CLI with several input files: files are joined into one stream without changing any
//! value, and errors name the file and the line in that file.

mod common;

use std::fs;
use std::process::Command;

use common::{bin, temp_dir};

fn run(files: &[(&str, &str)]) -> (bool, String, String) {
    let dir = temp_dir("cli-files");
    let mut cmd = Command::new(bin());
    cmd.args(["--offline", "--disable", "pin-image-digests", "-q"]);
    for (name, text) in files {
        let path = dir.join(name);
        fs::write(&path, text).unwrap();
        cmd.arg(path);
    }
    let out = cmd.output().unwrap();
    (
        out.status.success(),
        String::from_utf8(out.stdout).unwrap(),
        String::from_utf8(out.stderr).unwrap(),
    )
}

#[test]
fn a_final_block_scalar_keeps_its_value_when_another_file_follows() {
    let cm = "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: a\ndata:\n  x: |\n    hello";
    let ns = "apiVersion: v1\nkind: Namespace\nmetadata:\n  name: b\n";
    let (ok, stdout, stderr) = run(&[("cm.yaml", cm), ("ns.yaml", ns)]);
    assert!(ok, "{stderr}");
    assert_eq!(
        stdout,
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: a\ndata:\n  x: |-\n    hello\n---\n\
         apiVersion: v1\nkind: Namespace\nmetadata:\n  name: b\n"
    );
}

#[test]
fn errors_name_the_file_its_document_and_its_line() {
    let first = "apiVersion: v1\nkind: Namespace\nmetadata:\n  name: a\n---\napiVersion: v1\nkind: Namespace\nmetadata:\n  name: b";
    let second = "# second file\napiVersion: v1\nkind: Namespace\nmetadata:\n  name: c\n---\napiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: web\n  name: web2\n";
    let (ok, stdout, stderr) = run(&[("first.yaml", first), ("second.yaml", second)]);
    assert!(!ok);
    assert!(stdout.is_empty(), "{stdout}");
    let want = "second.yaml: document 2 (line 11): duplicate key \"name\"";
    assert!(
        stderr.contains(want) && stderr.contains("cli-files"),
        "{stderr}"
    );
    // One file: named too, with its own document and line (the stream's).
    let (ok, stdout, stderr) = run(&[("second.yaml", second)]);
    assert!(!ok);
    assert!(stdout.is_empty(), "{stdout}");
    assert!(
        stderr.contains("second.yaml: document 2 (line 11): duplicate key"),
        "{stderr}"
    );
}

#[test]
fn the_same_workload_as_a_document_and_a_list_item_names_both_files() {
    let deployment = "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: web\nspec:\n  template:\n    spec:\n      containers: [{name: c, image: nginx}]\n";
    let list = format!(
        "# overlay\napiVersion: v1\nkind: Namespace\nmetadata:\n  name: c\n---\napiVersion: v1\nkind: List\nitems:\n- {}\n",
        deployment.trim_end().replace('\n', "\n  ")
    );
    let (ok, stdout, stderr) = run(&[("base.yaml", deployment), ("overlay.yaml", &list)]);
    assert!(!ok);
    assert!(stdout.is_empty(), "{stdout}");
    assert!(
        stderr.contains(
            "overlay.yaml: document 2 (line 7): items[0]: Deployment web is in the input twice"
        ) && stderr.contains("base.yaml: document 1 (line 1))"),
        "{stderr}"
    );
    // Two documents: no error, and no budget for either (tested in the engine).
    let (ok, _, stderr) = run(&[("base.yaml", deployment), ("again.yaml", deployment)]);
    assert!(ok, "{stderr}");
}
