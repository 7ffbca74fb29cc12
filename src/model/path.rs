//! Field paths inside an object, shared by changes, the applier and results
//! (`spec.template.spec.containers[0].securityContext`).

use std::fmt;

use serde_json::{Map, Value};

/// One step of a path.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Seg {
    /// A mapping key.
    Key(String),
    /// A sequence index.
    Index(usize),
}

/// A path from an object's root.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash)]
pub struct FieldPath(pub Vec<Seg>);

impl FieldPath {
    /// The empty path (the object itself).
    pub fn root() -> Self {
        FieldPath(Vec::new())
    }

    /// Parses a dotted path such as `spec.template` or `spec.containers[0].name`.
    pub fn parse(text: &str) -> Option<Self> {
        let mut segs = Vec::new();
        for part in text.split('.') {
            let (key, rest) = match part.find('[') {
                Some(i) => (&part[..i], &part[i..]),
                None => (part, ""),
            };
            if key.is_empty() && rest.is_empty() {
                return None;
            }
            if !key.is_empty() {
                segs.push(Seg::Key(key.to_string()));
            }
            let mut rest = rest;
            while let Some(stripped) = rest.strip_prefix('[') {
                let close = stripped.find(']')?;
                segs.push(Seg::Index(stripped[..close].parse().ok()?));
                rest = &stripped[close + 1..];
            }
            if !rest.is_empty() {
                return None;
            }
        }
        Some(FieldPath(segs))
    }

    /// This path extended by a key.
    pub fn key(&self, key: &str) -> Self {
        let mut p = self.clone();
        p.0.push(Seg::Key(key.to_string()));
        p
    }

    /// This path extended by an index.
    pub fn index(&self, i: usize) -> Self {
        let mut p = self.clone();
        p.0.push(Seg::Index(i));
        p
    }

    /// This path extended by a dotted path of keys.
    pub fn keys(&self, dotted: &str) -> Self {
        let mut p = self.clone();
        p.0.extend(dotted.split('.').map(|k| Seg::Key(k.to_string())));
        p
    }

    /// `prefix` followed by this path.
    pub fn under(&self, prefix: &FieldPath) -> Self {
        let mut p = prefix.clone();
        p.0.extend(self.0.iter().cloned());
        p
    }

    /// The value at this path, if every step exists.
    pub fn get<'v>(&self, root: &'v Value) -> Option<&'v Value> {
        let mut cur = root;
        for seg in &self.0 {
            cur = match (seg, cur) {
                (Seg::Key(k), Value::Object(m)) => m.get(k)?,
                (Seg::Index(i), Value::Array(a)) => a.get(*i)?,
                _ => return None,
            };
        }
        Some(cur)
    }

    /// The value at this path, creating missing (or null) mappings on the way.
    /// Fails when a step exists with another type.
    pub fn get_or_create<'v>(&self, root: &'v mut Value) -> Result<&'v mut Value, String> {
        let mut cur = root;
        for (n, seg) in self.0.iter().enumerate() {
            if cur.is_null() {
                *cur = match seg {
                    Seg::Key(_) => Value::Object(Map::new()),
                    Seg::Index(_) => {
                        return Err(format!(
                            "{} does not exist",
                            FieldPath(self.0[..=n].to_vec())
                        ))
                    }
                };
            }
            cur = match (seg, cur) {
                (Seg::Key(k), Value::Object(m)) => m.entry(k.clone()).or_insert(Value::Null),
                (Seg::Index(i), Value::Array(a)) => a.get_mut(*i).ok_or_else(|| {
                    format!("{} does not exist", FieldPath(self.0[..=n].to_vec()))
                })?,
                _ => {
                    return Err(format!(
                        "{} is not a {}",
                        FieldPath(self.0[..n].to_vec()),
                        if matches!(seg, Seg::Key(_)) {
                            "mapping"
                        } else {
                            "list"
                        }
                    ))
                }
            };
        }
        Ok(cur)
    }
}

impl fmt::Display for FieldPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut first = true;
        for seg in &self.0 {
            match seg {
                Seg::Key(k) => {
                    if !first {
                        f.write_str(".")?;
                    }
                    f.write_str(k)?;
                }
                Seg::Index(i) => write!(f, "[{i}]")?,
            }
            first = false;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn parse_display_get() {
        let p = FieldPath::parse("spec.containers[1].name").unwrap();
        assert_eq!(p.to_string(), "spec.containers[1].name");
        let v = json!({"spec": {"containers": [{"name": "a"}, {"name": "b"}]}});
        assert_eq!(p.get(&v), Some(&json!("b")));
        assert!(FieldPath::parse("a..b").is_none());
    }

    #[test]
    fn creates_through_null() {
        let mut v = json!({"spec": {"securityContext": null}});
        *FieldPath::parse("spec.securityContext.runAsNonRoot")
            .unwrap()
            .get_or_create(&mut v)
            .unwrap() = json!(true);
        assert_eq!(
            v,
            json!({"spec": {"securityContext": {"runAsNonRoot": true}}})
        );
        let mut w = json!({"spec": "x"});
        assert!(FieldPath::parse("spec.a")
            .unwrap()
            .get_or_create(&mut w)
            .is_err());
    }
}
