//! The `HardeningPolicy` (kube-harden.dev/v1alpha1): one schema for the KRM functionConfig,
//! `--config FILE`, and a ConfigMap whose `data` holds the same settings as strings.

use schemars::JsonSchema;
use serde::Deserialize;
use serde_json::{Map, Value};

use std::sync::Arc;

use crate::digest::{DigestSource, ImageLock, ImageRef, LockEntry, LockSource, Platform};
use crate::error::Error;
use crate::facts::ImageFacts;
use crate::rules::{self, settings::SettingsSet, RuleSettings};

/// API version of the policy kind.
pub const API_VERSION: &str = "kube-harden.dev/v1alpha1";
/// The policy kind.
pub const KIND: &str = "HardeningPolicy";

/// The policy object.
// `spec` is kept as JSON here and read by `read_spec` (global keys into `PolicySpec`, each rule's
// keys into that rule's settings type); its schema is `SpecSchema`.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
#[schemars(title = "HardeningPolicy")]
pub struct HardeningPolicy {
    /// Always `kube-harden.dev/v1alpha1`.
    pub api_version: String,
    /// Always `HardeningPolicy`.
    pub kind: String,
    /// Object metadata (name, annotations such as `config.kubernetes.io/function`); not used.
    #[serde(default)]
    #[schemars(with = "Option<Map<String, Value>>")]
    pub metadata: Option<Value>,
    /// The settings.
    #[serde(default)]
    #[schemars(with = "SpecSchema")]
    pub spec: RawSpec,
}

/// A HardeningPolicy's `spec` as given (`null` included), `None` when absent.
#[derive(Debug, Clone, Default)]
pub struct RawSpec(pub Option<Value>);

impl<'de> Deserialize<'de> for RawSpec {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        Value::deserialize(d).map(|v| RawSpec(Some(v)))
    }
}

/// Settings. Every field is optional; no policy at all means these defaults.
// The fields here are the global keys; each rule's own keys (`runAsUser`, `probes`, …) live in
// its settings type (`rules::<rule>::Settings`), read with `PolicySpec::settings`. Read a spec
// with `spec_from_object` or `spec_from_value`: serde alone reads only the global keys.
#[derive(Debug, Clone, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct PolicySpec {
    /// Rule ids to switch on (for rules that are off by default, or to undo a `disable`).
    #[serde(default)]
    pub enable: Vec<String>,
    /// Rule ids to switch off.
    #[serde(default)]
    pub disable: Vec<String>,
    /// Overwrite explicit values that fail Pod Security "restricted", where the API server would
    /// still accept the result. Off by default: explicit values are the user's decision.
    #[serde(default)]
    pub enforce: bool,
    /// Extra workload kinds whose pod template kube-harden should harden.
    #[serde(default)]
    pub workloads: Vec<ExtraWorkload>,
    /// How pin-image-digests resolves images.
    #[serde(default)]
    pub images: ImageSettings,
    /// What rules do for a container whose image kube-harden has no facts about (no lock entry
    /// with facts, nothing in `images.facts`): `skip` (default) leaves out every change that could
    /// stop it from starting (runAsNonRoot without a known non-zero runAsUser, capabilities.drop
    /// ALL, allowPrivilegeEscalation false for a non-root user, a read-only root filesystem) and
    /// reports each with the fix; `harden` makes them anyway.
    #[serde(default)]
    pub unknown_images: Option<UnknownImages>,
    /// Which results a run reports: `problems` (warnings and errors, one per object and rule;
    /// the default), `changes` (also one info result per changed or generated object saying what
    /// was hardened) or `all` (also one info result per object and rule for every change and
    /// every deliberate decision, with the field paths). `--verbosity` wins; `--results FILE`
    /// defaults to `all`.
    #[serde(default)]
    pub verbosity: Option<Verbosity>,
    /// Every rule's settings.
    #[serde(skip)]
    #[schemars(skip)]
    rules: SettingsSet,
    /// The keys as given (JSON, ConfigMap strings already typed), for [`PolicySpec::with_keys_from`].
    #[serde(skip)]
    #[schemars(skip)]
    given: Map<String, Value>,
}

impl PolicySpec {
    /// The settings of the rule that owns `S` (`rules::run_as_non_root::Settings`, …).
    pub fn settings<S: RuleSettings>(&self) -> &S {
        self.rules.get::<S>()
    }

    /// Replaces the settings of `S`'s type.
    pub fn set_settings<S: RuleSettings>(&mut self, settings: S) {
        self.rules.set(Box::new(settings));
    }

    /// This spec with the keys `keys` taken from `other` (as `other` gave them; a key `other`
    /// does not give is removed): the Argo CD parameters over a policy file.
    pub fn with_keys_from(&self, other: &PolicySpec, keys: &[String]) -> Result<PolicySpec, Error> {
        let mut given = self.given.clone();
        for key in keys {
            match other.given.get(key) {
                Some(value) => given.insert(key.clone(), value.clone()),
                None => given.shift_remove(key),
            };
        }
        spec_from_value(Value::Object(given))
    }
}

/// The spec's JSON schema: the global keys of [`PolicySpec`] and every rule's settings, in this
/// order: `enable`, `disable`, `enforce`, then each rule's keys in registry order, then the
/// other global keys.
struct SpecSchema;

/// Global keys that come before the rules' keys in the schema.
const LEADING_KEYS: [&str; 3] = ["enable", "disable", "enforce"];

