//! Argo CD config-management plugin mode of the CLI (`kube-harden --argocd`): the policy comes from
//! the Application's plugin parameters (`ARGOCD_APP_PARAMETERS`, JSON) and plugin env
//! (`ARGOCD_ENV_KUBE_HARDEN_*`), since the CMP server runs `generate` with no other channel.

use std::path::PathBuf;

use anyhow::{bail, Context, Result};
use serde_json::{Map, Value};

use kube_harden::config::PolicySpec;
use kube_harden::policy;

/// The parameter that names a policy file (not a spec key).
const CONFIG: &str = "config";

/// Parameter names: `config` and every spec key whose value is plain (a string, number, boolean
/// or list of strings: what an Application's `string` and `array` parameters carry), in the
/// spelling of the HardeningPolicy spec, generated from the policy schema. Mappings
/// (`probes`, `images`, …) come from the policy file.
fn keys() -> Vec<String> {
    std::iter::once(CONFIG.to_string())
        .chain(
            policy::spec_keys()
                .into_iter()
                .filter(|k| k.form.is_plain())
                .map(|k| k.name),
        )
        .collect()
}

/// Keys applied like `--enable`, `--disable` and `--enforce`.
const SWITCHES: [&str; 3] = ["enable", "disable", "enforce"];

/// The env suffix of a parameter: `runAsUser` → `RUN_AS_USER`.
fn env_suffix(key: &str) -> String {
    let mut out = String::new();
    for c in key.chars() {
        if c.is_ascii_uppercase() && !out.is_empty() {
            out.push('_');
        }
        out.push(c.to_ascii_uppercase());
    }
    out
}

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
    pub fn overlay(&self, base: PolicySpec) -> Result<PolicySpec> {
        base.with_keys_from(&self.spec, &self.keys)
            .context("in the Argo CD plugin parameters")
    }
}

impl Settings {
    /// Reads the process environment the CMP server sets.
    pub fn from_env() -> Result<Self> {
        Self::from_vars(std::env::vars())
    }

    /// Reads settings from `(name, value)` pairs: env first, then the parameters, which win.
    pub fn from_vars(vars: impl IntoIterator<Item = (String, String)>) -> Result<Self> {
        let keys = keys();
        let mut given: Map<String, Value> = Map::new();
        let mut parameters = None;
        for (name, value) in vars {
            if name == "ARGOCD_APP_PARAMETERS" {
                parameters = Some(value);
            } else if let Some(suffix) = name.strip_prefix(ENV_PREFIX) {
                let Some(key) = keys.iter().find(|k| env_suffix(k) == suffix) else {
                    bail!(
                        "{name}: unknown setting; known: {}",
                        keys.iter()
                            .map(|k| format!("{ENV_PREFIX}{}", env_suffix(k)))
                            .collect::<Vec<_>>()
                            .join(", ")
                    );
                };
                given.insert(key.clone(), Value::String(value));
            }
        }
        if let Some(json) = parameters.filter(|p| !p.trim().is_empty()) {
            for (key, value) in parameter_values(&json, &keys)? {
                given.insert(key, Value::String(value));
            }
        }
        let mut settings = Settings {
            config: given
                .remove(CONFIG)
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
        // enable, disable and enforce apply like the command-line switches, on top of the policy
        // file's own; every other key replaces the file's value.
        let keys: Vec<String> = given
            .keys()
            .filter(|k| !SWITCHES.contains(&k.as_str()))
            .cloned()
            .collect();
        // The parameters are strings, exactly like a ConfigMap's data: the policy's own
        // ConfigMap reading gives them their types and names a bad value.
        let spec = policy::spec_from_object(&serde_json::json!({
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
fn parameter_values(json: &str, keys: &[String]) -> Result<Vec<(String, String)>> {
    let list: Vec<Value> =
        serde_json::from_str(json).context("ARGOCD_APP_PARAMETERS is not a JSON list")?;
    let mut out = Vec::new();
    for p in &list {
        let Some(name) = p.get("name").and_then(Value::as_str) else {
            continue;
        };
        if !keys.iter().any(|key| key == name) {
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
    use kube_harden::rules::run_as_non_root;

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
        let base = policy::spec_from_value(serde_json::json!({"runAsGroup": 7})).unwrap();
        let spec = s.settings.unwrap().overlay(base).unwrap();
        let user = spec.settings::<run_as_non_root::Settings>();
        assert_eq!(user.run_as_user, Some(2000));
        assert_eq!(user.run_as_group, Some(7));
    }

    #[test]
    fn parameter_and_env_names_come_from_the_schema() {
        let names: Vec<(String, String)> = keys()
            .into_iter()
            .map(|k| {
                let env = env_suffix(&k);
                (k, env)
            })
            .collect();
        let expected = [
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
        assert_eq!(names, expected.map(|(k, e)| (k.to_string(), e.to_string())));
    }

    /// argocd/plugin.yaml announces the parameters to Argo CD's UI (in its own order): exactly
    /// ours, plus the script's own Helm parameters.
    #[test]
    fn plugin_yaml_announces_every_parameter() {
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("argocd/plugin.yaml");
        let text = std::fs::read_to_string(path).unwrap();
        let doc = kube_harden::yaml::tree::parse_document(&text).unwrap();
        let plugin = doc.root.map(|r| r.to_value()).unwrap();
        let mut announced: Vec<&str> = plugin["spec"]["parameters"]["static"]
            .as_array()
            .unwrap()
            .iter()
            .filter_map(|p| p["name"].as_str())
            .filter(|n| !["values-files", "helm-set"].contains(n))
            .collect();
        announced.sort_unstable();
        let mut ours = keys();
        ours.sort_unstable();
        assert_eq!(announced, ours, "argocd/plugin.yaml's parameters.static");
    }

    #[test]
    fn switches_add_to_the_files_and_settings_replace_its_values() {
        let s = Settings::from_vars(vars(&[
            ("ARGOCD_ENV_KUBE_HARDEN_ENABLE", "seccomp"),
            ("ARGOCD_ENV_KUBE_HARDEN_TMP_SIZE_LIMIT", "1Gi"),
        ]))
        .unwrap();
        assert_eq!(s.enable, ["seccomp"]);
        let base = policy::spec_from_value(serde_json::json!({
            "enable": ["default-probes"], "writablePaths": ["/run"], "tmpSizeLimit": "8Mi"}))
        .unwrap();
        let spec = s.settings.unwrap().overlay(base).unwrap();
        assert_eq!(spec.enable, ["default-probes"]);
        let tmp = spec.settings::<kube_harden::rules::writable_tmp::Settings>();
        assert_eq!(tmp.size_limit(), "1Gi");
        assert_eq!(tmp.writable_paths, ["/run"]);
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
        let spec = s.settings.unwrap().overlay(PolicySpec::default()).unwrap();
        assert_eq!(
            spec.verbosity,
            Some(kube_harden::config::Verbosity::Changes)
        );
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
