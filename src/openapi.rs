//! The HardeningPolicy schema in the OpenAPI v3 (Kubernetes structural) form that a
//! `KRMFunctionDefinition` embeds as `openAPIV3Schema`, derived from the JSON schema the code
//! generates, so function.yaml can be checked against the code.

use serde_json::{Map, Value};

use crate::config;
use crate::policy;

/// The policy's schema as an OpenAPI v3 structural schema: `$ref`s inlined, `nullable` instead
/// of `null` types, no JSON-Schema-only keywords, `apiVersion` and `kind` pinned.
pub fn policy_schema() -> Value {
    let mut schema = to_openapi_v3(&policy::json_schema());
    for (field, value) in [("apiVersion", config::API_VERSION), ("kind", config::KIND)] {
        if let Some(Value::Object(property)) = schema.pointer_mut(&format!("/properties/{field}")) {
            property.insert("enum".into(), Value::Array(vec![value.into()]));
        }
    }
    schema
}

/// Converts a JSON Schema (draft 2020-12, as schemars writes it) to OpenAPI v3.
pub fn to_openapi_v3(schema: &Value) -> Value {
    let defs = schema.get("$defs").cloned().unwrap_or(Value::Null);
    convert(schema, &defs, 0)
}

fn convert(node: &Value, defs: &Value, depth: usize) -> Value {
    let Value::Object(map) = node else {
        return node.clone();
    };
    // Inline a reference; the referring node's own keywords (its description) win.
    let mut source = Map::new();
    if let Some(target) = map
        .get("$ref")
        .and_then(Value::as_str)
        .and_then(|r| r.strip_prefix("#/$defs/"))
        .and_then(|name| defs.get(name))
        .filter(|_| depth < 32)
    {
        if let Value::Object(target) = convert(target, defs, depth + 1) {
            source = target;
        }
    }
    for (key, value) in map {
        source.insert(key.clone(), value.clone());
    }
    let mut out = Map::new();
    for (key, value) in source {
        match key.as_str() {
            "$schema" | "$defs" | "$ref" => {}
            // A null default says "absent", which is what leaving it out says in OpenAPI.
            "default" if value.is_null() => {}
            "type" => match value {
                Value::Array(types) => {
                    let concrete: Vec<Value> =
                        types.iter().filter(|t| *t != "null").cloned().collect();
                    if concrete.len() < types.len() {
                        out.insert("nullable".into(), Value::Bool(true));
                    }
                    if let [only] = concrete.as_slice() {
                        out.insert("type".into(), only.clone());
                    }
                }
                other => {
                    out.insert("type".into(), other);
                }
            },
            // Structural schemas prune unknown fields by default and reject `false`; `true`
            // becomes the Kubernetes extension that keeps them.
            "additionalProperties" => match value {
                Value::Bool(true) => {
                    out.insert(
                        "x-kubernetes-preserve-unknown-fields".into(),
                        Value::Bool(true),
                    );
                }
                Value::Bool(false) => {}
                schema => {
                    out.insert(key, convert(&schema, defs, depth + 1));
                }
            },
            "properties" => {
                let props = value
                    .as_object()
                    .map(|p| {
                        p.iter()
                            .map(|(k, v)| (k.clone(), convert(v, defs, depth + 1)))
                            .collect()
                    })
                    .unwrap_or_default();
                out.insert(key, Value::Object(props));
            }
            "items" => {
                out.insert(key, convert(&value, defs, depth + 1));
            }
            // `Option<T>` of a referenced type comes as `anyOf: [T, {type: null}]`: that is a
            // nullable T. Other alternatives stay (int-or-string is the structural one).
            "anyOf" | "oneOf" => {
                let branches: Vec<Value> = value
                    .as_array()
                    .map(|b| b.iter().map(|v| convert(v, defs, depth + 1)).collect())
                    .unwrap_or_default();
                let concrete: Vec<Value> = branches
                    .iter()
                    .filter(|b| b.get("type").and_then(Value::as_str) != Some("null"))
                    .cloned()
                    .collect();
                if concrete.len() < branches.len() {
                    out.insert("nullable".into(), Value::Bool(true));
                }
                match concrete.as_slice() {
                    [Value::Object(only)] => {
                        for (k, v) in only {
                            out.entry(k.clone()).or_insert_with(|| v.clone());
                        }
                    }
                    _ => {
                        // Structural schemas allow only validation inside alternatives (plus
                        // `type` for int-or-string): no descriptions or formats there.
                        let bare = concrete
                            .into_iter()
                            .map(|b| match b {
                                Value::Object(m) => Value::Object(
                                    m.into_iter()
                                        .filter(|(k, _)| k == "type" || k == "pattern")
                                        .collect(),
                                ),
                                other => other,
                            })
                            .collect();
                        out.insert(key, Value::Array(bare));
                    }
                }
            }
            _ => {
                out.insert(key, value);
            }
        }
    }
    Value::Object(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn walk(v: &Value, f: &mut impl FnMut(&Map<String, Value>)) {
        match v {
            Value::Object(m) => {
                f(m);
                m.values().for_each(|c| walk(c, f));
            }
            Value::Array(a) => a.iter().for_each(|c| walk(c, f)),
            _ => {}
        }
    }

    #[test]
    fn structural_and_complete() {
        let schema = policy_schema();
        walk(&schema, &mut |m| {
            for bad in ["$ref", "$defs", "$schema"] {
                assert!(!m.contains_key(bad), "{bad} left in {m:?}");
            }
            if let Some(t) = m.get("type") {
                assert!(t.is_string(), "type must be one string: {m:?}");
            }
        });
        let spec = &schema["properties"]["spec"];
        assert_eq!(spec["type"], "object");
        assert_eq!(spec["properties"]["runAsUser"]["nullable"], true);
        assert_eq!(spec["properties"]["runAsUser"]["type"], "integer");
        assert_eq!(
            spec["properties"]["workloads"]["items"]["required"],
            serde_json::json!(["apiVersion", "kind"])
        );
        assert_eq!(
            schema["properties"]["kind"]["enum"],
            serde_json::json!([config::KIND])
        );
    }
}
