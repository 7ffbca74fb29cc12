//! `pod-disruption-budget`: every replicated workload that runs at least two pods gets a
//! `policy/v1` PodDisruptionBudget, so voluntary disruptions (node drains, cluster upgrades,
//! autoscaler scale-downs) never take all of its pods at once.
//!
//! Unlike the other rules this one looks at the whole stream: the replica count may come from a
//! HorizontalPodAutoscaler or a KEDA ScaledObject elsewhere in it, and a budget someone already
//! wrote (or an earlier run generated) must be found. So it uses the stream hooks of
//! [`Rule`]: `index` records autoscalers and budgets ([`BudgetIndex`]), `observe` notes each
//! workload's pods, `plan` decides per workload ([`plan`]), `settle` drops budgets that would
//! put a pod under two budgets ([`overlaps`]), and `create` names the kept ones and returns them
//! as `Op::Create` changes, which the engine places after their workloads.

use std::collections::{BTreeMap, HashSet};

use k8s_openapi::api::policy::v1::{PodDisruptionBudget as TypedBudget, PodDisruptionBudgetSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use serde_json::{Map, Value};

use super::{Creations, Note, Plan, Rule, SettingsDescriptor, StreamIndex};
use crate::change::{Change, Findings, Op, ResourceRef};
use crate::config::Policy;
use crate::model::path::{FieldPath, Pointer};
use crate::model::workload::{group_of, opted_out, pod_location, replicated, PodView};

mod settings;
pub use settings::{DisruptionBudgetSettings, IntOrPercent, Settings};

/// The rule id.
pub const ID: &str = "pod-disruption-budget";
/// Annotation on generated budgets naming their workload (`Deployment/web`): a later run
/// recognises its own budget by it.
pub const GENERATED_FOR: &str = "kube-harden.dev/generated-for";
/// Helm 4 tells post-renderers which template file an object came from in this annotation.
pub const HELM4_FILENAME: &str = "postrenderer.helm.sh/postrender-filename";
const KRM_PATH: &str = "internal.config.kubernetes.io/path";
const KRM_INDEX: &str = "internal.config.kubernetes.io/index";
const LEGACY_PATH: &str = "config.kubernetes.io/path";
const LEGACY_INDEX: &str = "config.kubernetes.io/index";
/// Kubernetes object names are DNS subdomains of at most 253 characters.
const MAX_NAME: usize = 253;

/// Generates PodDisruptionBudgets (see the module docs; the per-pod hook does nothing).
pub struct PodDisruptionBudget;

impl Rule for PodDisruptionBudget {
    fn id(&self) -> &'static str {
        ID
    }

    fn summary(&self) -> &'static str {
        "workloads with 2 or more replicas (or HPA/KEDA minimum) get a PodDisruptionBudget (maxUnavailable 1)"
    }

    fn docs(&self) -> &'static str {
        include_str!("../../docs/rules/pod-disruption-budget.md")
    }

    fn per_pod(&self) -> bool {
        false
    }

    fn settings(&self) -> Option<SettingsDescriptor> {
        Some(SettingsDescriptor::of::<Settings>())
    }

    fn check(&self, _pod: &PodView<'_>, _policy: &Policy, _out: &mut Findings) {}

    fn indexes(&self, text: &str) -> bool {
        BudgetIndex::may_matter(text)
    }

    fn index(&self, object: &Value, index: &mut StreamIndex) {
        index.slot::<BudgetIndex>(ID).record(object);
    }

    fn observe(&self, object: &Value, policy: &Policy) -> Option<Box<Note>> {
        PodSet::of(object, policy).map(|p| Box::new(p) as Box<Note>)
    }

    fn plan(&self, object: &Value, policy: &Policy, index: &StreamIndex, repeated: bool) -> Plan {
        match plan(object, policy, budget_index(index), repeated) {
            Decision::Nothing => Plan::Nothing,
            Decision::Skip { warning, message } => Plan::Skip { warning, message },
            Decision::Add(planned) => Plan::Create(planned),
        }
    }

    fn withdrawn(&self, anchor: &ResourceRef) -> String {
        repeated_message(&anchor.kind, &anchor.name, anchor.namespace.as_deref())
    }

    fn not_placed(&self) -> String {
        "no PodDisruptionBudget: the input ends inside a block scalar (`|` or `>`) without a final line break, and a budget after it would add one to that value; end the input with a line break".into()
    }

    fn settle(
        &self,
        planned: &[&Note],
        notes: &[&Note],
        index: &StreamIndex,
    ) -> Vec<Option<String>> {
        let planned: Vec<&PlannedBudget> =
            planned.iter().filter_map(|p| p.downcast_ref()).collect();
        if planned.is_empty() {
            return Vec::new();
        }
        let pods: Vec<&PodSet> = notes
            .iter()
            .filter_map(|n| n.downcast_ref::<PodSet>())
            .collect();
        overlaps(&planned, &pods, budget_index(index))
            .into_iter()
            .map(|why| why.map(|why| format!("no PodDisruptionBudget: {why}")))
            .collect()
    }

    fn create<'a>(&'a self, planned: Vec<&'a Note>, index: &'a StreamIndex) -> Creations<'a> {
        // Named in order against every budget already there (and those named before); each
        // budget is built only when the engine asks for it, on whichever thread asks.
        let mut taken = budget_index(index).budget_names();
        let named: Vec<(&PlannedBudget, String)> = planned
            .into_iter()
            .filter_map(|p| p.downcast_ref::<PlannedBudget>())
            .map(|p| {
                let name = choose_name(&p.base_name, &p.namespace, &taken);
                taken.insert((p.namespace.clone(), name.clone()));
                (p, name)
            })
            .collect();
        Creations::new(named.len(), move |i| {
            let (p, name) = &named[i];
            Change {
                rule: ID,
                path: FieldPath::root(),
                op: Op::Create(p.finish(name)),
                // The line names the generated budget, so kpt shows one line per new object.
                message: format!("generated: {}", p.reason),
            }
        })
    }
}

