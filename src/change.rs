//! What rules produce: changes (with the one applier that applies them) and findings, and how
//! both become results for KRM output, stderr and `--results`.

use serde_json::{json, Map, Value};

use crate::model::path::FieldPath;

/// How serious a result is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Severity {
    /// Something changed or was deliberately left alone.
    Info,
    /// Something stays insecure.
    Warning,
    /// Something is wrong; the run exits 1.
    Error,
}

impl Severity {
    /// The KRM spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            Severity::Info => "info",
            Severity::Warning => "warning",
            Severity::Error => "error",
        }
    }
}

/// What a change does at its path.
#[derive(Debug, Clone, PartialEq)]
pub enum Op {
    /// Set a field that is absent (or null); missing parent mappings are created.
    Add(Value),
    /// Overwrite an explicit value (enforce mode only).
    Replace { from: Value, to: Value },
    /// Append an item to a list, creating the list when absent.
    Append(Value),
}

/// One change a rule wants, relative to the object root.
#[derive(Debug, Clone, PartialEq)]
pub struct Change {
    /// Rule id.
    pub rule: &'static str,
    /// Where.
    pub path: FieldPath,
    /// What.
    pub op: Op,
    /// Why, for people.
    pub message: String,
}

/// Something a rule reports without changing it.
#[derive(Debug, Clone, PartialEq)]
pub struct Finding {
    /// Rule id.
    pub rule: &'static str,
    /// How serious.
    pub severity: Severity,
    /// The field concerned, when there is one.
    pub path: Option<FieldPath>,
    /// Its current value.
    pub current: Option<Value>,
    /// The value the rule would set.
    pub proposed: Option<Value>,
    /// For people.
    pub message: String,
}

/// What a rule returns for one pod.
#[derive(Debug, Default)]
pub struct Findings {
    /// Changes to apply.
    pub changes: Vec<Change>,
    /// Reports.
    pub findings: Vec<Finding>,
    /// Images that could not be pinned (pin-image-digests), for the "how to fix" report.
    pub unresolved: Vec<crate::digest::ResolveError>,
}

impl Findings {
    /// Adds a change setting an absent field.
    pub fn add(
        &mut self,
        rule: &'static str,
        path: FieldPath,
        value: Value,
        message: impl Into<String>,
    ) {
        self.changes.push(Change {
            rule,
            path,
            op: Op::Add(value),
            message: message.into(),
        });
    }

    /// Adds a change overwriting an explicit value.
    pub fn replace(
        &mut self,
        rule: &'static str,
        path: FieldPath,
        from: Value,
        to: Value,
        message: impl Into<String>,
    ) {
        self.changes.push(Change {
            rule,
            path,
            op: Op::Replace { from, to },
            message: message.into(),
        });
    }

    /// Adds a change appending to a list.
    pub fn append(
        &mut self,
        rule: &'static str,
        path: FieldPath,
        item: Value,
        message: impl Into<String>,
    ) {
        self.changes.push(Change {
            rule,
            path,
            op: Op::Append(item),
            message: message.into(),
        });
    }

    /// Reports a field that stays insecure.
    pub fn warn(
        &mut self,
        rule: &'static str,
        path: FieldPath,
        current: Value,
        proposed: Option<Value>,
        message: impl Into<String>,
    ) {
        self.findings.push(Finding {
            rule,
            severity: Severity::Warning,
            path: Some(path),
            current: Some(current),
            proposed,
            message: message.into(),
        });
    }

    /// Reports a change left out because it could stop the workload (or the facts that would
    /// make it safe are unknown): a warning at `path` with the value it would have set.
    pub fn withheld(
        &mut self,
        rule: &'static str,
        path: FieldPath,
        proposed: Value,
        message: impl Into<String>,
    ) {
        self.findings.push(Finding {
            rule,
            severity: Severity::Warning,
            path: Some(path),
            current: None,
            proposed: Some(proposed),
            message: message.into(),
        });
    }

    /// Reports a deliberate decision.
    pub fn info(
        &mut self,
        rule: &'static str,
        path: Option<FieldPath>,
        message: impl Into<String>,
    ) {
        self.findings.push(Finding {
            rule,
            severity: Severity::Info,
            path,
            current: None,
            proposed: None,
            message: message.into(),
        });
    }

