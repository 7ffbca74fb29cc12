//! `default-probes`: long-running containers get readiness, liveness and startup probes on a
//! port they declare, where they have none, so a dead process is restarted and an unready one
//! gets no traffic, while a slow first boot is not mistaken for either.

use schemars::JsonSchema;
use serde::Deserialize;
use serde_json::{Map, Value};

use super::evidence::Evidence;
use super::{Rule, RuleSettings, SettingsDescriptor};
use crate::change::Findings;
use crate::config::Policy;
use crate::error::Error;
use crate::facts::Healthcheck;
use crate::model::path::{Field, Pointer};
use crate::model::workload::{is_long_running, Container, ContainerGroup, PodView};

const ID: &str = "default-probes";
/// Prefix of the annotation that gives one container's probes an HTTP path.
pub const PROBE_PATH_PREFIX: &str = "kube-harden.dev/probe-path.";

/// Settings of default-probes (spec key `probes`).
#[derive(Debug, Clone, Default, Deserialize, JsonSchema, PartialEq, Eq)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct Settings {
    /// Timings and HTTP paths of the probes default-probes adds.
    #[serde(default)]
    pub probes: ProbeSettings,
}

/// Settings of default-probes.
#[derive(Debug, Clone, Default, Deserialize, JsonSchema, PartialEq, Eq)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct ProbeSettings {
    /// Readiness probe timings (default: period 10 s, timeout 3 s, failureThreshold 3).
    #[serde(default)]
    pub readiness: ProbeTiming,
    /// Liveness probe timings (default: period 20 s, timeout 5 s, failureThreshold 6), more
    /// tolerant than readiness because a failed liveness probe restarts the container.
    #[serde(default)]
    pub liveness: ProbeTiming,
    /// Startup probe timings (default: period 10 s, timeout 5 s, failureThreshold 30: five
    /// minutes of first-boot grace before liveness takes over).
    #[serde(default)]
    pub startup: ProbeTiming,
    /// HTTP paths for probes: a matching container gets `httpGet` on this path instead of
    /// `tcpSocket`. The first matching entry wins; the annotation
    /// `kube-harden.dev/probe-path.<container>` on the workload or pod template wins over all.
    #[serde(default)]
    pub http_paths: Vec<ProbeHttpPath>,
}

/// Probe timings; unset fields take the probe's default.
#[derive(Debug, Clone, Default, Deserialize, JsonSchema, PartialEq, Eq)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct ProbeTiming {
    /// `initialDelaySeconds` (default: not set, the startup probe covers slow starts).
    #[serde(default)]
    pub initial_delay_seconds: Option<i64>,
    /// `periodSeconds`.
    #[serde(default)]
    pub period_seconds: Option<i64>,
    /// `timeoutSeconds`.
    #[serde(default)]
    pub timeout_seconds: Option<i64>,
    /// `failureThreshold`.
    #[serde(default)]
    pub failure_threshold: Option<i64>,
}

/// An HTTP path for the probes of matching containers; unset selectors match everything.
#[derive(Debug, Clone, Default, Deserialize, JsonSchema, PartialEq, Eq)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct ProbeHttpPath {
    /// Workload kind, e.g. `Deployment`.
    #[serde(default)]
    pub kind: Option<String>,
    /// Workload name (`metadata.name`).
    #[serde(default)]
    pub name: Option<String>,
    /// Workload namespace.
    #[serde(default)]
    pub namespace: Option<String>,
    /// Container name.
    #[serde(default)]
    pub container: Option<String>,
    /// The path, e.g. `/healthz`.
    pub path: String,
}

