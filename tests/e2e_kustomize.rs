//! kustomize, end to end with the real `kubectl kustomize` (kustomize v5.5.0 inside kubectl):
//! - the exec-plugin convention kubectl supports (`examples/kustomize/kubectl`, plugin installed
//!   by `kube-harden install-kustomize-plugin`);
//! - the `container:` KRM function form (`examples/kustomize/container`): there is no Docker
//!   engine here, so a `docker` stand-in on PATH records what kustomize asks of it and runs the
//!   binary in its place;
//! - the `exec:` KRM function form, which only standalone kustomize runs and which cannot be
//!   installed here: kube-harden is run on the exact ResourceList kustomize v5 sent above (it is
//!   the same for both forms), in the kustomization directory, as kustomize's exec runtime does.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;

fn kubectl(test: &str) -> Option<PathBuf> {
    let kubectl = common::find_tool(&[PathBuf::from("kubectl")]);
    if kubectl.is_none() {
        common::skip(test, "kubectl is not on PATH");
    }
    kubectl
}

fn example(name: &str) -> PathBuf {
    common::repo().join("examples/kustomize").join(name)
}

/// Installs the exec plugin into a fresh plugin home, as the README says.
fn plugin_home(test: &str) -> PathBuf {
    let home = common::temp_dir(test);
    let out = common::run(
        Command::new(common::bin())
            .args(["install-kustomize-plugin", "--plugin-home"])
            .arg(&home),
        None,
    )
    .ok("install-kustomize-plugin");
    let plugin = home.join("kube-harden.dev/v1alpha1/hardeningpolicy/HardeningPolicy");
    assert_eq!(out.stdout.trim(), plugin.to_str().unwrap());
    assert!(plugin.exists());
    home
}

fn build(kubectl: &Path, dir: &Path, env: &[(&str, &std::ffi::OsStr)]) -> common::Run {
    let mut cmd = Command::new(kubectl);
    cmd.args(["kustomize", "--enable-alpha-plugins", "."])
        .current_dir(dir);
    for (k, v) in env {
        cmd.env(k, v);
    }
    common::run(&mut cmd, None)
}

fn find<'a>(docs: &'a [common::Doc], kind: &str) -> &'a common::Doc {
    docs.iter()
        .find(|d| d.kind() == kind)
        .unwrap_or_else(|| panic!("no {kind}"))
}

fn kubectl_kustomize_runs_the_exec_plugin() {
    let Some(kubectl) = kubectl("kubectl_exec_plugin") else {
        return;
    };
    let home = plugin_home("kubectl_exec_plugin");
    let out = build(
        &kubectl,
        &example("kubectl"),
        &[("KUSTOMIZE_PLUGIN_HOME", home.as_os_str())],
    )
    .ok("kubectl kustomize --enable-alpha-plugins");
    let docs = common::split_stream(&out.stdout);
    let deployment = find(&docs, "Deployment");
    // namePrefix ran first; the plugin saw and kept the prefixed name.
    assert_eq!(deployment.name(), "shop-web");
    common::assert_hardened(&deployment.value);
    assert_eq!(
        common::pod_spec(&deployment.value)["securityContext"]["runAsUser"],
        10001
    );
    assert_eq!(find(&docs, "Service").value["spec"]["ports"][0]["port"], 80);
    assert!(
        docs.iter().all(|d| d.kind() != "HardeningPolicy"),
        "the config is not a resource"
    );
}

fn kubectl_kustomize_shows_the_plugin_error() {
    let Some(kubectl) = kubectl("kubectl_exec_plugin_error") else {
        return;
    };
    let home = plugin_home("kubectl_exec_plugin_error");
    let dir = common::temp_dir("kubectl_exec_plugin_error_dir");
    common::copy_dir(&example("kubectl"), &dir);
    let policy = std::fs::read_to_string(dir.join("policy.yaml")).unwrap();
    std::fs::write(
        dir.join("policy.yaml"),
        policy.replace("spec:\n", "spec:\n  disable: [no-such-rule]\n"),
    )
    .unwrap();
    let out = build(
        &kubectl,
        &dir,
        &[("KUSTOMIZE_PLUGIN_HOME", home.as_os_str())],
    );
    assert!(!out.status.success());
    assert!(out.stderr.contains("no-such-rule"), "{}", out.stderr);
}

/// A `docker` stand-in: records its arguments and stdin, then runs kube-harden as the image's
/// entrypoint would (stdin to stdout).
fn docker_shim(dir: &Path) -> std::ffi::OsString {
    let script = format!(
        "#!/usr/bin/env bash\nprintf '%s\\n' \"$@\" > '{dir}/docker-args'\ntee '{dir}/resource-list.yaml' | '{bin}'\n",
        dir = dir.display(),
        bin = common::bin().display()
    );
    let shim = dir.join("docker");
    std::fs::write(&shim, script).unwrap();
    std::process::Command::new("chmod")
        .arg("+x")
        .arg(&shim)
        .status()
        .unwrap();
    let mut path = vec![dir.to_path_buf()];
    path.extend(std::env::split_paths(
        &std::env::var_os("PATH").unwrap_or_default(),
    ));
    std::env::join_paths(path).unwrap()
}

/// Runs the container example; returns kustomize's output and the ResourceList it sent.
fn container_build(test: &str) -> Option<(String, String, Vec<String>)> {
    let kubectl = kubectl(test)?;
    let dir = common::temp_dir(test);
    let path = docker_shim(&dir);
    let out = build(
        &kubectl,
        &example("container"),
        &[("PATH", path.as_os_str())],
    )
    .ok("kubectl kustomize with a container function");
    let sent =
        std::fs::read_to_string(dir.join("resource-list.yaml")).expect("kustomize ran docker");
    let args = std::fs::read_to_string(dir.join("docker-args")).unwrap();
    Some((out.stdout, sent, args.lines().map(str::to_string).collect()))
}

