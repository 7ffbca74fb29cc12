//! The rules' stream hooks driven generically: what a rule plans to create after an object
//! (`Plan`), settled and created (`Op::Create`) per rule, reported, and placed in a list.

use serde_json::Value;

use super::results::{Sink, NOTED_OBJECTS};
use super::schedule::in_order_items;
use crate::change::{self, Change, KrmResult, Op, ResourceRef, Severity};
use crate::config::Verbosity;
use crate::model::path::FieldPath;
use crate::rules::{self, Note, Rule, StreamIndex};
use crate::yaml::emit::Layout;

/// Why an object planned for a repeated workload is not created.
pub(super) fn repeated_result(
    rule: &dyn Rule,
    resource: ResourceRef,
    file: Option<String>,
) -> KrmResult {
    let message = rule.withdrawn(&resource);
    KrmResult::new(rule.id(), Severity::Info, message, Some(resource), file)
}

/// An object a rule plans to create after a document of a plain stream, settled, named and
/// written once the whole stream is done.
pub(super) struct PendingCreate {
    pub(super) rule: &'static dyn Rule,
    pub(super) planned: Box<Note>,
    /// The workload's `# Source:` (Helm 3 groups output by it).
    pub(super) source: Option<String>,
    pub(super) layout: Layout,
    pub(super) resource: ResourceRef,
}

