//! Writes JSON values as YAML text that any Kubernetes reader gives back unchanged: block style,
//! and quoting for every string a YAML 1.1 or 1.2 reader could take for something else.

use serde_json::Value;

use super::resolve::plain_is_safe;

/// How new block content is laid out.
#[derive(Debug, Clone, Copy)]
pub struct Layout {
    /// Spaces per nesting level.
    pub indent_step: usize,
    /// Sequences under a key start their dashes at the key's column (kubectl/Helm style).
    pub compact_sequences: bool,
    /// The line ending: `"\n"` or `"\r\n"`.
    pub newline: &'static str,
}

impl Default for Layout {
    fn default() -> Self {
        Layout {
            indent_step: 2,
            compact_sequences: true,
            newline: "\n",
        }
    }
}

/// A scalar (or empty collection) as YAML text; strings are quoted when plain would mislead.
pub fn scalar(value: &Value) -> String {
    match value {
        Value::Null => "null".to_string(),
        Value::Bool(b) => b.to_string(),
        Value::Number(n) => n.to_string(),
        Value::String(s) => {
            if plain_is_safe(s) {
                s.clone()
            } else {
                double_quoted(s)
            }
        }
        Value::Array(a) if a.is_empty() => "[]".to_string(),
        Value::Object(o) if o.is_empty() => "{}".to_string(),
        other => flow(other),
    }
}

/// True for a character that must not be written raw inside a quoted YAML scalar: everything
/// outside YAML's printable set (C0 controls but tab, DEL, C1 controls, U+FFFE, U+FFFF), the
/// characters YAML 1.1 readers (go-yaml, so Kubernetes) take as line breaks (NEL U+0085, U+2028,
/// U+2029), and the byte order mark U+FEFF, which may not appear inside a document.
pub fn needs_escape(c: char) -> bool {
    matches!(
        c,
        '\0'..='\x08'
            | '\x0a'..='\x1f'
            | '\x7f'..='\u{9f}'
            | '\u{2028}'
            | '\u{2029}'
            | '\u{feff}'
            | '\u{fffe}'
            | '\u{ffff}'
    )
}

/// A YAML double-quoted scalar that every YAML 1.1 and 1.2 reader gives back as `s`, and that is
/// also a JSON string literal (so JSON input stays JSON): `"` and `\\` escaped, `\\n`, `\\t`, `\\r`,
/// `\\b`, `\\f` as in JSON, and every other character of [`needs_escape`] as `\\uXXXX`. A JSON
/// writer leaves NEL, U+2028/2029 and the C1 controls raw, which YAML readers fold into spaces or
/// refuse; `\\uXXXX` means the same character to both.
pub fn double_quoted(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    push_double_quoted(&mut out, s);
    out
}

fn push_double_quoted(out: &mut String, s: &str) {
    out.push('"');
    // Runs of characters written as they are go in one piece; printable ASCII is passed over
    // byte by byte, anything else looked at as a character.
    let bytes = s.as_bytes();
    let mut run = 0;
    let mut i = 0;
    while i < bytes.len() {
        let b = bytes[i];
        if (0x20..0x7f).contains(&b) && b != b'"' && b != b'\\' {
            i += 1;
            continue;
        }
        let c = s[i..].chars().next().expect("a character starts here");
        let at = i;
        i += c.len_utf8();
        let escape = match c {
            '"' => "\\\"",
            '\\' => "\\\\",
            '\n' => "\\n",
            '\t' => "\\t",
            '\r' => "\\r",
            '\x08' => "\\b",
            '\x0c' => "\\f",
            c if needs_escape(c) => "",
            _ => continue,
        };
        out.push_str(&s[run..at]);
        run = i;
        if escape.is_empty() {
            use std::fmt::Write as _;
            let _ = write!(out, "\\u{:04x}", c as u32);
        } else {
            out.push_str(escape);
        }
    }
    out.push_str(&s[run..]);
    out.push('"');
}

/// A value in flow style: JSON, which every YAML reader accepts, with strings written by
/// [`double_quoted`].
pub fn flow(value: &Value) -> String {
    let mut out = String::new();
    push_flow(&mut out, value);
    out
}

