//! Checks that a patched document reads back as the intended value by walking the parser's
//! events alongside the value, without building a tree: every edited document is verified, so
//! this is on the hot path. Documents it cannot judge this way (anchors, aliases, merge keys,
//! duplicate keys) are left to the tree-based comparison. A mismatch is decisive as soon as it is
//! seen; for a document with duplicate keys that may be wrong in the safe direction (the caller
//! re-emits the document instead of keeping the edit).

use std::borrow::Cow;
use std::collections::HashSet;

use saphyr_parser::{Event, Parser, ScalarStyle, Span, Tag};
use serde_json::Value;

use super::resolve::{plain_non_string, resolve_tagged};
use super::tree::{key_of, tag_name, EndOfInput};

const MAX_DEPTH: usize = 256;

/// The fast path cannot decide; compare with a tree instead.
struct Undecided;

type Verdict = Result<bool, Undecided>;

/// `Some(true)` when `text` holds one document whose meaning equals `expected`, `Some(false)`
/// when it does not, `None` when only a tree comparison can tell (also when the parser fails:
/// the tree's reader reads some of what it refuses, as Kubernetes' reader does).
pub fn reads_back_as(text: &str, expected: &Value) -> Option<bool> {
    // The plain block style most edited documents are in is read by the fast reader.
    let source = match super::fast::read(text) {
        Some(events) => {
            #[cfg(debug_assertions)]
            same_as_parser(text, &events);
            Source::Fast(events.into_iter())
        }
        None => Source::Parser(Box::new(Parser::new_from_str(text))),
    };
    let mut events = Events {
        source,
        eof: EndOfInput::new(text),
        failed: false,
    };
    let mut docs = 0;
    let mut verdict = false;
    while let Some(event) = events.next() {
        match event {
            Event::StreamStart | Event::DocumentEnd | Event::Nothing => {}
            Event::StreamEnd => break,
            Event::DocumentStart(_) => {
                docs += 1;
                if docs > 1 {
                    return Some(false);
                }
            }
            other => {
                if let Event::Scalar(t, ScalarStyle::Plain, 0, None) = &other {
                    if t.is_empty() {
                        // An empty document has no root: never the intended object.
                        return Some(false);
                    }
                }
                match node(&mut events, other, expected, 0) {
                    Ok(true) => verdict = true,
                    // A parse error may be one the tree's reader reads go-yaml's way (a tab
                    // after `:`, `[-]`): the tree decides.
                    Ok(false) if events.failed => return None,
                    Ok(false) => return Some(false),
                    Err(Undecided) => return None,
                }
            }
        }
    }
    if events.failed {
        return None;
    }
    Some(verdict)
}

