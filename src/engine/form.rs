//! Input forms: what a document is (the sniff of its root, `apiVersion` and `kind` without a tree),
//! lists and their items, a ResourceList's functionConfig and results, where an object came from.

use saphyr_parser::Event;
use serde_json::Value;

use crate::change::{KrmResult, ResourceRef, Severity};
use crate::config::PolicySpec;
use crate::error::Error;
use crate::model::path::Pointer;
use crate::model::workload::LOCAL_CONFIG;
use crate::policy;
use crate::yaml::split::Segment;
use crate::yaml::tree::{build_document, SpannedEvent};

/// The shape the input came in, which is also the shape of the output.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum InputForm {
    /// A multi-document YAML/JSON stream (a `List` document is processed in place).
    Stream,
    /// A KRM `ResourceList`.
    ResourceList,
}

/// The results a ResourceList gains from this run. Results already in the list (an earlier
/// function's, or ours from an earlier run of the same pipeline) are kept once: a second run must
/// not repeat its warnings.
pub(super) fn results_to_add(results: &[KrmResult], existing: Option<&Value>) -> Vec<Value> {
    let existing: std::collections::HashSet<String> = match existing {
        Some(Value::Array(list)) => list.iter().map(Value::to_string).collect(),
        _ => Default::default(),
    };
    results
        .iter()
        .map(KrmResult::to_value)
        .filter(|r| !existing.contains(&r.to_string()))
        .collect()
}

pub(super) fn is_local_config(object: &Value) -> bool {
    object
        .at("/metadata/annotations")
        .and_then(|a| a.get(LOCAL_CONFIG))
        .and_then(Value::as_str)
        == Some("true")
}

pub(super) fn function_config_spec(fc: &Value) -> Result<PolicySpec, Error> {
    // `functionConfig: {}` is "no settings", as the kpt functions catalog reads it.
    if fc.as_object().is_some_and(|m| m.is_empty()) {
        return Ok(PolicySpec::default());
    }
    policy::spec_from_object(fc).map_err(|e| match e {
        Error::Config(m) => Error::Config(format!("functionConfig: {m}")),
        other => other,
    })
}

/// True for a `List` (`v1 List` or any `*List` kind with `items`) or a nested ResourceList.
pub(super) fn is_list(object: &Value) -> bool {
    let kind = object.get("kind").and_then(Value::as_str).unwrap_or("");
    (kind == "List" || kind.ends_with("List") || kind == "ResourceList")
        && object.get("items").is_some()
}

/// The result for a list whose `items` is not a list: a warning for `null` (nothing to harden),
/// an error for anything else (kubectl refuses it too).
pub(super) fn bad_items(list: &Value, file: Option<&str>) -> Option<KrmResult> {
    let (severity, message) = match list.get("items")? {
        Value::Array(_) => return None,
        Value::Null => (
            Severity::Warning,
            "items is null: the list holds nothing to harden".to_string(),
        ),
        other => (
            Severity::Error,
            format!(
                "items must be a list, found {}: nothing in it can be hardened",
                match other {
                    Value::Object(_) => "a mapping",
                    Value::String(_) => "a string",
                    _ => "a scalar",
                }
            ),
        ),
    };
    Some(KrmResult {
        rule: "kube-harden",
        severity,
        message,
        resource: Some(ResourceRef::of(list)),
        path: Some("items".into()),
        current: None,
        proposed: None,
        file: file.map(str::to_string),
        fields: Vec::new(),
        change: false,
    })
}

pub(super) fn item_file(item: &Value) -> Option<String> {
    let annotations = item.at("/metadata/annotations")?;
    [
        "internal.config.kubernetes.io/path",
        "config.kubernetes.io/path",
        "postrenderer.helm.sh/postrender-filename",
    ]
    .iter()
    .find_map(|k| {
        annotations
            .get(*k)
            .and_then(Value::as_str)
            .map(str::to_string)
    })
}

/// The file a document came from: Helm 3's `# Source:` header.
pub(super) fn source_of(seg: &Segment<'_>) -> Option<String> {
    seg.header_comments()
        .iter()
        .find_map(|c| c.strip_prefix("# Source:").map(|s| s.trim().to_string()))
}

/// The stream line of the document's first content line.
pub(super) fn content_line(seg: &Segment<'_>) -> usize {
    let mut line = seg.first_line;
    for l in seg.text.lines() {
        let t = l.trim_start_matches('\u{feff}').trim();
        if !(t.is_empty() || t.starts_with('#') || t == "---") {
            break;
        }
        line += 1;
    }
    line
}

/// The shape of a document's root.
pub(crate) enum Root {
    Empty,
    Map,
    Other,
}

/// What [`sniff`] reads of a document.
pub(crate) struct Sniff {
    pub(crate) root: Root,
    pub(crate) api_version: Option<String>,
    pub(crate) kind: Option<String>,
    /// The root mapping has an alias as a key or a merge key, so `apiVersion` or `kind` may come
    /// through one: [`sniff_document`] then reads them from the tree.
    pub(crate) indirect: bool,
}

