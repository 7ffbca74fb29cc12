//! TypeScript declarations of the HardeningPolicy spec for the npm package, generated from the
//! policy's JSON schema (so from the rules' settings): `HardeningPolicySpec` and one declaration
//! per type it names (`ProbeSettings`, `ImageFacts`, …). `wasm/src/policy.d.ts` holds the output
//! (`tests/typescript.rs` keeps it in sync) and `wasm/src/lib.rs` includes it.

use serde_json::{Map, Value};

use crate::policy;

/// The name of the spec's interface.
pub const SPEC_INTERFACE: &str = "HardeningPolicySpec";

/// The declarations: the spec interface, then every named type it uses, in schema order.
pub fn policy_spec_declarations() -> String {
    let schema = policy::json_schema();
    let empty = Map::new();
    let defs = schema
        .get("$defs")
        .and_then(Value::as_object)
        .unwrap_or(&empty);
    let mut out = String::from(
        "// Generated from the HardeningPolicy schema by `kube_harden::typescript`; do not edit.\n\
         // `UPDATE_GOLDEN=1 cargo test --test typescript` rewrites it.\n",
    );
    for (name, def) in defs {
        let name = if name == "PolicySpec" {
            SPEC_INTERFACE
        } else {
            name.as_str()
        };
        out.push('\n');
        out.push_str(&doc(def, ""));
        if is_object(def) {
            out.push_str(&format!("export interface {name} {}\n", object(def, "")));
        } else {
            out.push_str(&format!("export type {name} = {};\n", ts(def, "")));
        }
    }
    out
}

fn is_object(schema: &Value) -> bool {
    schema.get("properties").is_some()
}

/// A JSDoc comment from the schema's description, at `indent`.
fn doc(schema: &Value, indent: &str) -> String {
    let Some(text) = schema.get("description").and_then(Value::as_str) else {
        return String::new();
    };
    let text = text.replace("*/", "*\\/");
    let mut lines = text.lines();
    let first = lines.next().unwrap_or("");
    let mut out = format!("{indent}/** {first}");
    for line in lines {
        out.push('\n');
        out.push_str(indent);
        out.push_str(" * ");
        out.push_str(line);
    }
    out.push_str(" */\n");
    out
}

/// An object type's members, `{ … }`, one per line.
fn object(schema: &Value, indent: &str) -> String {
    let inner = format!("{indent}  ");
    let required: Vec<&str> = schema
        .get("required")
        .and_then(Value::as_array)
        .map(|r| r.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default();
    let mut out = String::from("{\n");
    if let Some(props) = schema.get("properties").and_then(Value::as_object) {
        for (key, sub) in props {
            out.push_str(&doc(sub, &inner));
            let optional = if required.contains(&key.as_str()) {
                ""
            } else {
                "?"
            };
            out.push_str(&format!("{inner}{key}{optional}: {};\n", ts(sub, &inner)));
        }
    }
    out.push_str(indent);
    out.push('}');
    out
}

/// The TypeScript type of a schema (`null` left out: an absent key says the same).
fn ts(schema: &Value, indent: &str) -> String {
    if let Some(name) = schema
        .get("$ref")
        .and_then(Value::as_str)
        .and_then(|r| r.strip_prefix("#/$defs/"))
    {
        return if name == "PolicySpec" {
            SPEC_INTERFACE.to_string()
        } else {
            name.to_string()
        };
    }
    if let Some(c) = schema.get("const") {
        return c.to_string();
    }
    if let Some(values) = schema.get("enum").and_then(Value::as_array) {
        return union(values.iter().map(Value::to_string).collect());
    }
    for key in ["anyOf", "oneOf"] {
        if let Some(branches) = schema.get(key).and_then(Value::as_array) {
            return union(
                branches
                    .iter()
                    .filter(|b| b.get("type").and_then(Value::as_str) != Some("null"))
                    .map(|b| ts(b, indent))
                    .collect(),
            );
        }
    }
    let types: Vec<&str> = match schema.get("type") {
        Some(Value::String(t)) => vec![t.as_str()],
        Some(Value::Array(ts)) => ts
            .iter()
            .filter_map(Value::as_str)
            .filter(|t| *t != "null")
            .collect(),
        _ => Vec::new(),
    };
    union(
        types
            .into_iter()
            .map(|t| match t {
                "string" => "string".to_string(),
                "integer" | "number" => "number".to_string(),
                "boolean" => "boolean".to_string(),
                "array" => {
                    let item = ts(schema.get("items").unwrap_or(&Value::Null), indent);
                    if item.contains(" | ") {
                        format!("({item})[]")
                    } else {
                        format!("{item}[]")
                    }
                }
                "object" if is_object(schema) => object(schema, indent),
                "object" => match schema.get("additionalProperties") {
                    Some(sub @ Value::Object(_)) => {
                        format!("Record<string, {}>", ts(sub, indent))
                    }
                    _ => "Record<string, unknown>".to_string(),
                },
                _ => "unknown".to_string(),
            })
            .collect(),
    )
}

fn union(mut parts: Vec<String>) -> String {
    parts.dedup();
    match parts.len() {
        0 => "unknown".to_string(),
        _ => parts.join(" | "),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spec_keys_and_types() {
        let out = policy_spec_declarations();
        assert!(
            out.contains("export interface HardeningPolicySpec {\n"),
            "{out}"
        );
        for member in [
            "  runAsUser?: number;\n",
            "  writablePaths?: string[];\n",
            "  probes?: ProbeSettings;\n",
            "  podDisruptionBudget?: DisruptionBudgetSettings;\n",
            "  verbosity?: Verbosity;\n",
            "  workloads?: ExtraWorkload[];\n",
        ] {
            assert!(out.contains(member), "{member:?} missing:\n{out}");
        }
        assert!(out.contains("export type Verbosity = \"problems\" | \"changes\" | \"all\";"));
        assert!(out.contains("export type IntOrPercent = number | string;"));
        assert!(out.contains("export interface ImageFacts {"));
        assert!(!out.contains("$ref") && !out.contains("null"), "{out}");
    }
}
