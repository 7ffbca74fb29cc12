//! A rule's settings: a serde + schemars type in the rule's own module whose fields are keys of the
//! HardeningPolicy `spec` (wire format `spec.runAsUser`, not `spec.runAsNonRoot.runAsUser`), with
//! its own validation. The rule hands a [`SettingsDescriptor`] to the registry
//! (`rules::Rule::settings`); the policy schema, the spec reader, the ConfigMap string coercion,
//! the Argo CD parameter names, function.yaml's OpenAPI and the npm TypeScript types are all
//! generated from the registry's descriptors (in `policy`).
//!
//! These types live in `config`, below `rules`: a rule's `Settings` implements [`RuleSettings`]
//! and a [`PolicySpec`](super::PolicySpec) stores them type-erased ([`SettingsSet`]), so neither
//! needs the registry.

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
pub struct SettingsSet(pub(crate) Vec<Box<dyn AnySettings>>);

impl Clone for SettingsSet {
    fn clone(&self) -> Self {
        SettingsSet(self.0.iter().map(|s| s.clone_box()).collect())
    }
}

impl Default for SettingsSet {
    /// No value: every type reads as its default.
    fn default() -> Self {
        SettingsSet(Vec::new())
    }
}

impl SettingsSet {
    /// One value per descriptor, in their order: the value this set holds for its type, else
    /// the type's default; then the values of types no descriptor names.
    pub fn completed(&self, descriptors: impl IntoIterator<Item = SettingsDescriptor>) -> Self {
        let mut rest: Vec<Box<dyn AnySettings>> = self.0.iter().map(|s| s.clone_box()).collect();
        let mut all = Vec::new();
        for d in descriptors {
            let id = (d.type_id)();
            match rest.iter().position(|s| s.as_any().type_id() == id) {
                Some(i) => all.push(rest.remove(i)),
                None => all.push((d.default)()),
            }
        }
        all.extend(rest);
        SettingsSet(all)
    }

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

    #[derive(Debug, Clone, Default, PartialEq, serde::Deserialize, schemars::JsonSchema)]
    #[serde(deny_unknown_fields)]
    struct One {
        #[serde(default)]
        x: u8,
    }
    impl RuleSettings for One {}

    #[derive(Debug, Clone, Default, PartialEq, serde::Deserialize, schemars::JsonSchema)]
    struct Two {
        #[serde(default)]
        y: u8,
    }
    impl RuleSettings for Two {
        fn validate(&self) -> Result<Self, Error> {
            Ok(Two { y: self.y.max(1) })
        }
    }

    #[test]
    fn typed_access_and_replacement() {
        let mut set = SettingsSet::default();
        assert_eq!(set.get::<One>(), &One::default());
        set.set(Box::new(One { x: 7 }));
        assert_eq!(set.get::<One>(), &One { x: 7 });
        assert_eq!(set.clone().get::<One>(), &One { x: 7 });
        set.set(Box::new(One { x: 8 }));
        assert_eq!(set.get::<One>(), &One { x: 8 });
        // A type the set holds no value of reads as its default.
        assert_eq!(set.get::<Two>(), &Two::default());
    }

    #[test]
    fn completed_holds_one_value_per_descriptor_then_validates() {
        let mut set = SettingsSet::default();
        set.set(Box::new(One { x: 3 }));
        let full = set.completed([
            SettingsDescriptor::of::<Two>(),
            SettingsDescriptor::of::<One>(),
        ]);
        assert_eq!(full.0.len(), 2);
        assert_eq!(full.get::<One>(), &One { x: 3 });
        assert_eq!(full.get::<Two>(), &Two { y: 0 });
        assert_eq!(full.validated().unwrap().get::<Two>(), &Two { y: 1 });
        let d = SettingsDescriptor::of::<One>();
        assert_eq!(d.keys(), vec!["x".to_string()]);
        let parsed = (d.parse)(serde_json::json!({"x": 4})).unwrap();
        assert_eq!(parsed.as_any().downcast_ref::<One>(), Some(&One { x: 4 }));
        assert!((d.parse)(serde_json::json!({"z": 4})).is_err());
    }
}