/// The rule's slot of the stream index (empty when nothing was recorded).
fn budget_index(index: &StreamIndex) -> &BudgetIndex {
    static EMPTY: BudgetIndex = BudgetIndex {
        autoscalers: Vec::new(),
        budgets: Vec::new(),
    };
    index.get::<BudgetIndex>(ID).unwrap_or(&EMPTY)
}

/// An autoscaler's lower bound for one workload.
#[derive(Debug, Clone, PartialEq)]
struct Autoscaler {
    namespace: Option<String>,
    target_kind: String,
    target_name: String,
    min: i64,
    /// `HorizontalPodAutoscaler web` for messages.
    describe: String,
}

impl Autoscaler {
    /// `at least 3 replicas (HorizontalPodAutoscaler web)`.
    fn floor(&self) -> String {
        let s = if self.min == 1 { "" } else { "s" };
        format!("at least {} replica{s} ({})", self.min, self.describe)
    }
}

/// A PodDisruptionBudget found in the stream.
#[derive(Debug, Clone, PartialEq)]
struct Budget {
    namespace: Option<String>,
    name: String,
    selector: Option<Value>,
    /// policy/v1beta1 reads an empty selector as "no pods", policy/v1 as "every pod".
    empty_selects_all: bool,
    generated_for: Option<String>,
}

/// What the stream holds that decides budgets: autoscalers and the budgets already there (this
/// rule's slot of the [`StreamIndex`]).
#[derive(Debug, Clone, Default)]
pub struct BudgetIndex {
    autoscalers: Vec<Autoscaler>,
    budgets: Vec<Budget>,
}

fn namespace_of(object: &Value) -> Option<String> {
    object
        .at("/metadata/namespace")
        .and_then(Value::as_str)
        .filter(|s| !s.is_empty())
        .map(str::to_string)
}

fn str_at<'v>(object: &'v Value, pointer: &str) -> Option<&'v str> {
    object.at(pointer).and_then(Value::as_str)
}

impl BudgetIndex {
    /// True when a document's text may hold something the index records; documents without
    /// these words are never parsed for it.
    pub fn may_matter(text: &str) -> bool {
        use memchr::memmem::Finder;
        use std::sync::LazyLock;
        static KINDS: LazyLock<[Finder<'static>; 3]> = LazyLock::new(|| {
            [
                Finder::new("PodDisruptionBudget"),
                Finder::new("HorizontalPodAutoscaler"),
                Finder::new("ScaledObject"),
            ]
        });
        KINDS
            .iter()
            .any(|kind| kind.find(text.as_bytes()).is_some())
    }

    /// Records one object (the stream index hands a list's items one by one).
    pub fn record(&mut self, object: &Value) {
        let api_version = object
            .get("apiVersion")
            .and_then(Value::as_str)
            .unwrap_or("");
        let group = group_of(api_version);
        let kind = object.get("kind").and_then(Value::as_str).unwrap_or("");
        let name = str_at(object, "/metadata/name").unwrap_or("").to_string();
        match (group, kind) {
            ("policy", "PodDisruptionBudget") => self.budgets.push(Budget {
                namespace: namespace_of(object),
                name,
                selector: object.at("/spec/selector").cloned(),
                empty_selects_all: api_version != "policy/v1beta1",
                generated_for: object
                    .at("/metadata/annotations")
                    .and_then(|a| a.get(GENERATED_FOR))
                    .and_then(Value::as_str)
                    .map(str::to_string),
            }),
            ("autoscaling", "HorizontalPodAutoscaler") => {
                let (Some(target_kind), Some(target_name)) = (
                    str_at(object, "/spec/scaleTargetRef/kind"),
                    str_at(object, "/spec/scaleTargetRef/name"),
                ) else {
                    return;
                };
                self.autoscalers.push(Autoscaler {
                    namespace: namespace_of(object),
                    target_kind: target_kind.to_string(),
                    target_name: target_name.to_string(),
                    // The API defaults minReplicas to 1.
                    min: object
                        .at("/spec/minReplicas")
                        .and_then(Value::as_i64)
                        .unwrap_or(1),
                    describe: format!("HorizontalPodAutoscaler {name}"),
                });
            }
            ("keda.sh", "ScaledObject") => {
                let Some(target_name) = str_at(object, "/spec/scaleTargetRef/name") else {
                    return;
                };
                self.autoscalers.push(Autoscaler {
                    namespace: namespace_of(object),
                    // KEDA scales a Deployment unless told otherwise, down to 0 by default.
                    target_kind: str_at(object, "/spec/scaleTargetRef/kind")
                        .unwrap_or("Deployment")
                        .to_string(),
                    target_name: target_name.to_string(),
                    min: object
                        .at("/spec/minReplicaCount")
                        .and_then(Value::as_i64)
                        .unwrap_or(0),
                    describe: format!("ScaledObject {name}"),
                });
            }
            _ => {}
        }
    }

    /// Names of budgets already in the stream, per namespace.
    pub fn budget_names(&self) -> HashSet<(Option<String>, String)> {
        self.budgets
            .iter()
            .map(|b| (b.namespace.clone(), b.name.clone()))
            .collect()
    }
}

