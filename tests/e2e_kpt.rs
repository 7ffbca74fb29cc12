//! kpt, end to end with the real `kpt` binary on `examples/kpt/package`: `kpt fn render` with the
//! Kptfile pipeline (`exec: kube-harden` + `configPath:`) and `kpt fn eval --exec kube-harden`,
//! run as examples/kpt/README.md documents them.

mod common;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

fn kpt(test: &str) -> Option<PathBuf> {
    let kpt = common::find_tool(&[PathBuf::from("kpt")]);
    if kpt.is_none() {
        common::skip(test, "kpt is not on PATH");
    }
    kpt
}

/// A copy of the example package in a fresh directory; returns (work dir, package dir).
fn package(test: &str) -> (PathBuf, PathBuf) {
    let work = common::temp_dir(test);
    let pkg = work.join("package");
    common::copy_dir(&common::repo().join("examples/kpt/package"), &pkg);
    (work, pkg)
}

fn kpt_run(kpt: &Path, work: &Path, args: &[&str]) -> common::Run {
    let mut cmd = Command::new(kpt);
    cmd.args(args)
        .current_dir(work)
        .env("PATH", common::path_with_bin());
    common::run(&mut cmd, None)
}

/// Every file of a package, by relative path.
fn snapshot(dir: &Path) -> BTreeMap<String, String> {
    let mut files = BTreeMap::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for entry in std::fs::read_dir(&d).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                stack.push(path);
            } else {
                let rel = path
                    .strip_prefix(dir)
                    .unwrap()
                    .to_string_lossy()
                    .into_owned();
                files.insert(rel, std::fs::read_to_string(&path).unwrap());
            }
        }
    }
    files
}

fn value(text: &str) -> serde_json::Value {
    common::parse_stream(text).remove(0)
}

fn kpt_render_runs_the_pipeline_keeps_comments_and_is_stable() {
    let Some(kpt) = kpt("kpt_render") else {
        return;
    };
    let (work, pkg) = package("kpt_render");
    let before = snapshot(&pkg);
    let run = kpt_run(
        &kpt,
        &work,
        &[
            "fn",
            "render",
            "package",
            "--allow-exec",
            "--results-dir",
            "results",
        ],
    )
    .ok("kpt fn render");
    // What kpt prints (the policy says `verbosity: changes`): one line per changed or generated
    // object, saying what was hardened, and nothing truncated.
    let printed = format!("{}{}", run.stdout, run.stderr);
    let lines: Vec<&str> = printed
        .lines()
        .map(str::trim)
        .filter(|l| l.starts_with('['))
        .filter(|l| !l.starts_with("[RUNNING]") && !l.starts_with("[PASS]"))
        .collect();
    assert_eq!(
        lines.len(),
        3,
        "one line per changed object expected:\n{printed}"
    );
    assert!(
        lines[0].starts_with("[info] apps/v1/Deployment/web: hardened runAsNonRoot, ")
            && lines[0].contains("seccomp RuntimeDefault")
            && lines[0].contains("drop ALL")
            && lines[0].contains("image digest")
            && lines[0].ends_with(" fields)"),
        "{}",
        lines[0]
    );
    assert!(
        lines[1].starts_with("[info] batch/v1/CronJob/report: hardened "),
        "{}",
        lines[1]
    );
    assert_eq!(
        lines[2],
        "[info] policy/v1/PodDisruptionBudget/web: generated: Deployment web runs 3 replicas"
    );
    assert!(!printed.contains("truncated"), "{printed}");
    let after = snapshot(&pkg);
    let deployment = &after["app/deployment.yaml"];
    let d = value(deployment);
    common::assert_hardened(&d);
    assert_eq!(
        common::pod_spec(&d)["securityContext"]["runAsUser"],
        10001,
        "configPath policy"
    );
    for comment in [
        "# The web tier. Comments like this one survive kube-harden.".to_string(),
        "replicas: 3 # three replicas".to_string(),
        // pin-image-digests appends the digest and keeps the comment.
        format!(
            "image: {} # pinned minor",
            common::pinned("nginxinc/nginx-unprivileged:1.27")
        ),
    ] {
        assert!(
            deployment.contains(comment.as_str()),
            "lost `{comment}`:\n{deployment}"
        );
    }
    common::assert_hardened(&value(&after["jobs/cronjob.yaml"]));
    for unchanged in ["Kptfile", "policy.yaml", "app/service.yaml"] {
        assert_eq!(after[unchanged], before[unchanged], "{unchanged} changed");
    }
    // Results are visible with --results-dir.
    let results = value(&std::fs::read_to_string(work.join("results/results.yaml")).unwrap());
    assert_eq!(results["kind"], "FunctionResultList");
    assert_eq!(results["exitCode"], 0);
    let item = &results["items"][0];
    assert_eq!(item["exec"], "kube-harden");
    let list = item["results"].as_array().expect("results");
    assert!(list.iter().any(|r| r["tags"]["rule"] == "kube-harden"
        && r["message"]
            .as_str()
            .unwrap()
            .contains("seccomp RuntimeDefault")
        && r["resourceRef"]["name"] == "web"
        && r["file"]["path"] == "app/deployment.yaml"));
    assert_eq!(list.len(), 3, "one result per changed object: {list:?}");
    // A second render changes nothing.
    kpt_run(&kpt, &work, &["fn", "render", "package", "--allow-exec"]).ok("second render");
    assert_eq!(
        snapshot(&pkg),
        after,
        "the second render changed the package"
    );
}

