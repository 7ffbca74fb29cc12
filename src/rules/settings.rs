//! A rule's settings: a serde + schemars type in the rule's own module whose fields are keys of the
//! HardeningPolicy `spec` (wire format `spec.runAsUser`, not `spec.runAsNonRoot.runAsUser`), with
//! its own validation. The rule hands a [`SettingsDescriptor`] to the registry
//! ([`Rule::settings`](super::Rule::settings)); the policy schema, the spec reader, the ConfigMap
//! string coercion, the Argo CD parameter names, function.yaml's OpenAPI and the npm TypeScript
//! types are all generated from the registry's descriptors.

use std::any::{Any, TypeId};
use std::fmt::Debug;
use std::sync::{Mutex, OnceLock};

use schemars::{JsonSchema, Schema, SchemaGenerator};
use serde::de::DeserializeOwned;
use serde_json::Value;

use crate::error::Error;

/// A rule's settings type. Its fields are spec-level keys (`#[serde(rename_all = "camelCase",
/// deny_unknown_fields)]`, every field `#[serde(default)]`); [`Default`] is "no setting given".
pub trait RuleSettings:
    DeserializeOwned + JsonSchema + Default + Clone + Debug + Send + Sync + 'static
{
    /// Checks the values (beyond their types) and returns what the rule reads at run time; an
    /// error names the key as `spec.<key>…`.
    fn validate(&self) -> Result<Self, Error> {
        Ok(self.clone())
    }
}

/// A settings read that failed, with the field path.
pub type ParseError = serde_path_to_error::Error<serde_json::Error>;

/// What the registry knows about a rule's settings, without knowing their type.
#[derive(Clone, Copy)]
pub struct SettingsDescriptor {
    /// The settings type, for typed access.
    pub type_id: fn() -> TypeId,
    /// The type's JSON schema, inline: an object whose `properties` are the keys it owns.
    pub schema: fn(&mut SchemaGenerator) -> Schema,
    /// Reads the type from a mapping of (some of) its keys; the error keeps the field path.
    pub parse: fn(Value) -> Result<Box<dyn AnySettings>, ParseError>,
    /// The type's default.
    pub default: fn() -> Box<dyn AnySettings>,
}

impl SettingsDescriptor {
    /// The descriptor of settings type `S`.
    pub const fn of<S: RuleSettings>() -> Self {
        SettingsDescriptor {
            type_id: TypeId::of::<S>,
            schema: S::json_schema,
            parse: parse::<S>,
            default: default::<S>,
        }
    }

    /// The spec keys this type owns, in its schema's order.
    pub fn keys(&self) -> Vec<String> {
        let mut generator = SchemaGenerator::default();
        (self.schema)(&mut generator)
            .get("properties")
            .and_then(Value::as_object)
            .map(|p| p.keys().cloned().collect())
            .unwrap_or_default()
    }
}

fn parse<S: RuleSettings>(value: Value) -> Result<Box<dyn AnySettings>, ParseError> {
    serde_path_to_error::deserialize::<_, S>(value).map(|s| Box::new(s) as Box<dyn AnySettings>)
}

fn default<S: RuleSettings>() -> Box<dyn AnySettings> {
    Box::new(S::default())
}

/// A settings value of some rule, type-erased.
pub trait AnySettings: Any + Debug + Send + Sync {
    /// A copy.
    fn clone_box(&self) -> Box<dyn AnySettings>;
    /// For downcasting.
    fn as_any(&self) -> &dyn Any;
    /// Runs the type's validation; the validated value replaces this one.
    fn validated(&self) -> Result<Box<dyn AnySettings>, Error>;
}

impl<S: RuleSettings> AnySettings for S {
    fn clone_box(&self) -> Box<dyn AnySettings> {
        Box::new(self.clone())
    }
    fn as_any(&self) -> &dyn Any {
        self
    }
    fn validated(&self) -> Result<Box<dyn AnySettings>, Error> {
        Ok(Box::new(self.validate()?))
    }
}

/// Every rule's settings of one policy, one value per registered settings type.
#[derive(Debug)]
pub struct SettingsSet(Vec<Box<dyn AnySettings>>);

