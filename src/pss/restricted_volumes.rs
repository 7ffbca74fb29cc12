//! `restrictedVolumes` (restricted): volumes only of the kinds that carry no node or network
//! access (configMap, csi, downwardAPI, emptyDir, ephemeral, image, persistentVolumeClaim,
//! projected, secret). Replaces `hostPathVolumes`.
//!
//! A volume with no source at all is an `emptyDir`: the API server defaults it so before
//! admission (`SetDefaults_Volume`), and PSA sees the defaulted pod.

use serde_json::Value;

use super::{present, quoted, sorted_set, str_of, Control, Failure, Level, Outcome, Pod, Variant};

pub(super) const CONTROL: Control = Control {
    id: "restrictedVolumes",
    level: Level::Restricted,
    variants: &[Variant {
        since: 0,
        check,
        overrides: &[super::host_path_volumes::ID],
    }],
};

const ALLOWED: &[&str] = &[
    "configMap",
    "csi",
    "downwardAPI",
    "emptyDir",
    "ephemeral",
    "image",
    "persistentVolumeClaim",
    "projected",
    "secret",
];

/// Every other volume source of the API, in the order PSA names them.
const NAMED: &[&str] = &[
    "hostPath",
    "gcePersistentDisk",
    "awsElasticBlockStore",
    "gitRepo",
    "nfs",
    "iscsi",
    "glusterfs",
    "rbd",
    "flexVolume",
    "cinder",
    "cephfs",
    "flocker",
    "fc",
    "azureFile",
    "vsphereVolume",
    "quobyte",
    "azureDisk",
    "photonPersistentDisk",
    "portworxVolume",
    "scaleIO",
    "storageos",
];

fn check(pod: &Pod<'_>) -> Outcome {
    let Some(Value::Array(volumes)) = pod.field("volumes") else {
        return None;
    };
    let mut names = Vec::new();
    let mut kinds = Vec::new();
    let mut paths = Vec::new();
    for (i, v) in volumes.iter().enumerate() {
        let has = |k: &str| present(v.get(k)).is_some();
        if ALLOWED.iter().any(|k| has(k)) {
            continue;
        }
        // No known source: defaulted to emptyDir.
        let Some(kind) = NAMED.iter().find(|k| has(k)) else {
            continue;
        };
        names.push(str_of(v.get("name")));
        kinds.push(kind.to_string());
        paths.push(pod.field_path("volumes").index(i).key(kind));
    }
    if names.is_empty() {
        return None;
    }
    let kinds = sorted_set(kinds);
    Some(Failure {
        message: format!(
            "restricted volume {} {} use {} {}",
            if names.len() == 1 {
                "source:"
            } else {
                "sources:"
            },
            quoted(&names),
            if kinds.len() == 1 { "type" } else { "types" },
            quoted(&kinds)
        ),
        paths,
    })
}
