//! kube-harden for JavaScript (the npm package `kube-harden` and the playground): the core
//! `kube_harden::process` behind `harden(input, config, options)`, plus the CLI's other modes
//! (`rules`, `docs`, `schema`, `version`). The policy can be a JS object or YAML/JSON text.
//!
//! [`run`] holds the logic in plain Rust (tested natively); the `#[wasm_bindgen]` functions only
//! convert between JS values and JSON.

use kube_harden::config::{self, Overrides, PolicySpec};
use kube_harden::policy;
use kube_harden::{rules, InputForm, Options};
use serde_json::{json, Map, Value};
use wasm_bindgen::prelude::*;

// On WASM: std's allocator, growing the memory in large steps (see `kube_harden::wasm_alloc`).
#[cfg(all(target_family = "wasm", not(target_feature = "atomics")))]
#[global_allocator]
static ALLOC: kube_harden::wasm_alloc::WasmAlloc = kube_harden::wasm_alloc::WasmAlloc::new();

// `HardeningPolicySpec` and the types it names, generated from the policy schema (so from the
// rules' settings) by `kube_harden::typescript`; `tests/typescript.rs` keeps the file in sync.
#[wasm_bindgen(typescript_custom_section)]
const POLICY_TYPES: &str = include_str!("policy.d.ts");

#[wasm_bindgen(typescript_custom_section)]
const TYPES: &str = r#"
/** A HardeningPolicy: the full object (`apiVersion: kube-harden.dev/v1alpha1`, `kind:
 * HardeningPolicy`), a ConfigMap with the settings as strings, or just `{spec: {...}}`. */
export interface HardeningPolicyInput {
  apiVersion?: string;
  kind?: string;
  metadata?: Record<string, unknown>;
  spec?: HardeningPolicySpec;
  data?: Record<string, string>;
}

/** The CLI's `--enable`, `--disable`, `--enforce` and `--lock`, applied on top of the policy. */
export interface HardenOptions {
  enable?: string[];
  disable?: string[];
  enforce?: boolean;
  /** The text of an `ImageLock` file (`kube-harden lock`): digests for pin-image-digests, which
   * has no network in WASM (the policy's `spec.images.digests` is the other source). */
  lock?: string;
  /** Which results to return (replaces the policy's `spec.verbosity`; default `all`). */
  verbosity?: "problems" | "changes" | "all";
}

/** One result in the KRM result shape (what `--results FILE` and a ResourceList carry). */
export interface KrmResult {
  message: string;
  severity: "info" | "warning" | "error";
  resourceRef?: { apiVersion: string; kind: string; name: string; namespace?: string };
  field?: { path: string; currentValue?: unknown; proposedValue?: unknown };
  file?: { path: string };
  tags: { rule: string };
  /** The paths of a result that groups several fields of one object and rule. */
  fieldPaths?: string[];
}

export interface HardenResult {
  /** The hardened text, in the input's form (stream, List or ResourceList). */
  output: string;
  /** The results, one per object and rule (warnings and errors; info as `verbosity` says). */
  results: KrmResult[];
  /** What `--results FILE` would write: the results as YAML. */
  resultsYaml: string;
  /** The input's (and the output's) form. */
  form: "stream" | "resourceList";
  stats: { workloads: number; changed: number; changes: number; reemitted: number };
  /** An error result: the CLI would exit 1 and, for a stream, write nothing to stdout. */
  hasErrors: boolean;
}

/** Hardens manifests. Throws an Error for malformed input or a bad policy (the CLI's exit 1
 * before any output). */
export function harden(input: string, config?: HardeningPolicyInput | string | null, options?: HardenOptions | null): HardenResult;

export interface RuleInfo {
  id: string;
  summary: string;
  /** On unless a policy disables it. */
  defaultEnabled: boolean;
}

/** The rules, in the order they run (`kube-harden rules`). */
export function rules(): RuleInfo[];
"#;