fn push_flow(out: &mut String, value: &Value) {
    match value {
        Value::String(s) => push_double_quoted(out, s),
        Value::Array(items) => {
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                push_flow(out, item);
            }
            out.push(']');
        }
        Value::Object(map) => {
            out.push('{');
            for (i, (k, v)) in map.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                push_double_quoted(out, k);
                out.push(':');
                push_flow(out, v);
            }
            out.push('}');
        }
        other => out.push_str(&other.to_string()),
    }
}

fn is_collection(value: &Value) -> bool {
    matches!(value, Value::Array(a) if !a.is_empty())
        || matches!(value, Value::Object(o) if !o.is_empty())
}

/// One step of a path into a value: a mapping key or a sequence index.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Step {
    /// A mapping key.
    Key(String),
    /// A sequence index.
    Index(usize),
}

/// Scalars to write with the tag they were written with in the source: by path, the tag as YAML
/// text (`!!binary`, `!foo`), the source text and the meaning it has, which the value at that
/// path must still have for the tag to be written.
pub type SourceTags = std::collections::HashMap<Vec<Step>, (String, String, Value)>;

/// Where the emitter is: the path of the value being written, and the tags to keep.
struct At<'t> {
    tags: Option<&'t SourceTags>,
    path: Vec<Step>,
}

impl At<'_> {
    fn none() -> At<'static> {
        At {
            tags: None,
            path: Vec::new(),
        }
    }

    /// The scalar text for `value` at the current path: with its source tag when it still
    /// means what it meant.
    fn scalar(&self, value: &Value) -> String {
        if let Some((tag, text, meaning)) = self.tags.and_then(|t| t.get(&self.path)) {
            if meaning == value {
                // After a tag, plain text is a string to every reader; quoted only when plain
                // would not read back as that text.
                let text = if plain_after_tag(text) {
                    text.clone()
                } else {
                    double_quoted(text)
                };
                return format!("{tag} {text}");
            }
        }
        scalar(value)
    }

    /// Writes [`At::scalar`]'s text for `value` to `out` (a string without a copy of it).
    fn push_scalar(&self, out: &mut String, value: &Value) {
        match value {
            Value::String(s) if self.tags.is_none() => {
                if plain_is_safe(s) {
                    out.push_str(s);
                } else {
                    push_double_quoted(out, s);
                }
            }
            _ => out.push_str(&self.scalar(value)),
        }
    }

    fn enter(&mut self, step: Step) {
        if self.tags.is_some() {
            self.path.push(step);
        }
    }

    fn leave(&mut self) {
        if self.tags.is_some() {
            self.path.pop();
        }
    }
}

/// True when `text` can follow a tag as a plain scalar and read back as itself: one line, no
/// leading or trailing blanks, no indicator at its start, no `: ` or ` #` inside.
fn plain_after_tag(text: &str) -> bool {
    let Some(first) = text.chars().next() else {
        return false;
    };
    !"-?:,[]{}#&*!|>'\"%@`".contains(first)
        && !text.starts_with(char::is_whitespace)
        && !text.ends_with(char::is_whitespace)
        && !text.ends_with(':')
        && !text.contains(": ")
        && !text.contains(" #")
        && !text.contains(['\n', '\r', ',', '[', ']', '{', '}'])
        && !text.chars().any(needs_escape)
}

/// Writes `key: value` lines at `indent`, each line ending with the layout's newline.
pub fn mapping_entries<'v>(
    out: &mut String,
    entries: impl IntoIterator<Item = (&'v String, &'v Value)>,
    indent: usize,
    layout: &Layout,
) {
    entries_at(out, entries, indent, layout, &mut At::none());
}

fn entries_at<'v>(
    out: &mut String,
    entries: impl IntoIterator<Item = (&'v String, &'v Value)>,
    indent: usize,
    layout: &Layout,
    at: &mut At<'_>,
) {
    for (key, value) in entries {
        push_indent(out, indent);
        entry(out, key, value, indent, layout, at);
    }
}

/// The longest key YAML reads in `key: value` form (an implicit key is at most 1024 characters).
const MAX_IMPLICIT_KEY: usize = 1024;

