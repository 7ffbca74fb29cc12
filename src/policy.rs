//! Reading and resolving a `HardeningPolicy` (kube-harden.dev/v1alpha1): one schema for the KRM
//! functionConfig, `--config FILE`, and a ConfigMap whose `data` holds the same settings as
//! strings.
//!
//! Everything here needs the rule registry: the policy's JSON schema (the global keys and every
//! rule's settings), the spec reader (each key to the rule that owns it), the string forms of
//! the keys (ConfigMap `data`, Argo CD parameters), the rule-id checks and the enabled set of
//! [`Policy::from_spec`] / [`Policy::with_overrides`]. The data it fills in (`PolicySpec`,
//! `Policy`, the settings types) lives in [`crate::config`], which knows no rule; this module
//! sits above `config`, `rules` and `model`.

use schemars::JsonSchema;
use serde::Deserialize;
use serde_json::{Map, Value};

use crate::config::settings::{AnySettings, SettingsDescriptor};
use crate::config::{validate_images, Overrides, Policy, PolicySpec, API_VERSION, KIND};
use crate::error::Error;
use crate::model::path::FieldPath;
use crate::rules;

/// The policy object.
// `spec` is kept as JSON here and read by `read_spec` (global keys into `PolicySpec`, each rule's
// keys into that rule's settings type); its schema is `SpecSchema`.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
#[schemars(title = "HardeningPolicy")]
pub struct HardeningPolicy {
    /// Always `kube-harden.dev/v1alpha1`.
    pub api_version: String,
    /// Always `HardeningPolicy`.
    pub kind: String,
    /// Object metadata (name, annotations such as `config.kubernetes.io/function`); not used.
    #[serde(default)]
    #[schemars(with = "Option<Map<String, Value>>")]
    pub metadata: Option<Value>,
    /// The settings.
    #[serde(default)]
    #[schemars(with = "SpecSchema")]
    pub spec: RawSpec,
}

/// A HardeningPolicy's `spec` as given (`null` included), `None` when absent.
#[derive(Debug, Clone, Default)]
pub struct RawSpec(pub Option<Value>);

impl<'de> Deserialize<'de> for RawSpec {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        Value::deserialize(d).map(|v| RawSpec(Some(v)))
    }
}

impl PolicySpec {
    /// This spec with the keys `keys` taken from `other` (as `other` gave them; a key `other`
    /// does not give is removed): the Argo CD parameters over a policy file.
    pub fn with_keys_from(&self, other: &PolicySpec, keys: &[String]) -> Result<PolicySpec, Error> {
        let mut given = self.given.clone();
        for key in keys {
            match other.given.get(key) {
                Some(value) => given.insert(key.clone(), value.clone()),
                None => given.shift_remove(key),
            };
        }
        spec_from_value(Value::Object(given))
    }
}

/// The spec's JSON schema: the global keys of [`PolicySpec`] and every rule's settings, in this
/// order: `enable`, `disable`, `enforce`, then each rule's keys in registry order, then the
/// other global keys.
struct SpecSchema;

/// Global keys that come before the rules' keys in the schema.
const LEADING_KEYS: [&str; 3] = ["enable", "disable", "enforce"];

impl JsonSchema for SpecSchema {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        "PolicySpec".into()
    }

    fn json_schema(generator: &mut schemars::SchemaGenerator) -> schemars::Schema {
        // The rules' schemas first: `$defs` then come in the order of the properties.
        let owned: Vec<schemars::Schema> = rules::registry()
            .iter()
            .filter_map(|r| r.settings())
            .map(|d| (d.schema)(generator))
            .collect();
        let mut schema = PolicySpec::json_schema(generator);
        let mut global = schema
            .get_mut("properties")
            .and_then(Value::as_object_mut)
            .map(std::mem::take)
            .unwrap_or_default();
        let mut properties = Map::new();
        for key in LEADING_KEYS {
            if let Some(v) = global.shift_remove(key) {
                properties.insert(key.to_string(), v);
            }
        }
        for rule in &owned {
            if let Some(props) = rule.get("properties").and_then(Value::as_object) {
                properties.extend(props.clone());
            }
        }
        properties.extend(global);
        schema.insert("properties".into(), Value::Object(properties));
        schema
    }
}