/// Hardens `input` with an optional policy (a JS object or YAML/JSON text) and CLI-style options.
#[wasm_bindgen(skip_typescript)]
pub fn harden(input: &str, config: JsValue, options: JsValue) -> Result<JsValue, JsError> {
    let config = if config.is_null() || config.is_undefined() {
        Config::None
    } else if let Some(text) = config.as_string() {
        Config::Text(text)
    } else {
        Config::Object(from_js(&config, "config")?)
    };
    let options = if options.is_null() || options.is_undefined() {
        Value::Null
    } else {
        from_js(&options, "options")?
    };
    let out = run(input, &config, &options).map_err(|e| JsError::new(&e))?;
    to_js(&out)
}

/// The rules with their summaries.
#[wasm_bindgen(skip_typescript)]
pub fn rules() -> Result<JsValue, JsError> {
    to_js(&rule_list())
}

/// A rule's documentation (Markdown), or every rule's when `rule` is omitted (`kube-harden docs`).
#[wasm_bindgen]
pub fn docs(rule: Option<String>) -> Result<String, JsError> {
    rule_docs(rule.as_deref()).map_err(|e| JsError::new(&e))
}

/// The HardeningPolicy JSON schema (`kube-harden schema`), as pretty-printed JSON text.
#[wasm_bindgen]
pub fn schema() -> String {
    serde_json::to_string_pretty(&policy::json_schema()).unwrap_or_default()
}

/// Reads one YAML (or JSON) document the way kube-harden reads a `--config` file (Kubernetes'
/// YAML 1.1 meaning) and returns it as a JS value; throws on a syntax error.
#[wasm_bindgen(js_name = parseYaml, unchecked_return_type = "unknown")]
pub fn parse_yaml(text: &str) -> Result<JsValue, JsError> {
    to_js(&yaml_value(text).map_err(|e| JsError::new(&e))?)
}

fn yaml_value(text: &str) -> Result<Value, String> {
    let doc = kube_harden::yaml::tree::parse_document(text)
        .map_err(|e| format!("line {}: {}", e.line, e.message))?;
    Ok(doc.root.map(|r| r.to_value()).unwrap_or_default())
}

/// The version of kube-harden this package was built from (the CLI's version).
#[wasm_bindgen]
pub fn version() -> String {
    env!("CARGO_PKG_VERSION").to_string()
}

fn from_js(value: &JsValue, what: &str) -> Result<Value, JsError> {
    let text = js_sys::JSON::stringify(value)
        .ok()
        .and_then(|s| s.as_string())
        .ok_or_else(|| JsError::new(&format!("{what}: not representable as JSON")))?;
    serde_json::from_str(&text).map_err(|e| JsError::new(&format!("{what}: {e}")))
}

fn to_js(value: &Value) -> Result<JsValue, JsError> {
    js_sys::JSON::parse(&value.to_string()).map_err(|_| JsError::new("internal: bad JSON"))
}

/// Where the policy comes from.
#[derive(Debug)]
pub enum Config {
    /// No policy: the defaults.
    None,
    /// YAML or JSON text (a `--config FILE`'s content).
    Text(String),
    /// An already parsed object.
    Object(Value),
}

/// One run: the same steps as the CLI (policy, overrides, core), returning the JS result object.
pub fn run(input: &str, config: &Config, options: &Value) -> Result<Value, String> {
    let spec = policy_spec(config)?;
    let overrides = overrides(options)?;
    let options = Options {
        spec,
        overrides,
        // Like `--results FILE`: every result unless the policy or `options.verbosity` says less.
        verbosity: kube_harden::config::Verbosity::All,
        render_results: false,
        threads: 1,
        summary_only: false,
        results_to: None,
    };
    let out = kube_harden::process(input, &options).map_err(|e| e.to_string())?;
    let results: Vec<Value> = out.results.iter().map(|r| r.to_value()).collect();
    let results_yaml =
        kube_harden::yaml::emit::document(&json!({ "results": results }), &Default::default());
    Ok(json!({
        "output": out.text(),
        "results": results,
        "resultsYaml": results_yaml,
        "form": match out.form {
            InputForm::Stream => "stream",
            InputForm::ResourceList => "resourceList",
        },
        "stats": {
            "workloads": out.stats.workloads,
            "changed": out.stats.changed,
            "changes": out.stats.changes,
            "reemitted": out.stats.reemitted,
        },
        "hasErrors": out.has_errors(),
    }))
}