impl JsonSchema for SpecSchema {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        "PolicySpec".into()
    }

    fn json_schema(generator: &mut schemars::SchemaGenerator) -> schemars::Schema {
        // The rules' schemas first: `$defs` then come in the order of the properties.
        let owned: Vec<schemars::Schema> = rules::registry()
            .iter()
            .filter_map(|r| r.settings())
            .map(|d| (d.schema)(generator))
            .collect();
        let mut schema = PolicySpec::json_schema(generator);
        let mut global = schema
            .get_mut("properties")
            .and_then(Value::as_object_mut)
            .map(std::mem::take)
            .unwrap_or_default();
        let mut properties = Map::new();
        for key in LEADING_KEYS {
            if let Some(v) = global.shift_remove(key) {
                properties.insert(key.to_string(), v);
            }
        }
        for rule in &owned {
            if let Some(props) = rule.get("properties").and_then(Value::as_object) {
                properties.extend(props.clone());
            }
        }
        properties.extend(global);
        schema.insert("properties".into(), Value::Object(properties));
        schema
    }
}

/// Which results a run reports (warnings and errors always).
#[derive(
    Debug, Clone, Copy, Default, Deserialize, JsonSchema, PartialEq, Eq, PartialOrd, Ord, Hash,
)]
#[serde(rename_all = "lowercase")]
#[cfg_attr(feature = "cli", derive(clap::ValueEnum))]
pub enum Verbosity {
    /// Warnings and errors only.
    #[default]
    Problems,
    /// Also one info result per changed or generated object.
    Changes,
    /// Also one info result per object and rule for every change and decision.
    All,
}

/// What to do for a container whose image facts are unknown.
#[derive(Debug, Clone, Copy, Default, Deserialize, JsonSchema, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum UnknownImages {
    /// Leave out changes that could stop the container; report them.
    #[default]
    Skip,
    /// Harden as if the image ran as a non-root user that writes only to /tmp.
    Harden,
}

/// Facts about an image stated in the policy: they fill in or override what the lock records.
#[derive(Debug, Clone, Deserialize, JsonSchema, PartialEq, Eq)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct StatedFacts {
    /// The image: `name:tag` (that tag), `name@sha256:…` (that digest) or `name` (every tag).
    pub image: String,
    /// The facts; each field given replaces the lock's.
    pub facts: crate::facts::ImageFacts,
}

/// Settings of pin-image-digests.
#[derive(Debug, Clone, Default, Deserialize, JsonSchema, PartialEq, Eq)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct ImageSettings {
    /// Pin this platform's manifest (`linux/amd64`, `linux/arm64/v8`) instead of the
    /// multi-arch index. Pods whose `spec.os.name` or `kubernetes.io/os`/`kubernetes.io/arch`
    /// node selector names another platform keep the index digest.
    #[serde(default)]
    pub platform: Option<String>,
    /// What an image that cannot be pinned does: `fail` (default: error, nothing written) or
    /// `warn` (the tag stays, a warning says why).
    #[serde(default)]
    pub on_unresolved: Option<OnUnresolved>,
    /// Ask the registry whether digests already written in the manifests exist (an error when
    /// one does not). Same as `--verify-digests`.
    #[serde(default)]
    pub verify_digests: bool,
    /// Registries (`host` or `host:port`) reached over plain HTTP instead of TLS.
    #[serde(default)]
    pub insecure_registries: Vec<String>,
    /// Digests given in the policy itself, in the entry format of an `ImageLock` file. They are
    /// asked before the lock file and the registry (the only source besides a lock in WASM).
    #[serde(default)]
    pub digests: Vec<DigestEntry>,
    /// Image fields of custom resources to pin, besides every container image of every pod.
    #[serde(default)]
    pub fields: Vec<ImageField>,
    /// Image facts stated in the policy (for images that cannot be pulled, or to correct what the
    /// lock records). See `docs/image-facts.md`.
    #[serde(default)]
    pub facts: Vec<StatedFacts>,
    /// Most decompressed layer bytes `kube-harden lock` reads per image for its filesystem
    /// facts (`1Gi` by default; `512Mi`, `2G` or a number of bytes). Past it the filesystem
    /// facts are recorded as unknown.
    #[serde(default)]
    pub layer_budget: Option<String>,
    /// One deadline in seconds for all registry traffic of a run, retries and backoff included
    /// (default 30; `--registry-timeout` wins). A run that reaches it fails closed, naming it.
    #[serde(default)]
    pub registry_timeout_seconds: Option<u64>,
}

/// Default of `spec.images.layerBudget`.
pub const DEFAULT_LAYER_BUDGET: u64 = 1 << 30;

/// Bytes in a quantity without fractions (`1Gi`, `512Mi`, `2G`, `1000`).
pub fn parse_bytes(text: &str) -> Option<u64> {
    let digits = text.bytes().take_while(u8::is_ascii_digit).count();
    let n: u64 = text[..digits].parse().ok()?;
    let unit: u64 = match &text[digits..] {
        "" => 1,
        "Ki" => 1 << 10,
        "Mi" => 1 << 20,
        "Gi" => 1 << 30,
        "Ti" => 1 << 40,
        "k" => 1_000,
        "M" => 1_000_000,
        "G" => 1_000_000_000,
        "T" => 1_000_000_000_000,
        _ => return None,
    };
    n.checked_mul(unit)
}

/// What to do with an image that cannot be pinned.
#[derive(Debug, Clone, Copy, Default, Deserialize, JsonSchema, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum OnUnresolved {
    /// Error results; the run exits 1 and writes no stream.
    #[default]
    Fail,
    /// Warning results; the image keeps its tag.
    Warn,
}

/// A digest given in the policy.
#[derive(Debug, Clone, Deserialize, JsonSchema, PartialEq, Eq)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct DigestEntry {
    /// The image as written in the manifests, without digest (`nginx:1.27`).
    pub image: String,
    /// `os/arch[/variant]` when `digest` names that platform's manifest rather than the index.
    #[serde(default)]
    pub platform: Option<String>,
    /// `sha256:` and 64 lowercase hex digits.
    pub digest: String,
}