impl Clone for SettingsSet {
    fn clone(&self) -> Self {
        SettingsSet(self.0.iter().map(|s| s.clone_box()).collect())
    }
}

impl Default for SettingsSet {
    /// Every registered rule's default settings.
    fn default() -> Self {
        SettingsSet(
            super::registry()
                .iter()
                .filter_map(|r| r.settings())
                .map(|d| (d.default)())
                .collect(),
        )
    }
}

impl SettingsSet {
    /// The settings of type `S` (its default when no rule registers `S`).
    pub fn get<S: RuleSettings>(&self) -> &S {
        self.0
            .iter()
            .find_map(|s| s.as_any().downcast_ref::<S>())
            .unwrap_or_else(|| fallback::<S>())
    }

    /// Replaces the settings of `value`'s type.
    pub fn set(&mut self, value: Box<dyn AnySettings>) {
        let id = value.as_any().type_id();
        match self.0.iter_mut().find(|s| s.as_any().type_id() == id) {
            Some(slot) => *slot = value,
            None => self.0.push(value),
        }
    }

    /// Every value validated (each type's [`RuleSettings::validate`]).
    pub fn validated(&self) -> Result<Self, Error> {
        self.0
            .iter()
            .map(|s| s.validated())
            .collect::<Result<_, _>>()
            .map(SettingsSet)
    }
}

/// The default of a settings type that no rule registers: one value per type for the whole
/// process, so typed access never fails.
fn fallback<S: RuleSettings>() -> &'static S {
    type Defaults = Vec<&'static (dyn Any + Send + Sync)>;
    static DEFAULTS: OnceLock<Mutex<Defaults>> = OnceLock::new();
    let mut defaults = DEFAULTS
        .get_or_init(Mutex::default)
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner());
    if let Some(found) = defaults.iter().find_map(|d| d.downcast_ref::<S>()) {
        return found;
    }
    let leaked: &'static S = Box::leak(Box::new(S::default()));
    defaults.push(leaked);
    leaked
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::PolicySpec;

    /// Every key has exactly one owner, every settings type refuses unknown keys, needs none of
    /// its keys, and its defaults are valid.
    #[test]
    fn registered_settings_are_well_formed() {
        let mut generator = SchemaGenerator::default();
        let global = PolicySpec::json_schema(&mut generator);
        let mut keys: Vec<String> = global
            .get("properties")
            .and_then(Value::as_object)
            .map(|p| p.keys().cloned().collect())
            .unwrap_or_default();
        let mut owners = 0;
        for rule in super::super::registry() {
            let Some(d) = rule.settings() else { continue };
            owners += 1;
            let schema = (d.schema)(&mut generator);
            assert_eq!(
                schema.get("additionalProperties"),
                Some(&Value::Bool(false)),
                "{}: settings need #[serde(deny_unknown_fields)]",
                rule.id()
            );
            assert!(
                schema.get("required").is_none(),
                "{}: every settings key needs #[serde(default)]",
                rule.id()
            );
            assert!(!d.keys().is_empty(), "{}", rule.id());
            keys.extend(d.keys());
            assert!((d.default)().validated().is_ok(), "{}", rule.id());
        }
        assert!(owners >= 4);
        let count = keys.len();
        keys.sort_unstable();
        keys.dedup();
        assert_eq!(keys.len(), count, "a spec key with two owners");
    }

    #[test]
    fn typed_access_and_replacement() {
        use crate::rules::run_as_non_root::Settings;
        let mut set = SettingsSet::default();
        assert_eq!(set.get::<Settings>(), &Settings::default());
        let value = Settings {
            run_as_user: Some(7),
            ..Settings::default()
        };
        set.set(Box::new(value.clone()));
        assert_eq!(set.get::<Settings>(), &value);
        assert_eq!(set.clone().get::<Settings>(), &value);
        // A type no rule registers reads as its default.
        #[derive(Debug, Clone, Default, PartialEq, serde::Deserialize, schemars::JsonSchema)]
        struct Unregistered {
            #[serde(default)]
            x: u8,
        }
        impl RuleSettings for Unregistered {}
        assert_eq!(set.get::<Unregistered>(), &Unregistered::default());
    }
}
