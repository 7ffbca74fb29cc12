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

/// A JSON string literal, which is also a valid YAML double-quoted scalar.
pub fn double_quoted(s: &str) -> String {
    serde_json::to_string(s).unwrap_or_else(|_| "\"\"".to_string())
}

/// A value in flow style (JSON, which every YAML reader accepts).
pub fn flow(value: &Value) -> String {
    serde_json::to_string(value).unwrap_or_else(|_| "null".to_string())
}

fn is_collection(value: &Value) -> bool {
    matches!(value, Value::Array(a) if !a.is_empty())
        || matches!(value, Value::Object(o) if !o.is_empty())
}

/// Writes `key: value` lines at `indent`, each line ending with the layout's newline.
pub fn mapping_entries<'v>(
    out: &mut String,
    entries: impl IntoIterator<Item = (&'v String, &'v Value)>,
    indent: usize,
    layout: &Layout,
) {
    for (key, value) in entries {
        push_indent(out, indent);
        entry(out, key, value, indent, layout);
    }
}

/// Writes one `key: value` whose key starts at the current position (already indented).
fn entry(out: &mut String, key: &str, value: &Value, indent: usize, layout: &Layout) {
    out.push_str(&scalar(&Value::String(key.to_string())));
    out.push(':');
    match value {
        Value::Object(map) if !map.is_empty() => {
            out.push_str(layout.newline);
            mapping_entries(out, map, indent + layout.indent_step, layout);
        }
        Value::Array(items) if !items.is_empty() => {
            out.push_str(layout.newline);
            let dash_indent = if layout.compact_sequences {
                indent
            } else {
                indent + layout.indent_step
            };
            sequence_items(out, items, dash_indent, layout);
        }
        other => {
            out.push(' ');
            out.push_str(&scalar(other));
            out.push_str(layout.newline);
        }
    }
}

/// Writes `- item` lines with the dash at `indent`.
pub fn sequence_items(out: &mut String, items: &[Value], indent: usize, layout: &Layout) {
    for item in items {
        push_indent(out, indent);
        out.push_str("- ");
        match item {
            Value::Object(map) if !map.is_empty() => {
                let inner = indent + 2;
                for (i, (k, v)) in map.iter().enumerate() {
                    if i > 0 {
                        push_indent(out, inner);
                    }
                    entry(out, k, v, inner, layout);
                }
            }
            Value::Array(list) if !list.is_empty() => {
                out.push_str(layout.newline);
                sequence_items(out, list, indent + 2, layout);
            }
            other => {
                out.push_str(&scalar(other));
                out.push_str(layout.newline);
            }
        }
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
    let mut out = String::new();
    match value {
        Value::Object(map) if !map.is_empty() => mapping_entries(&mut out, map, 0, layout),
        Value::Array(items) if !items.is_empty() => sequence_items(&mut out, items, 0, layout),
        other => {
            out.push_str(&scalar(other));
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
}
