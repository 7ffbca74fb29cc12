//! Resolves YAML scalars to JSON values with the meaning Kubernetes gives them.
//!
//! Kubernetes reads YAML through sigs.k8s.io/yaml, which uses go-yaml v2: YAML 1.1 resolution, so
//! `yes`/`on`/`y` are booleans, `0644` is octal (420) and `1_000` is 1000, while any quoted scalar is
//! a string. Timestamps stay strings because go-yaml v2 decodes them into `interface{}` as text.

use serde_json::{Number, Value};

/// Resolves a plain (unquoted, untagged) scalar the way go-yaml v2 does.
pub fn resolve_plain(text: &str) -> Value {
    match text {
        "" | "~" | "null" | "Null" | "NULL" => return Value::Null,
        "y" | "Y" | "yes" | "Yes" | "YES" | "true" | "True" | "TRUE" | "on" | "On" | "ON" => {
            return Value::Bool(true)
        }
        "n" | "N" | "no" | "No" | "NO" | "false" | "False" | "FALSE" | "off" | "Off" | "OFF" => {
            return Value::Bool(false)
        }
        ".inf" | ".Inf" | ".INF" | "+.inf" | "+.Inf" | "+.INF" | "-.inf" | "-.Inf" | "-.INF"
        | ".nan" | ".NaN" | ".NAN" => {
            // JSON has no infinities or NaN; sigs.k8s.io/yaml fails on them. Keep the text.
            return Value::String(text.to_string());
        }
        _ => {}
    }
    let first = text.as_bytes()[0];
    if first.is_ascii_digit() || matches!(first, b'-' | b'+' | b'.') {
        if let Some(n) = resolve_int(text) {
            return n;
        }
        if let Some(f) = resolve_float(text) {
            return f;
        }
    }
    Value::String(text.to_string())
}

/// Integers in go-yaml v2: decimal, `0x`, `0b`, leading-zero octal, underscores allowed.
fn resolve_int(text: &str) -> Option<Value> {
    let cleaned: String;
    let plain = if text.contains('_') {
        cleaned = text.replace('_', "");
        cleaned.as_str()
    } else {
        text
    };
    let (negative, digits) = match plain.as_bytes().first()? {
        b'-' => (true, &plain[1..]),
        b'+' => (false, &plain[1..]),
        _ => (false, plain),
    };
    if digits.is_empty() {
        return None;
    }
    let prefix = digits.get(..2).map(str::to_ascii_lowercase);
    let (radix, body) = if prefix.as_deref() == Some("0x") {
        (16, &digits[2..])
    } else if prefix.as_deref() == Some("0b") {
        (2, &digits[2..])
    } else if prefix.as_deref() == Some("0o") {
        (8, &digits[2..])
    } else if digits.len() > 1 && digits.starts_with('0') {
        (8, &digits[1..])
    } else {
        (10, digits)
    };
    if body.is_empty() || !body.chars().all(|c| c.is_digit(radix)) {
        return None;
    }
    let magnitude = u128::from_str_radix(body, radix).ok()?;
    if negative {
        let v = i128::try_from(magnitude).ok()?.checked_neg()?;
        if let Ok(v) = i64::try_from(v) {
            return Some(Value::Number(Number::from(v)));
        }
        Number::from_f64(v as f64).map(Value::Number)
    } else if let Ok(v) = u64::try_from(magnitude) {
        Some(Value::Number(Number::from(v)))
    } else {
        Number::from_f64(magnitude as f64).map(Value::Number)
    }
}

/// Floats in go-yaml v2: `[-+]?(\.[0-9]+|[0-9]+(\.[0-9]*)?)([eE][-+]?[0-9]+)?`.
fn resolve_float(text: &str) -> Option<Value> {
    let plain: String = text.chars().filter(|&c| c != '_').collect();
    let b = plain.as_bytes();
    let mut i = 0;
    if matches!(b.first(), Some(b'-' | b'+')) {
        i += 1;
    }
    let int_start = i;
    while i < b.len() && b[i].is_ascii_digit() {
        i += 1;
    }
    let int_digits = i - int_start;
    if i < b.len() && b[i] == b'.' {
        i += 1;
        let s = i;
        while i < b.len() && b[i].is_ascii_digit() {
            i += 1;
        }
        if int_digits == 0 && i == s {
            return None;
        }
    } else if int_digits == 0 {
        return None;
    }
    if i < b.len() && (b[i] == b'e' || b[i] == b'E') {
        i += 1;
        if matches!(b.get(i), Some(b'-' | b'+')) {
            i += 1;
        }
        let s = i;
        while i < b.len() && b[i].is_ascii_digit() {
            i += 1;
        }
        if i == s {
            return None;
        }
    }
    if i != b.len() {
        return None;
    }
    let f: f64 = plain.parse().ok()?;
    // JSON (and sigs.k8s.io/yaml) write whole floats as integers: `1.0` is 1.
    if f.fract() == 0.0 && f.abs() < 9.0e15 {
        return Some(Value::Number(Number::from(f as i64)));
    }
    Number::from_f64(f).map(Value::Number)
}

