//! `automount-service-account-token`: a ServiceAccount that no RoleBinding or ClusterRoleBinding
//! in the stream names gets `automountServiceAccountToken: false`, so its pods do not carry an
//! API token they have no permission to use (a stolen token is still an identity: discovery,
//! `selfsubjectaccessreviews`, whatever a wider binding elsewhere grants).
//!
//! Off by default: bindings outside the stream (another chart, a cluster-wide
//! `system:serviceaccounts` group binding) and token uses that need no RBAC (Vault's or a cloud
//! provider's Kubernetes auth, which reads the mounted token) are unknown here. Turned on, it
//! only adds the field where the ServiceAccount sets none; a pod's own
//! `automountServiceAccountToken: true` still wins over it in Kubernetes.
//!
//! It uses the stream hooks only: `index` records the ServiceAccounts that bindings name,
//! `check_object` decides per ServiceAccount.

use std::collections::HashSet;

use serde_json::Value;

use super::{Rule, StreamIndex};
use crate::change::Findings;
use crate::config::Policy;
use crate::model::path::{FieldPath, Pointer};
use crate::model::workload::{group_of, opted_out, PodView};

/// The rule id.
pub const ID: &str = "automount-service-account-token";

const FIELD: &str = "automountServiceAccountToken";

/// Turns off token automounting for ServiceAccounts no binding in the stream names.
pub struct AutomountServiceAccountToken;

/// The ServiceAccounts the stream's bindings name (this rule's slot of the [`StreamIndex`]).
#[derive(Debug, Default)]
pub struct Bound {
    /// (namespace, name) of each ServiceAccount subject; `None`: the namespace is not known (a
    /// RoleBinding without one, deployed wherever the stream is applied).
    accounts: HashSet<(Option<String>, String)>,
    /// Namespaces whose every ServiceAccount is bound (group `system:serviceaccounts:<ns>`);
    /// `None` for the group of all ServiceAccounts.
    groups: HashSet<Option<String>>,
    /// The binding that names each, for the info result: `RoleBinding x`.
    by: Vec<((Option<String>, String), String)>,
}

fn str_at<'v>(object: &'v Value, pointer: &str) -> Option<&'v str> {
    object.at(pointer).and_then(Value::as_str)
}

fn namespace_of(object: &Value) -> Option<String> {
    str_at(object, "/metadata/namespace")
        .filter(|s| !s.is_empty())
        .map(str::to_string)
}

impl Bound {
    fn record(&mut self, object: &Value) {
        let api_version = str_at(object, "/apiVersion").unwrap_or("");
        let kind = str_at(object, "/kind").unwrap_or("");
        if group_of(api_version) != "rbac.authorization.k8s.io"
            || !matches!(kind, "RoleBinding" | "ClusterRoleBinding")
        {
            return;
        }
        // A RoleBinding's ServiceAccount subject without a namespace is in the binding's.
        let own = (kind == "RoleBinding")
            .then(|| namespace_of(object))
            .flatten();
        let binding = format!("{kind} {}", str_at(object, "/metadata/name").unwrap_or(""));
        let Some(Value::Array(subjects)) = object.get("subjects") else {
            return;
        };
        for s in subjects {
            let name = str_at(s, "/name").unwrap_or("");
            let ns = str_at(s, "/namespace")
                .filter(|n| !n.is_empty())
                .map(str::to_string);
            match str_at(s, "/kind").unwrap_or("") {
                "ServiceAccount" if !name.is_empty() => {
                    let key = (ns.or_else(|| own.clone()), name.to_string());
                    self.by.push((key.clone(), binding.clone()));
                    self.accounts.insert(key);
                }
                "User" => {
                    if let Some((ns, name)) = name
                        .strip_prefix("system:serviceaccount:")
                        .and_then(|rest| rest.split_once(':'))
                    {
                        let key = (Some(ns.to_string()), name.to_string());
                        self.by.push((key.clone(), binding.clone()));
                        self.accounts.insert(key);
                    }
                }
                "Group" if name == "system:serviceaccounts" => {
                    self.groups.insert(None);
                }
                "Group" => {
                    if let Some(ns) = name.strip_prefix("system:serviceaccounts:") {
                        self.groups.insert(Some(ns.to_string()));
                    }
                }
                _ => {}
            }
        }
    }

    /// The binding (or group) that grants the ServiceAccount something, if any. A namespace
    /// the stream leaves open matches any (the safe side: no change).
    fn granted(&self, namespace: &Option<String>, name: &str) -> Option<String> {
        let same = |ns: &Option<String>| ns.is_none() || namespace.is_none() || ns == namespace;
        if let Some(g) = self.groups.iter().find(|g| same(g)) {
            return Some(match g {
                Some(ns) => format!("the group system:serviceaccounts:{ns}"),
                None => "the group system:serviceaccounts".to_string(),
            });
        }
        self.by
            .iter()
            .find(|((ns, n), _)| n == name && same(ns))
            .map(|(_, b)| b.clone())
    }
}