/// An image field of a custom resource.
#[derive(Debug, Clone, Deserialize, JsonSchema, PartialEq, Eq)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct ImageField {
    /// `group/version` of the kind; a version of `*` (e.g. `example.com/*`) matches any version.
    pub api_version: String,
    /// The kind.
    pub kind: String,
    /// Dotted path to a field holding an image reference; `[*]` (or `*`) stands for every item
    /// of a list, e.g. `spec.image` or `spec.workers[*].image`.
    pub path: String,
}

/// A custom resource that embeds a pod template.
#[derive(Debug, Clone, Deserialize, JsonSchema, PartialEq, Eq)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct ExtraWorkload {
    /// `group/version` of the kind; a version of `*` (e.g. `example.com/*`) matches any version.
    pub api_version: String,
    /// The kind.
    pub kind: String,
    /// Dotted path to the PodTemplateSpec (the object with `metadata` and `spec`), e.g.
    /// `spec.template`.
    #[serde(default)]
    pub pod_template_path: Option<String>,
    /// Dotted path to a bare PodSpec, for kinds that embed one without a template.
    #[serde(default)]
    pub pod_spec_path: Option<String>,
    /// Whether its pods run until deleted (default true): then default-probes adds probes and
    /// pod-disruption-budget considers it. Set false for run-to-completion kinds.
    #[serde(default)]
    pub long_running: Option<bool>,
    /// Dotted path to the replica count (default `spec.replicas`), for pod-disruption-budget.
    #[serde(default)]
    pub replicas_path: Option<String>,
    /// Dotted path to the label selector (default `spec.selector`), for pod-disruption-budget.
    #[serde(default)]
    pub selector_path: Option<String>,
}

/// The policy in effect for one run: settings plus the resolved set of enabled rules.
#[derive(Debug, Clone)]
pub struct Policy {
    /// The settings.
    pub spec: PolicySpec,
    enabled: Vec<&'static str>,
    images: ImagePolicy,
    /// Where pin-image-digests asks for digests after the policy's own `images.digests`
    /// (`None`: nowhere else).
    pub digests: Option<DigestHandle>,
}

/// A shared [`DigestSource`] (the lock file, the registry, or both) handed to a run.
#[derive(Clone)]
pub struct DigestHandle(pub Arc<dyn DigestSource>);

impl std::fmt::Debug for DigestHandle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("DigestHandle(..)")
    }
}

/// `spec.images`, validated and parsed.
#[derive(Debug, Clone, Default)]
pub struct ImagePolicy {
    /// The platform to pin inside an index.
    pub platform: Option<Platform>,
    /// `spec.images.digests` as a lock.
    pub inline: LockSource,
    /// Image fields of custom resources, parsed.
    pub fields: Vec<(String, String, Vec<FieldStep>)>,
    /// `spec.images.facts`, parsed: the reference and its facts.
    pub facts: Vec<(ImageRef, Arc<ImageFacts>)>,
}

/// One step of an image field path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FieldStep {
    /// A mapping key.
    Key(String),
    /// A list index.
    Index(usize),
    /// Every list item.
    Each,
}

impl Default for Policy {
    fn default() -> Self {
        Policy::from_spec(PolicySpec::default()).expect("defaults are valid")
    }
}

/// Command-line switches that sit on top of any policy file or functionConfig.
#[derive(Debug, Clone, Default)]
pub struct Overrides {
    /// `--enable`.
    pub enable: Vec<String>,
    /// `--disable`.
    pub disable: Vec<String>,
    /// `--enforce`.
    pub enforce: bool,
    /// `--verify-digests`.
    pub verify_digests: bool,
    /// Where pin-image-digests asks for digests (`--lock`, the registry); see
    /// [`Policy::digests`].
    pub digests: Option<DigestHandle>,
    /// `--verbosity` (replaces `spec.verbosity`).
    pub verbosity: Option<Verbosity>,
}

impl Policy {
    /// Validates settings and resolves the enabled rules.
    pub fn from_spec(spec: PolicySpec) -> Result<Self, Error> {
        Self::with_overrides(spec, &Overrides::default())
    }