/// For each planned object (with the rule that planned it), in order: `Some(message)` when its
/// rule's `settle` hook drops it (`notes`: what the rules observed of the workloads concerned).
pub(super) fn settle(
    planned: &[(&'static dyn Rule, &Note)],
    notes: &[(&'static str, Box<Note>)],
    index: &StreamIndex,
) -> Vec<Option<String>> {
    let mut out = vec![None; planned.len()];
    for rule in rules::registry() {
        let (at, mine): (Vec<usize>, Vec<&Note>) = planned
            .iter()
            .enumerate()
            .filter(|(_, (r, _))| r.id() == rule.id())
            .map(|(i, (_, p))| (i, *p))
            .unzip();
        if mine.is_empty() {
            continue;
        }
        let observed: Vec<&Note> = notes
            .iter()
            .filter(|(id, _)| *id == rule.id())
            .map(|(_, n)| &**n)
            .collect();
        for (i, why) in at.into_iter().zip(rule.settle(&mine, &observed, index)) {
            out[i] = why;
        }
    }
    out
}

/// The `Op::Create` changes for the planned objects kept, in order (each rule names its own
/// against the stream index, in order): [`Made::build`] builds the `k`th kept object's, on any
/// thread (`None` where its rule made none).
pub(super) fn create<'a>(
    kept: &[(&'static dyn Rule, &'a Note)],
    index: &'a StreamIndex,
) -> Made<'a> {
    let mut order = Vec::with_capacity(kept.len());
    let mut made: Vec<rules::Creations<'a>> = Vec::new();
    // Per rule: its slot in `made` and how many of its objects came before.
    let mut slots: Vec<(&str, usize, usize)> = Vec::new();
    for &(rule, _) in kept {
        let at = match slots.iter().position(|(id, _, _)| *id == rule.id()) {
            Some(at) => at,
            None => {
                let mine: Vec<&'a Note> = kept
                    .iter()
                    .filter(|(r, _)| r.id() == rule.id())
                    .map(|(_, p)| *p)
                    .collect();
                made.push(rule.create(mine, index));
                slots.push((rule.id(), made.len() - 1, 0));
                slots.len() - 1
            }
        };
        let (_, slot, nth) = &mut slots[at];
        order.push((*slot, *nth));
        *nth += 1;
    }
    Made { order, made }
}

/// What a list's items planned, once every item is known: each planned object (its rule, the
/// workload it was planned for and that workload's file) with the rule's note.
pub(super) type ListPlans = Vec<((&'static dyn Rule, ResourceRef, Option<String>), Box<Note>)>;

/// A list's planned objects settled against what the rules observed of its workloads (the
/// sink's `observed` from `first_note` on), the dropped ones reported (an info result each) and
/// the kept ones created, in item order: `place` gets each created change with its workload's
/// file. Both the tree path and the ResourceList item path end a list with this.
pub(super) fn settle_and_create(
    plans: ListPlans,
    first_note: usize,
    index: &StreamIndex,
    sink: &mut Sink,
    threads: usize,
    mut place: impl FnMut(Change, Option<String>, &mut Sink),
) {
    let refs: Vec<(&'static dyn Rule, &Note)> = plans
        .iter()
        .map(|((rule, _, _), note)| (*rule, &**note))
        .collect();
    let dropped = settle(&refs, &sink.observed[first_note..], index);
    let kept: Vec<_> = refs
        .iter()
        .zip(&dropped)
        .filter(|(_, why)| why.is_none())
        .map(|(p, _)| *p)
        .collect();
    let made = create(&kept, index);
    // Built on up to `threads` threads (many objects only), placed in order.
    in_order_items(
        made.len(),
        threads,
        |k| made.build(k),
        |built| {
            for (((rule, resource, file), _), why) in plans.iter().zip(dropped) {
                if let Some(message) = why {
                    sink.push(KrmResult::new(
                        rule.id(),
                        Severity::Info,
                        message,
                        Some(resource.clone()),
                        file.clone(),
                    ));
                    continue;
                }
                let Some(Some(change)) = built.next() else {
                    continue;
                };
                place(change, file.clone(), sink);
            }
        },
    );
}

/// The created objects, in the order of the planned ones kept (see [`create`]).
pub(super) struct Made<'a> {
    /// Per kept object: its rule's creations in `made`, and which of them it is.
    order: Vec<(usize, usize)>,
    made: Vec<rules::Creations<'a>>,
}

impl Made<'_> {
    /// How many planned objects were kept.
    pub(super) fn len(&self) -> usize {
        self.order.len()
    }

    /// The `k`th kept object's change (`None` where its rule made none).
    pub(super) fn build(&self, k: usize) -> Option<Change> {
        let &(slot, nth) = self.order.get(k)?;
        self.made[slot].build(nth)
    }
}

/// Reports a created object (the `generated: …` result, the counters) and returns it for
/// placing; `None` for a change that creates nothing.
pub(super) fn take_created(change: Change, file: Option<String>, sink: &mut Sink) -> Option<Value> {
    let (result, object) = created_result(change, file)?;
    report_created(result, sink);
    Some(object)
}

/// A created object and its `generated: …` result (any thread); `None` for a change that
/// creates nothing.
pub(super) fn created_result(change: Change, file: Option<String>) -> Option<(KrmResult, Value)> {
    let Op::Create(object) = change.op else {
        return None;
    };
    let result = KrmResult::new_change(
        change.rule,
        Severity::Info,
        change.message,
        Some(ResourceRef::of(&object)),
        file,
    );
    Some((result, object))
}

/// Reports a created object's result (see [`created_result`]) and counts it, in order.
pub(super) fn report_created(result: KrmResult, sink: &mut Sink) {
    if sink.notes.len() < NOTED_OBJECTS {
        sink.notes.push(result.clone());
    }
    if sink.verbosity >= Verbosity::Changes {
        sink.keep(result);
    }
    sink.stats.changes += 1;
    sink.stats.generated += 1;
}

/// Places a created object at the end of a list's items through the one applier, and reports
/// it; true when it was placed.
pub(super) fn place_in_list(
    list: &mut Value,
    change: Change,
    file: Option<String>,
    sink: &mut Sink,
) -> bool {
    let rule = change.rule;
    let message = change.message.clone();
    let Some(object) = take_created(change, file, sink) else {
        return false;
    };
    let placed = Change {
        rule,
        path: FieldPath::root().key("items"),
        op: Op::Create(object),
        message,
    };
    change::apply(list, &placed).unwrap_or(false)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{Overrides, Policy, PolicySpec, Verbosity};
    use crate::rules::{by_id, Plan};
    use serde_json::json;

    fn planned(name: &str, app: &str) -> (&'static dyn Rule, Box<Note>, Box<Note>) {
        let policy = Policy::with_overrides(PolicySpec::default(), &Overrides::default()).unwrap();
        let rule = by_id("pod-disruption-budget").unwrap();
        let object = json!({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": name},
            "spec": {"replicas": 2, "selector": {"matchLabels": {"app": app}},
                "template": {"metadata": {"labels": {"app": app}}, "spec": {"containers": []}}}});
        let Plan::Create(p) = rule.plan(&object, &policy, &StreamIndex::default(), false) else {
            panic!("a budget is planned");
        };
        (rule, p, rule.observe(&object, &policy).unwrap())
    }

    #[test]
    fn settled_per_rule_then_created_in_order() {
        let (rule, a, pods_a) = planned("a", "shared");
        let (_, b, pods_b) = planned("b", "shared");
        let (_, c, pods_c) = planned("c", "own");
        let index = StreamIndex::default();
        let plans = vec![(rule, &*a), (rule, &*b), (rule, &*c)];
        let notes = vec![
            (rule.id(), pods_a),
            (rule.id(), pods_b),
            (rule.id(), pods_c),
        ];
        let dropped = settle(&plans, &notes, &index);
        // a's and b's budgets would both select both workloads' pods.
        assert!(dropped[0].is_some() && dropped[1].is_some() && dropped[2].is_none());
        let made = create(&plans[2..], &index);
        assert_eq!(made.len(), 1);
        assert!(made.build(1).is_none());
        let Some(Change {
            op: Op::Create(object),
            ..
        }) = &made.build(0)
        else {
            panic!("a created object");
        };
        assert_eq!(object.pointer("/metadata/name"), Some(&json!("c")));
    }

    #[test]
    fn a_created_object_is_reported_and_placed_in_a_list() {
        let (rule, c, _) = planned("c", "own");
        let index = StreamIndex::default();
        let change = create(&[(rule, &*c)], &index).build(0).unwrap();
        let mut list =
            json!({"apiVersion": "v1", "kind": "List", "items": [{"kind": "Deployment"}]});
        let mut sink = Sink::new(Verbosity::Changes, false);
        assert!(place_in_list(
            &mut list,
            change,
            Some("f.yaml".into()),
            &mut sink
        ));
        assert_eq!(list["items"][1]["kind"], json!("PodDisruptionBudget"));
        assert_eq!((sink.stats.generated, sink.stats.changes), (1, 1));
        assert!(sink.results[0]
            .message
            .starts_with("generated: Deployment c runs 2 replicas"));
        assert_eq!(sink.results[0].file.as_deref(), Some("f.yaml"));
        let resource = ResourceRef::of(&json!({"kind": "Deployment", "metadata": {"name": "c"}}));
        assert!(repeated_result(rule, resource, None)
            .message
            .contains("more than once"));
    }
}