impl Default for Policy {
    fn default() -> Self {
        Policy::from_spec(PolicySpec::default()).expect("defaults are valid")
    }
}

impl Policy {
    /// Validates settings and resolves the enabled rules.
    pub fn from_spec(spec: PolicySpec) -> Result<Self, Error> {
        Self::with_overrides(spec, &Overrides::default())
    }

    /// Like [`Policy::from_spec`], with command-line switches applied last.
    pub fn with_overrides(mut spec: PolicySpec, overrides: &Overrides) -> Result<Self, Error> {
        let mut enabled: Vec<&'static str> = rules::registry()
            .iter()
            .filter(|r| r.enabled_by_default())
            .map(|r| r.id())
            .collect();
        let lookup = |id: &str, key: &str| -> Result<&'static str, Error> {
            rules::registry()
                .iter()
                .map(|r| r.id())
                .find(|known| *known == id.trim())
                .ok_or_else(|| {
                    Error::Config(format!(
                        "{key}: unknown rule id `{}` (known: {})",
                        id.trim(),
                        rules::registry()
                            .iter()
                            .map(|r| r.id())
                            .collect::<Vec<_>>()
                            .join(", ")
                    ))
                })
        };
        let mut apply =
            |enable: &[String], disable: &[String], prefix: &str| -> Result<(), Error> {
                for id in enable {
                    let id = lookup(id, &format!("{prefix}enable"))?;
                    if disable.iter().any(|d| d.trim() == id) {
                        return Err(Error::Config(format!(
                            "{prefix}enable and {prefix}disable both name `{id}`"
                        )));
                    }
                    if !enabled.contains(&id) {
                        enabled.push(id);
                    }
                }
                for id in disable {
                    let id = lookup(id, &format!("{prefix}disable"))?;
                    enabled.retain(|e| *e != id);
                }
                Ok(())
            };
        apply(&spec.enable, &spec.disable, "spec.")?;
        apply(&overrides.enable, &overrides.disable, "--")?;
        spec.enforce |= overrides.enforce;
        spec.images.verify_digests |= overrides.verify_digests;
        if overrides.verbosity.is_some() {
            spec.verbosity = overrides.verbosity;
        }
        spec.rules = spec
            .rules
            .completed(rules::registry().iter().filter_map(|r| r.settings()))
            .validated()?;
        let images = validate_images(&spec.images)?;
        for (i, w) in spec.workloads.iter().enumerate() {
            for (key, path) in [
                ("replicasPath", &w.replicas_path),
                ("selectorPath", &w.selector_path),
            ] {
                if let Some(p) = path {
                    if FieldPath::parse(p).is_none() {
                        return Err(Error::Config(format!(
                            "spec.workloads[{i}].{key}: `{p}` is not a dotted field path"
                        )));
                    }
                }
            }
            if w.pod_template_path.is_some() == w.pod_spec_path.is_some() {
                return Err(Error::Config(format!(
                    "spec.workloads[{i}]: give exactly one of podTemplatePath and podSpecPath"
                )));
            }
            let path = w
                .pod_template_path
                .as_ref()
                .or(w.pod_spec_path.as_ref())
                .expect("one is set");
            if FieldPath::parse(path).is_none() {
                return Err(Error::Config(format!(
                    "spec.workloads[{i}]: `{path}` is not a dotted field path"
                )));
            }
        }
        let order: Vec<&'static str> = rules::registry().iter().map(|r| r.id()).collect();
        enabled.sort_by_key(|id| order.iter().position(|o| o == id));
        Ok(Policy {
            spec,
            enabled,
            images,
            digests: overrides.digests.clone(),
            facts_memo: Default::default(),
        })
    }
}