/// Checks (debug builds: every test that edits a document) that the fast reader's events are
/// the parser's.
#[cfg(debug_assertions)]
pub(crate) fn same_as_parser(text: &str, fast: &[(Event<'_>, Span)]) {
    let mut eof = EndOfInput::new(text);
    let parsed: Result<Vec<(Event<'_>, Span)>, _> = Parser::new_from_str(text)
        .map(|item| {
            item.map(|(mut event, span)| {
                eof.fix_block_scalar(&mut event, &span);
                (event, span)
            })
        })
        .collect();
    assert_eq!(
        parsed.as_deref().ok(),
        Some(fast),
        "fast reader and parser disagree on {text:?}"
    );
}

/// Where the events come from: the fast reader's list, or the parser.
enum Source<'a> {
    Fast(std::vec::IntoIter<(Event<'a>, Span)>),
    Parser(Box<Parser<'a, saphyr_parser::StrInput<'a>>>),
}

struct Events<'a> {
    source: Source<'a>,
    eof: EndOfInput<'a>,
    failed: bool,
}

impl<'a> Events<'a> {
    fn next(&mut self) -> Option<Event<'a>> {
        let parser = match &mut self.source {
            Source::Fast(events) => return events.next().map(|(event, _)| event),
            Source::Parser(parser) => parser,
        };
        match parser.next_event()? {
            Ok((mut event, span)) => {
                self.eof.fix_block_scalar(&mut event, &span);
                Some(event)
            }
            Err(_) => {
                self.failed = true;
                None
            }
        }
    }
}

/// Whether a scalar means `expected`, without building a value for a string.
fn scalar_is(text: &str, style: ScalarStyle, tag: Option<&Tag>, expected: &Value) -> bool {
    match (tag, style) {
        (Some(t), _) => resolve_tagged(text, &tag_name(t)) == *expected,
        (None, ScalarStyle::Plain) => match plain_non_string(text) {
            Some(v) => v == *expected,
            None => expected.as_str() == Some(text),
        },
        (None, _) => expected.as_str() == Some(text),
    }
}

/// The keys of a mapping seen so far: searched in order while there are few, then a set.
enum Seen<'k> {
    Few(Vec<Cow<'k, str>>),
    Many(HashSet<Cow<'k, str>>),
}

impl<'k> Seen<'k> {
    const FEW: usize = 16;

    fn len(&self) -> usize {
        match self {
            Seen::Few(v) => v.len(),
            Seen::Many(s) => s.len(),
        }
    }

    fn contains(&self, key: &str) -> bool {
        match self {
            Seen::Few(v) => v.iter().any(|k| k == key),
            Seen::Many(s) => s.contains(key),
        }
    }

    fn insert(&mut self, key: Cow<'k, str>) {
        match self {
            Seen::Few(v) if v.len() < Self::FEW => v.push(key),
            Seen::Few(v) => {
                let mut set: HashSet<Cow<'k, str>> = std::mem::take(v).into_iter().collect();
                set.insert(key);
                *self = Seen::Many(set);
            }
            Seen::Many(s) => {
                s.insert(key);
            }
        }
    }
}

fn node<'a>(events: &mut Events<'a>, event: Event<'a>, expected: &Value, depth: usize) -> Verdict {
    if depth > MAX_DEPTH {
        return Err(Undecided);
    }
    match event {
        Event::Scalar(text, style, anchor, tag) => {
            if anchor != 0 {
                return Err(Undecided);
            }
            Ok(scalar_is(&text, style, tag.as_deref(), expected))
        }
        Event::SequenceStart(anchor, _) => {
            if anchor != 0 {
                return Err(Undecided);
            }
            let Value::Array(items) = expected else {
                return Ok(false);
            };
            let mut n = 0;
            loop {
                let Some(event) = events.next() else {
                    return Ok(false);
                };
                if matches!(event, Event::SequenceEnd) {
                    return Ok(n == items.len());
                }
                let Some(item) = items.get(n) else {
                    return Ok(false);
                };
                if !node(events, event, item, depth + 1)? {
                    return Ok(false);
                }
                n += 1;
            }
        }
        Event::MappingStart(anchor, _) => {
            if anchor != 0 {
                return Err(Undecided);
            }
            let Value::Object(map) = expected else {
                return Ok(false);
            };
            // A set past a few keys: a mapping with 100k keys (annotations) must stay linear.
            let mut seen = Seen::Few(Vec::new());
            // The text's keys come in the value's order unless an edit put one elsewhere: each
            // key is first compared with the value's next one, and looked up only when it
            // differs (the same entry either way: a map's keys are distinct).
            let mut in_order = map.iter();
            loop {
                let Some(event) = events.next() else {
                    return Ok(false);
                };
                let key = match event {
                    Event::MappingEnd => return Ok(seen.len() == map.len()),
                    Event::Scalar(text, style, 0, tag) => {
                        if style == ScalarStyle::Plain && text == "<<" && tag.is_none() {
                            return Err(Undecided);
                        }
                        let tag = tag.as_deref().map(tag_name);
                        let made = match key_of(&text, style, tag.as_deref()) {
                            // A key Kubernetes' reader refuses (null): never the intended value.
                            Err(_) => return Ok(false),
                            Ok(Cow::Owned(k)) => Some(k),
                            // The key is the scalar's whole text.
                            Ok(Cow::Borrowed(_)) => None,
                        };
                        made.map_or(text, Cow::Owned)
                    }
                    _ => return Err(Undecided),
                };
                if seen.contains(&key) {
                    return Err(Undecided);
                }
                let Some(value_event) = events.next() else {
                    return Ok(false);
                };
                let want = match in_order.next() {
                    Some((k, v)) if k.as_str() == key.as_ref() => v,
                    _ => match map.get(key.as_ref()) {
                        Some(v) => v,
                        None => return Ok(false),
                    },
                };
                if !node(events, value_event, want, depth + 1)? {
                    return Ok(false);
                }
                seen.insert(key);
            }
        }
        _ => Err(Undecided),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::yaml::tree::parse_document;

    #[test]
    fn large_mappings_stay_linear() {
        // 200k keys: with a list of seen keys this took minutes; with a set, well under a second
        // in release (a few seconds in a debug build).
        let n = 200_000;
        let mut text = String::with_capacity(n * 24);
        let mut map = serde_json::Map::with_capacity(n);
        for i in 0..n {
            text.push_str(&format!("k{i}: v{i}\n"));
            map.insert(format!("k{i}"), Value::String(format!("v{i}")));
        }
        assert_eq!(reads_back_as(&text, &Value::Object(map)), Some(true));
    }

    fn tree_says(text: &str, v: &Value) -> bool {
        parse_document(text)
            .ok()
            .and_then(|d| d.root.map(|r| r.to_value()))
            .as_ref()
            == Some(v)
    }

    #[test]
    fn agrees_with_the_tree() {
        let v = serde_json::json!({"a": {"b": [1, "on", true, null], "mode": 420}, "c": "x"});
        for text in [
            "a:\n  b: [1, \"on\", on, ~]\n  mode: 0644\nc: x\n",
            "c: x\na: {mode: 0644, b: [1, 'on', yes, null]}\n",
            "a:\n  b: [1, on, on, ~]\n  mode: 0644\nc: x\n",
            "a:\n  b: [1, \"on\", on]\n  mode: 0644\nc: x\n",
            "a:\n  b: [1, \"on\", on, ~]\n  mode: 644\nc: x\n",
            "a:\n  b: [1, \"on\", on, ~]\n  mode: 0644\nc: x\nd: 1\n",
            "a:\n  b: [1, \"on\", on, ~]\n  mode: 0644\n",
            "---\n# c\na: {b: [1, \"on\", true, null], mode: !!int 420}\nc: !!str x\n...\n",
            "",
            "a: [\n",
        ] {
            assert_eq!(
                reads_back_as(text, &v),
                Some(tree_says(text, &v)),
                "{text:?}"
            );
        }
        let v = serde_json::json!({"p": 1, "q": 1, "a": 2});
        for undecided in [
            "p: &a 1\nq: *a\na: 2\n",
            "<<: {p: 1, q: 1, a: 2}\n",
            "p: 1\nq: 1\na: 2\na: 2\n",
        ] {
            assert_eq!(reads_back_as(undecided, &v), None, "{undecided:?}");
        }
        // A block scalar at the end of input without a final line break has no final "\n".
        let x = serde_json::json!({"a": "x"});
        assert_eq!(reads_back_as("a: |\n  x", &x), Some(true));
        assert_eq!(reads_back_as("a: |\n  x\n", &x), Some(false));
        // A mismatch before a duplicate key is reported as a mismatch: the caller then
        // re-emits, which is safe (the meaning is written out in full).
        assert_eq!(reads_back_as("p: 1\nq: 1\na: 1\na: 2\n", &v), Some(false));
    }
}