    /// Like [`Policy::from_spec`], with command-line switches applied last.
    pub fn with_overrides(mut spec: PolicySpec, overrides: &Overrides) -> Result<Self, Error> {
        let mut enabled: Vec<&'static str> = rules::registry()
            .iter()
            .filter(|r| r.enabled_by_default())
            .map(|r| r.id())
            .collect();
        let lookup = |id: &str, key: &str| -> Result<&'static str, Error> {
            rules::registry()
                .iter()
                .map(|r| r.id())
                .find(|known| *known == id.trim())
                .ok_or_else(|| {
                    Error::Config(format!(
                        "{key}: unknown rule id `{}` (known: {})",
                        id.trim(),
                        rules::registry()
                            .iter()
                            .map(|r| r.id())
                            .collect::<Vec<_>>()
                            .join(", ")
                    ))
                })
        };
        let mut apply =
            |enable: &[String], disable: &[String], prefix: &str| -> Result<(), Error> {
                for id in enable {
                    let id = lookup(id, &format!("{prefix}enable"))?;
                    if disable.iter().any(|d| d.trim() == id) {
                        return Err(Error::Config(format!(
                            "{prefix}enable and {prefix}disable both name `{id}`"
                        )));
                    }
                    if !enabled.contains(&id) {
                        enabled.push(id);
                    }
                }
                for id in disable {
                    let id = lookup(id, &format!("{prefix}disable"))?;
                    enabled.retain(|e| *e != id);
                }
                Ok(())
            };
        apply(&spec.enable, &spec.disable, "spec.")?;
        apply(&overrides.enable, &overrides.disable, "--")?;
        spec.enforce |= overrides.enforce;
        spec.images.verify_digests |= overrides.verify_digests;
        if overrides.verbosity.is_some() {
            spec.verbosity = overrides.verbosity;
        }
        spec.rules = spec.rules.validated()?;
        let images = validate_images(&spec.images)?;
        for (i, w) in spec.workloads.iter().enumerate() {
            for (key, path) in [
                ("replicasPath", &w.replicas_path),
                ("selectorPath", &w.selector_path),
            ] {
                if let Some(p) = path {
                    if crate::model::path::FieldPath::parse(p).is_none() {
                        return Err(Error::Config(format!(
                            "spec.workloads[{i}].{key}: `{p}` is not a dotted field path"
                        )));
                    }
                }
            }
            if w.pod_template_path.is_some() == w.pod_spec_path.is_some() {
                return Err(Error::Config(format!(
                    "spec.workloads[{i}]: give exactly one of podTemplatePath and podSpecPath"
                )));
            }
            let path = w
                .pod_template_path
                .as_ref()
                .or(w.pod_spec_path.as_ref())
                .expect("one is set");
            if crate::model::path::FieldPath::parse(path).is_none() {
                return Err(Error::Config(format!(
                    "spec.workloads[{i}]: `{path}` is not a dotted field path"
                )));
            }
        }
        let order: Vec<&'static str> = rules::registry().iter().map(|r| r.id()).collect();
        enabled.sort_by_key(|id| order.iter().position(|o| o == id));
        Ok(Policy {
            spec,
            enabled,
            images,
            digests: overrides.digests.clone(),
        })
    }

    /// True when the rule with this id runs.
    pub fn is_enabled(&self, id: &str) -> bool {
        self.enabled.contains(&id)
    }

    /// `spec.images`, parsed.
    pub fn images(&self) -> &ImagePolicy {
        &self.images
    }

    /// What is known about the image `text` (as written in a container): the lock's facts (by
    /// digest when pinned, else by tag for the policy's platform, then the index), with the
    /// policy's `images.facts` laid over them. `None` when nothing is known.
    pub fn image_facts(&self, text: &str) -> Option<Arc<ImageFacts>> {
        if self.digests.is_none() && self.images.facts.is_empty() {
            return None;
        }
        let image = ImageRef::parse(text).ok()?;
        let platform = self.images.platform.as_ref();
        let recorded = self
            .digests
            .as_ref()
            .and_then(|d| d.0.facts(&image, platform));
        let stated = self.stated_facts(&image);
        match (recorded, stated) {
            (Some(r), Some(s)) => {
                let mut merged = (*r).clone();
                merged.overlay(s);
                Some(Arc::new(merged))
            }
            (None, Some(s)) => Some(s.clone()),
            (r, None) => r,
        }
    }

    /// `spec.images.layerBudget` in bytes, defaulted.
    pub fn layer_budget(&self) -> u64 {
        self.spec
            .images
            .layer_budget
            .as_deref()
            .and_then(parse_bytes)
            .unwrap_or(DEFAULT_LAYER_BUDGET)
    }

    /// The facts the policy states for `image` (`spec.images.facts`), if any.
    pub fn stated_facts(&self, image: &ImageRef) -> Option<&Arc<ImageFacts>> {
        let name = image.name();
        self.images
            .facts
            .iter()
            .find(|(r, _)| {
                r.name() == name
                    && match (r.digest(), r.tag()) {
                        (Some(d), _) => image.digest() == Some(d),
                        (None, None) => true,
                        (None, Some(t)) => {
                            let written = match (image.tag(), image.digest()) {
                                (Some(tag), _) => tag,
                                (None, None) => "latest",
                                (None, Some(_)) => "",
                            };
                            t == written
                        }
                    }
            })
            .map(|(_, f)| f)
    }

    /// `spec.verbosity` (or `--verbosity`), else `default`.
    pub fn verbosity(&self, default: Verbosity) -> Verbosity {
        self.spec.verbosity.unwrap_or(default)
    }

    /// `spec.unknownImages`, defaulted.
    pub fn unknown_images(&self) -> UnknownImages {
        self.spec.unknown_images.unwrap_or_default()
    }

    /// The validated settings of the rule that owns `S`.
    pub fn settings<S: RuleSettings>(&self) -> &S {
        self.spec.settings::<S>()
    }
}

