//! Object identities (apiVersion group, kind, namespace, name): the named workloads of a run and
//! where they are, to find one that is in the input twice.

use std::collections::{HashMap, HashSet};

use serde_json::Value;

use super::form::{is_list, is_local_config};
use crate::config::Policy;
use crate::error::Error;
use crate::model::path::Pointer;
use crate::model::workload::pod_location;

/// A workload's identity to the API server: apiVersion group, kind, namespace, name.
pub(super) type Identity = (String, String, Option<String>, String);

pub(super) fn identity(
    api_version: &str,
    kind: &str,
    namespace: Option<&str>,
    name: &str,
) -> Identity {
    let group = api_version.rsplit_once('/').map_or("", |(g, _)| g);
    (
        group.to_string(),
        kind.to_string(),
        namespace.map(str::to_string),
        name.to_string(),
    )
}

/// A named workload's identity and where it is.
#[derive(Debug, Clone)]
pub struct Placed {
    pub(super) identity: Identity,
    pub(super) doc: usize,
    pub(super) line: usize,
    /// `items[i]` (nested: `items[i].items[j]`) for a list's item.
    pub(super) item: Option<String>,
}

/// Records `object` (or, for a list, its items) when it is a named workload.
pub(super) fn record_workloads(
    object: &Value,
    policy: &Policy,
    (doc, line): (usize, usize),
    item: Option<String>,
    out: &mut Vec<Placed>,
) {
    if is_list(object) {
        if let Some(Value::Array(items)) = object.get("items") {
            for (i, it) in items.iter().enumerate() {
                let path = match &item {
                    Some(p) => format!("{p}.items[{i}]"),
                    None => format!("items[{i}]"),
                };
                record_workloads(it, policy, (doc, line), Some(path), out);
            }
        }
        return;
    }
    let s = |p: &str| object.at(p).and_then(Value::as_str);
    let (Some(api_version), Some(kind), Some(name)) =
        (s("/apiVersion"), s("/kind"), s("/metadata/name"))
    else {
        return;
    };
    if name.is_empty()
        || is_local_config(object)
        || pod_location(api_version, kind, policy).is_none()
    {
        return;
    }
    out.push(Placed {
        identity: identity(api_version, kind, s("/metadata/namespace"), name),
        doc,
        line,
        item,
    });
}

/// The identities that are in `placed` more than once.
pub(super) fn repeated(placed: &[Placed]) -> HashSet<Identity> {
    let mut seen = HashSet::with_capacity(placed.len());
    placed
        .iter()
        .filter(|p| !seen.insert(&p.identity))
        .map(|p| p.identity.clone())
        .collect()
}

/// Two workloads of one identity in different documents, one of them a list's item: the list
/// decides its items' budgets on its own, so the pair is an error (a repeat within one list, or
/// among documents, leaves the repeated workloads without a budget instead).
pub(super) fn repeated_across_a_list(placed: &[Placed]) -> Option<(&Placed, &Placed)> {
    let mut first: HashMap<&Identity, &Placed> = HashMap::with_capacity(placed.len());
    for p in placed {
        match first.get(&p.identity) {
            None => {
                first.insert(&p.identity, p);
            }
            Some(f) if f.doc != p.doc && (f.item.is_some() || p.item.is_some()) => {
                return Some((f, p));
            }
            Some(_) => {}
        }
    }
    None
}

/// Two workloads of one identity in different documents, one of them a list's item: an error
/// naming both (a list decides its items' created objects on its own, and the next run would
/// take an object created for one as the other's).
pub(super) fn check_repeated(workloads: &[Placed]) -> Result<(), Error> {
    if let Some((first, second)) = repeated_across_a_list(workloads) {
        let (_, kind, namespace, name) = &second.identity;
        let ns = namespace
            .as_ref()
            .map_or(String::new(), |n| format!(" in namespace {n}"));
        return Err(Error::SameObject {
            doc: second.doc,
            line: second.line,
            message: format!(
                "{}{kind} {name}{ns} is in the input twice (the same apiVersion group, kind, \
                 namespace and name), once as a list's item: applied, one would replace the \
                 other; rename or remove one",
                second
                    .item
                    .as_ref()
                    .map_or(String::new(), |i| format!("{i}: "))
            ),
            first_doc: first.doc,
            first_line: first.line,
            first_item: first
                .item
                .as_ref()
                .map_or(String::new(), |i| format!(", {i}")),
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{Overrides, PolicySpec};
    use serde_json::json;

    fn placed(object: Value, doc: usize, out: &mut Vec<Placed>) {
        let policy = Policy::with_overrides(PolicySpec::default(), &Overrides::default()).unwrap();
        record_workloads(&object, &policy, (doc, doc), None, out);
    }

    fn deployment(api_version: &str, name: &str) -> Value {
        json!({"apiVersion": api_version, "kind": "Deployment", "metadata": {"name": name},
            "spec": {"template": {"spec": {"containers": []}}}})
    }

    #[test]
    fn an_identity_is_group_kind_namespace_and_name() {
        let mut out = Vec::new();
        placed(deployment("apps/v1", "web"), 1, &mut out);
        placed(deployment("apps/v1beta2", "web"), 2, &mut out);
        placed(deployment("extensions/v1beta1", "web"), 3, &mut out);
        placed(
            json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "web"}}),
            4,
            &mut out,
        );
        assert_eq!(out.len(), 3, "only workloads are recorded");
        let twice = repeated(&out);
        assert_eq!(twice.len(), 1);
        assert!(twice.contains(&identity("apps/v1", "Deployment", None, "web")));
        // Among documents only: no error, the repeated ones just get nothing created.
        assert!(check_repeated(&out).is_ok());
    }

    #[test]
    fn a_repeat_across_a_list_is_an_error_naming_both() {
        let mut out = Vec::new();
        placed(deployment("apps/v1", "web"), 1, &mut out);
        placed(
            json!({"apiVersion": "v1", "kind": "List", "items": [deployment("apps/v1", "web")]}),
            2,
            &mut out,
        );
        assert_eq!(out[1].item.as_deref(), Some("items[0]"));
        let Err(Error::SameObject {
            doc,
            first_doc,
            message,
            ..
        }) = check_repeated(&out)
        else {
            panic!("an error");
        };
        assert_eq!((doc, first_doc), (2, 1));
        assert!(message.starts_with("items[0]: Deployment web"), "{message}");
    }
}
