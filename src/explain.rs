//! `kube-harden explain`: per changed object, an RFC 6902 JSON Patch that turns the input object
//! into the output object (computed with the `json-patch` crate from the two objects as
//! Kubernetes reads them), and a line per change saying which rule made it and why (the run's
//! results for that object).

use std::collections::HashMap;

use anyhow::{Context, Result};
use serde_json::{json, Value};

use kube_harden::change::{KrmResult, ResourceRef, Severity};
use kube_harden::yaml::{split::split_documents, tree::parse_document};

/// One changed (or generated) object.
pub struct Explained {
    /// Its identity.
    pub resource: ResourceRef,
    /// True for an object the run generated (a PodDisruptionBudget).
    pub generated: bool,
    /// The patch from the input object to the output object (from `null` for a generated one).
    pub patch: json_patch::Patch,
    /// (rule, field path, message) of every change the run reported for the object.
    pub changes: Vec<(String, Option<String>, String)>,
}

/// Every object of a stream as Kubernetes reads it, Lists and ResourceLists flattened (items of
/// a List inside a List too), in order.
pub fn objects(stream: &str) -> Result<Vec<Value>> {
    let mut out = Vec::new();
    for (n, seg) in split_documents(stream).iter().enumerate() {
        if seg.is_blank() {
            continue;
        }
        let doc = parse_document(seg.text).map_err(|e| {
            anyhow::anyhow!(
                "document {} (line {}): {}",
                n + 1,
                seg.first_line + e.line.saturating_sub(1),
                e.message
            )
        })?;
        if let Some(root) = doc.root {
            flatten(root.to_value(), &mut out);
        }
    }
    Ok(out)
}

fn flatten(value: Value, out: &mut Vec<Value>) {
    let kind = value.get("kind").and_then(Value::as_str).unwrap_or("");
    let is_list = (kind == "ResourceList" || kind.ends_with("List"))
        && value.get("items").is_some_and(Value::is_array);
    if !is_list {
        if !value.is_null() {
            out.push(value);
        }
        return;
    }
    if let Some(Value::Array(items)) = value.get("items") {
        for item in items.clone() {
            flatten(item, out);
        }
    }
}

fn key(r: &ResourceRef) -> (String, String, String, String) {
    (
        r.api_version.clone(),
        r.kind.clone(),
        r.namespace.clone().unwrap_or_default(),
        r.name.clone(),
    )
}

/// The changed and generated objects between `input` and `output` (two streams), in output
/// order, each with its patch and the run's info results for it.
pub fn explain(input: &str, output: &str, results: &[KrmResult]) -> Result<Vec<Explained>> {
    let before = objects(input).context("reading the input")?;
    let after = objects(output).context("reading the output")?;
    // Objects pair up by identity, in order (the same identity twice pairs first with first).
    let mut pending: HashMap<_, std::collections::VecDeque<Value>> = HashMap::new();
    for v in before {
        pending
            .entry(key(&ResourceRef::of(&v)))
            .or_default()
            .push_back(v);
    }
    let mut out = Vec::new();
    for v in after {
        let resource = ResourceRef::of(&v);
        let old = pending.get_mut(&key(&resource)).and_then(|q| q.pop_front());
        let generated = old.is_none();
        let old = old.unwrap_or(Value::Null);
        if old == v {
            continue;
        }
        let patch = json_patch::diff(&old, &v);
        let changes = results
            .iter()
            .filter(|r| r.severity == Severity::Info)
            .filter(|r| {
                r.resource
                    .as_ref()
                    .is_some_and(|o| key(o) == key(&resource))
            })
            .filter(|r| r.change)
            .flat_map(|r| {
                r.field_notes().into_iter().map(|(path, message)| {
                    (
                        r.rule.to_string(),
                        path.map(str::to_string),
                        message.to_string(),
                    )
                })
            })
            .collect();
        out.push(Explained {
            resource,
            generated,
            patch,
            changes,
        });
    }
    Ok(out)
}

/// `-o json`: `{"objects": [{apiVersion, kind, namespace, name, generated, patch, changes}]}`.
pub fn to_json(explained: &[Explained]) -> Value {
    let objects: Vec<Value> = explained
        .iter()
        .map(|e| {
            json!({
                "apiVersion": e.resource.api_version,
                "kind": e.resource.kind,
                "namespace": e.resource.namespace,
                "name": e.resource.name,
                "generated": e.generated,
                "patch": serde_json::to_value(&e.patch).expect("a patch serializes"),
                "changes": e.changes.iter().map(|(rule, path, message)| json!({
                    "rule": rule, "path": path, "message": message,
                })).collect::<Vec<_>>(),
            })
        })
        .collect();
    json!({ "objects": objects })
}

/// The text form: per object a heading, one line per change, then the patch, one operation a
/// line.
pub fn to_text(explained: &[Explained]) -> String {
    let mut s = String::new();
    for e in explained {
        let ns = e
            .resource
            .namespace
            .as_deref()
            .map(|n| format!(" (namespace {n})"))
            .unwrap_or_default();
        let what = if e.generated { "generated" } else { "changed" };
        s.push_str(&format!(
            "{}/{}{ns}: {what}, {} patch operation(s)\n",
            e.resource.kind,
            e.resource.name,
            e.patch.0.len()
        ));
        for (rule, path, message) in &e.changes {
            match path {
                Some(p) => s.push_str(&format!("  {rule}: {p}: {message}\n")),
                None => s.push_str(&format!("  {rule}: {message}\n")),
            }
        }
        s.push_str("  patch:\n");
        for op in &e.patch.0 {
            let line = serde_json::to_string(op).expect("an operation serializes");
            s.push_str(&format!("    {line}\n"));
        }
    }
    if explained.is_empty() {
        s.push_str("nothing would change\n");
    }
    s
}