/// Reads a policy from a functionConfig or config-file object: a `HardeningPolicy`, or a
/// `ConfigMap` whose `data` holds the spec's settings as strings (`kpt fn eval -- key=value`).
pub fn spec_from_object(object: &Value) -> Result<PolicySpec, Error> {
    let kind = object.get("kind").and_then(Value::as_str).unwrap_or("");
    let api_version = object
        .get("apiVersion")
        .and_then(Value::as_str)
        .unwrap_or("");
    match kind {
        KIND => {
            if api_version != API_VERSION {
                return Err(Error::Config(format!(
                    "apiVersion: `{api_version}` is not supported for {KIND}; use {API_VERSION}"
                )));
            }
            let schema = json_schema();
            let defs = schema.get("$defs").cloned().unwrap_or(Value::Null);
            reject_sequences(object, &schema, &defs, "")?;
            let policy: HardeningPolicy = deserialize(object.clone(), "")?;
            match policy.spec.0 {
                None => Ok(PolicySpec::default()),
                Some(spec) => read_spec(spec, "spec", &defs),
            }
        }
        "ConfigMap" => {
            let data = match object.get("data") {
                None | Some(Value::Null) => return Ok(PolicySpec::default()),
                Some(Value::Object(m)) => m,
                Some(_) => return Err(Error::Config("data: expected a mapping of strings".into())),
            };
            let keys = spec_keys();
            let mut spec = Map::new();
            for (key, raw) in data {
                let text = match raw {
                    Value::String(s) => s.clone(),
                    other => other.to_string(),
                };
                let form = keys
                    .iter()
                    .find(|k| k.name == *key)
                    .map_or(KeyForm::String, |k| k.form);
                spec.insert(key.clone(), config_map_value(key, form, &text)?);
            }
            let schema = json_schema();
            let defs = schema.get("$defs").cloned().unwrap_or(Value::Null);
            read_spec(Value::Object(spec), "data", &defs)
        }
        "" => Err(Error::Config("the config object has no kind".into())),
        other => Err(Error::Config(format!(
            "kind: `{other}` is not a config kind; use {KIND} ({API_VERSION}) or a ConfigMap"
        ))),
    }
}

/// Reads a spec (the value of a HardeningPolicy's `spec`) on its own.
pub fn spec_from_value(spec: Value) -> Result<PolicySpec, Error> {
    let schema = json_schema();
    let defs = schema.get("$defs").cloned().unwrap_or(Value::Null);
    read_spec(spec, "spec", &defs)
}

/// Who reads a spec key: the global [`PolicySpec`] or a rule's settings type.
#[derive(Clone, Copy)]
enum Owner {
    Global,
    Rule(SettingsDescriptor),
}

/// Reads the spec at `at` (`spec`, or `data` of a ConfigMap): each key goes to its owner, in the
/// order given, so the first bad key is the one reported (as serde reports a struct's fields).
fn read_spec(value: Value, at: &str, defs: &Value) -> Result<PolicySpec, Error> {
    let spec_schema = defs.get("PolicySpec").cloned().unwrap_or(Value::Null);
    reject_sequences(&value, &spec_schema, defs, at)?;
    let Value::Object(given) = value else {
        // Not a mapping: serde's own message (`invalid type: null, expected struct PolicySpec`).
        return deserialize::<PolicySpec>(value, at);
    };
    let global: Vec<String> = PolicySpec::json_schema(&mut schemars::SchemaGenerator::default())
        .get("properties")
        .and_then(Value::as_object)
        .map(|p| p.keys().cloned().collect())
        .unwrap_or_default();
    let owned: Vec<(String, Owner)> = rules::registry()
        .iter()
        .filter_map(|r| r.settings())
        .flat_map(|d| d.keys().into_iter().map(move |k| (k, Owner::Rule(d))))
        .chain(global.iter().map(|k| (k.clone(), Owner::Global)))
        .collect();
    let owner_of = |key: &str| owned.iter().find(|(k, _)| k == key).map(|(_, o)| *o);
    let mut parts: Vec<(Owner, Map<String, Value>)> = Vec::new();
    for (key, v) in &given {
        let Some(owner) = owner_of(key) else {
            let known: Vec<String> = spec_schema
                .get("properties")
                .and_then(Value::as_object)
                .map(|p| p.keys().map(|k| format!("`{k}`")).collect())
                .unwrap_or_default();
            return Err(Error::Config(format!(
                "{at}.{key}: unknown field `{key}`, expected one of {}",
                known.join(", ")
            )));
        };
        let one = Value::Object(Map::from_iter([(key.clone(), v.clone())]));
        read_part(owner, one, at)?;
        let same = |o: &Owner| match (o, &owner) {
            (Owner::Global, Owner::Global) => true,
            (Owner::Rule(a), Owner::Rule(b)) => (a.type_id)() == (b.type_id)(),
            _ => false,
        };
        match parts.iter_mut().find(|(o, _)| same(o)) {
            Some((_, map)) => {
                map.insert(key.clone(), v.clone());
            }
            None => parts.push((owner, Map::from_iter([(key.clone(), v.clone())]))),
        }
    }
    let mut spec = PolicySpec::default();
    for (owner, map) in parts {
        match read_part(owner, Value::Object(map), at)? {
            Part::Global(global) => {
                let rules = std::mem::take(&mut spec.rules);
                spec = PolicySpec { rules, ..*global };
            }
            Part::Rule(settings) => spec.rules.set(settings),
        }
    }
    spec.given = given;
    Ok(spec)
}

