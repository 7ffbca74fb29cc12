//! What the rules know about a container before they make a change that could stop it from
//! starting: its image facts, the uid it will run as (decided as the kubelet decides it), the
//! command it executes, and whether its pod is a node agent. Rules ask here; none of them guesses.

use std::sync::Arc;

use serde_json::Value;

use crate::config::{Policy, UnknownImages};
use crate::facts::{ImageFacts, RuntimeUser};
use crate::model::path::{Field, Pointer};
use crate::model::workload::{Container, PodView};

/// Where the effective uid comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UserSource {
    /// The container's `securityContext.runAsUser`.
    Container,
    /// The pod's `securityContext.runAsUser` (or the policy's, about to be added there).
    Pod,
    /// The image's `USER` (from the image facts).
    Image,
    /// Nothing says.
    Unknown,
}

/// The evidence about one container.
#[derive(Debug, Clone)]
pub struct Evidence {
    /// The image facts, when anything is known.
    pub facts: Option<Arc<ImageFacts>>,
    /// Who the container runs as.
    pub user: RuntimeUser,
    /// Where that comes from.
    pub source: UserSource,
    /// The primary gid, when known.
    pub gid: Option<u32>,
    /// Supplementary gids known to apply (the image user's groups, the pod's
    /// `supplementalGroups`).
    pub groups: Vec<u32>,
    /// The argv the container runs, when known (`command`/`args` over `Entrypoint`/`Cmd`).
    pub command: Option<Vec<String>>,
    /// The image as written.
    pub image: String,
}

fn uid_value(v: Option<&Value>) -> Option<Option<u32>> {
    // Some(None): set, but not a valid uid (the API server refuses it; no decision rests on it).
    v.map(|v| v.as_i64().and_then(|n| u32::try_from(n).ok()))
}

fn strings(v: Option<&Value>) -> Option<Vec<String>> {
    v.and_then(Value::as_array).map(|a| {
        a.iter()
            .map(|s| s.as_str().map(str::to_string).unwrap_or_default())
            .collect()
    })
}

impl Evidence {
    /// The evidence for `c`. `pod_uid` replaces the pod's runAsUser when the caller is about to
    /// add one (run-as-non-root with the policy's `runAsUser`).
    pub fn of(c: &Container<'_>, pod: &PodView<'_>, policy: &Policy, pod_uid: Option<i64>) -> Self {
        let image = c
            .value
            .field("image")
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_string();
        let facts = if image.is_empty() {
            None
        } else {
            policy.image_facts(&image)
        };
        let container_uid = uid_value(c.security_context("runAsUser"));
        let pod_uid = match pod.security_context("runAsUser") {
            Some(v) => uid_value(Some(v)),
            None => pod_uid.map(|n| u32::try_from(n).ok()),
        };
        let (user, source) = match (container_uid, pod_uid) {
            (Some(u), _) => (
                u.map_or(RuntimeUser::Unknown, RuntimeUser::Uid),
                UserSource::Container,
            ),
            (None, Some(u)) => (
                u.map_or(RuntimeUser::Unknown, RuntimeUser::Uid),
                UserSource::Pod,
            ),
            (None, None) => match facts.as_deref().map(ImageFacts::image_uid) {
                Some(RuntimeUser::Unknown) | None => (RuntimeUser::Unknown, UserSource::Unknown),
                Some(u) => (u, UserSource::Image),
            },
        };
        let run_as_group = c
            .security_context("runAsGroup")
            .or_else(|| pod.security_context("runAsGroup"))
            .and_then(Value::as_i64)
            .and_then(|n| u32::try_from(n).ok());
        // The image's group facts apply when the container runs as the image's own user.
        let image_user = facts
            .as_deref()
            .map(ImageFacts::image_uid)
            .filter(|u| *u == user && matches!(u, RuntimeUser::Uid(_)));
        let gid = run_as_group.or_else(|| {
            image_user
                .as_ref()
                .and(facts.as_deref().and_then(ImageFacts::image_gid))
        });
        let mut groups: Vec<u32> = Vec::new();
        if image_user.is_some() {
            groups.extend(
                facts
                    .as_deref()
                    .and_then(|f| f.groups.clone())
                    .unwrap_or_default(),
            );
        }
        if let Some(list) = pod
            .spec
            .at("/securityContext/supplementalGroups")
            .and_then(Value::as_array)
        {
            groups.extend(
                list.iter()
                    .filter_map(Value::as_u64)
                    .filter_map(|n| u32::try_from(n).ok()),
            );
        }
        let command = {
            let cmd = strings(c.value.field("command"));
            let args = strings(c.value.field("args"));
            let f = facts.as_deref();
            match (cmd, args) {
                (Some(cmd), args) => Some([cmd, args.unwrap_or_default()].concat()),
                (None, args) => f
                    .and_then(|f| f.entrypoint.clone().zip(f.cmd.clone()))
                    .map(|(entry, image_cmd)| [entry, args.unwrap_or(image_cmd)].concat()),
            }
            .filter(|argv| !argv.is_empty())
        };
        Evidence {
            facts,
            user,
            source,
            gid,
            groups,
            command,
            image,
        }
    }