fn kpt_eval_exec_takes_key_values() {
    let Some(kpt) = kpt("kpt_eval") else {
        return;
    };
    let (work, pkg) = package("kpt_eval");
    let run = kpt_run(
        &kpt,
        &work,
        &[
            "fn",
            "eval",
            "package",
            "--exec",
            "kube-harden",
            "--",
            "disable=writable-tmp",
            "runAsUser=20000",
            "unknownImages=harden",
        ],
    )
    .ok("kpt fn eval --exec kube-harden");
    // No verbosity given: no info results, so kpt prints no result lines for a clean run.
    let printed = format!("{}{}", run.stdout, run.stderr);
    assert!(!printed.contains("[info]"), "{printed}");
    let d = value(&std::fs::read_to_string(pkg.join("app/deployment.yaml")).unwrap());
    let pod = common::pod_spec(&d);
    assert_eq!(pod["securityContext"]["runAsUser"], 20000);
    assert_eq!(
        pod["containers"][0]["securityContext"]["readOnlyRootFilesystem"],
        true
    );
    assert!(pod["volumes"].is_null(), "writable-tmp was disabled: {pod}");
}

fn kpt_render_takes_an_inline_config_map() {
    let Some(kpt) = kpt("kpt_render_config_map") else {
        return;
    };
    let (work, pkg) = package("kpt_render_config_map");
    let kptfile = pkg.join("Kptfile");
    let text = std::fs::read_to_string(&kptfile).unwrap();
    assert!(text.contains("    configPath: policy.yaml\n"), "{text}");
    std::fs::write(
        &kptfile,
        text.replace(
            "    configPath: policy.yaml\n",
            "    configMap:\n      disable: writable-tmp,default-probes\n      runAsUser: \"20000\"\n",
        ),
    )
    .unwrap();
    kpt_run(&kpt, &work, &["fn", "render", "package", "--allow-exec"]).ok("kpt fn render");
    let d = value(&std::fs::read_to_string(pkg.join("app/deployment.yaml")).unwrap());
    let pod = common::pod_spec(&d);
    assert_eq!(pod["securityContext"]["runAsUser"], 20000, "{pod}");
    assert!(pod["volumes"].is_null(), "writable-tmp was disabled: {pod}");
    assert!(
        pod["containers"][0]["readinessProbe"].is_null(),
        "default-probes was disabled: {pod}"
    );
}