/// Resolves a scalar carrying a core-schema tag (`!!str`, `!!int`, ...).
pub fn resolve_tagged(text: &str, suffix: &str) -> Value {
    match suffix {
        "str" | "binary" | "timestamp" => Value::String(text.to_string()),
        "null" => Value::Null,
        "bool" | "int" | "float" => match resolve_plain(text) {
            Value::String(_) => Value::String(text.to_string()),
            v => v,
        },
        _ => resolve_plain(text),
    }
}

/// A mapping key as sigs.k8s.io/yaml turns it into a JSON object key.
pub fn key_string(value: &Value) -> String {
    match value {
        Value::String(s) => s.clone(),
        Value::Null => "null".to_string(),
        other => other.to_string(),
    }
}

/// True when `text`, written as a plain scalar, would be read back as exactly the string `text`
/// by YAML 1.1 (go-yaml v2) and YAML 1.2 readers alike.
pub fn plain_is_safe(text: &str) -> bool {
    let Some(&first) = text.as_bytes().first() else {
        return false;
    };
    if text.ends_with(' ') || text.starts_with(' ') {
        return false;
    }
    if !matches!(resolve_plain(text), Value::String(_)) {
        return false;
    }
    // Indicators that start something else than a plain scalar.
    if matches!(
        first,
        b'-' | b'?'
            | b':'
            | b','
            | b'['
            | b']'
            | b'{'
            | b'}'
            | b'#'
            | b'&'
            | b'*'
            | b'!'
            | b'|'
            | b'>'
            | b'\''
            | b'"'
            | b'%'
            | b'@'
            | b'`'
            | b'.'
            | b'+'
            | b'~'
    ) {
        return false;
    }
    if first.is_ascii_digit() {
        // Quantities such as 64Mi or 500m read the same everywhere; anything else that starts
        // with a digit may be a number, a date or a sexagesimal in some YAML version.
        let digits = text.bytes().take_while(u8::is_ascii_digit).count();
        let rest = &text[digits..];
        let unit_ok = !rest.is_empty()
            && rest.bytes().all(|b| b.is_ascii_alphabetic())
            && !matches!(
                rest.as_bytes()[0],
                b'e' | b'E' | b'x' | b'X' | b'o' | b'O' | b'b' | b'B'
            );
        return unit_ok;
    }
    let lower = text.to_ascii_lowercase();
    if matches!(
        lower.as_str(),
        "y" | "n" | "yes" | "no" | "on" | "off" | "true" | "false" | "null" | "~"
    ) {
        return false;
    }
    // `:` and `@` inside a word (`nginx:1.27@sha256:…`, `http://x`) stay plain in every YAML
    // version; `: ` or a final `:` would start a mapping.
    !text.ends_with(':')
        && text.chars().all(|c| {
            c.is_ascii_alphanumeric()
                || matches!(c, '-' | '_' | '.' | '/' | '=' | '(' | ')' | '$' | ':' | '@')
        })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn yaml_one_one_meaning() {
        assert_eq!(resolve_plain("on"), json!(true));
        assert_eq!(resolve_plain("No"), json!(false));
        assert_eq!(resolve_plain("0644"), json!(420));
        assert_eq!(resolve_plain("0x1F"), json!(31));
        assert_eq!(resolve_plain("1_000"), json!(1000));
        assert_eq!(resolve_plain("-12"), json!(-12));
        assert_eq!(resolve_plain("1.5"), json!(1.5));
        assert_eq!(resolve_plain("1e3"), json!(1000));
        assert_eq!(resolve_plain("09"), json!(9));
        assert_eq!(resolve_plain("~"), Value::Null);
        assert_eq!(resolve_plain("64Mi"), json!("64Mi"));
        assert_eq!(resolve_plain("2001-12-14"), json!("2001-12-14"));
        assert_eq!(resolve_plain("1.2.3"), json!("1.2.3"));
        assert_eq!(resolve_plain("-"), json!("-"));
        assert_eq!(resolve_tagged("12", "str"), json!("12"));
    }

    #[test]
    fn plain_safety() {
        for s in [
            "RuntimeDefault",
            "ALL",
            "64Mi",
            "500m",
            "app.kubernetes.io/name",
            "tmp",
        ] {
            assert!(plain_is_safe(s), "{s}");
        }
        for s in [
            "on",
            "yes",
            "0777",
            "1e3",
            "",
            "a: b",
            "#x",
            "1.0",
            "y",
            "2001-12-14",
            "12:30",
        ] {
            assert!(!plain_is_safe(s), "{s}");
        }
    }
}