fn policy_spec(config: &Config) -> Result<Option<PolicySpec>, String> {
    let mut value = match config {
        Config::None => return Ok(None),
        Config::Text(text) if text.trim().is_empty() => return Ok(None),
        Config::Text(text) => yaml_value(text).map_err(|e| format!("config ({e})"))?,
        Config::Object(v) => v.clone(),
    };
    // `{spec: {...}}` alone means a HardeningPolicy.
    if let Value::Object(m) = &mut value {
        if !m.contains_key("kind") && !m.contains_key("apiVersion") {
            m.insert("apiVersion".into(), config::API_VERSION.into());
            m.insert("kind".into(), config::KIND.into());
        }
    }
    policy::spec_from_object(&value)
        .map(Some)
        .map_err(|e| e.to_string())
}

fn overrides(options: &Value) -> Result<Overrides, String> {
    let Value::Object(m) = options else {
        return match options {
            Value::Null => Ok(Overrides::default()),
            _ => Err("options: expected an object".into()),
        };
    };
    let list = |key: &str| -> Result<Vec<String>, String> {
        match m.get(key) {
            None | Some(Value::Null) => Ok(Vec::new()),
            Some(Value::Array(items)) => items
                .iter()
                .map(|v| {
                    v.as_str()
                        .map(str::to_string)
                        .ok_or_else(|| format!("options.{key}: expected strings"))
                })
                .collect(),
            Some(Value::String(s)) => Ok(s
                .split(',')
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .map(str::to_string)
                .collect()),
            Some(_) => Err(format!("options.{key}: expected a list of rule ids")),
        }
    };
    if let Some(key) = m
        .keys()
        .find(|k| !["enable", "disable", "enforce", "lock", "verbosity"].contains(&k.as_str()))
    {
        return Err(format!(
            "options: unknown key `{key}` (enable, disable, enforce, lock, verbosity)"
        ));
    }
    let verbosity = match m.get("verbosity") {
        None | Some(Value::Null) => None,
        Some(v) => Some(
            serde_json::from_value::<kube_harden::config::Verbosity>(v.clone()).map_err(|_| {
                "options.verbosity: expected \"problems\", \"changes\" or \"all\"".to_string()
            })?,
        ),
    };
    // `lock`: an ImageLock's text, the only digest source besides the policy (no network here).
    let digests = match m.get("lock") {
        None | Some(Value::Null) => None,
        Some(Value::String(text)) => {
            let lock = kube_harden::digest::ImageLock::from_yaml_str(text)
                .map_err(|e| format!("options.lock: {e}"))?;
            Some(kube_harden::config::DigestHandle(std::sync::Arc::new(
                kube_harden::digest::LockSource::new(lock),
            )))
        }
        Some(_) => return Err("options.lock: expected the text of an ImageLock file".into()),
    };
    Ok(Overrides {
        digests,
        enable: list("enable")?,
        disable: list("disable")?,
        enforce: match m.get("enforce") {
            None | Some(Value::Null) => false,
            Some(Value::Bool(b)) => *b,
            Some(_) => return Err("options.enforce: expected true or false".into()),
        },
        verbosity,
        ..Overrides::default()
    })
}

fn rule_list() -> Value {
    let defaults = kube_harden::config::Policy::default();
    Value::Array(
        rules::registry()
            .iter()
            .map(|r| {
                let mut m = Map::new();
                m.insert("id".into(), r.id().into());
                m.insert("summary".into(), r.summary().into());
                m.insert("defaultEnabled".into(), defaults.is_enabled(r.id()).into());
                Value::Object(m)
            })
            .collect(),
    )
}