/// [`sniff`], reading `apiVersion` and `kind` from the built tree when they may come through an
/// alias or a merge key (Kubernetes' reader resolves both).
pub(crate) fn sniff_document(text: &str, events: &[SpannedEvent<'_>]) -> Sniff {
    let mut s = sniff(events);
    if s.indirect && (s.api_version.is_none() || s.kind.is_none()) {
        if let Ok(Some(root)) = build_document(text, events).map(|d| d.root) {
            let value = root.to_value();
            let field = |name: &str| {
                value
                    .get(name)
                    .and_then(serde_json::Value::as_str)
                    .filter(|v| !v.is_empty())
                    .map(String::from)
            };
            s.api_version = s.api_version.or_else(|| field("apiVersion"));
            s.kind = s.kind.or_else(|| field("kind"));
        }
    }
    s
}

/// Reads the root's shape and its top-level `apiVersion` and `kind` without building a tree.
pub(crate) fn sniff(events: &[SpannedEvent<'_>]) -> Sniff {
    let mut s = Sniff {
        root: Root::Empty,
        api_version: None,
        kind: None,
        indirect: false,
    };
    let mut depth = 0usize;
    let mut key: Option<&str> = None;
    let mut expect_key = true;
    for (event, _) in events {
        match event {
            Event::StreamStart
            | Event::StreamEnd
            | Event::DocumentStart(_)
            | Event::DocumentEnd
            | Event::Nothing => {}
            Event::MappingStart(..) | Event::SequenceStart(..) => {
                if depth == 0 {
                    s.root = if matches!(event, Event::MappingStart(..)) {
                        Root::Map
                    } else {
                        Root::Other
                    };
                }
                depth += 1;
            }
            Event::MappingEnd | Event::SequenceEnd => {
                depth = depth.saturating_sub(1);
                if depth == 1 {
                    expect_key = !expect_key;
                    key = None;
                }
            }
            Event::Scalar(text, style, _, _) => {
                if depth == 0 {
                    let empty =
                        text.is_empty() && matches!(style, saphyr_parser::ScalarStyle::Plain);
                    s.root = if empty { Root::Empty } else { Root::Other };
                } else if depth == 1 {
                    if expect_key {
                        key = Some(text.as_ref());
                        s.indirect |= text == "<<";
                    } else {
                        match key {
                            Some("apiVersion") => s.api_version = Some(text.to_string()),
                            Some("kind") => s.kind = Some(text.to_string()),
                            _ => {}
                        }
                        key = None;
                    }
                    expect_key = !expect_key;
                }
            }
            Event::Alias(_) => {
                if depth == 1 {
                    s.indirect |= expect_key;
                    expect_key = !expect_key;
                }
            }
        }
    }
    s.api_version = s.api_version.filter(|v| !v.is_empty());
    s.kind = s.kind.filter(|v| !v.is_empty());
    s
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::yaml::split::split_documents;
    use crate::yaml::tree::collect_events;
    use serde_json::json;

    #[test]
    fn sniff_reads_the_root_and_its_kind_without_a_tree() {
        let text = "# c\napiVersion: apps/v1\nkind: Deployment\nspec: {kind: Other}\n";
        let events = collect_events(text).unwrap();
        let s = sniff_document(text, &events);
        assert!(matches!(s.root, Root::Map));
        assert_eq!(s.api_version.as_deref(), Some("apps/v1"));
        assert_eq!(s.kind.as_deref(), Some("Deployment"));
        let events = collect_events("- a\n").unwrap();
        assert!(matches!(sniff(&events).root, Root::Other));
        let events = collect_events("# only a comment\n").unwrap();
        assert!(matches!(sniff(&events).root, Root::Empty));
    }

    #[test]
    fn lists_and_their_items() {
        assert!(is_list(&json!({"kind": "List", "items": []})));
        assert!(is_list(&json!({"kind": "ConfigMapList", "items": null})));
        assert!(!is_list(&json!({"kind": "List"})));
        let null = bad_items(&json!({"kind": "List", "items": null}), None).unwrap();
        assert_eq!(null.severity, Severity::Warning);
        let map = bad_items(&json!({"kind": "List", "items": {}}), Some("f.yaml")).unwrap();
        assert_eq!(map.severity, Severity::Error);
        assert!(map.message.contains("a mapping"), "{}", map.message);
        assert_eq!(map.file.as_deref(), Some("f.yaml"));
        assert!(bad_items(&json!({"kind": "List", "items": []}), None).is_none());
    }

    #[test]
    fn where_an_object_came_from() {
        let item = json!({"metadata": {"annotations": {
            "config.kubernetes.io/path": "old.yaml",
            "internal.config.kubernetes.io/path": "new.yaml"}}});
        assert_eq!(item_file(&item).as_deref(), Some("new.yaml"));
        let local = json!({"metadata": {"annotations": {LOCAL_CONFIG: "true"}}});
        assert!(is_local_config(&local));
        let stream = "---\n# Source: chart/templates/a.yaml\n\n# other\napiVersion: v1\n";
        let segs = split_documents(stream);
        let seg = segs.iter().find(|s| !s.is_blank()).unwrap();
        assert_eq!(source_of(seg).as_deref(), Some("chart/templates/a.yaml"));
        assert_eq!(content_line(seg), 5);
    }

    #[test]
    fn a_resource_list_gains_only_new_results() {
        let r = KrmResult::new("x", Severity::Warning, "m".into(), None, None);
        let existing = json!([r.to_value()]);
        assert!(results_to_add(std::slice::from_ref(&r), Some(&existing)).is_empty());
        assert_eq!(results_to_add(&[r], None).len(), 1);
        assert!(function_config_spec(&json!({})).is_ok());
        let e = function_config_spec(&json!({"kind": "Nope"})).unwrap_err();
        assert!(e.to_string().contains("functionConfig"), "{e}");
    }
}