/// True when `selector` (a LabelSelector) selects a pod with `labels`.
pub fn selects(selector: &Value, labels: &Map<String, Value>, empty_selects_all: bool) -> bool {
    selects_by(
        selector,
        |k| labels.get(k).and_then(Value::as_str),
        empty_selects_all,
    )
}

/// [`selects`] with the labels as a lookup: a label's string value, if it has one.
fn selects_by<'l>(
    selector: &Value,
    label: impl Fn(&str) -> Option<&'l str>,
    empty_selects_all: bool,
) -> bool {
    let Some(sel) = selector.as_object() else {
        return false;
    };
    let match_labels = sel.get("matchLabels").and_then(Value::as_object);
    let expressions = sel.get("matchExpressions").and_then(Value::as_array);
    if match_labels.is_none_or(Map::is_empty) && expressions.is_none_or(Vec::is_empty) {
        return empty_selects_all;
    }
    if let Some(ml) = match_labels {
        if !ml
            .iter()
            .all(|(k, v)| v.as_str().is_some() && label(k) == v.as_str())
        {
            return false;
        }
    }
    expressions.into_iter().flatten().all(|e| {
        let Some(key) = e.get("key").and_then(Value::as_str) else {
            return false;
        };
        let values: Vec<&str> = e
            .get("values")
            .and_then(Value::as_array)
            .map(|v| v.iter().filter_map(Value::as_str).collect())
            .unwrap_or_default();
        match e.get("operator").and_then(Value::as_str) {
            Some("In") => label(key).is_some_and(|l| values.contains(&l)),
            Some("NotIn") => label(key).is_none_or(|l| !values.contains(&l)),
            Some("Exists") => label(key).is_some(),
            Some("DoesNotExist") => label(key).is_none(),
            _ => false,
        }
    })
}

/// A budget to add, before it is named.
#[derive(Debug, Clone)]
pub struct PlannedBudget {
    /// The workload's namespace.
    pub namespace: Option<String>,
    /// The workload's name: the budget's name unless taken.
    pub base_name: String,
    /// The workload's selector as it wrote it, as compact JSON: budgets wait for the whole
    /// stream before they are named, and a `Value` of small maps costs about five times the
    /// text (17 MB for 10,000 budgets).
    selector: Box<str>,
    /// The workload's `app.kubernetes.io/*` labels, in its order, as compact JSON (empty: none).
    labels: Box<str>,
    /// `Kind/name` of the workload ([`GENERATED_FOR`]).
    generated_for: Box<str>,
    /// Helm 4's template file of the workload ([`HELM4_FILENAME`]).
    helm4_file: Option<Box<str>>,
    /// `minAvailable` (true) or `maxUnavailable` (false), and its value.
    limit: (bool, IntOrString),
    /// `unhealthyPodEvictionPolicy`.
    unhealthy: Box<str>,
    /// The KRM path of the workload, if it has one.
    pub workload_path: Option<String>,
    /// `Deployment web (3 replicas)` for the result message.
    pub reason: String,
}

/// What [`plan`] decided for one object.
#[derive(Debug)]
pub enum Decision {
    /// Not a kind this rule looks at, or a budget this tool generated is already there.
    Nothing,
    /// No budget, and why (info) or what is wrong (warning).
    Skip {
        /// True for a warning.
        warning: bool,
        /// For people.
        message: String,
    },
    /// Add this budget.
    Add(Box<PlannedBudget>),
}

fn skip(message: impl Into<String>) -> Decision {
    Decision::Skip {
        warning: false,
        message: message.into(),
    }
}

/// Why a workload that is in the input more than once gets no budget.
pub fn repeated_message(kind: &str, name: &str, namespace: Option<&str>) -> String {
    let ns = namespace.map_or(String::new(), |n| format!(" in namespace {n}"));
    format!(
        "no PodDisruptionBudget: {kind} {name}{ns} is in the input more than once (the same \
         apiVersion group, kind, namespace and name; applied, one replaces the other), and a \
         budget generated for one would be taken for the other's by the next run"
    )
}