impl Rule for AutomountServiceAccountToken {
    fn id(&self) -> &'static str {
        ID
    }

    fn summary(&self) -> &'static str {
        "ServiceAccounts no RoleBinding/ClusterRoleBinding in the stream names get automountServiceAccountToken: false (off by default)"
    }

    fn docs(&self) -> &'static str {
        include_str!("../../docs/rules/automount-service-account-token.md")
    }

    fn enabled_by_default(&self) -> bool {
        false
    }

    fn per_pod(&self) -> bool {
        false
    }

    fn check(&self, _pod: &PodView<'_>, _policy: &Policy, _out: &mut Findings) {}

    fn indexes(&self, text: &str) -> bool {
        text.contains("RoleBinding")
    }

    fn index(&self, object: &Value, index: &mut StreamIndex) {
        if str_at(object, "/kind").is_some_and(|k| k.ends_with("RoleBinding")) {
            index.slot::<Bound>(ID).record(object);
        }
    }

    fn reads_object(&self, api_version: &str, kind: &str, policy: &Policy) -> bool {
        api_version == "v1" && kind == "ServiceAccount" && policy.is_enabled(ID)
    }

    fn check_object(
        &self,
        object: &Value,
        _policy: &Policy,
        index: &StreamIndex,
        out: &mut Findings,
    ) {
        if opted_out(object.at("/metadata/annotations"), ID) {
            return;
        }
        let path = FieldPath::root().key(FIELD);
        match object.get(FIELD) {
            Some(Value::Bool(true)) => {
                out.info(
                    ID,
                    Some(path),
                    "explicit true kept: pods of this ServiceAccount get its API token",
                );
                return;
            }
            Some(Value::Null) | None => {}
            // false already, or a value the API server will judge.
            Some(_) => return,
        }
        let name = str_at(object, "/metadata/name").unwrap_or("");
        if name.is_empty() {
            return;
        }
        let granted = index
            .get::<Bound>(ID)
            .and_then(|b| b.granted(&namespace_of(object), name));
        if let Some(by) = granted {
            out.info(
                ID,
                Some(path),
                format!("named by {by} in the stream: the token stays mounted"),
            );
            return;
        }
        out.add(
            ID,
            path,
            Value::Bool(false),
            "no RoleBinding or ClusterRoleBinding in the stream names this ServiceAccount: its pods get no API token (a pod can still ask for one with automountServiceAccountToken: true)",
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{Overrides, PolicySpec};
    use serde_json::json;

    fn policy() -> Policy {
        let overrides = Overrides {
            enable: vec![ID.to_string()],
            ..Overrides::default()
        };
        Policy::with_overrides(PolicySpec::default(), &overrides).unwrap()
    }

    fn check(sa: &Value, index: &StreamIndex) -> Findings {
        let mut out = Findings::default();
        AutomountServiceAccountToken.check_object(sa, &policy(), index, &mut out);
        out
    }

    fn sa(ns: Option<&str>, name: &str) -> Value {
        let mut v =
            json!({"apiVersion": "v1", "kind": "ServiceAccount", "metadata": {"name": name}});
        if let Some(ns) = ns {
            v["metadata"]["namespace"] = json!(ns);
        }
        v
    }

    #[test]
    fn an_unbound_account_loses_its_token_a_bound_one_keeps_it() {
        let mut index = StreamIndex::default();
        index.record(
            &json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "RoleBinding",
            "metadata": {"name": "rb", "namespace": "shop"},
            "subjects": [{"kind": "ServiceAccount", "name": "api"}]}),
        );
        let out = check(&sa(Some("shop"), "web"), &index);
        assert_eq!(out.changes.len(), 1);
        assert_eq!(
            out.changes[0].path.to_string(),
            "automountServiceAccountToken"
        );
        let out = check(&sa(Some("shop"), "api"), &index);
        assert!(out.changes.is_empty());
        assert!(out.findings[0].message.contains("RoleBinding rb"));
        // Another namespace's `api` is not that one.
        assert_eq!(check(&sa(Some("other"), "api"), &index).changes.len(), 1);
        // An account whose namespace is not known matches.
        assert!(check(&sa(None, "api"), &index).changes.is_empty());
    }

    #[test]
    fn groups_and_user_names_count_and_explicit_values_stay() {
        let mut index = StreamIndex::default();
        index.record(
            &json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRoleBinding",
            "metadata": {"name": "crb"},
            "subjects": [{"kind": "Group", "name": "system:serviceaccounts:ops"},
                {"kind": "User", "name": "system:serviceaccount:shop:worker"}]}),
        );
        assert!(check(&sa(Some("ops"), "any"), &index).changes.is_empty());
        assert!(check(&sa(Some("shop"), "worker"), &index)
            .changes
            .is_empty());
        assert_eq!(check(&sa(Some("shop"), "web"), &index).changes.len(), 1);
        let mut explicit = sa(Some("shop"), "web");
        explicit[FIELD] = json!(true);
        let out = check(&explicit, &index);
        assert!(out.changes.is_empty());
        assert_eq!(out.findings[0].severity, crate::change::Severity::Info);
        explicit[FIELD] = json!(false);
        let out = check(&explicit, &index);
        assert!(out.changes.is_empty() && out.findings.is_empty());
        let mut skipped = sa(Some("shop"), "web");
        skipped["metadata"]["annotations"] = json!({"kube-harden.dev/skip": ID});
        assert!(check(&skipped, &index).changes.is_empty());
    }
}