/// Writes one `key: value` whose key starts at the current position (already indented). A key
/// whose text is too long for an implicit key (escapes can make it six times its length) is
/// written as an explicit `? key` with `:` on the next line at the same column.
fn entry(
    out: &mut String,
    key: &str,
    value: &Value,
    indent: usize,
    layout: &Layout,
    at: &mut At<'_>,
) {
    // As `scalar` writes a string, without a copy of a key that is safe plain.
    let key_text: std::borrow::Cow<'_, str> = if plain_is_safe(key) {
        key.into()
    } else {
        double_quoted(key).into()
    };
    if key_text.chars().count() < MAX_IMPLICIT_KEY {
        out.push_str(&key_text);
    } else {
        out.push_str("? ");
        out.push_str(&key_text);
        out.push_str(layout.newline);
        push_indent(out, indent);
    }
    out.push(':');
    if at.tags.is_some() {
        at.enter(Step::Key(key.to_string()));
    }
    match value {
        Value::Object(map) if !map.is_empty() => {
            out.push_str(layout.newline);
            entries_at(out, map, indent + layout.indent_step, layout, at);
        }
        Value::Array(items) if !items.is_empty() => {
            out.push_str(layout.newline);
            let dash_indent = if layout.compact_sequences {
                indent
            } else {
                indent + layout.indent_step
            };
            items_at(out, items, dash_indent, layout, at);
        }
        other => {
            out.push(' ');
            at.push_scalar(out, other);
            out.push_str(layout.newline);
        }
    }
    at.leave();
}

/// Writes `- item` lines with the dash at `indent`.
pub fn sequence_items(out: &mut String, items: &[Value], indent: usize, layout: &Layout) {
    items_at(out, items, indent, layout, &mut At::none());
}

fn items_at(out: &mut String, items: &[Value], indent: usize, layout: &Layout, at: &mut At<'_>) {
    for (n, item) in items.iter().enumerate() {
        push_indent(out, indent);
        out.push_str("- ");
        at.enter(Step::Index(n));
        match item {
            Value::Object(map) if !map.is_empty() => {
                let inner = indent + 2;
                for (i, (k, v)) in map.iter().enumerate() {
                    if i > 0 {
                        push_indent(out, inner);
                    }
                    entry(out, k, v, inner, layout, at);
                }
            }
            Value::Array(list) if !list.is_empty() => {
                out.push_str(layout.newline);
                items_at(out, list, indent + 2, layout, at);
            }
            other => {
                at.push_scalar(out, other);
                out.push_str(layout.newline);
            }
        }
        at.leave();
    }
}

/// The text that follows `key:` for a value placed in block context at `indent` (the key's
/// column): either ` scalar` or a newline and the nested block.
pub fn block_value(value: &Value, indent: usize, layout: &Layout) -> String {
    let mut out = String::new();
    match value {
        Value::Object(map) if !map.is_empty() => {
            out.push_str(layout.newline);
            mapping_entries(&mut out, map, indent + layout.indent_step, layout);
        }
        Value::Array(items) if !items.is_empty() => {
            out.push_str(layout.newline);
            let dash = if layout.compact_sequences {
                indent
            } else {
                indent + layout.indent_step
            };
            sequence_items(&mut out, items, dash, layout);
        }
        other => {
            out.push(' ');
            out.push_str(&scalar(other));
            out.push_str(layout.newline);
        }
    }
    out
}

/// A whole document body (no `---`), block style.
pub fn document(value: &Value, layout: &Layout) -> String {
    document_at(value, layout, &mut At::none())
}

/// A whole document body, block style, writing the scalars of `tags` with their source tags
/// where they still mean what they meant.
pub fn document_with_tags(value: &Value, layout: &Layout, tags: &SourceTags) -> String {
    let mut at = At {
        tags: Some(tags),
        path: Vec::new(),
    };
    document_at(value, layout, &mut at)
}

fn document_at(value: &Value, layout: &Layout, at: &mut At<'_>) -> String {
    let mut out = String::new();
    match value {
        Value::Object(map) if !map.is_empty() => entries_at(&mut out, map, 0, layout, at),
        Value::Array(items) if !items.is_empty() => items_at(&mut out, items, 0, layout, at),
        other => {
            at.push_scalar(&mut out, other);
            out.push_str(layout.newline);
        }
    }
    out
}