    /// Reports an object that cannot be hardened.
    pub fn error(
        &mut self,
        rule: &'static str,
        path: Option<FieldPath>,
        message: impl Into<String>,
    ) {
        self.findings.push(Finding {
            rule,
            severity: Severity::Error,
            path,
            current: None,
            proposed: None,
            message: message.into(),
        });
    }
}

/// Applies one change to an object. Adds never overwrite: a field that became present is left.
pub fn apply(object: &mut Value, change: &Change) -> Result<bool, String> {
    match &change.op {
        Op::Add(value) => {
            let slot = change.path.get_or_create(object)?;
            if slot.is_null() {
                *slot = value.clone();
                Ok(true)
            } else {
                Ok(false)
            }
        }
        Op::Replace { to, .. } => {
            let slot = change.path.get_or_create(object)?;
            if slot == to {
                return Ok(false);
            }
            *slot = to.clone();
            Ok(true)
        }
        Op::Append(item) => {
            let slot = change.path.get_or_create(object)?;
            if slot.is_null() {
                *slot = Value::Array(Vec::new());
            }
            match slot {
                Value::Array(items) => {
                    items.push(item.clone());
                    Ok(true)
                }
                _ => Err(format!("{} is not a list", change.path)),
            }
        }
    }
}

/// Identifies an object in results.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ResourceRef {
    /// apiVersion.
    pub api_version: String,
    /// kind.
    pub kind: String,
    /// metadata.name.
    pub name: String,
    /// metadata.namespace, when set.
    pub namespace: Option<String>,
}

impl ResourceRef {
    /// Reads the identity of an object.
    pub fn of(object: &Value) -> Self {
        let s = |v: Option<&Value>| v.and_then(Value::as_str).unwrap_or("").to_string();
        ResourceRef {
            api_version: s(object.get("apiVersion")),
            kind: s(object.get("kind")),
            name: s(object.pointer("/metadata/name")),
            namespace: object
                .pointer("/metadata/namespace")
                .and_then(Value::as_str)
                .map(str::to_string),
        }
    }

    /// `Kind namespace/name` for people.
    pub fn display(&self) -> String {
        match &self.namespace {
            Some(ns) => format!("{} {}/{}", self.kind, ns, self.name),
            None => format!("{} {}", self.kind, self.name),
        }
    }
}

/// A result in the KRM functions spec's shape.
#[derive(Debug, Clone, PartialEq)]
pub struct KrmResult {
    /// Rule id (also written as tag `rule`).
    pub rule: &'static str,
    /// Severity.
    pub severity: Severity,
    /// Message.
    pub message: String,
    /// The object.
    pub resource: Option<ResourceRef>,
    /// The field path.
    pub path: Option<String>,
    /// Value before.
    pub current: Option<Value>,
    /// Value proposed or set.
    pub proposed: Option<Value>,
    /// Source file (Helm `# Source:`, kpt path annotation), when known.
    pub file: Option<String>,
}

impl KrmResult {
    /// The result as a KRM `Result` object.
    pub fn to_value(&self) -> Value {
        let mut m = Map::new();
        m.insert("message".into(), Value::String(self.message.clone()));
        m.insert(
            "severity".into(),
            Value::String(self.severity.as_str().into()),
        );
        if let Some(r) = &self.resource {
            let mut rr = Map::new();
            rr.insert("apiVersion".into(), json!(r.api_version));
            rr.insert("kind".into(), json!(r.kind));
            rr.insert("name".into(), json!(r.name));
            if let Some(ns) = &r.namespace {
                rr.insert("namespace".into(), json!(ns));
            }
            m.insert("resourceRef".into(), Value::Object(rr));
        }
        if let Some(p) = &self.path {
            let mut f = Map::new();
            f.insert("path".into(), json!(p));
            if let Some(c) = &self.current {
                f.insert("currentValue".into(), c.clone());
            }
            if let Some(pv) = &self.proposed {
                f.insert("proposedValue".into(), pv.clone());
            }
            m.insert("field".into(), Value::Object(f));
        }
        if let Some(file) = &self.file {
            m.insert("file".into(), json!({ "path": file }));
        }
        m.insert("tags".into(), json!({ "rule": self.rule }));
        Value::Object(m)
    }
}
