//! What rules produce: changes (with the one applier that applies them) and findings, and how
//! both become results for KRM output, stderr and `--results`.

use serde_json::Value;

use crate::model::path::{FieldPath, Pointer};

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
    /// A new object (a rule's `create` hook; the path is the root): the engine places it after
    /// the object it was planned for, as a document of a stream or an item of a list
    /// ([`apply`] appends it to the list at the path it is given).
    Create(Value),
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
        Op::Append(item) | Op::Create(item) => {
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
#[derive(Debug, Clone, Default, Eq)]
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

/// Field by field, the name first: results of a stream are compared with the few objects the
/// summary shows, which mostly differ there (and share apiVersion and kind).
impl PartialEq for ResourceRef {
    fn eq(&self, other: &Self) -> bool {
        self.name == other.name
            && self.namespace == other.namespace
            && self.kind == other.kind
            && self.api_version == other.api_version
    }
}

impl ResourceRef {
    /// Reads the identity of an object.
    pub fn of(object: &Value) -> Self {
        let s = |v: Option<&Value>| v.and_then(Value::as_str).unwrap_or("").to_string();
        ResourceRef {
            api_version: s(object.get("apiVersion")),
            kind: s(object.get("kind")),
            name: s(object.at("/metadata/name")),
            namespace: object
                .at("/metadata/namespace")
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
    /// For a result that groups several fields of one object and rule: each field's path and
    /// message (then `path`, `current` and `proposed` are empty). Empty for a single field.
    pub fields: Vec<FieldNote>,
    /// True for the record of changes made (not a finding or decision).
    pub change: bool,
}

/// One field of a grouped result.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FieldNote {
    /// The field path, when the finding has one.
    pub path: Option<Box<str>>,
    /// What the rule did or found there.
    pub message: Box<str>,
}

impl KrmResult {
    /// A result without field (or with one, set afterwards).
    pub fn new(
        rule: &'static str,
        severity: Severity,
        message: String,
        resource: Option<ResourceRef>,
        file: Option<String>,
    ) -> Self {
        KrmResult {
            rule,
            severity,
            message,
            resource,
            path: None,
            current: None,
            proposed: None,
            file,
            fields: Vec::new(),
            change: false,
        }
    }

    /// An info result recording changes made.
    pub fn new_change(
        rule: &'static str,
        severity: Severity,
        message: String,
        resource: Option<ResourceRef>,
        file: Option<String>,
    ) -> Self {
        KrmResult {
            change: true,
            ..KrmResult::new(rule, severity, message, resource, file)
        }
    }

    /// `(path, message)` of every field the result covers: its own, or the grouped ones.
    pub fn field_notes(&self) -> Vec<(Option<&str>, &str)> {
        if self.fields.is_empty() {
            vec![(self.path.as_deref(), self.message.as_str())]
        } else {
            self.fields
                .iter()
                .map(|f| (f.path.as_deref(), f.message.as_ref()))
                .collect()
        }
    }
}

/// Groups one object's results: one result per rule and severity, in the order each first
/// appears. A group of one is left as it is; a larger group keeps each field's path and message
/// in `fields`, and its message joins the distinct messages with `; `.
pub fn group(results: Vec<KrmResult>) -> Vec<KrmResult> {
    let mut groups: Vec<Vec<KrmResult>> = Vec::new();
    for r in results {
        match groups.iter_mut().find(|g| {
            g[0].rule == r.rule
                && g[0].severity == r.severity
                && g[0].change == r.change
                && g[0].file == r.file
        }) {
            Some(g) => g.push(r),
            None => groups.push(vec![r]),
        }
    }
    groups
        .into_iter()
        .map(|mut g| {
            if g.len() == 1 {
                return g.pop().expect("a group has a result");
            }
            let mut message = String::new();
            let mut seen = std::collections::HashSet::new();
            for r in &g {
                if seen.insert(r.message.as_str()) {
                    if !message.is_empty() {
                        message.push_str("; ");
                    }
                    message.push_str(&r.message);
                }
            }
            let fields = g
                .iter()
                .map(|r| FieldNote {
                    path: r.path.as_deref().map(Into::into),
                    message: r.message.as_str().into(),
                })
                .collect();
            let first = &g[0];
            KrmResult {
                fields,
                change: first.change,
                ..KrmResult::new(
                    first.rule,
                    first.severity,
                    message,
                    first.resource.clone(),
                    first.file.clone(),
                )
            }
        })
        .collect()
}

/// A short name for what a change at `path` hardened, for the one line per changed object
/// (`runAsNonRoot`, `seccomp`, `drop ALL`, `readinessProbe`, `image digest`, …).
pub fn change_label(path: &FieldPath) -> String {
    use crate::model::path::Seg;
    let keys: Vec<&str> = path
        .0
        .iter()
        .filter_map(|s| match s {
            Seg::Key(k) => Some(k.as_str()),
            Seg::Index(_) => None,
        })
        .collect();
    let last = keys.last().copied().unwrap_or("");
    let before = keys.len().checked_sub(2).map_or("", |i| keys[i]);
    match (before, last) {
        (_, "seccompProfile") | ("seccompProfile", _) => "seccomp RuntimeDefault".into(),
        ("capabilities", "drop") => "drop ALL".into(),
        (_, "image") => "image digest".into(),
        (_, "volumes") => "emptyDir volumes".into(),
        (_, "volumeMounts") => "writable mounts".into(),
        ("annotations", _) => "annotations".into(),
        (_, "allowPrivilegeEscalation") => "allowPrivilegeEscalation false".into(),
        (_, "readOnlyRootFilesystem") => "readOnlyRootFilesystem".into(),
        (_, other) => other.to_string(),
    }
}

/// The message of the one info result per changed object: `hardened runAsNonRoot, seccomp
/// RuntimeDefault, drop ALL, … (9 fields)`, each label once, in the order of the changes.
pub fn hardened_message(labels: &[String], fields: usize) -> String {
    let mut seen = std::collections::HashSet::new();
    let list: Vec<&str> = labels
        .iter()
        .filter(|l| seen.insert(l.as_str()))
        .map(String::as_str)
        .collect();
    format!(
        "hardened {} ({} field{})",
        list.join(", "),
        fields,
        if fields == 1 { "" } else { "s" }
    )
}

impl KrmResult {
    /// The result as a KRM `Result` object.
    pub fn to_value(&self) -> Value {
        let paths: Vec<&str> = self
            .fields
            .iter()
            .filter_map(|f| f.path.as_deref())
            .collect();
        let result = crate::krm::Result {
            message: &self.message,
            severity: self.severity.as_str(),
            resource_ref: self.resource.as_ref().map(|r| crate::krm::ResourceRef {
                api_version: &r.api_version,
                kind: &r.kind,
                name: &r.name,
                namespace: r.namespace.as_deref(),
            }),
            field: self.path.as_deref().map(|path| crate::krm::ResultField {
                path,
                current_value: self.current.as_ref(),
                proposed_value: self.proposed.as_ref(),
            }),
            file: self.file.as_deref().map(|path| crate::krm::File { path }),
            tags: crate::krm::Tags { rule: self.rule },
            field_paths: (!paths.is_empty()).then_some(paths),
        };
        serde_json::to_value(result).unwrap_or(Value::Null)
    }
}