fn kustomize_container_function_hardens_the_build() {
    let Some((output, sent, args)) = container_build("kustomize_container") else {
        return;
    };
    // kustomize runs the image named in the function annotation, sandboxed.
    assert_eq!(
        args.last().map(String::as_str),
        Some("ghcr.io/kube-harden/kube-harden:v0.1.0")
    );
    let joined = args.join(" ");
    assert!(
        joined.contains("--network none") && joined.contains("--user nobody"),
        "{joined}"
    );
    let docs = common::split_stream(&output);
    let deployment = find(&docs, "Deployment");
    common::assert_hardened(&deployment.value);
    assert_eq!(deployment.name(), "shop-web");
    let list = common::parse_stream(&sent).remove(0);
    assert_eq!(list["kind"], "ResourceList");
}

fn kustomize_v5_exec_function_contract() {
    let Some((_, sent, _)) = container_build("kustomize_exec_contract") else {
        return;
    };
    // What kustomize v5 sends: ids, index annotations, functionConfig marked local-config.
    let input = common::parse_stream(&sent).remove(0);
    assert_eq!(input["apiVersion"], "config.kubernetes.io/v1");
    let fc = &input["functionConfig"];
    assert_eq!(fc["kind"], "HardeningPolicy");
    assert_eq!(
        fc["metadata"]["annotations"]["config.kubernetes.io/local-config"],
        "true"
    );
    let items = input["items"].as_array().unwrap();
    for item in items {
        let a = &item["metadata"]["annotations"];
        for key in [
            "kustomize.config.k8s.io/id",
            "config.kubernetes.io/index",
            "internal.config.kubernetes.io/id",
            "config.k8s.io/id",
        ] {
            assert!(a[key].is_string(), "kustomize sent no {key}");
        }
    }
    // The exec runtime: the binary, cwd the kustomization directory, the list on stdin.
    let mut cmd = Command::new(common::bin());
    cmd.current_dir(example("exec"));
    let out =
        common::run(&mut cmd, Some(sent.as_bytes())).ok("kube-harden on kustomize's ResourceList");
    let output = common::parse_stream(&out.stdout);
    assert_eq!(output.len(), 1);
    let output = &output[0];
    assert_eq!(output["kind"], "ResourceList");
    assert_eq!(
        output["functionConfig"], *fc,
        "functionConfig is not ours to change"
    );
    let out_items = output["items"].as_array().unwrap();
    assert!(out_items.len() >= items.len());
    // Every item comes back, in order, with every annotation kustomize matches it by.
    for (before, after) in items.iter().zip(out_items) {
        assert_eq!(before["kind"], after["kind"]);
        let (a, b) = (
            &before["metadata"]["annotations"],
            &after["metadata"]["annotations"],
        );
        for (key, value) in a.as_object().unwrap() {
            assert_eq!(&b[key], value, "annotation {key} changed");
        }
    }
    let deployment = out_items
        .iter()
        .find(|i| i["kind"] == "Deployment")
        .unwrap();
    common::assert_hardened(deployment);
    // The default verbosity (problems): warnings and errors only, one per object and rule.
    let results = output["results"].as_array().cloned().unwrap_or_default();
    assert!(
        results.iter().all(|r| r["severity"] != "info"),
        "info results without a verbosity setting: {results:?}"
    );
}

/// Pending the PodDisruptionBudget generator: kustomize appends the new PDB to the build.
fn kubectl_kustomize_pdb_is_added_to_the_build() {
    let Some(kubectl) = kubectl("kubectl_pdb") else {
        return;
    };
    if !common::pdb_generator_built("kubectl_kustomize_pdb_is_added_to_the_build") {
        return;
    }
    let home = plugin_home("kubectl_pdb");
    let out = build(
        &kubectl,
        &example("kubectl"),
        &[("KUSTOMIZE_PLUGIN_HOME", home.as_os_str())],
    )
    .ok("kubectl kustomize");
    let docs = common::split_stream(&out.stdout);
    let pdb = find(&docs, "PodDisruptionBudget");
    assert_eq!(pdb.value["apiVersion"], "policy/v1");
    assert_eq!(
        pdb.value["spec"]["selector"]["matchLabels"]["app.kubernetes.io/name"],
        "web"
    );
}

const KUBECTL: common::trials::Needs = common::trials::Needs::e2e(|| {
    common::find_tool(&[PathBuf::from("kubectl")])
        .map(|_| ())
        .ok_or_else(|| "kubectl is not on PATH; run scripts/setup-e2e.sh".to_string())
});

fn main() {
    common::trials::main(vec![
        common::trials::needs(
            "kubectl_kustomize_runs_the_exec_plugin",
            KUBECTL,
            kubectl_kustomize_runs_the_exec_plugin,
        ),
        common::trials::needs(
            "kubectl_kustomize_shows_the_plugin_error",
            KUBECTL,
            kubectl_kustomize_shows_the_plugin_error,
        ),
        common::trials::needs(
            "kustomize_container_function_hardens_the_build",
            KUBECTL,
            kustomize_container_function_hardens_the_build,
        ),
        common::trials::needs(
            "kustomize_v5_exec_function_contract",
            KUBECTL,
            kustomize_v5_exec_function_contract,
        ),
        common::trials::needs(
            "kubectl_kustomize_pdb_is_added_to_the_build",
            KUBECTL,
            kubectl_kustomize_pdb_is_added_to_the_build,
        ),
    ])
}