/// Decides whether `object` needs a budget. `repeated`: the input holds another object of the
/// same identity (decided after the workload's own reasons, before budgets already there, which
/// may be ones the first run generated).
pub fn plan(object: &Value, policy: &Policy, index: &BudgetIndex, repeated: bool) -> Decision {
    let api_version = object
        .get("apiVersion")
        .and_then(Value::as_str)
        .unwrap_or("");
    let kind = object.get("kind").and_then(Value::as_str).unwrap_or("");
    let Some(location) = pod_location(api_version, kind, policy) else {
        return Decision::Nothing;
    };
    let annotations = object.at("/metadata/annotations");
    if opted_out(annotations, ID) {
        return Decision::Nothing;
    }
    let Some(paths) = replicated(api_version, kind, policy) else {
        let group = group_of(api_version);
        return skip(match (group, kind) {
            (_, "DaemonSet") => "no PodDisruptionBudget: node drains do not evict DaemonSet pods",
            ("batch", _) => "no PodDisruptionBudget: Job pods run to completion",
            ("", "Pod") => "no PodDisruptionBudget: a bare Pod has no controller to replace it",
            _ => "no PodDisruptionBudget: the kind does not run replicas",
        });
    };
    if annotations
        .and_then(Value::as_object)
        .is_some_and(|a| a.contains_key("helm.sh/hook"))
    {
        return skip(
            "no PodDisruptionBudget: a Helm hook's lifetime is the hook's, a budget would outlive it",
        );
    }
    let name = object
        .at("/metadata/name")
        .and_then(Value::as_str)
        .unwrap_or("");
    if name.is_empty() {
        return Decision::Nothing;
    }
    let namespace = namespace_of(object);
    let replicas = match paths.replicas.get(object) {
        None | Some(Value::Null) => None,
        Some(v) => match v.as_i64() {
            Some(n) => Some(n),
            None => {
                return skip(format!(
                    "no PodDisruptionBudget: {} is not a number",
                    paths.replicas
                ))
            }
        },
    };
    let autoscaler = index
        .autoscalers
        .iter()
        .filter(|a| a.namespace == namespace && a.target_kind == kind && a.target_name == name)
        .max_by_key(|a| a.min);
    let (effective, reason) = match (replicas, autoscaler) {
        (Some(r), Some(a)) if a.min > r => (a.min, a.floor()),
        (None, Some(a)) => (a.min, a.floor()),
        (Some(r), _) => (r, format!("{r} replica{}", if r == 1 { "" } else { "s" })),
        // The API defaults replicas to 1.
        (None, None) => (1, "1 replica (the default)".to_string()),
    };
    if effective < 2 {
        return skip(format!(
            "no PodDisruptionBudget: {reason}; a budget on a single pod either blocks every node drain or protects nothing"
        ));
    }
    let template_labels = location
        .metadata
        .key("labels")
        .get(object)
        .and_then(Value::as_object)
        .cloned()
        .unwrap_or_default();
    let own = format!("{kind}/{name}");
    // The budget generated for this workload by an earlier run: nothing more to do.
    let mut stale = None;
    for b in index.budgets.iter().filter(|b| b.namespace == namespace) {
        if b.generated_for.as_deref() == Some(own.as_str()) {
            if b.selector
                .as_ref()
                .is_some_and(|s| selects(s, &template_labels, b.empty_selects_all))
            {
                return Decision::Nothing;
            }
            stale = Some(b.name.clone());
        }
    }
    // The workload's own reasons come before the budgets of others: a budget this run generates
    // for another workload is one already there for the next run, which must decide alike.
    let Some(selector) = selector_of(paths.selector.get(object), &template_labels) else {
        return skip(
            "no PodDisruptionBudget: the workload has no selector and its pod template no labels",
        );
    };
    if !selects(&selector, &template_labels, false) {
        return Decision::Skip {
            warning: true,
            message:
                "no PodDisruptionBudget: the selector does not match the pod template's labels"
                    .into(),
        };
    }
    if let Some(old) = stale {
        return Decision::Skip {
            warning: true,
            message: format!(
                "PodDisruptionBudget {old}, generated earlier for this workload, no longer selects its pods; delete it to generate a new one"
            ),
        };
    }
    if repeated {
        return skip(repeated_message(kind, name, namespace.as_deref()));
    }
    if let Some(b) = index.budgets.iter().find(|b| {
        b.namespace == namespace
            && b.selector
                .as_ref()
                .is_some_and(|s| selects(s, &template_labels, b.empty_selects_all))
    }) {
        return skip(format!(
            "no PodDisruptionBudget added: PodDisruptionBudget {} already selects the pod template's labels",
            b.name
        ));
    }
    let budget = &policy.settings::<Settings>().pod_disruption_budget;
    let (is_min, amount) = match (&budget.min_available, &budget.max_unavailable) {
        (Some(min), _) => (true, min),
        (None, Some(max)) => (false, max),
        (None, None) => (false, &IntOrPercent::Int(1)),
    };
    let amount =
        match amount {
            IntOrPercent::Percent(p) => IntOrString::String(p.clone()),
            IntOrPercent::Int(n) => {
                match i32::try_from(*n) {
                    Ok(n) => IntOrString::Int(n),
                    Err(_) => {
                        return Decision::Skip {
                            warning: true,
                            message: format!(
                        "no PodDisruptionBudget: spec.podDisruptionBudget.{} {n} does not fit \
                         an int32 (the API server refuses it)",
                        if is_min { "minAvailable" } else { "maxUnavailable" }
                    ),
                        }
                    }
                }
            }
        };
    let labels: Map<String, Value> = object
        .at("/metadata/labels")
        .and_then(Value::as_object)
        .map(|l| {
            l.iter()
                .filter(|(k, v)| k.starts_with("app.kubernetes.io/") && v.is_string())
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect()
        })
        .unwrap_or_default();
    let labels = if labels.is_empty() {
        Box::default()
    } else {
        Value::Object(labels).to_string().into_boxed_str()
    };
    let helm4_file = annotations
        .and_then(|a| a.get(HELM4_FILENAME))
        .and_then(Value::as_str)
        .map(Box::from);
    let workload_path = annotations.and_then(|a| {
        [KRM_PATH, LEGACY_PATH]
            .iter()
            .find_map(|k| a.get(*k).and_then(Value::as_str))
            .map(str::to_string)
    });
    Decision::Add(Box::new(PlannedBudget {
        namespace,
        base_name: name.to_string(),
        selector: selector.to_string().into_boxed_str(),
        labels,
        generated_for: own.into_boxed_str(),
        helm4_file,
        limit: (is_min, amount),
        unhealthy: budget
            .unhealthy_pod_eviction_policy
            .as_deref()
            .unwrap_or("AlwaysAllow")
            .into(),
        workload_path,
        reason: format!("{kind} {name} runs {reason}"),
    }))
}