fn validate_images(images: &ImageSettings) -> Result<ImagePolicy, Error> {
    let key = "spec.images";
    let platform = match &images.platform {
        None => None,
        Some(p) => {
            Some(Platform::parse(p).map_err(|e| Error::Config(format!("{key}.platform: {e}")))?)
        }
    };
    for (i, host) in images.insecure_registries.iter().enumerate() {
        if host.is_empty() || host.contains('/') || host.chars().any(char::is_whitespace) {
            return Err(Error::Config(format!(
                "{key}.insecureRegistries[{i}]: `{host}` is not a host or host:port"
            )));
        }
    }
    if images.registry_timeout_seconds == Some(0) {
        return Err(Error::Config(format!(
            "{key}.registryTimeoutSeconds: must be at least 1"
        )));
    }
    if let Some(b) = &images.layer_budget {
        if parse_bytes(b).is_none_or(|n| n == 0) {
            return Err(Error::Config(format!(
                "{key}.layerBudget: `{b}` is not a positive byte size such as 1Gi or 512Mi"
            )));
        }
    }
    let mut lock = ImageLock::new();
    for (i, entry) in images.digests.iter().enumerate() {
        let at = format!("{key}.digests[{i}]");
        let parsed = LockEntry::from_parts(&entry.image, entry.platform.as_deref(), &entry.digest)
            .map_err(|(field, reason)| Error::Config(format!("{at}.{field}: {reason}")))?;
        if let Some(old) = lock.set(&parsed.image, parsed.platform.as_ref(), &parsed.digest) {
            if old != entry.digest {
                return Err(Error::Config(format!(
                    "{at}: `{}` is given two different digests",
                    entry.image
                )));
            }
        }
    }
    let mut fields = Vec::new();
    for (i, f) in images.fields.iter().enumerate() {
        let steps = parse_field_steps(&f.path).ok_or_else(|| {
            Error::Config(format!(
                "{key}.fields[{i}].path: `{}` is not a dotted field path (use [*] for every list item)",
                f.path
            ))
        })?;
        if f.api_version.is_empty() || f.kind.is_empty() {
            return Err(Error::Config(format!(
                "{key}.fields[{i}]: apiVersion and kind must not be empty"
            )));
        }
        fields.push((f.api_version.clone(), f.kind.clone(), steps));
    }
    let mut facts = Vec::new();
    for (i, f) in images.facts.iter().enumerate() {
        let image = ImageRef::parse(&f.image)
            .map_err(|e| Error::Config(format!("{key}.facts[{i}].image: {e}")))?;
        if let Some(fs) = &f.facts.filesystem {
            for (j, d) in fs.dirs.iter().enumerate() {
                let ok_mode = d
                    .mode
                    .as_deref()
                    .is_none_or(|m| u32::from_str_radix(m, 8).is_ok_and(|v| v <= 0o7777));
                if !d.path.starts_with('/') || !ok_mode {
                    return Err(Error::Config(format!(
                        "{key}.facts[{i}].facts.filesystem.dirs[{j}]: path must be absolute and mode octal (\"0755\")"
                    )));
                }
            }
        }
        let mut stated = f.facts.clone();
        if let Some(fs) = &mut stated.filesystem {
            for d in &mut fs.dirs {
                d.path = crate::facts::normalize_path(&d.path);
            }
            fs.dirs.sort_by(|a, b| a.path.cmp(&b.path));
        }
        facts.push((image, Arc::new(stated)));
    }
    Ok(ImagePolicy {
        platform,
        inline: LockSource::new(lock),
        fields,
        facts,
    })
}

/// Parses `spec.workers[*].image`, `spec.workers.*.image` or `spec.workers[0].image`.
fn parse_field_steps(text: &str) -> Option<Vec<FieldStep>> {
    let mut steps = Vec::new();
    for part in text.split('.') {
        let (key, mut rest) = match part.find('[') {
            Some(i) => (&part[..i], &part[i..]),
            None => (part, ""),
        };
        match key {
            "" if rest.is_empty() => return None,
            "" => {}
            "*" => steps.push(FieldStep::Each),
            k => steps.push(FieldStep::Key(k.to_string())),
        }
        while let Some(stripped) = rest.strip_prefix('[') {
            let close = stripped.find(']')?;
            let inner = &stripped[..close];
            steps.push(if inner == "*" {
                FieldStep::Each
            } else {
                FieldStep::Index(inner.parse().ok()?)
            });
            rest = &stripped[close + 1..];
        }
        if !rest.is_empty() {
            return None;
        }
    }
    (!steps.is_empty()).then_some(steps)
}

/// Reads a policy from a functionConfig or config-file object: a `HardeningPolicy`, or a
/// `ConfigMap` whose `data` holds the spec's settings as strings (`kpt fn eval -- key=value`).
pub fn spec_from_object(object: &Value) -> Result<PolicySpec, Error> {
    let kind = object.get("kind").and_then(Value::as_str).unwrap_or("");
    let api_version = object
        .get("apiVersion")
        .and_then(Value::as_str)
        .unwrap_or("");
    match kind {
        KIND => {
            if api_version != API_VERSION {
                return Err(Error::Config(format!(
                    "apiVersion: `{api_version}` is not supported for {KIND}; use {API_VERSION}"
                )));
            }
            let schema = json_schema();
            let defs = schema.get("$defs").cloned().unwrap_or(Value::Null);
            reject_sequences(object, &schema, &defs, "")?;
            let policy: HardeningPolicy = deserialize(object.clone(), "")?;
            match policy.spec.0 {
                None => Ok(PolicySpec::default()),
                Some(spec) => read_spec(spec, "spec", &defs),
            }
        }
        "ConfigMap" => {
            let data = match object.get("data") {
                None | Some(Value::Null) => return Ok(PolicySpec::default()),
                Some(Value::Object(m)) => m,
                Some(_) => return Err(Error::Config("data: expected a mapping of strings".into())),
            };
            let keys = spec_keys();
            let mut spec = Map::new();
            for (key, raw) in data {
                let text = match raw {
                    Value::String(s) => s.clone(),
                    other => other.to_string(),
                };
                let form = keys
                    .iter()
                    .find(|k| k.name == *key)
                    .map_or(KeyForm::String, |k| k.form);
                spec.insert(key.clone(), config_map_value(key, form, &text)?);
            }
            let schema = json_schema();
            let defs = schema.get("$defs").cloned().unwrap_or(Value::Null);
            read_spec(Value::Object(spec), "data", &defs)
        }
        "" => Err(Error::Config("the config object has no kind".into())),
        other => Err(Error::Config(format!(
            "kind: `{other}` is not a config kind; use {KIND} ({API_VERSION}) or a ConfigMap"
        ))),
    }
}

/// Reads a spec (the value of a HardeningPolicy's `spec`) on its own.
pub fn spec_from_value(spec: Value) -> Result<PolicySpec, Error> {
    let schema = json_schema();
    let defs = schema.get("$defs").cloned().unwrap_or(Value::Null);
    read_spec(spec, "spec", &defs)
}

