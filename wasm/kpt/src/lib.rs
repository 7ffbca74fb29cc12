//! kube-harden for kpt's alpha WASM runtime (`kpt fn eval --allow-alpha-wasm --exec
//! kube-harden-kpt.wasm`, `kpt fn render --allow-alpha-wasm --allow-exec`).
//!
//! kpt does not speak WASI: it loads the module with Go's `GOOS=js GOARCH=wasm` glue and calls the
//! JS global `processResourceList(<ResourceList YAML>)`. [`answer`] is what that call computes (plain
//! Rust, unit-tested natively); `gojs` is the slice of Go's host interface that registers it.

#[cfg(target_arch = "wasm32")]
mod gojs;

use kube_harden::change::{KrmResult, Severity};
use kube_harden::{InputForm, Options};
use serde_json::Value;

// On WASM: std's allocator, growing the memory in large steps (see `kube_harden::wasm_alloc`).
#[cfg(all(target_family = "wasm", not(target_feature = "atomics")))]
#[global_allocator]
static ALLOC: kube_harden::wasm_alloc::WasmAlloc = kube_harden::wasm_alloc::WasmAlloc::new();

/// What one `processResourceList` call returns.
#[derive(Debug)]
pub struct Answer {
    /// The output ResourceList (or, only when the input was not one, an error message).
    pub output: String,
    /// True when a result has severity error: the run must fail, as the native binary exits 1.
    pub failed: bool,
    /// The error messages, one per line (what `processResourceListErrors` returns).
    pub errors: String,
}

/// Hardens a KRM ResourceList. Errors, fatal ones included (a bad functionConfig, malformed
/// YAML), come back as `severity: error` results in the output list, because this runtime has no
/// stderr; a fatal error leaves the items exactly as they came in.
pub fn answer(input: &str) -> Answer {
    let options = Options {
        threads: 1,
        ..Options::default()
    };
    match kube_harden::process(input, &options) {
        Ok(out) if out.form == InputForm::ResourceList => {
            let errors: Vec<&str> = out
                .results
                .iter()
                .filter(|r| r.severity == Severity::Error)
                .map(|r| r.message.as_str())
                .collect();
            Answer {
                failed: !errors.is_empty(),
                errors: errors.join("\n"),
                output: out.text(),
            }
        }
        Ok(_) => fatal(
            input,
            "input is not a KRM ResourceList (kind: ResourceList with items)",
        ),
        Err(e) => fatal(input, &e.to_string()),
    }
}

/// The input list, unchanged, with one error result added; when the input cannot be read as a
/// ResourceList at all, just the message (kpt then fails showing it).
fn fatal(input: &str, message: &str) -> Answer {
    let message = format!("kube-harden: {message}");
    let result =
        KrmResult::new("kube-harden", Severity::Error, message.clone(), None, None).to_value();
    let list = kube_harden::yaml::tree::parse_document(input)
        .ok()
        .and_then(|doc| doc.root.map(|root| root.to_value()))
        .filter(|v| v.get("kind").and_then(Value::as_str) == Some("ResourceList"));
    let output = match list {
        Some(mut list) => {
            match list.get_mut("results") {
                Some(Value::Array(results)) => results.push(result),
                _ => list["results"] = Value::Array(vec![result]),
            }
            kube_harden::yaml::emit::document(&list, &Default::default())
        }
        None => message.clone(),
    };
    Answer {
        output,
        failed: true,
        errors: message,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const DEPLOYMENT: &str = "\
apiVersion: config.kubernetes.io/v1
kind: ResourceList
items:
- apiVersion: apps/v1
  kind: Deployment
  metadata:
    name: web # keep me
  spec:
    template:
      spec:
        containers:
        - name: app
          image: nginx
";

    const DIGEST: &str = "sha256:1111111111111111111111111111111111111111111111111111111111111111";

    #[test]
    fn hardens_a_resource_list_and_keeps_comments() {
        // No network here: the digest comes from the functionConfig.
        // Image facts stated in the policy too: without them the rules that could stop the pod
        // (allowPrivilegeEscalation among them) leave an unknown image alone.
        let input = format!("{DEPLOYMENT}functionConfig:\n  apiVersion: kube-harden.dev/v1alpha1\n  kind: HardeningPolicy\n  spec:\n    verbosity: changes\n    images:\n      digests:\n      - image: nginx\n        digest: {DIGEST}\n      facts:\n      - image: nginx\n        facts:\n          user: \"101\"\n          entrypoint: [/docker-entrypoint.sh]\n          cmd: [nginx]\n          filesystem:\n            dirs: []\n            privilegedFiles: []\n");
        let a = answer(&input);
        assert!(!a.failed, "{}", a.errors);
        assert!(a.output.contains("kind: ResourceList"));
        assert!(a.output.contains("name: web # keep me"));
        assert!(a.output.contains("allowPrivilegeEscalation: false"));
        assert!(a.output.contains(&format!("image: nginx@{DIGEST}")));
        // `verbosity: changes`: one info line for the changed Deployment.
        assert!(a.output.contains("results:"));
        assert!(a.output.contains("message: \"hardened "), "{}", a.output);
    }

    #[test]
    fn an_image_without_a_digest_source_fails_closed() {
        let a = answer(DEPLOYMENT);
        assert!(a.failed);
        assert!(
            a.errors.contains("nginx: not in the lock file"),
            "{}",
            a.errors
        );
        assert!(a.output.contains("image: nginx\n"), "the tag stays");
    }

    #[test]
    fn a_bad_function_config_is_an_error_result_and_items_stay() {
        let input = format!("{DEPLOYMENT}functionConfig:\n  apiVersion: v1\n  kind: ConfigMap\n  metadata:\n    name: fn\n  data:\n    disable: no-such-rule\n");
        let a = answer(&input);
        assert!(a.failed);
        assert!(a.errors.contains("no-such-rule"), "{}", a.errors);
        assert!(a.output.contains("kind: ResourceList"));
        assert!(a.output.contains("severity: error"));
        assert!(!a.output.contains("allowPrivilegeEscalation"));
        assert!(a.output.contains("image: nginx"));
    }

    #[test]
    fn malformed_input_is_a_message_not_a_list() {
        let a = answer("kind: ResourceList\nitems: [\n");
        assert!(a.failed);
        assert!(!a.output.contains("kind: ResourceList"));
        assert!(a.output.starts_with("kube-harden: "));
    }

    #[test]
    fn a_plain_stream_is_refused() {
        let a = answer("apiVersion: v1\nkind: Pod\nmetadata: {name: p}\nspec: {containers: [{name: c, image: i}]}\n");
        assert!(a.failed);
        assert!(a.errors.contains("not a KRM ResourceList"));
    }
}