/// True when the value needs lines of its own (a non-empty mapping or sequence).
pub fn needs_block(value: &Value) -> bool {
    is_collection(value)
}

fn push_indent(out: &mut String, n: usize) {
    for _ in 0..n {
        out.push(' ');
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::yaml::tree::parse_document;
    use serde_json::json;

    #[test]
    fn strings_are_escaped_for_yaml_readers() {
        let tricky = "x\u{85}y\u{2028}z\u{2029}\u{80}\u{9f}\u{7f}\u{feff}\u{fffe}\u{ffff}\u{1}\u{1b}\t\n\r\\\"é\u{a0}😀";
        let quoted = double_quoted(tricky);
        assert_eq!(
            quoted,
            "\"x\\u0085y\\u2028z\\u2029\\u0080\\u009f\\u007f\\ufeff\\ufffe\\uffff\\u0001\\u001b\\t\\n\\r\\\\\\\"é\u{a0}😀\""
        );
        // Escapes first and last, runs written as they are between them, nothing to escape.
        assert_eq!(double_quoted("\"ab é\\"), "\"\\\"ab é\\\\\"");
        assert_eq!(double_quoted("\n\n"), "\"\\n\\n\"");
        assert_eq!(double_quoted("plain"), "\"plain\"");
        assert_eq!(double_quoted(""), "\"\"");
        // Every written character is printable and no line break: YAML reads the same string,
        // and so does JSON.
        assert!(!quoted.chars().any(needs_escape));
        assert_eq!(serde_json::from_str::<String>(&quoted).unwrap(), tricky);
        let v = json!({ tricky: [tricky, {"k": tricky}], "plain": "a\u{2028}b" });
        for text in [document(&v, &Layout::default()), flow(&v)] {
            assert!(
                !text.chars().any(|c| needs_escape(c) && c != '\n'),
                "{text:?}"
            );
            let back = parse_document(&text).unwrap().root.unwrap().to_value();
            assert_eq!(back, v, "{text}");
        }
        // ASCII text is written as a JSON writer writes it.
        let v = json!({"a": ["b\"c", 1, null, true, 1.5, {"d\\": "\u{1f}"}]});
        assert_eq!(flow(&v), serde_json::to_string(&v).unwrap());
    }

    #[test]
    fn round_trips_tricky_values() {
        let v = json!({
            "a": "on", "b": "0777", "c": 420, "d": ["ALL", "yes"], "e": {"f": {}},
            "g": [{"name": "tmp", "emptyDir": {"sizeLimit": "64Mi"}}], "h": "multi\nline", "i": "",
            "j": null, "k": 1.5, "l": "#x", "m": "a: b", "n": [[1, 2], []]
        });
        for layout in [
            Layout::default(),
            Layout {
                indent_step: 4,
                compact_sequences: false,
                newline: "\r\n",
            },
        ] {
            let text = document(&v, &layout);
            let back = parse_document(&text).unwrap().root.unwrap().to_value();
            assert_eq!(back, v, "{text}");
        }
    }

    /// Found by the `stream` fuzz target (fuzz/regressions/long-escaped-key.yaml): a plain key
    /// of 150 control characters is written with 900 more escape characters, past YAML's
    /// 1024-character limit for `key: value`, and the re-emitted document did not read back.
    #[test]
    fn keys_too_long_for_implicit_keys_are_explicit() {
        let long = "\u{19}".repeat(200);
        let plain = "k".repeat(1100);
        let v = json!({
            "a": {&long: "v", "short": 1},
            "b": [{&plain: {"x": [1, {&long: []}]}, "y": 2}],
            &plain: ["s", {"t": null}],
            "c": [[{&long: {}}]]
        });
        for layout in [
            Layout::default(),
            Layout {
                indent_step: 4,
                compact_sequences: false,
                newline: "\r\n",
            },
        ] {
            let text = document(&v, &layout);
            assert!(text.contains("? "), "{text}");
            let back = parse_document(&text).unwrap().root.unwrap().to_value();
            assert_eq!(back, v, "{text}");
        }
    }
}
