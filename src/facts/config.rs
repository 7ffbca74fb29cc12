//! Facts from an image's config blob (the OCI image config, or Docker's, which adds
//! `Healthcheck`): `User`, `ExposedPorts`, `Volumes`, `Healthcheck`, `WorkingDir`, `Entrypoint`,
//! `Cmd` and the `PATH` of `Env`. Pure: builds for WASM too.

use serde_json::Value;

use super::{Healthcheck, ImageFacts};

/// Docker stores healthcheck durations in nanoseconds.
const NANOS_PER_SECOND: u64 = 1_000_000_000;

/// The config part of an image's facts. `platform` is recorded as given (`os/arch[/variant]`).
/// Fields the config does not have are recorded as what the runtime then does (no `User`: `""`,
/// root; no `Volumes`: none), so a config that was read leaves nothing unknown.
pub fn from_config(config: &Value, platform: Option<String>) -> ImageFacts {
    let c = config.get("config").unwrap_or(&Value::Null);
    let strings = |v: Option<&Value>| -> Option<Vec<String>> {
        v.and_then(Value::as_array).map(|a| {
            a.iter()
                .filter_map(|s| s.as_str().map(str::to_string))
                .collect()
        })
    };
    let keys = |v: Option<&Value>| -> Vec<String> {
        let mut out: Vec<String> = v
            .and_then(Value::as_object)
            .map(|m| m.keys().cloned().collect())
            .unwrap_or_default();
        out.sort();
        out
    };
    let path = c
        .get("Env")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
        .filter_map(|e| e.strip_prefix("PATH="))
        .next_back()
        .map(str::to_string);
    ImageFacts {
        platform,
        user: Some(
            c.get("User")
                .and_then(Value::as_str)
                .unwrap_or("")
                .to_string(),
        ),
        exposed_ports: Some(keys(c.get("ExposedPorts"))),
        volumes: Some(keys(c.get("Volumes"))),
        healthcheck: healthcheck(c.get("Healthcheck")),
        working_dir: Some(
            c.get("WorkingDir")
                .and_then(Value::as_str)
                .unwrap_or("")
                .to_string(),
        ),
        entrypoint: Some(strings(c.get("Entrypoint")).unwrap_or_default()),
        cmd: Some(strings(c.get("Cmd")).unwrap_or_default()),
        path,
        ..ImageFacts::default()
    }
}

fn healthcheck(v: Option<&Value>) -> Option<Healthcheck> {
    let v = v?;
    let test: Vec<String> = v
        .get("Test")
        .and_then(Value::as_array)?
        .iter()
        .filter_map(|s| s.as_str().map(str::to_string))
        .collect();
    // `["NONE"]` disables a healthcheck inherited from the base image; `[]` inherits (nothing
    // to inherit from in a config that was read whole).
    if test.is_empty() || test[0] == "NONE" {
        return None;
    }
    let seconds = |key: &str| -> Option<u64> {
        v.get(key)
            .and_then(Value::as_u64)
            .filter(|n| *n > 0)
            .map(|n| n.div_ceil(NANOS_PER_SECOND))
    };
    Some(Healthcheck {
        test,
        interval_seconds: seconds("Interval"),
        timeout_seconds: seconds("Timeout"),
        start_period_seconds: seconds("StartPeriod"),
        retries: v.get("Retries").and_then(Value::as_u64).filter(|n| *n > 0),
    })
}

/// The platform a config describes, as `os/arch[/variant]`.
pub fn platform_of(config: &Value) -> Option<String> {
    let os = config.get("os").and_then(Value::as_str)?;
    let arch = config.get("architecture").and_then(Value::as_str)?;
    Some(match config.get("variant").and_then(Value::as_str) {
        Some(v) => format!("{os}/{arch}/{v}"),
        None => format!("{os}/{arch}"),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn docker_config_with_healthcheck() {
        let config = json!({
            "architecture": "amd64", "os": "linux",
            "config": {
                "User": "memcache",
                "ExposedPorts": {"11211/tcp": {}},
                "Env": ["PATH=/usr/local/sbin:/usr/bin", "X=1"],
                "Entrypoint": ["docker-entrypoint.sh"],
                "Cmd": ["memcached"],
                "Volumes": {"/data": {}, "/cache": {}},
                "WorkingDir": "/srv",
                "Healthcheck": {"Test": ["CMD", "curl", "-f", "http://localhost/"],
                    "Interval": 30_000_000_000u64, "Timeout": 1_500_000_000u64,
                    "StartPeriod": 5_000_000_000u64, "Retries": 4}
            }
        });
        let f = from_config(&config, platform_of(&config));
        assert_eq!(f.platform.as_deref(), Some("linux/amd64"));
        assert_eq!(f.user.as_deref(), Some("memcache"));
        assert_eq!(f.exposed_ports, Some(vec!["11211/tcp".to_string()]));
        assert_eq!(
            f.volumes,
            Some(vec!["/cache".to_string(), "/data".to_string()])
        );
        assert_eq!(f.path.as_deref(), Some("/usr/local/sbin:/usr/bin"));
        let h = f.healthcheck.unwrap();
        assert_eq!(h.test, ["CMD", "curl", "-f", "http://localhost/"]);
        assert_eq!(h.interval_seconds, Some(30));
        assert_eq!(h.timeout_seconds, Some(2), "rounded up, never shorter");
        assert_eq!(h.start_period_seconds, Some(5));
        assert_eq!(h.retries, Some(4));
    }

    #[test]
    fn empty_config_means_root_and_nothing_declared() {
        let f = from_config(&json!({"os": "linux", "architecture": "arm64"}), None);
        assert_eq!(f.user.as_deref(), Some(""));
        assert_eq!(f.exposed_ports, Some(vec![]));
        assert_eq!(f.volumes, Some(vec![]));
        assert_eq!(f.entrypoint, Some(vec![]));
        assert_eq!(f.healthcheck, None);
        let none = json!({"config": {"Healthcheck": {"Test": ["NONE"]}}});
        assert_eq!(from_config(&none, None).healthcheck, None);
    }
}
