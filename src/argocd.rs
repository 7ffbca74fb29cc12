//! Argo CD config-management plugin mode of the CLI (`kube-harden --argocd`): the policy comes from
//! the Application's plugin parameters (`ARGOCD_APP_PARAMETERS`, JSON) and plugin env
//! (`ARGOCD_ENV_KUBE_HARDEN_*`), since the CMP server runs `generate` with no other channel.

use std::path::PathBuf;

use anyhow::{bail, Context, Result};
use serde_json::{Map, Value};

use kube_harden::config::{self, PolicySpec};

/// Parameter names, in the spelling of the HardeningPolicy spec, with their env suffix.
const KEYS: &[(&str, &str)] = &[
    ("config", "CONFIG"),
    ("enable", "ENABLE"),
    ("disable", "DISABLE"),
    ("enforce", "ENFORCE"),
    ("runAsUser", "RUN_AS_USER"),
    ("runAsGroup", "RUN_AS_GROUP"),
    ("fsGroup", "FS_GROUP"),
    ("tmpSizeLimit", "TMP_SIZE_LIMIT"),
    ("writablePaths", "WRITABLE_PATHS"),
    ("unknownImages", "UNKNOWN_IMAGES"),
    ("verbosity", "VERBOSITY"),
];

/// The policy file used when none is named: `kube-harden.yaml` in the application directory.
pub const DEFAULT_POLICY_FILE: &str = "kube-harden.yaml";

/// Plugin env names are `ARGOCD_ENV_` + the name the Application gives, as written.
const ENV_PREFIX: &str = "ARGOCD_ENV_KUBE_HARDEN_";

/// What the Application asks for.
#[derive(Debug, Default)]
pub struct Settings {
    /// A policy file, relative to the application directory.
    pub config: Option<PathBuf>,
    /// Rules to switch on (applied like `--enable`).
    pub enable: Vec<String>,
    /// Rules to switch off (applied like `--disable`).
    pub disable: Vec<String>,
    /// Like `--enforce`.
    pub enforce: bool,
    /// The other spec settings, applied over the policy file.
    pub settings: Option<SpecOverlay>,
}

/// Spec settings given as parameters; only the keys named replace the policy file's values.
#[derive(Debug)]
pub struct SpecOverlay {
    keys: Vec<String>,
    spec: PolicySpec,
}

impl SpecOverlay {
    /// The base spec with the given keys replaced.
    pub fn overlay(&self, mut base: PolicySpec) -> PolicySpec {
        for key in &self.keys {
            match key.as_str() {
                "runAsUser" => base.run_as_user = self.spec.run_as_user,
                "runAsGroup" => base.run_as_group = self.spec.run_as_group,
                "fsGroup" => base.fs_group = self.spec.fs_group,
                "tmpSizeLimit" => base.tmp_size_limit = self.spec.tmp_size_limit.clone(),
                "writablePaths" => base.writable_paths = self.spec.writable_paths.clone(),
                "unknownImages" => base.unknown_images = self.spec.unknown_images,
                "verbosity" => base.verbosity = self.spec.verbosity,
                _ => {}
            }
        }
        base
    }
}

impl Settings {
    /// Reads the process environment the CMP server sets.
    pub fn from_env() -> Result<Self> {
        Self::from_vars(std::env::vars())
    }

    /// Reads settings from `(name, value)` pairs: env first, then the parameters, which win.
    pub fn from_vars(vars: impl IntoIterator<Item = (String, String)>) -> Result<Self> {
        let mut given: Map<String, Value> = Map::new();
        let mut parameters = None;
        for (name, value) in vars {
            if name == "ARGOCD_APP_PARAMETERS" {
                parameters = Some(value);
            } else if let Some(suffix) = name.strip_prefix(ENV_PREFIX) {
                let Some((key, _)) = KEYS.iter().find(|(_, env)| *env == suffix) else {
                    bail!(
                        "{name}: unknown setting; known: {}",
                        KEYS.iter()
                            .map(|(_, env)| format!("{ENV_PREFIX}{env}"))
                            .collect::<Vec<_>>()
                            .join(", ")
                    );
                };
                given.insert((*key).to_string(), Value::String(value));
            }
        }
        if let Some(json) = parameters.filter(|p| !p.trim().is_empty()) {
            for (key, value) in parameter_values(&json)? {
                given.insert(key, Value::String(value));
            }
        }
        let mut settings = Settings {
            config: given
                .remove("config")
                .and_then(|v| v.as_str().map(PathBuf::from))
                .filter(|p| !p.as_os_str().is_empty())
                .or_else(|| {
                    let default = PathBuf::from(DEFAULT_POLICY_FILE);
                    default.is_file().then_some(default)
                }),
            ..Settings::default()
        };
        if given.is_empty() {
            return Ok(settings);
        }
        let keys: Vec<String> = given.keys().cloned().collect();
        // The parameters are strings, exactly like a ConfigMap's data: the policy's own
        // ConfigMap reading gives them their types and names a bad value.
        let spec = config::spec_from_object(&serde_json::json!({
            "apiVersion": "v1",
            "kind": "ConfigMap",
            "data": given,
        }))
        .context("in the Argo CD plugin parameters")?;
        settings.enable = spec.enable.clone();
        settings.disable = spec.disable.clone();
        settings.enforce = spec.enforce;
        settings.settings = Some(SpecOverlay { keys, spec });
        Ok(settings)
    }
}