/// The budget's selector: the workload's LabelSelector (matchLabels and matchExpressions), a
/// plain label map (ReplicationController, DeploymentConfig) as matchLabels, or, when the
/// workload has none, the pod template's labels as the API would default them.
fn selector_of(selector: Option<&Value>, template_labels: &Map<String, Value>) -> Option<Value> {
    let mut out = Map::new();
    match selector.and_then(Value::as_object) {
        Some(sel) if sel.contains_key("matchLabels") || sel.contains_key("matchExpressions") => {
            for key in ["matchLabels", "matchExpressions"] {
                match sel.get(key) {
                    Some(Value::Object(m)) if !m.is_empty() => {
                        out.insert(key.into(), Value::Object(m.clone()));
                    }
                    Some(Value::Array(a)) if !a.is_empty() => {
                        out.insert(key.into(), Value::Array(a.clone()));
                    }
                    _ => {}
                }
            }
        }
        Some(map) if !map.is_empty() && map.values().all(Value::is_string) => {
            out.insert("matchLabels".into(), Value::Object(map.clone()));
        }
        _ if !template_labels.is_empty() => {
            out.insert("matchLabels".into(), Value::Object(template_labels.clone()));
        }
        _ => {}
    }
    // An empty policy/v1 selector would select every pod in the namespace.
    (!out.is_empty()).then_some(Value::Object(out))
}

/// A name for the budget: the workload's when free, else `<name>-pdb`, `<name>-pdb-2`, …, cut
/// to a valid length.
pub fn choose_name(
    base: &str,
    namespace: &Option<String>,
    taken: &HashSet<(Option<String>, String)>,
) -> String {
    let fits = |s: &str, room: usize| {
        let mut cut: String = s.chars().take(room).collect();
        while cut.ends_with(['-', '.']) {
            cut.pop();
        }
        cut
    };
    let free = |n: &str| !taken.contains(&(namespace.clone(), n.to_string()));
    if free(base) {
        return base.to_string();
    }
    for n in 1.. {
        let suffix = if n == 1 {
            "-pdb".to_string()
        } else {
            format!("-pdb-{n}")
        };
        let name = format!("{}{suffix}", fits(base, MAX_NAME - suffix.len()));
        if free(&name) {
            return name;
        }
    }
    unreachable!("some suffix is free")
}

impl PlannedBudget {
    /// The budget's selector.
    pub fn selector(&self) -> Value {
        serde_json::from_str(&self.selector).unwrap_or(Value::Null)
    }

    /// The budget named `name`, with KRM path annotations (its own file next to the workload's)
    /// when the workload has a path.
    ///
    /// Built as a `k8s-openapi` `PodDisruptionBudget`, then written as a `Value` in the order
    /// budgets have always been written in (output stays byte for byte what it was):
    /// k8s-openapi serializes `ObjectMeta` fields and every `BTreeMap` alphabetically, so
    /// [`canonical_order`] puts `metadata` back as name, namespace, labels (in the workload's
    /// order), annotations (generated-for, Helm 4's file, the KRM path and index annotations),
    /// and `spec` as the limit, selector, unhealthyPodEvictionPolicy. The selector is the
    /// workload's own, copied as it wrote it (a typed `LabelSelector` would sort `matchLabels`
    /// and reorder each expression's keys), so it is set on the `Value`.
    pub fn finish(&self, name: &str) -> Value {
        let mut annotations = vec![(GENERATED_FOR.to_string(), self.generated_for.to_string())];
        if let Some(file) = &self.helm4_file {
            annotations.push((HELM4_FILENAME.to_string(), file.to_string()));
        }
        let labels: Vec<(String, String)> = match serde_json::from_str(&self.labels) {
            Ok(Value::Object(l)) => l
                .into_iter()
                .filter_map(|(k, v)| Some((k, v.as_str()?.to_string())))
                .collect(),
            _ => Vec::new(),
        };
        if let Some(path) = &self.workload_path {
            let dir = path.rsplit_once('/').map_or("", |(d, _)| d);
            let file = if dir.is_empty() {
                format!("poddisruptionbudget_{name}.yaml")
            } else {
                format!("{dir}/poddisruptionbudget_{name}.yaml")
            };
            for key in [KRM_PATH, LEGACY_PATH] {
                annotations.push((key.to_string(), file.clone()));
            }
            for key in [KRM_INDEX, LEGACY_INDEX] {
                annotations.push((key.to_string(), "0".to_string()));
            }
        }
        let (is_min, amount) = &self.limit;
        let budget = TypedBudget {
            metadata: ObjectMeta {
                name: Some(name.to_string()),
                namespace: self.namespace.clone(),
                labels: (!labels.is_empty())
                    .then(|| labels.iter().cloned().collect::<BTreeMap<_, _>>()),
                annotations: Some(annotations.iter().cloned().collect()),
                ..ObjectMeta::default()
            },
            spec: Some(PodDisruptionBudgetSpec {
                min_available: is_min.then(|| amount.clone()),
                max_unavailable: (!is_min).then(|| amount.clone()),
                selector: None,
                unhealthy_pod_eviction_policy: Some(self.unhealthy.to_string()),
            }),
            status: None,
        };
        let Ok(mut object) = serde_json::to_value(&budget) else {
            return Value::Null;
        };
        canonical_order(&mut object, &labels, &annotations, self.selector());
        object
    }
}