    /// True when nothing at all is known about the image.
    pub fn image_unknown(&self) -> bool {
        self.facts.is_none()
    }

    /// Whether the rules act on this container as if its image were hardenable when facts are
    /// missing (`unknownImages: harden`).
    pub fn trust_unknown(policy: &Policy) -> bool {
        policy.unknown_images() == UnknownImages::Harden
    }

    /// The fix to name when image facts are missing.
    pub fn facts_fix(&self) -> String {
        format!(
            "record the image's facts with `kube-harden lock` (or state them under spec.images.facts for {:?}), or set unknownImages: harden",
            self.image
        )
    }

    /// The privileged file (setuid/setgid/file capabilities) the container's command runs:
    /// `Ok(Some(path))` when it relies on one, `Ok(None)` when it does not, `Err(reason)` when
    /// the facts cannot tell.
    pub fn privileged_binary(&self) -> Result<Option<String>, String> {
        let Some(facts) = self.facts.as_deref() else {
            return Err("the image is unknown".into());
        };
        if facts.filesystem.is_none() {
            return Err("the image's filesystem facts are unknown".into());
        }
        let Some(command) = &self.command else {
            return Err("the command it runs is unknown".into());
        };
        match facts.privileged_command(command) {
            Some(Some(f)) => {
                let what: Vec<&str> = [
                    (f.setuid, "setuid"),
                    (f.setgid, "setgid"),
                    (f.capabilities, "file capabilities"),
                ]
                .into_iter()
                .filter_map(|(on, w)| on.then_some(w))
                .collect();
                Ok(Some(format!("{} ({})", f.path, what.join(", "))))
            }
            Some(None) => Ok(None),
            None => Err("the command it runs is unknown".into()),
        }
    }

    /// Words for who the container runs as, for messages.
    pub fn describe_user(&self) -> String {
        let from = match self.source {
            UserSource::Container => "its runAsUser",
            UserSource::Pod => "the pod's runAsUser",
            UserSource::Image => "the image's USER",
            UserSource::Unknown => "nothing known",
        };
        match &self.user {
            RuntimeUser::Uid(0) => format!("root (uid 0, from {from})"),
            RuntimeUser::Uid(n) => format!("uid {n} (from {from})"),
            RuntimeUser::Named(n) => format!("user {n:?} whose uid is unknown (from {from})"),
            RuntimeUser::Unknown => "an unknown user".into(),
        }
    }
}

/// hostPath prefixes that mark a pod as a node agent (CNI, kubelet, device, kernel and runtime
/// paths, logs, the node's root).
const NODE_PATHS: &[&str] = &[
    "/etc/cni",
    "/opt/cni",
    "/var/lib/cni",
    "/run",
    "/var/run",
    "/var/lib/kubelet",
    "/dev",
    "/proc",
    "/sys",
    "/lib/modules",
    "/etc/kubernetes",
    "/var/log",
    "/var/lib/docker",
    "/var/lib/containerd",
];

/// Capabilities that, with a host namespace, mark a node agent.
const NODE_CAPS: &[&str] = &["NET_ADMIN", "SYS_ADMIN", "NET_RAW"];

/// Why the container is a node agent (a system daemon that must keep its image's user,
/// capabilities and a writable root), or `None`: it adds NET_ADMIN, SYS_ADMIN or NET_RAW in a pod
/// that uses a host namespace (hostNetwork, hostPID, hostIPC), or it mounts a hostPath volume of a
/// node path (CNI, kubelet, device, kernel and runtime directories, logs, the node's root).
pub fn node_agent(pod: &PodView<'_>, c: &Container<'_>) -> Option<String> {
    let host = ["hostNetwork", "hostPID", "hostIPC"]
        .into_iter()
        .find(|k| pod.spec.field(k).and_then(Value::as_bool) == Some(true));
    if let Some(ns) = host {
        if let Some(cap) = c.added_capabilities().into_iter().find(|cap| {
            let cap = cap.strip_prefix("CAP_").unwrap_or(cap);
            NODE_CAPS.contains(&cap)
        }) {
            return Some(format!("node agent ({ns} with {cap})"));
        }
    }
    let volumes = pod.spec.field("volumes").and_then(Value::as_array)?;
    let mounts = c.value.field("volumeMounts").and_then(Value::as_array)?;
    for m in mounts {
        let Some(name) = m.field("name").and_then(Value::as_str) else {
            continue;
        };
        let Some(path) = volumes
            .iter()
            .find(|v| v.field("name").and_then(Value::as_str) == Some(name))
            .and_then(|v| v.at("/hostPath/path"))
            .and_then(Value::as_str)
        else {
            continue;
        };
        let p = crate::facts::normalize_path(path);
        if p == "/" || NODE_PATHS.iter().any(|n| crate::facts::is_within(&p, n)) {
            return Some(format!("node agent (hostPath {path})"));
        }
    }
    None
}