/// Who reads a spec key: the global [`PolicySpec`] or a rule's settings type.
#[derive(Clone, Copy)]
enum Owner {
    Global,
    Rule(rules::settings::SettingsDescriptor),
}

/// Reads the spec at `at` (`spec`, or `data` of a ConfigMap): each key goes to its owner, in the
/// order given, so the first bad key is the one reported (as serde reports a struct's fields).
fn read_spec(value: Value, at: &str, defs: &Value) -> Result<PolicySpec, Error> {
    let spec_schema = defs.get("PolicySpec").cloned().unwrap_or(Value::Null);
    reject_sequences(&value, &spec_schema, defs, at)?;
    let Value::Object(given) = value else {
        // Not a mapping: serde's own message (`invalid type: null, expected struct PolicySpec`).
        return deserialize::<PolicySpec>(value, at);
    };
    let global: Vec<String> = PolicySpec::json_schema(&mut schemars::SchemaGenerator::default())
        .get("properties")
        .and_then(Value::as_object)
        .map(|p| p.keys().cloned().collect())
        .unwrap_or_default();
    let owned: Vec<(String, Owner)> = rules::registry()
        .iter()
        .filter_map(|r| r.settings())
        .flat_map(|d| d.keys().into_iter().map(move |k| (k, Owner::Rule(d))))
        .chain(global.iter().map(|k| (k.clone(), Owner::Global)))
        .collect();
    let owner_of = |key: &str| owned.iter().find(|(k, _)| k == key).map(|(_, o)| *o);
    let mut parts: Vec<(Owner, Map<String, Value>)> = Vec::new();
    for (key, v) in &given {
        let Some(owner) = owner_of(key) else {
            let known: Vec<String> = spec_schema
                .get("properties")
                .and_then(Value::as_object)
                .map(|p| p.keys().map(|k| format!("`{k}`")).collect())
                .unwrap_or_default();
            return Err(Error::Config(format!(
                "{at}.{key}: unknown field `{key}`, expected one of {}",
                known.join(", ")
            )));
        };
        let one = Value::Object(Map::from_iter([(key.clone(), v.clone())]));
        read_part(owner, one, at)?;
        let same = |o: &Owner| match (o, &owner) {
            (Owner::Global, Owner::Global) => true,
            (Owner::Rule(a), Owner::Rule(b)) => (a.type_id)() == (b.type_id)(),
            _ => false,
        };
        match parts.iter_mut().find(|(o, _)| same(o)) {
            Some((_, map)) => {
                map.insert(key.clone(), v.clone());
            }
            None => parts.push((owner, Map::from_iter([(key.clone(), v.clone())]))),
        }
    }
    let mut spec = PolicySpec::default();
    for (owner, map) in parts {
        match read_part(owner, Value::Object(map), at)? {
            Part::Global(global) => {
                let rules = std::mem::take(&mut spec.rules);
                spec = PolicySpec { rules, ..*global };
            }
            Part::Rule(settings) => spec.rules.set(settings),
        }
    }
    spec.given = given;
    Ok(spec)
}

enum Part {
    Global(Box<PolicySpec>),
    Rule(Box<dyn rules::settings::AnySettings>),
}

fn read_part(owner: Owner, value: Value, at: &str) -> Result<Part, Error> {
    match owner {
        Owner::Global => deserialize::<PolicySpec>(value, at).map(|s| Part::Global(Box::new(s))),
        Owner::Rule(d) => (d.parse)(value)
            .map(Part::Rule)
            .map_err(|e| path_error(e, at)),
    }
}

/// A spec key and the JSON type its schema gives it, for the string forms of the settings (a
/// ConfigMap's `data`, Argo CD parameters).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SpecKey {
    /// The key (`runAsUser`).
    pub name: String,
    /// What its value is.
    pub form: KeyForm,
    /// The rule that owns it; `None` for a global key.
    pub rule: Option<&'static str>,
}

/// The shape of a spec key's value, from its schema.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyForm {
    /// `true`/`false` (a ConfigMap also takes `yes`, `on`, `1`, …).
    Bool,
    /// An integer.
    Integer,
    /// A list of strings: a comma-separated list, or an inline YAML list (`[a, b]`).
    StringList,
    /// A mapping or a list of mappings: inline YAML.
    Inline,
    /// A string (an enum's value included).
    String,
}

impl KeyForm {
    /// A plain value (string, number, boolean, list of strings), as opposed to inline YAML.
    pub fn is_plain(self) -> bool {
        self != KeyForm::Inline
    }

    fn of(schema: &Value, defs: &Value) -> KeyForm {
        let schema = resolve(schema, defs);
        let types: Vec<&str> = match schema.get("type") {
            Some(Value::String(t)) => vec![t.as_str()],
            Some(Value::Array(ts)) => ts.iter().filter_map(Value::as_str).collect(),
            _ => Vec::new(),
        };
        let concrete: Vec<&str> = types.into_iter().filter(|t| *t != "null").collect();
        match concrete.as_slice() {
            ["boolean"] => KeyForm::Bool,
            ["integer"] => KeyForm::Integer,
            ["array"] => {
                let item = resolve(schema.get("items").unwrap_or(&Value::Null), defs);
                if item.get("type").and_then(Value::as_str) == Some("string") {
                    KeyForm::StringList
                } else {
                    KeyForm::Inline
                }
            }
            ["object"] => KeyForm::Inline,
            _ => match schema.get("anyOf").and_then(Value::as_array) {
                // `Option<T>` of a referenced type: T's form.
                Some(branches) => branches
                    .iter()
                    .find(|b| b.get("type").and_then(Value::as_str) != Some("null"))
                    .map_or(KeyForm::String, |b| KeyForm::of(b, defs)),
                None if schema.get("properties").is_some() => KeyForm::Inline,
                None => KeyForm::String,
            },
        }
    }
}