impl RuleSettings for Settings {
    fn validate(&self) -> Result<Self, Error> {
        let probes = &self.probes;
        for (name, t) in [
            ("readiness", &probes.readiness),
            ("liveness", &probes.liveness),
            ("startup", &probes.startup),
        ] {
            for (key, value, min) in [
                ("initialDelaySeconds", t.initial_delay_seconds, 0),
                ("periodSeconds", t.period_seconds, 1),
                ("timeoutSeconds", t.timeout_seconds, 1),
                ("failureThreshold", t.failure_threshold, 1),
            ] {
                if let Some(v) = value {
                    if v < min {
                        return Err(Error::Config(format!(
                            "spec.probes.{name}.{key}: must be at least {min}, got {v}"
                        )));
                    }
                }
            }
        }
        for (i, p) in probes.http_paths.iter().enumerate() {
            if !p.path.starts_with('/') {
                return Err(Error::Config(format!(
                    "spec.probes.httpPaths[{i}].path: `{}` must start with /",
                    p.path
                )));
            }
        }
        Ok(self.clone())
    }
}

/// The defaults, and why: readiness reacts within ~30 s; liveness waits two minutes of failures
/// before a restart (a restart is destructive and fixes nothing that a slow dependency causes);
/// startup allows five minutes of first boot (migrations, JIT warm-up, cache loads) before
/// liveness takes over.
const READINESS: Timing = Timing {
    period: 10,
    timeout: 3,
    failures: 3,
};
const LIVENESS: Timing = Timing {
    period: 20,
    timeout: 5,
    failures: 6,
};
const STARTUP: Timing = Timing {
    period: 10,
    timeout: 5,
    failures: 30,
};

struct Timing {
    period: i64,
    timeout: i64,
    failures: i64,
}

/// Adds tcpSocket (or httpGet) probes on a declared port.
pub struct DefaultProbes;

/// The port a probe targets: a name when the port has one, else its number.
struct Target {
    port: Value,
    https: bool,
}