enum Part {
    Global(Box<PolicySpec>),
    Rule(Box<dyn AnySettings>),
}

fn read_part(owner: Owner, value: Value, at: &str) -> Result<Part, Error> {
    match owner {
        Owner::Global => deserialize::<PolicySpec>(value, at).map(|s| Part::Global(Box::new(s))),
        Owner::Rule(d) => (d.parse)(value)
            .map(Part::Rule)
            .map_err(|e| path_error(e, at)),
    }
}

/// A spec key and the JSON type its schema gives it, for the string forms of the settings (a
/// ConfigMap's `data`, Argo CD parameters).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SpecKey {
    /// The key (`runAsUser`).
    pub name: String,
    /// What its value is.
    pub form: KeyForm,
    /// The rule that owns it; `None` for a global key.
    pub rule: Option<&'static str>,
}

/// The shape of a spec key's value, from its schema.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyForm {
    /// `true`/`false` (a ConfigMap also takes `yes`, `on`, `1`, …).
    Bool,
    /// An integer.
    Integer,
    /// A list of strings: a comma-separated list, or an inline YAML list (`[a, b]`).
    StringList,
    /// A mapping or a list of mappings: inline YAML.
    Inline,
    /// A string (an enum's value included).
    String,
}

impl KeyForm {
    /// A plain value (string, number, boolean, list of strings), as opposed to inline YAML.
    pub fn is_plain(self) -> bool {
        self != KeyForm::Inline
    }

    fn of(schema: &Value, defs: &Value) -> KeyForm {
        let schema = resolve(schema, defs);
        let types: Vec<&str> = match schema.get("type") {
            Some(Value::String(t)) => vec![t.as_str()],
            Some(Value::Array(ts)) => ts.iter().filter_map(Value::as_str).collect(),
            _ => Vec::new(),
        };
        let concrete: Vec<&str> = types.into_iter().filter(|t| *t != "null").collect();
        match concrete.as_slice() {
            ["boolean"] => KeyForm::Bool,
            ["integer"] => KeyForm::Integer,
            ["array"] => {
                let item = resolve(schema.get("items").unwrap_or(&Value::Null), defs);
                if item.get("type").and_then(Value::as_str) == Some("string") {
                    KeyForm::StringList
                } else {
                    KeyForm::Inline
                }
            }
            ["object"] => KeyForm::Inline,
            _ => match schema.get("anyOf").and_then(Value::as_array) {
                // `Option<T>` of a referenced type: T's form.
                Some(branches) => branches
                    .iter()
                    .find(|b| b.get("type").and_then(Value::as_str) != Some("null"))
                    .map_or(KeyForm::String, |b| KeyForm::of(b, defs)),
                None if schema.get("properties").is_some() => KeyForm::Inline,
                None => KeyForm::String,
            },
        }
    }
}

/// `schema`, or what its `$ref` names.
fn resolve<'a>(schema: &'a Value, defs: &'a Value) -> &'a Value {
    match schema.get("$ref").and_then(Value::as_str) {
        Some(r) => r
            .strip_prefix("#/$defs/")
            .and_then(|name| defs.get(name))
            .unwrap_or(&Value::Null),
        None => schema,
    }
}

