//! `run-as-non-root`: pods run as a non-root user (`securityContext.runAsNonRoot: true`).

use schemars::JsonSchema;
use serde::Deserialize;
use serde_json::{json, Value};

use super::evidence::{self, Evidence, UserSource};
use super::{Rule, RuleSettings, SettingsDescriptor};
use crate::change::Findings;
use crate::config::Policy;
use crate::facts::RuntimeUser;
use crate::model::workload::{Container, PodView};

const ID: &str = "run-as-non-root";

/// Settings of run-as-non-root (spec keys `runAsUser`, `runAsGroup`, `fsGroup`).
#[derive(Debug, Clone, Default, Deserialize, JsonSchema, PartialEq, Eq)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct Settings {
    /// Pod `securityContext.runAsUser` to add where none is set (run-as-non-root).
    #[serde(default)]
    pub run_as_user: Option<i64>,
    /// Pod `securityContext.runAsGroup` to add where none is set (run-as-non-root).
    #[serde(default)]
    pub run_as_group: Option<i64>,
    /// Pod `securityContext.fsGroup` to add where none is set (run-as-non-root).
    #[serde(default)]
    pub fs_group: Option<i64>,
}

/// Any integer is taken as given: the API server checks the ranges.
impl RuleSettings for Settings {}

/// Adds pod `runAsNonRoot: true` (and runAsUser/runAsGroup/fsGroup when the policy gives them).
pub struct RunAsNonRoot;

fn uid(v: Option<&Value>) -> Option<i64> {
    v.and_then(Value::as_i64)
}

fn runs_as_root(c: &Container<'_>, pod_uid: Option<i64>) -> bool {
    match uid(c.security_context("runAsUser")) {
        Some(u) => u == 0,
        None => pod_uid == Some(0),
    }
}

/// The policy's runAsUser when this rule adds it to the pod (none set, no privileged or
/// opted-out container, not Windows).
fn policy_user_added(pod: &PodView<'_>, policy: &Policy) -> Option<i64> {
    let value = policy.settings::<Settings>().run_as_user?;
    let any_privileged = pod.containers.iter().any(|c| c.privileged() || c.skips(ID));
    (pod.security_context("runAsUser").is_none() && !pod.windows && !any_privileged)
        .then_some(value)
}

/// What the kubelet would make of `runAsNonRoot: true` on this container.
enum Verdict {
    /// It starts: the uid is known and not 0. `named` holds the uid and gid to add when the image
    /// names its user (the kubelet cannot verify a name).
    Accepts { named: Option<(u32, Option<u32>)> },
    /// It would be refused (or might be): why, with the fix.
    Refuses(String),
    /// The rule leaves it alone on purpose (root by declaration, privileged, node agent).
    Excluded(String),
}

struct Plan {
    verdict: Verdict,
}

impl Plan {
    fn accepts(&self) -> bool {
        matches!(self.verdict, Verdict::Accepts { .. })
    }

    /// For an image that names its user: the container's runAsUser (and runAsGroup) from the
    /// image's passwd, so the kubelet can verify it.
    fn add_user(&self, c: &Container<'_>, pod: &PodView<'_>, policy: &Policy, out: &mut Findings) {
        let Verdict::Accepts {
            named: Some((uid, gid)),
        } = self.verdict
        else {
            return;
        };
        if pod.windows || c.skips(ID) {
            return;
        }
        if c.security_context("runAsUser").is_none() && pod.security_context("runAsUser").is_none()
        {
            out.add(
                ID,
                c.sc_path("runAsUser"),
                json!(uid),
                format!(
                    "container {:?} runs as uid {uid}, its image's named user (the kubelet cannot verify a name)",
                    c.name
                ),
            );
        }
        if let Some(gid) = gid {
            if c.security_context("runAsGroup").is_none()
                && pod.security_context("runAsGroup").is_none()
                && policy.settings::<Settings>().run_as_group.is_none()
            {
                out.add(
                    ID,
                    c.sc_path("runAsGroup"),
                    json!(gid),
                    format!(
                        "container {:?} runs with gid {gid}, its image user's group",
                        c.name
                    ),
                );
            }
        }
    }
}