/// Picks the probe port: the first port named `http`, `http-*`, `https` or `https-*`, else the
/// first TCP port. `Err` says why there is none.
fn target(container: &Container<'_>) -> Result<Target, &'static str> {
    let ports: Vec<&Value> = container
        .value
        .field("ports")
        .and_then(Value::as_array)
        .map(|p| p.iter().collect())
        .unwrap_or_default();
    if ports.is_empty() {
        return Err("declares no port");
    }
    let tcp: Vec<&Value> = ports
        .iter()
        .copied()
        .filter(|p| {
            p.field("containerPort").is_some_and(|n| n.is_u64())
                && matches!(
                    p.field("protocol").and_then(Value::as_str),
                    None | Some("TCP")
                )
        })
        .collect();
    let name = |p: &Value| p.field("name").and_then(Value::as_str).map(str::to_string);
    let web =
        |n: &str| n == "http" || n == "https" || n.starts_with("http-") || n.starts_with("https-");
    let chosen = tcp
        .iter()
        .find(|p| name(p).is_some_and(|n| web(&n)))
        .or_else(|| tcp.first())
        .ok_or("declares no TCP port")?;
    Ok(match name(chosen).filter(|n| !n.is_empty()) {
        Some(n) => Target {
            https: n == "https" || n.starts_with("https-"),
            port: Value::String(n),
        },
        None => Target {
            port: chosen["containerPort"].clone(),
            https: false,
        },
    })
}

/// The HTTP path for a container: its annotation, else the policy's first matching entry.
fn http_path(pod: &PodView<'_>, container: &str, policy: &Policy) -> Option<String> {
    if let Some(p) = pod.annotation(&format!("{PROBE_PATH_PREFIX}{container}")) {
        return Some(p.to_string());
    }
    let (_, kind) = pod.kind();
    let meta = |k: &str| {
        pod.object
            .at(&format!("/metadata/{k}"))
            .and_then(Value::as_str)
    };
    let matches =
        |want: &Option<String>, have: Option<&str>| want.as_deref().is_none_or(|w| Some(w) == have);
    policy
        .settings::<Settings>()
        .probes
        .http_paths
        .iter()
        .find(|e| {
            matches(&e.kind, Some(kind))
                && matches(&e.name, meta("name"))
                && matches(&e.namespace, meta("namespace"))
                && matches(&e.container, Some(container))
        })
        .map(|e| e.path.clone())
}

/// The exec handler for a HEALTHCHECK: `CMD` runs its arguments, `CMD-SHELL` runs them through
/// `/bin/sh -c` as Docker does.
fn exec_handler(hc: &Healthcheck) -> Option<(String, Value)> {
    let (kind, rest) = hc.test.split_first()?;
    let command: Vec<Value> = match kind.as_str() {
        "CMD" if !rest.is_empty() => rest.iter().map(|a| Value::String(a.clone())).collect(),
        "CMD-SHELL" if rest.len() == 1 => ["/bin/sh", "-c", rest[0].as_str()]
            .into_iter()
            .map(|a| Value::String(a.to_string()))
            .collect(),
        _ => return None,
    };
    let mut exec = Map::new();
    exec.insert("command".into(), Value::Array(command));
    Some(("exec".to_string(), Value::Object(exec)))
}

/// Probe timings from a HEALTHCHECK (Docker's defaults: interval 30 s, timeout 30 s, 3 retries):
/// readiness and liveness check every interval and fail after `retries`; the startup probe
/// covers the start period (`None`: no start period, the rule's own startup timing applies).
fn image_timing(hc: &Healthcheck, startup: bool) -> Option<Timing> {
    let interval = hc.interval_seconds.filter(|&s| s > 0).unwrap_or(30);
    let timeout = hc.timeout_seconds.filter(|&s| s > 0).unwrap_or(30);
    let retries = hc.retries.filter(|&r| r > 0).unwrap_or(3);
    let clamp = |n: u64| i64::try_from(n).unwrap_or(i64::MAX).max(1);
    if startup {
        let start = hc.start_period_seconds.filter(|&s| s > 0)?;
        return Some(Timing {
            period: clamp(interval),
            timeout: clamp(timeout),
            failures: clamp(start.div_ceil(interval) + retries),
        });
    }
    Some(Timing {
        period: clamp(interval),
        timeout: clamp(timeout),
        failures: clamp(retries),
    })
}

fn probe(handler: &(String, Value), timing: &ProbeTiming, defaults: &Timing) -> Value {
    let mut m = Map::new();
    m.insert(handler.0.clone(), handler.1.clone());
    if let Some(d) = timing.initial_delay_seconds {
        m.insert("initialDelaySeconds".into(), d.into());
    }
    m.insert(
        "periodSeconds".into(),
        timing.period_seconds.unwrap_or(defaults.period).into(),
    );
    m.insert(
        "timeoutSeconds".into(),
        timing.timeout_seconds.unwrap_or(defaults.timeout).into(),
    );
    m.insert(
        "failureThreshold".into(),
        timing.failure_threshold.unwrap_or(defaults.failures).into(),
    );
    Value::Object(m)
}

impl Rule for DefaultProbes {
    fn id(&self) -> &'static str {
        ID
    }

    fn summary(&self) -> &'static str {
        "long-running containers get readiness, liveness and startup probes on a declared port, where absent"
    }

    fn docs(&self) -> &'static str {
        include_str!("../../docs/rules/default-probes.md")
    }

    fn settings(&self) -> Option<SettingsDescriptor> {
        Some(SettingsDescriptor::of::<Settings>())
    }

    fn check(&self, pod: &PodView<'_>, policy: &Policy, out: &mut Findings) {
        let (api_version, kind) = pod.kind();
        if pod.skips(ID) || !is_long_running(api_version, kind, policy) {
            return;
        }
        let settings = &policy.settings::<Settings>().probes;
        for c in &pod.containers {
            // The API forbids probes on ephemeral containers and on init containers other than
            // native sidecars (which run for the pod's lifetime).
            let eligible = match c.group {
                ContainerGroup::Main => true,
                ContainerGroup::Init => c.sidecar,
                ContainerGroup::Ephemeral => false,
            };
            if !eligible || c.skips(ID) {
                continue;
            }
            let missing: Vec<(&str, &ProbeTiming, &Timing)> = [
                ("readinessProbe", &settings.readiness, &READINESS),
                ("livenessProbe", &settings.liveness, &LIVENESS),
                ("startupProbe", &settings.startup, &STARTUP),
            ]
            .into_iter()
            .filter(|(field, _, _)| c.value.get(*field).is_none_or(Value::is_null))
            .collect();
            if missing.is_empty() {
                continue;
            }
            let ev = Evidence::of(c, pod, policy, None);
            let facts = ev.facts.as_deref();
            let path = http_path(pod, &c.name, policy);
            let healthcheck = facts
                .and_then(|f| f.healthcheck.as_ref())
                .and_then(|h| exec_handler(h).map(|handler| (h, handler)));
            if let (None, Some((hc, handler))) = (&path, healthcheck) {
                for (field, timing, defaults) in missing {
                    let from_image = image_timing(hc, field == "startupProbe");
                    let defaults = from_image.as_ref().unwrap_or(defaults);
                    out.add(
                        ID,
                        c.path.key(field),
                        probe(&handler, timing, defaults),
                        format!(
                            "container {:?} gets an exec {field} from its image's HEALTHCHECK",
                            c.name
                        ),
                    );
                }
                continue;
            }
            let declared = target(c);
            let exposed = facts.and_then(|f| f.tcp_ports().first().copied());
            let target = match (declared, exposed) {
                (Ok(t), _) => t,
                (Err(_), Some(port)) => Target {
                    port: Value::from(port),
                    https: false,
                },
                (Err(why), None) => {
                    out.info(
                        ID,
                        Some(c.path.clone()),
                        format!(
                            "container {:?} {why}: no probe added (declare its TCP port or write probes)",
                            c.name
                        ),
                    );
                    continue;
                }
            };
            let handler = match path {
                Some(path) => {
                    let mut get = Map::new();
                    get.insert("path".into(), Value::String(path));
                    get.insert("port".into(), target.port.clone());
                    if target.https {
                        get.insert("scheme".into(), Value::String("HTTPS".into()));
                    }
                    ("httpGet".to_string(), Value::Object(get))
                }
                None => {
                    let mut tcp = Map::new();
                    tcp.insert("port".into(), target.port.clone());
                    ("tcpSocket".to_string(), Value::Object(tcp))
                }
            };
            for (field, timing, defaults) in missing {
                out.add(
                    ID,
                    c.path.key(field),
                    probe(&handler, timing, defaults),
                    format!(
                        "container {:?} gets a {} {field} on port {}",
                        c.name,
                        handler.0,
                        match &target.port {
                            Value::String(s) => s.clone(),
                            other => other.to_string(),
                        }
                    ),
                );
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::policy::spec_from_object;
    use crate::rules::testing::try_policy as policy;
    use serde_json::json;

    #[test]
    fn probe_settings_are_validated() {
        for (probes, needle) in [
            (
                json!({"startup": {"failureThreshold": 0}}),
                "spec.probes.startup.failureThreshold",
            ),
            (
                json!({"readiness": {"initialDelaySeconds": -1}}),
                "at least 0",
            ),
            (
                json!({"httpPaths": [{"path": "healthz"}]}),
                "must start with /",
            ),
            (json!({"liveness": {"period": 3}}), "period"),
            (
                json!({"readiness": []}),
                "spec.probes.readiness: expected a mapping",
            ),
        ] {
            let err = policy(json!({ "probes": probes })).unwrap_err().to_string();
            assert!(err.contains(needle), "{probes}: {err}");
        }
    }

    #[test]
    fn timings_fill_in_the_defaults() {
        let p = policy(json!({"probes": {"readiness": {"periodSeconds": 5}}})).unwrap();
        let timing = &p.settings::<Settings>().probes.readiness;
        let handler = ("tcpSocket".to_string(), json!({"port": 80}));
        assert_eq!(
            probe(&handler, timing, &READINESS),
            json!({"tcpSocket": {"port": 80}, "periodSeconds": 5, "timeoutSeconds": 3,
                "failureThreshold": 3})
        );
        let from_map = spec_from_object(&json!({"apiVersion": "v1", "kind": "ConfigMap",
            "data": {"probes": "{startup: {failureThreshold: 60}}"}}))
        .unwrap();
        assert_eq!(
            from_map
                .settings::<Settings>()
                .probes
                .startup
                .failure_threshold,
            Some(60)
        );
    }
}