/// Our parameters from `ARGOCD_APP_PARAMETERS` (`[{"name": …, "string"|"array"|"map": …}]`) as
/// strings (arrays comma-joined); other parameters (for helm, say) are left to the script.
fn parameter_values(json: &str) -> Result<Vec<(String, String)>> {
    let list: Vec<Value> =
        serde_json::from_str(json).context("ARGOCD_APP_PARAMETERS is not a JSON list")?;
    let mut out = Vec::new();
    for p in &list {
        let Some(name) = p.get("name").and_then(Value::as_str) else {
            continue;
        };
        if !KEYS.iter().any(|(key, _)| *key == name) {
            continue;
        }
        let text = if let Some(s) = p.get("string").and_then(Value::as_str) {
            s.to_string()
        } else if let Some(items) = p.get("array").and_then(Value::as_array) {
            items
                .iter()
                .map(|i| {
                    i.as_str()
                        .map(str::to_string)
                        .unwrap_or_else(|| i.to_string())
                })
                .collect::<Vec<_>>()
                .join(",")
        } else if p.get("map").is_some() {
            bail!("parameter `{name}`: a map is not accepted; give a string or an array");
        } else {
            String::new()
        };
        out.push((name.to_string(), text));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vars(list: &[(&str, &str)]) -> Vec<(String, String)> {
        list.iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn parameters_win_over_env_and_map_onto_the_policy() {
        let s = Settings::from_vars(vars(&[
            ("ARGOCD_ENV_KUBE_HARDEN_RUN_AS_USER", "1000"),
            ("ARGOCD_ENV_KUBE_HARDEN_DISABLE", "seccomp"),
            (
                "ARGOCD_APP_PARAMETERS",
                r#"[{"name":"runAsUser","string":"2000"},{"name":"disable","array":["writable-tmp","read-only-root-filesystem"]},{"name":"values-files","array":["a.yaml"]},{"name":"config","string":"policy.yaml"}]"#,
            ),
        ]))
        .unwrap();
        assert_eq!(s.config, Some(PathBuf::from("policy.yaml")));
        assert_eq!(s.disable, ["writable-tmp", "read-only-root-filesystem"]);
        let spec = s.settings.unwrap().overlay(PolicySpec {
            run_as_group: Some(7),
            ..PolicySpec::default()
        });
        assert_eq!(spec.run_as_user, Some(2000));
        assert_eq!(spec.run_as_group, Some(7));
    }

    #[test]
    fn verbosity_is_a_parameter() {
        let s = Settings::from_vars(vars(&[
            ("ARGOCD_ENV_KUBE_HARDEN_VERBOSITY", "all"),
            (
                "ARGOCD_APP_PARAMETERS",
                r#"[{"name":"verbosity","string":"changes"}]"#,
            ),
        ]))
        .unwrap();
        let spec = s.settings.unwrap().overlay(PolicySpec::default());
        assert_eq!(spec.verbosity, Some(config::Verbosity::Changes));
        let err =
            Settings::from_vars(vars(&[("ARGOCD_ENV_KUBE_HARDEN_VERBOSITY", "loud")])).unwrap_err();
        assert!(format!("{err:#}").contains("verbosity"), "{err:#}");
    }

    #[test]
    fn bad_values_and_unknown_env_names_are_errors() {
        let err = Settings::from_vars(vars(&[("ARGOCD_ENV_KUBE_HARDEN_RUN_AS_USER", "root")]))
            .unwrap_err();
        assert!(format!("{err:#}").contains("runAsUser"), "{err:#}");
        let err =
            Settings::from_vars(vars(&[("ARGOCD_ENV_KUBE_HARDEN_DISABEL", "x")])).unwrap_err();
        assert!(err.to_string().contains("DISABEL"), "{err}");
        let err = Settings::from_vars(vars(&[(
            "ARGOCD_APP_PARAMETERS",
            r#"[{"name":"disable","map":{"a":"b"}}]"#,
        )]))
        .unwrap_err();
        assert!(err.to_string().contains("disable"), "{err}");
    }
}