fn plan(c: &Container<'_>, pod: &PodView<'_>, policy: &Policy, policy_uid: Option<i64>) -> Plan {
    let pod_uid = uid(pod.security_context("runAsUser"));
    let excluded = |why: String| Plan {
        verdict: Verdict::Excluded(why),
    };
    if runs_as_root(c, pod_uid) {
        return excluded("it runs as UID 0 by declaration".into());
    }
    if c.privileged() {
        return excluded("privileged".into());
    }
    if c.skips(ID) {
        return excluded("opted out".into());
    }
    if let Some(node) = evidence::node_agent(pod, c) {
        return excluded(node);
    }
    let ev = Evidence::of(c, pod, policy, policy_uid);
    let verdict = match (&ev.user, ev.source) {
        (RuntimeUser::Uid(0), _) => Verdict::Refuses(format!(
            "image {:?} runs as root (its USER is {}): the kubelet would refuse it (\"container has runAsNonRoot and image will run as root\"). Fix: run it as a non-root uid the image supports (securityContext.runAsUser), or use an image with a numeric non-root USER",
            ev.image,
            ev.facts.as_deref().and_then(|f| f.user.as_deref()).map_or("unset".into(), |u| if u.is_empty() { "unset".to_string() } else { format!("{u:?}") })
        )),
        (RuntimeUser::Uid(n), UserSource::Image) => {
            let facts = ev.facts.as_deref();
            let written = facts.and_then(|f| f.user.as_deref()).unwrap_or("");
            let (name, _) = crate::facts::split_user(written);
            let named = name.parse::<u32>().is_err() && !name.is_empty();
            Verdict::Accepts {
                named: named.then(|| (*n, facts.and_then(crate::facts::ImageFacts::image_gid))),
            }
        }
        (RuntimeUser::Uid(_), _) => Verdict::Accepts { named: None },
        (RuntimeUser::Named(name), _) => Verdict::Refuses(format!(
            "image {:?} runs as user {name:?}, a name whose uid is unknown: the kubelet would refuse it (\"image has non-numeric user ({name}), cannot verify user is non-root\"). Fix: set securityContext.runAsUser to {name}'s uid, or record the image's /etc/passwd with `kube-harden lock`",
            ev.image
        )),
        (RuntimeUser::Unknown, _) if Evidence::trust_unknown(policy) => {
            Verdict::Accepts { named: None }
        }
        (RuntimeUser::Unknown, _) => Verdict::Refuses(format!(
            "nothing is known about the user of image {:?} and no runAsUser is set: the kubelet refuses root and non-numeric users. Fix: set securityContext.runAsUser to a non-zero uid, or {}",
            ev.image,
            ev.facts_fix()
        )),
    };
    Plan { verdict }
}