/// Every spec key in schema order, with its form and owner.
pub fn spec_keys() -> Vec<SpecKey> {
    let schema = json_schema();
    let defs = schema.get("$defs").cloned().unwrap_or(Value::Null);
    let owners: Vec<(String, &'static str)> = rules::registry()
        .iter()
        .filter_map(|r| r.settings().map(|d| (r.id(), d)))
        .flat_map(|(id, d)| d.keys().into_iter().map(move |k| (k, id)))
        .collect();
    defs.get("PolicySpec")
        .and_then(|s| s.get("properties"))
        .and_then(Value::as_object)
        .map(|props| {
            props
                .iter()
                .map(|(name, sub)| SpecKey {
                    name: name.clone(),
                    form: KeyForm::of(sub, &defs),
                    rule: owners.iter().find(|(k, _)| k == name).map(|(_, id)| *id),
                })
                .collect()
        })
        .unwrap_or_default()
}

/// Turns one ConfigMap string into the JSON type the spec key expects.
fn config_map_value(key: &str, form: KeyForm, text: &str) -> Result<Value, Error> {
    Ok(match form {
        KeyForm::StringList if text.trim_start().starts_with('[') => parse_inline(key, text)?,
        KeyForm::StringList => Value::Array(
            text.split(',')
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .map(|s| Value::String(s.to_string()))
                .collect(),
        ),
        KeyForm::Bool => match text.trim() {
            "true" | "True" | "yes" | "on" | "1" => Value::Bool(true),
            "false" | "False" | "no" | "off" | "0" | "" => Value::Bool(false),
            other => {
                return Err(Error::Config(format!(
                    "data.{key}: `{other}` is not true or false"
                )))
            }
        },
        KeyForm::Integer => match text.trim().parse::<i64>() {
            Ok(n) => Value::from(n),
            Err(_) => {
                return Err(Error::Config(format!(
                    "data.{key}: `{text}` is not an integer"
                )))
            }
        },
        KeyForm::Inline => parse_inline(key, text)?,
        KeyForm::String => Value::String(text.to_string()),
    })
}

fn parse_inline(key: &str, text: &str) -> Result<Value, Error> {
    let doc = crate::yaml::tree::parse_document(text)
        .map_err(|e| Error::Config(format!("data.{key}: not valid YAML: {}", e.message)))?;
    Ok(doc.root.map(|r| r.to_value()).unwrap_or(Value::Null))
}

/// serde reads a struct from a sequence too (fields by position: `spec: []` would be the
/// defaults, `spec: [[a]]` would enable rule `a`). Settings are mappings: walk `value` along
/// the policy's JSON schema and refuse a sequence wherever the schema wants an object.
fn reject_sequences(value: &Value, schema: &Value, defs: &Value, at: &str) -> Result<(), Error> {
    let schema = match schema.get("$ref").and_then(Value::as_str) {
        Some(r) => r
            .strip_prefix("#/$defs/")
            .and_then(|name| defs.get(name))
            .unwrap_or(&Value::Null),
        None => schema,
    };
    let wants_object = schema.get("type").and_then(Value::as_str) == Some("object")
        || schema.get("properties").is_some();
    match value {
        Value::Array(items) if wants_object => Err(Error::Config(format!(
            "{}: expected a mapping, found a list",
            if at.is_empty() { "the config" } else { at }
        ))),
        Value::Array(items) => match schema.get("items") {
            Some(item) => items
                .iter()
                .enumerate()
                .try_for_each(|(i, v)| reject_sequences(v, item, defs, &format!("{at}[{i}]"))),
            None => Ok(()),
        },
        Value::Object(map) => {
            let Some(props) = schema.get("properties").and_then(Value::as_object) else {
                return Ok(());
            };
            for (k, v) in map {
                if let Some(sub) = props.get(k) {
                    let path = if at.is_empty() {
                        k.clone()
                    } else {
                        format!("{at}.{k}")
                    };
                    reject_sequences(v, sub, defs, &path)?;
                }
            }
            Ok(())
        }
        _ => Ok(()),
    }
}

fn deserialize<T: serde::de::DeserializeOwned>(value: Value, prefix: &str) -> Result<T, Error> {
    serde_path_to_error::deserialize(value).map_err(|e| path_error(e, prefix))
}

/// `prefix.path: message`, as the errors of a policy read.
fn path_error(e: serde_path_to_error::Error<serde_json::Error>, prefix: &str) -> Error {
    let path = e.path().to_string();
    let at = match (prefix.is_empty(), path.as_str()) {
        (true, ".") => String::new(),
        (true, p) => format!("{p}: "),
        (false, ".") => format!("{prefix}: "),
        (false, p) => format!("{prefix}.{p}: "),
    };
    Error::Config(format!("{at}{}", e.into_inner()))
}

/// The policy's JSON schema.
pub fn json_schema() -> Value {
    serde_json::to_value(schemars::schema_for!(HardeningPolicy)).unwrap_or(Value::Null)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Verbosity;
    use serde_json::json;

    #[test]
    fn verbosity_from_a_policy_a_config_map_and_the_flag() {
        let spec = spec_from_object(&json!({"apiVersion": "v1", "kind": "ConfigMap",
            "data": {"verbosity": "changes"}}))
        .unwrap();
        assert_eq!(spec.verbosity, Some(Verbosity::Changes));
        let policy = Policy::from_spec(spec.clone()).unwrap();
        assert_eq!(policy.verbosity(Verbosity::All), Verbosity::Changes);
        let flag = Overrides {
            verbosity: Some(Verbosity::All),
            ..Overrides::default()
        };
        let policy = Policy::with_overrides(spec, &flag).unwrap();
        assert_eq!(policy.verbosity(Verbosity::Problems), Verbosity::All);
        let none = Policy::from_spec(PolicySpec::default()).unwrap();
        assert_eq!(none.verbosity(Verbosity::Problems), Verbosity::Problems);
        let err = spec_from_object(
            &json!({"apiVersion": API_VERSION, "kind": KIND, "spec": {"verbosity": "loud"}}),
        )
        .unwrap_err()
        .to_string();
        assert!(err.contains("verbosity"), "{err}");
    }

    #[test]
    fn unknown_keys_are_named() {
        let err = spec_from_object(
            &json!({"apiVersion": API_VERSION, "kind": KIND, "spec": {"runAsUsr": 1}}),
        )
        .unwrap_err()
        .to_string();
        assert!(err.contains("spec") && err.contains("runAsUsr"), "{err}");
        let err = spec_from_object(
            &json!({"apiVersion": "v1", "kind": "ConfigMap", "data": {"bogus": "x"}}),
        )
        .unwrap_err()
        .to_string();
        assert!(err.contains("bogus"), "{err}");
    }

    #[test]
    fn config_map_strings() {
        let spec = spec_from_object(&json!({"apiVersion": "v1", "kind": "ConfigMap",
            "data": {"disable": "seccomp, writable-tmp", "enforce": "true", "runAsUser": "10001"}}))
        .unwrap();
        assert_eq!(spec.disable, vec!["seccomp", "writable-tmp"]);
        assert!(spec.enforce);
        assert_eq!(
            spec.settings::<rules::run_as_non_root::Settings>()
                .run_as_user,
            Some(10001)
        );
        let policy = Policy::from_spec(spec).unwrap();
        assert!(!policy.is_enabled("seccomp"));
        assert!(policy.is_enabled("run-as-non-root"));
    }

    #[test]
    fn unknown_rule_ids_are_errors() {
        let spec = PolicySpec {
            disable: vec!["no-such-rule".into()],
            ..Default::default()
        };
        assert!(Policy::from_spec(spec)
            .unwrap_err()
            .to_string()
            .contains("no-such-rule"));
    }

    #[test]
    fn keys_know_their_owner_and_string_form() {
        let keys = spec_keys();
        let find = |name: &str| keys.iter().find(|k| k.name == name).unwrap().clone();
        assert_eq!(find("enforce").form, KeyForm::Bool);
        assert_eq!(find("enforce").rule, None);
        assert_eq!(find("runAsUser").form, KeyForm::Integer);
        assert_eq!(find("runAsUser").rule, Some("run-as-non-root"));
        assert_eq!(find("writablePaths").form, KeyForm::StringList);
        assert_eq!(find("writablePaths").rule, Some("writable-tmp"));
        assert_eq!(find("tmpSizeLimit").form, KeyForm::String);
        assert_eq!(find("probes").form, KeyForm::Inline);
        assert_eq!(
            find("podDisruptionBudget").rule,
            Some("pod-disruption-budget")
        );
        assert_eq!(find("workloads").form, KeyForm::Inline);
        assert_eq!(find("images").form, KeyForm::Inline);
        assert_eq!(find("verbosity").form, KeyForm::String);
        assert_eq!(find("unknownImages").form, KeyForm::String);
    }

    #[test]
    fn keys_of_several_owners_in_one_spec() {
        let spec = spec_from_value(json!({"runAsUser": 5, "enforce": true,
            "tmpSizeLimit": "1Gi", "runAsGroup": 6}))
        .unwrap();
        assert!(spec.enforce);
        let user = spec.settings::<rules::run_as_non_root::Settings>();
        assert_eq!((user.run_as_user, user.run_as_group), (Some(5), Some(6)));
        let tmp = spec.settings::<rules::writable_tmp::Settings>();
        assert_eq!(tmp.size_limit(), "1Gi");
        // The first bad key in document order is the one reported, whoever owns it.
        let err = spec_from_value(json!({"enable": 3, "runAsUser": "x"}))
            .unwrap_err()
            .to_string();
        assert!(err.contains(": spec.enable:"), "{err}");
        let err = spec_from_value(json!({"runAsUser": "x", "enable": 3}))
            .unwrap_err()
            .to_string();
        assert!(err.contains(": spec.runAsUser:"), "{err}");
        let err = spec_from_value(json!(null)).unwrap_err().to_string();
        assert!(err.contains("expected struct PolicySpec"), "{err}");
    }

    #[test]
    fn unknown_keys_list_every_owners_keys() {
        let err = spec_from_value(json!({"bogus": 1}))
            .unwrap_err()
            .to_string();
        for key in [
            "enable",
            "runAsUser",
            "tmpSizeLimit",
            "probes",
            "podDisruptionBudget",
            "images",
        ] {
            assert!(err.contains(&format!("`{key}`")), "{err}");
        }
    }

    #[test]
    fn keys_from_another_spec_replace_only_those() {
        let base =
            spec_from_value(json!({"runAsUser": 1, "runAsGroup": 7, "verbosity": "all"})).unwrap();
        let over = spec_from_value(json!({"runAsUser": 2, "verbosity": "changes"})).unwrap();
        let merged = base
            .with_keys_from(&over, &["runAsUser".to_string()])
            .unwrap();
        let user = merged.settings::<rules::run_as_non_root::Settings>();
        assert_eq!((user.run_as_user, user.run_as_group), (Some(2), Some(7)));
        assert_eq!(merged.verbosity, Some(Verbosity::All));
    }

    /// Every key has exactly one owner, every settings type refuses unknown keys, needs none of
    /// its keys, and its defaults are valid.
    #[test]
    fn registered_settings_are_well_formed() {
        let mut generator = schemars::SchemaGenerator::default();
        let global = PolicySpec::json_schema(&mut generator);
        let mut keys: Vec<String> = global
            .get("properties")
            .and_then(Value::as_object)
            .map(|p| p.keys().cloned().collect())
            .unwrap_or_default();
        let mut owners = 0;
        for rule in rules::registry() {
            let Some(d) = rule.settings() else { continue };
            owners += 1;
            let schema = (d.schema)(&mut generator);
            assert_eq!(
                schema.get("additionalProperties"),
                Some(&Value::Bool(false)),
                "{}: settings need #[serde(deny_unknown_fields)]",
                rule.id()
            );
            assert!(
                schema.get("required").is_none(),
                "{}: every settings key needs #[serde(default)]",
                rule.id()
            );
            assert!(!d.keys().is_empty(), "{}", rule.id());
            keys.extend(d.keys());
            assert!((d.default)().validated().is_ok(), "{}", rule.id());
        }
        assert!(owners >= 4);
        let count = keys.len();
        keys.sort_unstable();
        keys.dedup();
        assert_eq!(keys.len(), count, "a spec key with two owners");
    }

    /// A policy holds every registered rule's settings, validated, whatever the spec gave.
    #[test]
    fn a_policy_holds_every_rules_validated_settings() {
        let policy = Policy::default();
        let spec = spec_from_value(serde_json::json!({"runAsUser": 5})).unwrap();
        let given = Policy::from_spec(spec).unwrap();
        for d in rules::registry().iter().filter_map(|r| r.settings()) {
            let id = (d.type_id)();
            for p in [&policy, &given] {
                assert!(p.spec.rules.0.iter().any(|s| s.as_any().type_id() == id));
            }
        }
        assert_eq!(
            given
                .settings::<rules::run_as_non_root::Settings>()
                .run_as_user,
            Some(5)
        );
    }
}