fn rule_docs(rule: Option<&str>) -> Result<String, String> {
    match rule {
        Some(id) => rules::by_id(id)
            .map(|r| format!("{}\n", r.docs()))
            .ok_or_else(|| format!("unknown rule id `{id}`; see `kube-harden rules`")),
        None => Ok(rules::registry()
            .iter()
            .map(|r| format!("{}\n", r.docs()))
            .collect()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const POD: &str = "apiVersion: v1\nkind: Pod\nmetadata:\n  name: p\nspec:\n  containers:\n  - name: c\n    image: nginx\n";
    const DIGEST: &str = "sha256:2222222222222222222222222222222222222222222222222222222222222222";
    // With the image's facts (a numeric non-root user, no privileged files): without them the
    // rules that could stop the pod leave the image alone.
    const LOCK: &str = "apiVersion: kube-harden.dev/v1alpha2\nkind: ImageLock\nimages:\n- image: nginx\n  digest: sha256:2222222222222222222222222222222222222222222222222222222222222222\n  facts:\n    user: \"101\"\n    cmd: [nginx]\n    filesystem:\n      dirs: []\n";

    #[test]
    fn spec_only_object_is_a_policy() {
        let config = Config::Object(
            json!({"spec": {"disable": ["writable-tmp", "read-only-root-filesystem"]}}),
        );
        let out = run(POD, &config, &json!({"lock": LOCK})).unwrap();
        let text = out["output"].as_str().unwrap();
        assert!(text.contains("allowPrivilegeEscalation: false"));
        assert!(!text.contains("readOnlyRootFilesystem"));
        assert!(text.contains(&format!("image: nginx@{DIGEST}")));
        assert_eq!(out["form"], "stream");
        assert_eq!(out["hasErrors"], false);
    }

    #[test]
    fn without_a_lock_an_image_fails_closed() {
        let out = run(POD, &Config::None, &Value::Null).unwrap();
        assert_eq!(out["hasErrors"], true);
        let err = run(POD, &Config::None, &json!({"lock": "kind: Nope"})).unwrap_err();
        assert!(err.contains("options.lock"), "{err}");
    }

    #[test]
    fn yaml_text_policy_and_options() {
        let config = Config::Text("spec:\n  disable: [seccomp]\n".into());
        let out = run(
            POD,
            &config,
            &json!({"disable": ["writable-tmp"], "enforce": true}),
        )
        .unwrap();
        let text = out["output"].as_str().unwrap();
        assert!(!text.contains("seccompProfile"));
        assert!(!text.contains("emptyDir"));
        assert!(out["resultsYaml"]
            .as_str()
            .unwrap()
            .starts_with("results:\n"));
    }

    #[test]
    fn bad_policy_and_bad_options_are_errors() {
        let err = run(
            POD,
            &Config::Object(json!({"spec": {"disable": ["nope"]}})),
            &Value::Null,
        )
        .unwrap_err();
        assert!(err.contains("nope"), "{err}");
        let err = run(POD, &Config::None, &json!({"disabel": []})).unwrap_err();
        assert!(err.contains("disabel"), "{err}");
    }

    #[test]
    fn same_text_as_the_core() {
        let out = run(POD, &Config::None, &Value::Null).unwrap();
        // The library answers with every result (verbosity all) unless told otherwise.
        let core = kube_harden::process(
            POD,
            &Options {
                verbosity: kube_harden::config::Verbosity::All,
                ..Options::default()
            },
        )
        .unwrap();
        assert_eq!(out["output"].as_str().unwrap(), core.text());
        assert_eq!(out["results"].as_array().unwrap().len(), core.results.len());
    }

    #[test]
    fn yaml_values_have_kubernetes_meaning() {
        let v = yaml_value("a: 0644\nb: on\nc: \"on\"\n").unwrap();
        assert_eq!(v, json!({"a": 420, "b": true, "c": "on"}));
        assert!(yaml_value("a: [\n").unwrap_err().starts_with("line "));
    }

    #[test]
    fn rules_and_docs() {
        let list = rule_list();
        assert!(list
            .as_array()
            .unwrap()
            .iter()
            .any(|r| r["id"] == "seccomp"));
        assert!(rule_docs(Some("seccomp")).unwrap().contains("seccomp"));
        assert!(rule_docs(Some("nope")).is_err());
    }
}