/// Puts a serialized budget's `metadata` and `spec` keys in the order budgets are written in
/// (see [`PlannedBudget::finish`]) and sets the selector.
fn canonical_order(
    object: &mut Value,
    labels: &[(String, String)],
    annotations: &[(String, String)],
    selector: Value,
) {
    fn reorder(map: &mut Map<String, Value>, keys: &[&str]) {
        let mut old = std::mem::take(map);
        for key in keys {
            if let Some(v) = old.remove(*key) {
                map.insert((*key).to_string(), v);
            }
        }
        map.extend(old);
    }
    if let Some(Value::Object(meta)) = object.get_mut("metadata") {
        reorder(meta, &["name", "namespace", "labels", "annotations"]);
        if let Some(Value::Object(l)) = meta.get_mut("labels") {
            reorder(
                l,
                &labels.iter().map(|(k, _)| k.as_str()).collect::<Vec<_>>(),
            );
        }
        if let Some(Value::Object(a)) = meta.get_mut("annotations") {
            reorder(
                a,
                &annotations
                    .iter()
                    .map(|(k, _)| k.as_str())
                    .collect::<Vec<_>>(),
            );
        }
    }
    if let Some(Value::Object(spec)) = object.get_mut("spec") {
        spec.insert("selector".into(), selector);
        reorder(
            spec,
            &[
                "minAvailable",
                "maxUnavailable",
                "selector",
                "unhealthyPodEvictionPolicy",
            ],
        );
    }
}

/// The pods one workload runs, for the overlap check: its namespace, its pod template's labels
/// and its identity (`Deployment/web`).
#[derive(Debug, Clone)]
pub struct PodSet {
    /// Namespace (`None`: the default one).
    pub namespace: Option<String>,
    /// The pod template's labels with a string value (the only ones a selector matches), in
    /// order: budgets wait for the whole stream, and a map per workload cost 3 MB for 10,000.
    pub labels: Box<[(Box<str>, Box<str>)]>,
    /// `Kind/name`.
    pub workload: String,
}

/// The string-valued labels of `map`, in order.
fn string_labels(map: &Map<String, Value>) -> Box<[(Box<str>, Box<str>)]> {
    map.iter()
        .filter_map(|(k, v)| Some((k.as_str().into(), v.as_str()?.into())))
        .collect()
}

impl PodSet {
    /// The value of label `key`.
    fn label(&self, key: &str) -> Option<&str> {
        self.labels
            .iter()
            .find(|(k, _)| &**k == key)
            .map(|(_, v)| &**v)
    }

    /// The pods of `object` (a workload), if it holds a pod template.
    pub fn of(object: &Value, policy: &Policy) -> Option<PodSet> {
        let s = |k: &str| object.get(k).and_then(Value::as_str).unwrap_or("");
        let location = pod_location(s("apiVersion"), s("kind"), policy)?;
        let labels = location
            .metadata
            .key("labels")
            .get(object)
            .and_then(Value::as_object)
            .map_or_else(Box::default, string_labels);
        Some(PodSet {
            namespace: namespace_of(object),
            labels,
            workload: format!(
                "{}/{}",
                s("kind"),
                str_at(object, "/metadata/name").unwrap_or("")
            ),
        })
    }
}