fn kpt_eval_with_the_policy_as_fn_config() {
    let Some(kpt) = kpt("kpt_eval_fn_config") else {
        return;
    };
    let (work, pkg) = package("kpt_eval_fn_config");
    let exe = common::bin();
    kpt_run(
        &kpt,
        &work,
        &[
            "fn",
            "eval",
            "package",
            "--exec",
            exe.to_str().unwrap(),
            "--fn-config",
            "package/policy.yaml",
        ],
    )
    .ok("kpt fn eval --fn-config");
    let d = value(&std::fs::read_to_string(pkg.join("app/deployment.yaml")).unwrap());
    let pod = common::pod_spec(&d);
    assert_eq!(pod["securityContext"]["runAsGroup"], 10001);
    assert!(pod["containers"][0]["volumeMounts"]
        .as_array()
        .unwrap()
        .iter()
        .any(|m| m["mountPath"] == "/var/cache/nginx"));
}

fn kpt_fails_on_a_bad_policy_and_writes_nothing() {
    let Some(kpt) = kpt("kpt_error") else {
        return;
    };
    let (work, pkg) = package("kpt_error");
    let before = snapshot(&pkg);
    let out = kpt_run(
        &kpt,
        &work,
        &[
            "fn",
            "eval",
            "package",
            "--exec",
            "kube-harden",
            "--",
            "disable=no-such-rule",
        ],
    );
    assert!(!out.status.success(), "kpt must fail");
    let said = format!("{}{}", out.stdout, out.stderr);
    assert!(said.contains("no-such-rule"), "{said}");
    assert_eq!(snapshot(&pkg), before);
}

/// Pending the PodDisruptionBudget generator: the PDB for the 3-replica Deployment lands in its
/// own file in the Deployment's directory (app/), and a second render leaves it alone.
fn kpt_pdb_gets_its_own_file_next_to_the_workload() {
    let Some(kpt) = kpt("kpt_pdb") else {
        return;
    };
    if !common::pdb_generator_built("kpt_pdb_gets_its_own_file_next_to_the_workload") {
        return;
    }
    let (work, pkg) = package("kpt_pdb");
    let before = snapshot(&pkg);
    kpt_run(&kpt, &work, &["fn", "render", "package", "--allow-exec"]).ok("kpt fn render");
    let after = snapshot(&pkg);
    let new: Vec<_> = after.keys().filter(|k| !before.contains_key(*k)).collect();
    assert_eq!(new.len(), 1, "exactly one new file, got {new:?}");
    assert!(
        new[0].starts_with("app/"),
        "the PDB is not next to its Deployment: {new:?}"
    );
    let pdb = value(&after[new[0]]);
    assert_eq!(pdb["kind"], "PodDisruptionBudget");
    assert_eq!(pdb["apiVersion"], "policy/v1");
    assert!(after["app/deployment.yaml"].contains("kind: Deployment"));
    kpt_run(&kpt, &work, &["fn", "render", "package", "--allow-exec"]).ok("second render");
    assert_eq!(
        snapshot(&pkg),
        after,
        "the second render changed the package"
    );
}

const KPT: common::trials::Needs = common::trials::Needs::e2e(|| {
    common::find_tool(&[PathBuf::from("kpt")])
        .map(|_| ())
        .ok_or_else(|| "kpt is not on PATH; run scripts/setup-e2e.sh".to_string())
});

fn main() {
    common::trials::main(vec![
        common::trials::needs(
            "kpt_render_runs_the_pipeline_keeps_comments_and_is_stable",
            KPT,
            kpt_render_runs_the_pipeline_keeps_comments_and_is_stable,
        ),
        common::trials::needs(
            "kpt_eval_exec_takes_key_values",
            KPT,
            kpt_eval_exec_takes_key_values,
        ),
        common::trials::needs(
            "kpt_render_takes_an_inline_config_map",
            KPT,
            kpt_render_takes_an_inline_config_map,
        ),
        common::trials::needs(
            "kpt_eval_with_the_policy_as_fn_config",
            KPT,
            kpt_eval_with_the_policy_as_fn_config,
        ),
        common::trials::needs(
            "kpt_fails_on_a_bad_policy_and_writes_nothing",
            KPT,
            kpt_fails_on_a_bad_policy_and_writes_nothing,
        ),
        common::trials::needs(
            "kpt_pdb_gets_its_own_file_next_to_the_workload",
            KPT,
            kpt_pdb_gets_its_own_file_next_to_the_workload,
        ),
    ])
}
