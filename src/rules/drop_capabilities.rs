//! `drop-capabilities`: containers drop every Linux capability they do not explicitly add back.

use serde_json::{json, Value};

use super::{skip_windows, Rule};
use crate::change::Findings;
use crate::config::Policy;
use crate::model::workload::PodView;

const ID: &str = "drop-capabilities";

/// Adds `capabilities.drop: [ALL]` where no drop list is set.
pub struct DropCapabilities;

impl Rule for DropCapabilities {
    fn id(&self) -> &'static str {
        ID
    }

    fn summary(&self) -> &'static str {
        "containers drop all Linux capabilities (capabilities.drop: [ALL]); explicit add lists stay"
    }

    fn docs(&self) -> &'static str {
        include_str!("../../docs/rules/drop-capabilities.md")
    }

    fn check(&self, pod: &PodView<'_>, policy: &Policy, out: &mut Findings) {
        if pod.skips(ID) || skip_windows(ID, pod, out) {
            return;
        }
        for c in pod.containers.iter().filter(|c| !c.skips(ID)) {
            if c.privileged() {
                out.info(
                    ID,
                    Some(c.path.clone()),
                    format!(
                        "privileged container {:?}: capabilities left as they are",
                        c.name
                    ),
                );
                continue;
            }
            let extra: Vec<String> = c
                .added_capabilities()
                .into_iter()
                .filter(|cap| cap != "NET_BIND_SERVICE")
                .collect();
            if !extra.is_empty() {
                out.warn(ID, c.path.key("securityContext").keys("capabilities.add"), json!(c.added_capabilities()), None,
                    format!("container {:?} adds {}; Pod Security restricted allows only NET_BIND_SERVICE", c.name, extra.join(", ")));
            }
            let drop_path = c.path.key("securityContext").keys("capabilities.drop");
            match drop_path.get(pod.object).filter(|v| !v.is_null()) {
                None => out.add(
                    ID,
                    drop_path,
                    json!(["ALL"]),
                    format!("container {:?} drops all capabilities", c.name),
                ),
                Some(Value::Array(list)) if list.iter().any(|v| v.as_str() == Some("ALL")) => {}
                Some(current) => {
                    if policy.spec.enforce && current.is_array() {
                        out.append(
                            ID,
                            drop_path,
                            json!("ALL"),
                            format!("enforce: container {:?} drops ALL capabilities", c.name),
                        );
                    } else {
                        out.warn(ID, drop_path, current.clone(), Some(json!(["ALL"])),
                            format!("container {:?} drops only some capabilities; Pod Security restricted requires ALL", c.name));
                    }
                }
            }
        }
    }
}