/// Which planned budgets must not be added because some pod would end up under two budgets
/// (the eviction API refuses to evict such a pod, so every node drain would block): for each
/// planned budget, `None` to keep it or `Some(why)` to drop it. Existing budgets (`index`) and
/// the other planned ones count. First a planned budget that selects another workload's pods
/// which some other budget also selects is dropped; then every planned budget still sharing a
/// pod with another budget. Linear in pods and budgets per label: candidates come from one
/// `matchLabels` pair.
pub fn overlaps(
    planned: &[&PlannedBudget],
    pods: &[&PodSet],
    index: &BudgetIndex,
) -> Vec<Option<String>> {
    use std::collections::HashMap;
    // (namespace, key, value) → pods carrying that label; namespace → all its pods.
    let mut by_label: HashMap<(Option<&str>, &str, &str), Vec<usize>> = HashMap::new();
    let mut by_ns: HashMap<Option<&str>, Vec<usize>> = HashMap::new();
    for (i, p) in pods.iter().enumerate() {
        let ns = p.namespace.as_deref();
        by_ns.entry(ns).or_default().push(i);
        for (k, v) in p.labels.iter() {
            by_label.entry((ns, &**k, &**v)).or_default().push(i);
        }
    }
    let selected = |ns: Option<&str>, selector: &Value, empty_all: bool| -> Vec<usize> {
        let first = selector
            .get("matchLabels")
            .and_then(Value::as_object)
            .and_then(|m| m.iter().next())
            .and_then(|(k, v)| Some((k.as_str(), v.as_str()?)));
        let candidates: &[usize] = match first {
            Some((k, v)) => by_label.get(&(ns, k, v)).map_or(&[], Vec::as_slice),
            None => by_ns.get(&ns).map_or(&[], Vec::as_slice),
        };
        candidates
            .iter()
            .copied()
            .filter(|&i| selects_by(selector, |k| pods[i].label(k), empty_all))
            .collect()
    };
    struct Plan {
        pods: Vec<usize>,
        workload: String,
    }
    let plans: Vec<Plan> = planned
        .iter()
        .map(|b| {
            let selector = b.selector();
            let workload = b.generated_for.to_string();
            Plan {
                pods: selected(b.namespace.as_deref(), &selector, true),
                workload,
            }
        })
        .collect();
    // Pod → the existing budgets that select it.
    let mut existing: Vec<Vec<&Budget>> = vec![Vec::new(); pods.len()];
    for b in &index.budgets {
        let Some(sel) = &b.selector else { continue };
        for i in selected(b.namespace.as_deref(), sel, b.empty_selects_all) {
            existing[i].push(b);
        }
    }
    let mut keep = vec![true; plans.len()];
    let count = |keep: &[bool]| {
        let mut n: Vec<usize> = existing.iter().map(Vec::len).collect();
        for (j, p) in plans.iter().enumerate() {
            if keep[j] {
                for &i in &p.pods {
                    n[i] += 1;
                }
            }
        }
        n
    };
    let describe_others = |i: usize, me: usize, keep: &[bool]| -> String {
        // A budget generated by an earlier run is named as the one planned now is, and the list
        // is sorted: a second run (of a ResourceList, whose results are kept) repeats the
        // message word for word instead of adding a new one.
        let mut others: Vec<String> = existing[i]
            .iter()
            .map(|b| match &b.generated_for {
                Some(w) => format!("the budget generated for {w}"),
                None => format!("PodDisruptionBudget {}", b.name),
            })
            .collect();
        for (j, p) in plans.iter().enumerate() {
            if j != me && keep[j] && p.pods.contains(&i) {
                others.push(format!("the budget generated for {}", p.workload));
            }
        }
        others.sort();
        others.dedup();
        others.join(", ")
    };
    let mut why: Vec<Option<String>> = vec![None; plans.len()];
    // Phase 1: budgets that reach into another workload's pods that are covered already.
    let n = count(&keep);
    for (j, p) in plans.iter().enumerate() {
        if let Some(&i) = p
            .pods
            .iter()
            .find(|&&i| pods[i].workload != p.workload && n[i] > 1)
        {
            why[j] = Some(format!(
                "its selector would also select the pods of {} (also under {}): the eviction API refuses to evict a pod under two budgets, so node drains would block",
                pods[i].workload,
                describe_others(i, j, &keep)
            ));
        }
    }
    for (j, w) in why.iter().enumerate() {
        if w.is_some() {
            keep[j] = false;
        }
    }
    // Phase 2: what still shares a pod.
    let n = count(&keep);
    for (j, p) in plans.iter().enumerate() {
        if !keep[j] {
            continue;
        }
        if let Some(&i) = p.pods.iter().find(|&&i| n[i] > 1) {
            why[j] = Some(format!(
                "the pods of {} would also be under {}: the eviction API refuses to evict a pod under two budgets, so node drains would block",
                pods[i].workload,
                describe_others(i, j, &keep)
            ));
        }
    }
    why
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn labels(v: Value) -> Map<String, Value> {
        v.as_object().unwrap().clone()
    }

    #[test]
    fn selectors_evaluate_like_the_api() {
        let l = labels(json!({"app": "web", "tier": "front"}));
        assert!(selects(&json!({"matchLabels": {"app": "web"}}), &l, true));
        assert!(!selects(&json!({"matchLabels": {"app": "db"}}), &l, true));
        assert!(selects(
            &json!({"matchExpressions": [{"key": "tier", "operator": "In", "values": ["front", "x"]}]}),
            &l,
            true
        ));
        assert!(!selects(
            &json!({"matchExpressions": [{"key": "tier", "operator": "NotIn", "values": ["front"]}]}),
            &l,
            true
        ));
        assert!(selects(
            &json!({"matchExpressions": [{"key": "x", "operator": "DoesNotExist"}]}),
            &l,
            true
        ));
        assert!(selects(&json!({}), &l, true));
        assert!(!selects(&json!({}), &l, false));
        assert!(!selects(&Value::Null, &l, true));
    }

    fn budget(ns: Option<&str>, workload: &str, selector: Value) -> PlannedBudget {
        PlannedBudget {
            namespace: ns.map(str::to_string),
            base_name: workload.to_string(),
            selector: selector.to_string().into_boxed_str(),
            labels: Box::default(),
            generated_for: workload.into(),
            helm4_file: None,
            limit: (false, IntOrString::Int(1)),
            unhealthy: "AlwaysAllow".into(),
            workload_path: None,
            reason: String::new(),
        }
    }

    fn pods(workload: &str, l: Value) -> PodSet {
        PodSet {
            namespace: None,
            labels: string_labels(&labels(l)),
            workload: workload.into(),
        }
    }

    #[test]
    fn no_pod_under_two_budgets() {
        let owned = [
            pods(
                "Deployment/hello-v1",
                json!({"app": "hello", "version": "v1"}),
            ),
            pods(
                "Deployment/hello-v2",
                json!({"app": "hello", "version": "v2"}),
            ),
            pods("Deployment/db", json!({"app": "db"})),
        ];
        let set: Vec<&PodSet> = owned.iter().collect();
        let wide = budget(
            None,
            "Deployment/hello-v1",
            json!({"matchLabels": {"app": "hello"}}),
        );
        let narrow = budget(
            None,
            "Deployment/hello-v2",
            json!({"matchLabels": {"app": "hello", "version": "v2"}}),
        );
        let db = budget(None, "Deployment/db", json!({"matchLabels": {"app": "db"}}));
        let index = BudgetIndex::default();
        // The wide one reaches into hello-v2's pods, which have their own budget: it goes, the
        // narrow one stays.
        let r = overlaps(&[&wide, &narrow, &db], &set, &index);
        assert!(r[0].as_deref().unwrap().contains("hello-v2"), "{r:?}");
        assert_eq!(r[1], None);
        assert_eq!(r[2], None);
        // Two budgets that both select both: neither.
        let wide2 = budget(
            None,
            "Deployment/hello-v2",
            json!({"matchLabels": {"app": "hello"}}),
        );
        let r = overlaps(&[&wide, &wide2], &set, &index);
        assert!(r[0].is_some() && r[1].is_some(), "{r:?}");
        // An existing budget over db's pods: db's planned one is dropped (plan() normally sees
        // it first; a budget elsewhere in the stream counts too).
        let mut index = BudgetIndex::default();
        index.record(&json!({"apiVersion": "policy/v1", "kind": "PodDisruptionBudget",
            "metadata": {"name": "all-db"}, "spec": {"selector": {"matchExpressions": [{"key": "app", "operator": "In", "values": ["db"]}]}}}));
        let r = overlaps(&[&db], &set, &index);
        assert!(r[0].as_deref().unwrap().contains("all-db"), "{r:?}");
        // Other namespaces do not count.
        let other = budget(
            Some("x"),
            "Deployment/db",
            json!({"matchLabels": {"app": "db"}}),
        );
        assert_eq!(
            overlaps(&[&other, &db], &set, &BudgetIndex::default()),
            vec![None, None]
        );
    }

    #[test]
    fn a_typed_budget_is_written_in_the_canonical_order() {
        let workload = json!({"apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": {"name": "web", "namespace": "shop",
                "labels": {"app.kubernetes.io/name": "web", "app.kubernetes.io/instance": "a", "team": "x"},
                "annotations": {HELM4_FILENAME: "chart/templates/web.yaml", KRM_PATH: "pkg/web.yaml"}},
            "spec": {"replicas": 3, "selector": {"matchLabels": {"z": "1", "app": "web"}},
                "template": {"metadata": {"labels": {"z": "1", "app": "web"}}, "spec": {"containers": []}}}});
        let policy = Policy::with_overrides(Default::default(), &Default::default()).unwrap();
        let Decision::Add(planned) = plan(&workload, &policy, &BudgetIndex::default(), false)
        else {
            panic!("a budget is planned");
        };
        let text = planned.finish("web").to_string();
        assert_eq!(
            text,
            r#"{"apiVersion":"policy/v1","kind":"PodDisruptionBudget","metadata":{"name":"web","namespace":"shop","labels":{"app.kubernetes.io/name":"web","app.kubernetes.io/instance":"a"},"annotations":{"kube-harden.dev/generated-for":"Deployment/web","postrenderer.helm.sh/postrender-filename":"chart/templates/web.yaml","internal.config.kubernetes.io/path":"pkg/poddisruptionbudget_web.yaml","config.kubernetes.io/path":"pkg/poddisruptionbudget_web.yaml","internal.config.kubernetes.io/index":"0","config.kubernetes.io/index":"0"}},"spec":{"maxUnavailable":1,"selector":{"matchLabels":{"z":"1","app":"web"}},"unhealthyPodEvictionPolicy":"AlwaysAllow"}}"#
        );
    }

    #[test]
    fn names_avoid_collisions_and_stay_valid() {
        let mut taken = HashSet::new();
        assert_eq!(choose_name("web", &None, &taken), "web");
        taken.insert((None, "web".to_string()));
        assert_eq!(choose_name("web", &None, &taken), "web-pdb");
        assert_eq!(choose_name("web", &Some("x".into()), &taken), "web");
        taken.insert((None, "web-pdb".to_string()));
        assert_eq!(choose_name("web", &None, &taken), "web-pdb-2");
        let long = format!("{}-a", "a".repeat(251));
        taken.insert((None, long.clone()));
        let name = choose_name(&long, &None, &taken);
        assert!(name.len() <= MAX_NAME && name.ends_with("-pdb"), "{name}");
    }
}