/// `schema`, or what its `$ref` names.
fn resolve<'a>(schema: &'a Value, defs: &'a Value) -> &'a Value {
    match schema.get("$ref").and_then(Value::as_str) {
        Some(r) => r
            .strip_prefix("#/$defs/")
            .and_then(|name| defs.get(name))
            .unwrap_or(&Value::Null),
        None => schema,
    }
}

/// Every spec key in schema order, with its form and owner.
pub fn spec_keys() -> Vec<SpecKey> {
    let schema = json_schema();
    let defs = schema.get("$defs").cloned().unwrap_or(Value::Null);
    let owners: Vec<(String, &'static str)> = rules::registry()
        .iter()
        .filter_map(|r| r.settings().map(|d| (r.id(), d)))
        .flat_map(|(id, d)| d.keys().into_iter().map(move |k| (k, id)))
        .collect();
    defs.get("PolicySpec")
        .and_then(|s| s.get("properties"))
        .and_then(Value::as_object)
        .map(|props| {
            props
                .iter()
                .map(|(name, sub)| SpecKey {
                    name: name.clone(),
                    form: KeyForm::of(sub, &defs),
                    rule: owners.iter().find(|(k, _)| k == name).map(|(_, id)| *id),
                })
                .collect()
        })
        .unwrap_or_default()
}

/// Turns one ConfigMap string into the JSON type the spec key expects.
fn config_map_value(key: &str, form: KeyForm, text: &str) -> Result<Value, Error> {
    Ok(match form {
        KeyForm::StringList if text.trim_start().starts_with('[') => parse_inline(key, text)?,
        KeyForm::StringList => Value::Array(
            text.split(',')
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .map(|s| Value::String(s.to_string()))
                .collect(),
        ),
        KeyForm::Bool => match text.trim() {
            "true" | "True" | "yes" | "on" | "1" => Value::Bool(true),
            "false" | "False" | "no" | "off" | "0" | "" => Value::Bool(false),
            other => {
                return Err(Error::Config(format!(
                    "data.{key}: `{other}` is not true or false"
                )))
            }
        },
        KeyForm::Integer => match text.trim().parse::<i64>() {
            Ok(n) => Value::from(n),
            Err(_) => {
                return Err(Error::Config(format!(
                    "data.{key}: `{text}` is not an integer"
                )))
            }
        },
        KeyForm::Inline => parse_inline(key, text)?,
        KeyForm::String => Value::String(text.to_string()),
    })
}

fn parse_inline(key: &str, text: &str) -> Result<Value, Error> {
    let doc = crate::yaml::tree::parse_document(text)
        .map_err(|e| Error::Config(format!("data.{key}: not valid YAML: {}", e.message)))?;
    Ok(doc.root.map(|r| r.to_value()).unwrap_or(Value::Null))
}

/// serde reads a struct from a sequence too (fields by position: `spec: []` would be the
/// defaults, `spec: [[a]]` would enable rule `a`). Settings are mappings: walk `value` along
/// the policy's JSON schema and refuse a sequence wherever the schema wants an object.
fn reject_sequences(value: &Value, schema: &Value, defs: &Value, at: &str) -> Result<(), Error> {
    let schema = match schema.get("$ref").and_then(Value::as_str) {
        Some(r) => r
            .strip_prefix("#/$defs/")
            .and_then(|name| defs.get(name))
            .unwrap_or(&Value::Null),
        None => schema,
    };
    let wants_object = schema.get("type").and_then(Value::as_str) == Some("object")
        || schema.get("properties").is_some();
    match value {
        Value::Array(items) if wants_object => Err(Error::Config(format!(
            "{}: expected a mapping, found a list",
            if at.is_empty() { "the config" } else { at }
        ))),
        Value::Array(items) => match schema.get("items") {
            Some(item) => items
                .iter()
                .enumerate()
                .try_for_each(|(i, v)| reject_sequences(v, item, defs, &format!("{at}[{i}]"))),
            None => Ok(()),
        },
        Value::Object(map) => {
            let Some(props) = schema.get("properties").and_then(Value::as_object) else {
                return Ok(());
            };
            for (k, v) in map {
                if let Some(sub) = props.get(k) {
                    let path = if at.is_empty() {
                        k.clone()
                    } else {
                        format!("{at}.{k}")
                    };
                    reject_sequences(v, sub, defs, &path)?;
                }
            }
            Ok(())
        }
        _ => Ok(()),
    }
}

fn deserialize<T: serde::de::DeserializeOwned>(value: Value, prefix: &str) -> Result<T, Error> {
    serde_path_to_error::deserialize(value).map_err(|e| path_error(e, prefix))
}

/// `prefix.path: message`, as the errors of a policy read.
fn path_error(e: serde_path_to_error::Error<serde_json::Error>, prefix: &str) -> Error {
    let path = e.path().to_string();
    let at = match (prefix.is_empty(), path.as_str()) {
        (true, ".") => String::new(),
        (true, p) => format!("{p}: "),
        (false, ".") => format!("{prefix}: "),
        (false, p) => format!("{prefix}.{p}: "),
    };
    Error::Config(format!("{at}{}", e.into_inner()))
}

/// The policy's JSON schema.
pub fn json_schema() -> Value {
    serde_json::to_value(schemars::schema_for!(HardeningPolicy)).unwrap_or(Value::Null)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn verbosity_from_a_policy_a_config_map_and_the_flag() {
        let spec = spec_from_object(&json!({"apiVersion": "v1", "kind": "ConfigMap",
            "data": {"verbosity": "changes"}}))
        .unwrap();
        assert_eq!(spec.verbosity, Some(Verbosity::Changes));
        let policy = Policy::from_spec(spec.clone()).unwrap();
        assert_eq!(policy.verbosity(Verbosity::All), Verbosity::Changes);
        let flag = Overrides {
            verbosity: Some(Verbosity::All),
            ..Overrides::default()
        };
        let policy = Policy::with_overrides(spec, &flag).unwrap();
        assert_eq!(policy.verbosity(Verbosity::Problems), Verbosity::All);
        let none = Policy::from_spec(PolicySpec::default()).unwrap();
        assert_eq!(none.verbosity(Verbosity::Problems), Verbosity::Problems);
        let err = spec_from_object(
            &json!({"apiVersion": API_VERSION, "kind": KIND, "spec": {"verbosity": "loud"}}),
        )
        .unwrap_err()
        .to_string();
        assert!(err.contains("verbosity"), "{err}");
    }

    #[test]
    fn unknown_keys_are_named() {
        let err = spec_from_object(
            &json!({"apiVersion": API_VERSION, "kind": KIND, "spec": {"runAsUsr": 1}}),
        )
        .unwrap_err()
        .to_string();
        assert!(err.contains("spec") && err.contains("runAsUsr"), "{err}");
        let err = spec_from_object(
            &json!({"apiVersion": "v1", "kind": "ConfigMap", "data": {"bogus": "x"}}),
        )
        .unwrap_err()
        .to_string();
        assert!(err.contains("bogus"), "{err}");
    }

    #[test]
    fn config_map_strings() {
        let spec = spec_from_object(&json!({"apiVersion": "v1", "kind": "ConfigMap",
            "data": {"disable": "seccomp, writable-tmp", "enforce": "true", "runAsUser": "10001"}}))
        .unwrap();
        assert_eq!(spec.disable, vec!["seccomp", "writable-tmp"]);
        assert!(spec.enforce);
        assert_eq!(
            spec.settings::<rules::run_as_non_root::Settings>()
                .run_as_user,
            Some(10001)
        );
        let policy = Policy::from_spec(spec).unwrap();
        assert!(!policy.is_enabled("seccomp"));
        assert!(policy.is_enabled("run-as-non-root"));
    }

    #[test]
    fn unknown_rule_ids_are_errors() {
        let spec = PolicySpec {
            disable: vec!["no-such-rule".into()],
            ..Default::default()
        };
        assert!(Policy::from_spec(spec)
            .unwrap_err()
            .to_string()
            .contains("no-such-rule"));
    }

    #[test]
    fn keys_know_their_owner_and_string_form() {
        let keys = spec_keys();
        let find = |name: &str| keys.iter().find(|k| k.name == name).unwrap().clone();
        assert_eq!(find("enforce").form, KeyForm::Bool);
        assert_eq!(find("enforce").rule, None);
        assert_eq!(find("runAsUser").form, KeyForm::Integer);
        assert_eq!(find("runAsUser").rule, Some("run-as-non-root"));
        assert_eq!(find("writablePaths").form, KeyForm::StringList);
        assert_eq!(find("writablePaths").rule, Some("writable-tmp"));
        assert_eq!(find("tmpSizeLimit").form, KeyForm::String);
        assert_eq!(find("probes").form, KeyForm::Inline);
        assert_eq!(
            find("podDisruptionBudget").rule,
            Some("pod-disruption-budget")
        );
        assert_eq!(find("workloads").form, KeyForm::Inline);
        assert_eq!(find("images").form, KeyForm::Inline);
        assert_eq!(find("verbosity").form, KeyForm::String);
        assert_eq!(find("unknownImages").form, KeyForm::String);
    }

    #[test]
    fn keys_of_several_owners_in_one_spec() {
        let spec = spec_from_value(json!({"runAsUser": 5, "enforce": true,
            "tmpSizeLimit": "1Gi", "runAsGroup": 6}))
        .unwrap();
        assert!(spec.enforce);
        let user = spec.settings::<rules::run_as_non_root::Settings>();
        assert_eq!((user.run_as_user, user.run_as_group), (Some(5), Some(6)));
        let tmp = spec.settings::<rules::writable_tmp::Settings>();
        assert_eq!(tmp.size_limit(), "1Gi");
        // The first bad key in document order is the one reported, whoever owns it.
        let err = spec_from_value(json!({"enable": 3, "runAsUser": "x"}))
            .unwrap_err()
            .to_string();
        assert!(err.contains(": spec.enable:"), "{err}");
        let err = spec_from_value(json!({"runAsUser": "x", "enable": 3}))
            .unwrap_err()
            .to_string();
        assert!(err.contains(": spec.runAsUser:"), "{err}");
        let err = spec_from_value(json!(null)).unwrap_err().to_string();
        assert!(err.contains("expected struct PolicySpec"), "{err}");
    }

    #[test]
    fn unknown_keys_list_every_owners_keys() {
        let err = spec_from_value(json!({"bogus": 1}))
            .unwrap_err()
            .to_string();
        for key in [
            "enable",
            "runAsUser",
            "tmpSizeLimit",
            "probes",
            "podDisruptionBudget",
            "images",
        ] {
            assert!(err.contains(&format!("`{key}`")), "{err}");
        }
    }

    #[test]
    fn keys_from_another_spec_replace_only_those() {
        let base =
            spec_from_value(json!({"runAsUser": 1, "runAsGroup": 7, "verbosity": "all"})).unwrap();
        let over = spec_from_value(json!({"runAsUser": 2, "verbosity": "changes"})).unwrap();
        let merged = base
            .with_keys_from(&over, &["runAsUser".to_string()])
            .unwrap();
        let user = merged.settings::<rules::run_as_non_root::Settings>();
        assert_eq!((user.run_as_user, user.run_as_group), (Some(2), Some(7)));
        assert_eq!(merged.verbosity, Some(Verbosity::All));
    }
}
