//! The KRM functions spec's own types (`ResourceList`, `Result`), typed. User objects (a list's
//! items, a result's values) stay `serde_json::Value`: a typed round trip would drop unknown
//! fields. A leaf module: `engine` reads lists with [`ResourceList`], `change` writes results
//! with [`Result`].

use serde::{Deserialize, Deserializer, Serialize};
use serde_json::Value;

/// Whether a field is there, and as what (without copying its value).
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub enum Field {
    /// No such key.
    #[default]
    Absent,
    /// The key with `null`.
    Null,
    /// The key with a sequence.
    Seq,
    /// The key with anything else.
    Other,
}

fn field<'de, D: Deserializer<'de>>(d: D) -> std::result::Result<Field, D::Error> {
    struct Kind;
    impl<'de> serde::de::Visitor<'de> for Kind {
        type Value = Field;
        fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.write_str("any value")
        }
        fn visit_unit<E>(self) -> std::result::Result<Field, E> {
            Ok(Field::Null)
        }
        fn visit_none<E>(self) -> std::result::Result<Field, E> {
            Ok(Field::Null)
        }
        fn visit_some<D: Deserializer<'de>>(self, d: D) -> std::result::Result<Field, D::Error> {
            d.deserialize_any(Kind)
        }
        fn visit_seq<A: serde::de::SeqAccess<'de>>(
            self,
            mut seq: A,
        ) -> std::result::Result<Field, A::Error> {
            while seq.next_element::<serde::de::IgnoredAny>()?.is_some() {}
            Ok(Field::Seq)
        }
        fn visit_map<A: serde::de::MapAccess<'de>>(
            self,
            mut map: A,
        ) -> std::result::Result<Field, A::Error> {
            while map
                .next_entry::<serde::de::IgnoredAny, serde::de::IgnoredAny>()?
                .is_some()
            {}
            Ok(Field::Other)
        }
        fn visit_bool<E>(self, _: bool) -> std::result::Result<Field, E> {
            Ok(Field::Other)
        }
        fn visit_i64<E>(self, _: i64) -> std::result::Result<Field, E> {
            Ok(Field::Other)
        }
        fn visit_u64<E>(self, _: u64) -> std::result::Result<Field, E> {
            Ok(Field::Other)
        }
        fn visit_f64<E>(self, _: f64) -> std::result::Result<Field, E> {
            Ok(Field::Other)
        }
        fn visit_str<E>(self, _: &str) -> std::result::Result<Field, E> {
            Ok(Field::Other)
        }
    }
    d.deserialize_any(Kind)
}

/// A `ResourceList` as the engine reads its envelope (`config.kubernetes.io/v1`): the items and
/// earlier results are only looked at for what they are ([`Field`]); the items are read one by
/// one, as documents of their own or as values.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ResourceList<'v> {
    /// `apiVersion` (a string, or the list is not one).
    pub api_version: &'v str,
    /// `kind`.
    pub kind: &'v str,
    /// The function's settings (`null` reads as none).
    #[serde(default)]
    pub function_config: Option<Value>,
    /// `items`.
    #[serde(default, deserialize_with = "field")]
    pub items: Field,
    /// `results` of earlier functions (or of an earlier run).
    #[serde(default, deserialize_with = "field")]
    pub results: Field,
}

impl<'v> ResourceList<'v> {
    /// Reads a list's envelope; `None` when `apiVersion` or `kind` is not a string.
    pub fn of(value: &'v Value) -> Option<Self> {
        ResourceList::deserialize(value).ok()
    }
}

/// A function result (the spec's `Result`), in the spec's field order.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Result<'r> {
    /// For people.
    pub message: &'r str,
    /// `info`, `warning` or `error`.
    pub severity: &'r str,
    /// The object concerned.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub resource_ref: Option<ResourceRef<'r>>,
    /// The field concerned.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub field: Option<ResultField<'r>>,
    /// The file of the object.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub file: Option<File<'r>>,
    /// `rule: <id>`.
    pub tags: Tags<'r>,
    /// Not in the spec (readers ignore unknown keys): the paths of a grouped result.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub field_paths: Option<Vec<&'r str>>,
}

/// A result's `resourceRef`.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ResourceRef<'r> {
    /// apiVersion.
    pub api_version: &'r str,
    /// kind.
    pub kind: &'r str,
    /// name.
    pub name: &'r str,
    /// namespace, when set.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub namespace: Option<&'r str>,
}

/// A result's `field`.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ResultField<'r> {
    /// The field path.
    pub path: &'r str,
    /// Its value before.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub current_value: Option<&'r Value>,
    /// The value proposed (or set).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub proposed_value: Option<&'r Value>,
}

/// A result's `file`.
#[derive(Debug, Serialize)]
pub struct File<'r> {
    /// The path.
    pub path: &'r str,
}

/// A result's `tags`.
#[derive(Debug, Serialize)]
pub struct Tags<'r> {
    /// The rule id.
    pub rule: &'r str,
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn a_list_envelope_is_read_without_its_items() {
        let v = json!({"apiVersion": "config.kubernetes.io/v1", "kind": "ResourceList",
            "items": null, "functionConfig": null, "other": 1});
        let l = ResourceList::of(&v).unwrap();
        assert_eq!(
            (l.api_version, l.kind),
            ("config.kubernetes.io/v1", "ResourceList")
        );
        assert_eq!((l.items, l.results), (Field::Null, Field::Absent));
        assert!(l.function_config.is_none());
        let v = json!({"apiVersion": "v1", "kind": "ResourceList", "items": [{"a": [1]}],
            "results": [], "functionConfig": {"spec": {}}});
        let l = ResourceList::of(&v).unwrap();
        assert_eq!((l.items, l.results), (Field::Seq, Field::Seq));
        assert_eq!(l.function_config, Some(json!({"spec": {}})));
        assert!(ResourceList::of(&json!({"apiVersion": 1, "kind": "ResourceList"})).is_none());
        assert!(ResourceList::of(&json!({"apiVersion": "v1"})).is_none());
    }

    #[test]
    fn a_result_is_written_in_the_spec_order() {
        let current = json!(true);
        let r = Result {
            message: "m",
            severity: "info",
            resource_ref: Some(ResourceRef {
                api_version: "v1",
                kind: "Pod",
                name: "p",
                namespace: None,
            }),
            field: Some(ResultField {
                path: "spec",
                current_value: Some(&current),
                proposed_value: None,
            }),
            file: None,
            tags: Tags { rule: "r" },
            field_paths: None,
        };
        assert_eq!(
            serde_json::to_string(&r).unwrap(),
            r#"{"message":"m","severity":"info","resourceRef":{"apiVersion":"v1","kind":"Pod","name":"p"},"field":{"path":"spec","currentValue":true},"tags":{"rule":"r"}}"#
        );
    }
}
