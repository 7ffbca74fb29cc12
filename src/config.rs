//! The policy's data: [`PolicySpec`] (the global keys of the `HardeningPolicy` spec and every
//! rule's settings, type-erased, with typed access), the global settings types and [`Policy`],
//! the policy in effect for one run.
//!
//! This module knows no rule: reading a spec (each key to the rule that owns it), the schema,
//! the ConfigMap and Argo CD string forms and the enabled set need the registry and live in
//! [`crate::policy`], above `rules`. `config` sits below `rules`, `model` and `policy`.

pub mod settings;

use schemars::JsonSchema;
use serde::Deserialize;
use serde_json::{Map, Value};

use std::sync::Arc;

use crate::digest::{DigestSource, ImageLock, ImageRef, LockEntry, LockSource, Platform};
use crate::error::Error;
use crate::facts::ImageFacts;
use settings::{RuleSettings, SettingsSet};

/// API version of the policy kind.
pub const API_VERSION: &str = "kube-harden.dev/v1alpha1";
/// The policy kind.
pub const KIND: &str = "HardeningPolicy";

/// Settings. Every field is optional; no policy at all means these defaults.
// The fields here are the global keys; each rule's own keys (`runAsUser`, `probes`, …) live in
// its settings type (`rules::<rule>::Settings`), read with `PolicySpec::settings`. Read a spec
// with `policy::spec_from_object` or `policy::spec_from_value`: serde alone reads only the
// global keys.
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
    pub(crate) rules: SettingsSet,
    /// The keys as given (JSON, ConfigMap strings already typed), for [`PolicySpec::with_keys_from`].
    #[serde(skip)]
    #[schemars(skip)]
    pub(crate) given: Map<String, Value>,
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
    pub(crate) enabled: Vec<&'static str>,
    pub(crate) images: ImagePolicy,
    /// Where pin-image-digests asks for digests after the policy's own `images.digests`
    /// (`None`: nowhere else).
    pub digests: Option<DigestHandle>,
    /// The last image [`Policy::image_facts`] answered for: a container's rules ask about the
    /// same image one after the other.
    pub(crate) facts_memo: FactsMemo,
}

/// One image and what [`Policy::image_facts`] said about it. A clone starts empty.
#[derive(Default)]
pub(crate) struct FactsMemo(std::sync::Mutex<Option<(String, Option<Arc<ImageFacts>>)>>);

impl Clone for FactsMemo {
    fn clone(&self) -> Self {
        FactsMemo::default()
    }
}

impl std::fmt::Debug for FactsMemo {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("FactsMemo(..)")
    }
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
        let mut memo = self.facts_memo.0.lock().unwrap_or_else(|e| e.into_inner());
        if let Some((_, facts)) = memo.as_ref().filter(|(image, _)| image == text) {
            return facts.clone();
        }
        let facts = self.image_facts_uncached(text);
        *memo = Some((text.to_string(), facts.clone()));
        facts
    }

    fn image_facts_uncached(&self, text: &str) -> Option<Arc<ImageFacts>> {
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

pub(crate) fn validate_images(images: &ImageSettings) -> Result<ImagePolicy, Error> {
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
