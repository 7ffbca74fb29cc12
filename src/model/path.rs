//! Field paths inside an object, shared by changes, the applier and results
//! (`spec.template.spec.containers[0].securityContext`).

use std::fmt;

use serde_json::{Map, Value};

/// [`Value::pointer`] without its allocations: serde_json builds two `String`s per step of the
/// pointer (undoing `~1` and `~0`) even when there is nothing to undo, and the rules ask a
/// few dozen pointers of every object. Same answers: RFC 6901 steps, `~1` is `/`, `~0` is
/// `~`, an array index is decimal without `+` or a leading zero.
pub trait Pointer {
    /// The value at `pointer` (`/metadata/annotations`), as [`Value::pointer`] finds it.
    fn at(&self, pointer: &str) -> Option<&Value>;
}

impl Pointer for Value {
    fn at(&self, pointer: &str) -> Option<&Value> {
        if pointer.is_empty() {
            return Some(self);
        }
        let mut rest = pointer.strip_prefix('/')?;
        // Steps found byte by byte (`str::split` sets up a searcher per pointer, which costs
        // more than these short pointers), escapes looked for once.
        let escaped = rest.as_bytes().contains(&b'~');
        let mut target = self;
        loop {
            let end = rest.bytes().position(|b| b == b'/');
            let step = &rest[..end.unwrap_or(rest.len())];
            target = if escaped && step.contains('~') {
                step_into(target, &step.replace("~1", "/").replace("~0", "~"))?
            } else {
                step_into(target, step)?
            };
            match end {
                Some(i) => rest = &rest[i + 1..],
                None => return Some(target),
            }
        }
    }
}

/// Mappings up to this many keys are searched key by key: cheaper than hashing the key
/// (serde_json's map hashes with SipHash), and most of a manifest's mappings are small.
const SMALL_MAP: usize = 8;

/// `map.get(key)`, searching a small mapping instead of hashing.
#[inline]
pub fn key_get<'v>(map: &'v Map<String, Value>, key: &str) -> Option<&'v Value> {
    if map.len() <= SMALL_MAP {
        map.iter().find_map(|(k, v)| (k == key).then_some(v))
    } else {
        map.get(key)
    }
}

/// `map.get_mut(key)`, searching a small mapping instead of hashing.
#[inline]
pub fn key_get_mut<'v>(map: &'v mut Map<String, Value>, key: &str) -> Option<&'v mut Value> {
    if map.len() <= SMALL_MAP {
        map.iter_mut().find_map(|(k, v)| (k == key).then_some(v))
    } else {
        map.get_mut(key)
    }
}

/// [`Value::get`] with a key: a small mapping is searched instead of hashed ([`key_get`]).
pub trait Field {
    /// The value under `key` when this is a mapping that has it.
    fn field(&self, key: &str) -> Option<&Value>;
}

impl Field for Value {
    #[inline]
    fn field(&self, key: &str) -> Option<&Value> {
        match self {
            Value::Object(map) => key_get(map, key),
            _ => None,
        }
    }
}

fn step_into<'v>(target: &'v Value, step: &str) -> Option<&'v Value> {
    match target {
        Value::Object(map) => key_get(map, step),
        Value::Array(list) => {
            if step.starts_with('+') || (step.starts_with('0') && step.len() != 1) {
                None
            } else {
                list.get(step.parse::<usize>().ok()?)
            }
        }
        _ => None,
    }
}

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
        self.with(Seg::Key(key.to_string()))
    }

    /// This path and one more step, in one allocation (a clone then a push would grow it).
    fn with(&self, seg: Seg) -> Self {
        let mut steps = Vec::with_capacity(self.0.len() + 1);
        steps.extend(self.0.iter().cloned());
        steps.push(seg);
        FieldPath(steps)
    }

    /// This path extended by an index.
    pub fn index(&self, i: usize) -> Self {
        self.with(Seg::Index(i))
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
                (Seg::Key(k), Value::Object(m)) => key_get(m, k)?,
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
                // The key is copied only when it is added.
                (Seg::Key(k), Value::Object(m)) => {
                    if key_get(m, k).is_some() {
                        key_get_mut(m, k).expect("the key is there")
                    } else {
                        m.entry(k.clone()).or_insert(Value::Null)
                    }
                }
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

    /// A small mapping is searched, a larger one hashed: the same answers as `Map::get`.
    #[test]
    fn key_lookups_answer_as_the_map_does() {
        for n in [0, 1, 7, 8, 9, 30] {
            let mut map = Map::new();
            for i in 0..n {
                map.insert(format!("k{i}"), json!(i));
            }
            let value = Value::Object(map.clone());
            for key in ["k0", "k7", "k8", "k29", "nope", ""] {
                assert_eq!(key_get(&map, key), map.get(key), "{n} keys, {key}");
                assert_eq!(value.field(key), value.get(key), "{n} keys, {key}");
                let mut copy = map.clone();
                let want = copy.get(key).cloned();
                assert_eq!(key_get_mut(&mut copy, key).map(|v| v.clone()), want);
            }
        }
        assert_eq!(json!([1]).field("0"), None);
        let path = FieldPath::parse("a.b").unwrap();
        let mut v = json!({"a": {"b": 1, "c": 2}});
        *path.get_or_create(&mut v).unwrap() = json!(3);
        assert_eq!(v, json!({"a": {"b": 3, "c": 2}}));
        let mut v = json!({"a": {"c": 2}});
        *path.get_or_create(&mut v).unwrap() = json!(3);
        assert_eq!(v, json!({"a": {"c": 2, "b": 3}}));
    }

    #[test]
    fn pointer_answers_as_serde_json_does() {
        let v = json!({
            "a": {"b/c": 1, "d~e": 2, "": {"": 3}, "0": "zero"},
            "list": [10, 11, {"x": [true]}],
            "n": null,
        });
        let pointers = [
            "",
            "/",
            "/a",
            "/a/b~1c",
            "/a/d~0e",
            "/a/d~e",
            "/a//",
            "/a/0",
            "/list/0",
            "/list/2/x/0",
            "/list/01",
            "/list/+1",
            "/list/-1",
            "/list/3",
            "/list/x",
            "/n",
            "/n/x",
            "a",
            "/missing",
            "/a/b~1c/z",
            "/list/1 ",
            "/list/00",
            "/a/~01",
        ];
        for p in pointers {
            assert_eq!(v.at(p), v.pointer(p), "{p:?}");
        }
    }

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
