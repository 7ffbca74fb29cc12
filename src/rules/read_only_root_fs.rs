//! `read-only-root-filesystem`: containers cannot write to their image's filesystem.

use serde_json::{json, Value};

use super::writable_tmp::{self, WritePlan};
use super::{skip_windows, Rule};
use crate::change::Findings;
use crate::config::Policy;
use crate::model::workload::PodView;

const ID: &str = "read-only-root-filesystem";

/// Adds `readOnlyRootFilesystem: true`; writable-tmp then gives such containers a writable /tmp.
pub struct ReadOnlyRootFilesystem;

impl Rule for ReadOnlyRootFilesystem {
    fn id(&self) -> &'static str {
        ID
    }

    fn summary(&self) -> &'static str {
        "containers get a read-only root filesystem (readOnlyRootFilesystem: true)"
    }

    fn docs(&self) -> &'static str {
        include_str!("../../docs/rules/read-only-root-filesystem.md")
    }

    fn check(&self, pod: &PodView<'_>, policy: &Policy, out: &mut Findings) {
        if pod.skips(ID) || skip_windows(ID, pod, out) {
            return;
        }
        for c in pod.containers.iter().filter(|c| !c.skips(ID)) {
            match c.security_context("readOnlyRootFilesystem") {
                Some(Value::Bool(true)) => {}
                Some(v) => out.info(
                    ID,
                    Some(c.sc_path("readOnlyRootFilesystem")),
                    format!(
                        "container {:?} keeps readOnlyRootFilesystem: {v} as set",
                        c.name
                    ),
                ),
                None if c.privileged() => out.info(
                    ID,
                    Some(c.path.clone()),
                    format!(
                        "privileged container {:?}: root filesystem left writable",
                        c.name
                    ),
                ),
                None => match writable_tmp::plan(c, pod, policy) {
                    WritePlan::Cover(_) => out.add(
                        ID,
                        c.sc_path("readOnlyRootFilesystem"),
                        json!(true),
                        format!("container {:?} gets a read-only root filesystem", c.name),
                    ),
                    WritePlan::Unsafe(why) => out.withheld(
                        ID,
                        c.sc_path("readOnlyRootFilesystem"),
                        json!(true),
                        format!(
                            "container {:?}: root filesystem left writable, {why}",
                            c.name
                        ),
                    ),
                },
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rules::testing::{changes, findings, pod, policy, run};
    use serde_json::json;

    #[test]
    fn read_only_only_where_the_image_is_known_or_trusted() {
        let non_root = pod(json!({}), json!({"runAsUser": 1000}));
        let out = run(&ReadOnlyRootFilesystem, &non_root, &policy(json!({})));
        assert!(out.changes.is_empty());
        assert!(
            findings(&out)[0].contains(
                "root filesystem left writable, nothing is known about image \"nginx:1.27\""
            ),
            "{:?}",
            findings(&out)
        );
        let out = run(
            &ReadOnlyRootFilesystem,
            &non_root,
            &policy(json!({"unknownImages": "harden"})),
        );
        assert_eq!(
            changes(&out),
            ["spec.containers[0].securityContext.readOnlyRootFilesystem = true"]
        );
        let explicit = pod(
            json!({}),
            json!({"runAsUser": 1000, "readOnlyRootFilesystem": false}),
        );
        let out = run(
            &ReadOnlyRootFilesystem,
            &explicit,
            &policy(json!({"unknownImages": "harden"})),
        );
        assert!(out.changes.is_empty());
        assert_eq!(
            findings(&out),
            ["info: container \"app\" keeps readOnlyRootFilesystem: false as set"]
        );
    }
}