impl Rule for RunAsNonRoot {
    fn id(&self) -> &'static str {
        ID
    }

    fn summary(&self) -> &'static str {
        "pods run as a non-root user (runAsNonRoot: true; runAsUser/runAsGroup/fsGroup from the policy)"
    }

    fn docs(&self) -> &'static str {
        include_str!("../../docs/rules/run-as-non-root.md")
    }

    fn settings(&self) -> Option<SettingsDescriptor> {
        Some(SettingsDescriptor::of::<Settings>())
    }

    fn check(&self, pod: &PodView<'_>, policy: &Policy, out: &mut Findings) {
        if pod.skips(ID) {
            return;
        }
        let pod_uid = uid(pod.security_context("runAsUser"));
        if pod_uid == Some(0) {
            out.warn(
                ID,
                pod.sc_path("runAsUser"),
                json!(0),
                None,
                "pod runs as UID 0 (runAsUser: 0); Pod Security restricted forbids it",
            );
        }
        // The policy's runAsUser, when this rule is about to add it to the pod.
        let policy_uid = policy_user_added(pod, policy);
        let plans: Vec<Plan> = pod
            .containers
            .iter()
            .map(|c| plan(c, pod, policy, policy_uid))
            .collect();
        for (c, p) in pod.containers.iter().zip(&plans) {
            if uid(c.security_context("runAsUser")) == Some(0) {
                out.warn(
                    ID,
                    c.sc_path("runAsUser"),
                    json!(0),
                    None,
                    format!(
                        "container {:?} runs as UID 0; runAsNonRoot not added for it",
                        c.name
                    ),
                );
            }
            if c.skips(ID) {
                continue;
            }
            if let Some(v) = c.security_context("runAsNonRoot") {
                if v != &Value::Bool(true) {
                    if policy.spec.enforce && p.accepts() {
                        out.replace(
                            ID,
                            c.sc_path("runAsNonRoot"),
                            v.clone(),
                            json!(true),
                            format!("enforce: container {:?} runAsNonRoot set to true", c.name),
                        );
                        p.add_user(c, pod, policy, out);
                    } else {
                        let why = match &p.verdict {
                            Verdict::Accepts { .. } => String::new(),
                            Verdict::Refuses(why) | Verdict::Excluded(why) => {
                                format!(" (not enforced: {why})")
                            }
                        };
                        out.warn(ID, c.sc_path("runAsNonRoot"), v.clone(), Some(json!(true)),
                            format!("container {:?} sets runAsNonRoot: {v}; Pod Security restricted requires true{why}", c.name));
                    }
                }
            }
        }
        // Containers that keep the pod from carrying runAsNonRoot: those the kubelet would refuse
        // (root, unknown or unresolvable user), system daemons and opt-outs, unless they decide
        // for themselves with their own runAsNonRoot.
        let blockers: Vec<(&Container<'_>, &Plan)> = pod
            .containers
            .iter()
            .zip(&plans)
            .filter(|(c, p)| !p.accepts() && c.security_context("runAsNonRoot").is_none())
            .collect();
        match pod.security_context("runAsNonRoot") {
            Some(Value::Bool(true)) => {
                for (c, p) in &blockers {
                    if let Verdict::Refuses(why) = &p.verdict {
                        if !c.skips(ID) {
                            out.warn(ID, pod.sc_path("runAsNonRoot"), json!(true), None,
                                format!("pod sets runAsNonRoot: true, but the kubelet will refuse container {:?}: {why}", c.name));
                        }
                    }
                }
                for (c, p) in pod.containers.iter().zip(&plans) {
                    if !c.skips(ID) && p.accepts() {
                        p.add_user(c, pod, policy, out);
                    }
                }
            }
            Some(v) => {
                if policy.spec.enforce && blockers.is_empty() {
                    out.replace(
                        ID,
                        pod.sc_path("runAsNonRoot"),
                        v.clone(),
                        json!(true),
                        "enforce: pod runAsNonRoot set to true",
                    );
                    for (c, p) in pod.containers.iter().zip(&plans) {
                        p.add_user(c, pod, policy, out);
                    }
                } else {
                    out.warn(
                        ID,
                        pod.sc_path("runAsNonRoot"),
                        v.clone(),
                        Some(json!(true)),
                        format!(
                            "pod sets runAsNonRoot: {v}; Pod Security restricted requires true"
                        ),
                    );
                }
            }
            None if blockers.is_empty() => {
                out.add(
                    ID,
                    pod.sc_path("runAsNonRoot"),
                    json!(true),
                    "pod runs as non-root",
                );
                for (c, p) in pod.containers.iter().zip(&plans) {
                    p.add_user(c, pod, policy, out);
                }
            }
            None => {
                for (c, p) in pod.containers.iter().zip(&plans) {
                    if p.accepts() && c.security_context("runAsNonRoot").is_none() {
                        out.add(
                            ID,
                            c.sc_path("runAsNonRoot"),
                            json!(true),
                            format!("container {:?} runs as non-root", c.name),
                        );
                        p.add_user(c, pod, policy, out);
                    }
                }
                for (c, p) in blockers {
                    if c.skips(ID) {
                        continue;
                    }
                    match &p.verdict {
                        Verdict::Refuses(why) => out.withheld(
                            ID,
                            c.sc_path("runAsNonRoot"),
                            json!(true),
                            format!("container {:?}: runAsNonRoot not added, {why}", c.name),
                        ),
                        Verdict::Excluded(why) if c.privileged() && !runs_as_root(c, pod_uid) => {
                            out.info(ID, Some(c.path.clone()),
                                format!("privileged container {:?} keeps its image's user; runAsNonRoot set per container instead of on the pod", c.name));
                            let _ = why;
                        }
                        Verdict::Excluded(why) if why.starts_with("node agent") => out.info(
                            ID,
                            Some(c.path.clone()),
                            format!("container {:?} keeps its image's user: {why}", c.name),
                        ),
                        _ => {}
                    }
                }
            }
        }
        if pod.windows {
            return;
        }
        // A pod-level user would also change containers that are privileged or opted out.
        let any_privileged = pod.containers.iter().any(|c| c.privileged() || c.skips(ID));
        let settings = policy.settings::<Settings>();
        for (field, value, needs_unprivileged) in [
            ("runAsUser", settings.run_as_user, true),
            ("runAsGroup", settings.run_as_group, true),
            ("fsGroup", settings.fs_group, false),
        ] {
            let Some(value) = value else { continue };
            if pod.security_context(field).is_some() {
                continue;
            }
            if needs_unprivileged && any_privileged {
                out.info(
                    ID,
                    Some(pod.sc_path(field)),
                    format!("pod has a privileged container: {field} from the policy not added"),
                );
                continue;
            }
            out.add(
                ID,
                pod.sc_path(field),
                json!(value),
                format!("pod {field} set from the policy"),
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Policy;
    use crate::policy::spec_from_object;
    use serde_json::json;

    #[test]
    fn ids_from_a_policy_and_from_config_map_strings() {
        let spec = spec_from_object(&json!({"apiVersion": "v1", "kind": "ConfigMap",
            "data": {"runAsUser": " 10001 ", "fsGroup": "2000"}}))
        .unwrap();
        let policy = Policy::from_spec(spec).unwrap();
        let s = policy.settings::<Settings>();
        assert_eq!(
            (s.run_as_user, s.run_as_group, s.fs_group),
            (Some(10001), None, Some(2000))
        );
        let err = spec_from_object(&json!({"apiVersion": "v1", "kind": "ConfigMap",
            "data": {"runAsGroup": "root"}}))
        .unwrap_err()
        .to_string();
        assert!(
            err.contains("data.runAsGroup: `root` is not an integer"),
            "{err}"
        );
    }
}
