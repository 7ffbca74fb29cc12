//! Resolves YAML scalars to JSON values with the meaning Kubernetes gives them.
//!
//! Kubernetes reads YAML through sigs.k8s.io/yaml, which uses go-yaml v2: YAML 1.1 resolution, so
//! `yes`/`on`/`y` are booleans, `0644` is octal (420) and `1_000` is 1000, while any quoted scalar is
//! a string. Timestamps stay strings because go-yaml v2 decodes them into `interface{}` as text.

use serde_json::{Number, Value};

/// Resolves a plain (unquoted, untagged) scalar the way go-yaml v2 does.
pub fn resolve_plain(text: &str) -> Value {
    plain_non_string(text).unwrap_or_else(|| Value::String(text.to_string()))
}

/// What a plain scalar means when that is not the string `text` itself (`None`: it is), without
/// allocating for the common case of a string.
pub fn plain_non_string(text: &str) -> Option<Value> {
    match text {
        "" | "~" | "null" | "Null" | "NULL" => return Some(Value::Null),
        "y" | "Y" | "yes" | "Yes" | "YES" | "true" | "True" | "TRUE" | "on" | "On" | "ON" => {
            return Some(Value::Bool(true))
        }
        "n" | "N" | "no" | "No" | "NO" | "false" | "False" | "FALSE" | "off" | "Off" | "OFF" => {
            return Some(Value::Bool(false))
        }
        // JSON has no infinities or NaN; sigs.k8s.io/yaml fails on them. Keep the text.
        ".inf" | ".Inf" | ".INF" | "+.inf" | "+.Inf" | "+.INF" | "-.inf" | "-.Inf" | "-.INF"
        | ".nan" | ".NaN" | ".NAN" => return None,
        _ => {}
    }
    let first = text.as_bytes()[0];
    if first.is_ascii_digit() || matches!(first, b'-' | b'+' | b'.') {
        if let Some(n) = resolve_int(text) {
            return Some(n);
        }
        if let Some(f) = resolve_float(text) {
            return Some(f);
        }
    }
    None
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
    // Go's JSON encoder writes a float below 1e21 without an exponent, in its shortest digits, so a
    // whole float is an integer to every JSON reader: `1.0` is 1, `9.5e15` is 9500000000000000.
    if f.fract() == 0.0 && f.abs() < 1e21 {
        let digits = format!("{f}");
        if let Ok(v) = digits.parse::<i64>() {
            return Some(Value::Number(Number::from(v)));
        }
        if let Ok(v) = digits.parse::<u64>() {
            return Some(Value::Number(Number::from(v)));
        }
    }
    Number::from_f64(f).map(Value::Number)
}

/// Resolves a tagged scalar the way go-yaml v2 does: `tag` is a core-schema suffix (`str`, `int`,
/// ...) or any other tag spelled out in full (see `tree::tag_name`).
///
/// - `!!binary` is base64 that go-yaml decodes; its bytes become a JSON string (invalid UTF-8 as
///   U+FFFD per byte, as Go's JSON encoder writes it). Invalid base64 keeps the text here;
///   [`binary_error`] reports it.
/// - A custom tag (`!foo 123`, `! on`, `!foo`) is not resolved: the value is the text, a string.
pub fn resolve_tagged(text: &str, tag: &str) -> Value {
    match tag {
        "str" | "timestamp" => Value::String(text.to_string()),
        "binary" => Value::String(decode_binary(text).unwrap_or_else(|| text.to_string())),
        "null" => Value::Null,
        "bool" | "int" | "float" => match resolve_plain(text) {
            Value::String(_) => Value::String(text.to_string()),
            v => v,
        },
        _ => Value::String(text.to_string()),
    }
}

/// The error go-yaml gives for a `!!binary` scalar that is not base64.
pub fn binary_error(text: &str) -> Option<&'static str> {
    decode_binary(text).is_none().then_some(
        "!!binary value contains invalid base64 data (Kubernetes' YAML reader rejects it)",
    )
}

/// Go's `base64.StdEncoding.DecodeString` (padding required, line breaks skipped), then the bytes
/// as Go's JSON encoder writes a string.
fn decode_binary(text: &str) -> Option<String> {
    fn sextet(c: u8) -> Option<u32> {
        Some(match c {
            b'A'..=b'Z' => c - b'A',
            b'a'..=b'z' => c - b'a' + 26,
            b'0'..=b'9' => c - b'0' + 52,
            b'+' => 62,
            b'/' => 63,
            _ => return None,
        } as u32)
    }
    let chars: Vec<u8> = text.bytes().filter(|&b| b != b'\n' && b != b'\r').collect();
    if chars.len() % 4 != 0 {
        return None;
    }
    let mut bytes = Vec::with_capacity(chars.len() / 4 * 3);
    for (i, quad) in chars.chunks(4).enumerate() {
        let last = i == chars.len() / 4 - 1;
        let pad = quad.iter().rev().take_while(|&&b| b == b'=').count();
        if pad > 2 || (pad > 0 && !last) {
            return None;
        }
        let mut n = 0u32;
        for &c in &quad[..4 - pad] {
            n = (n << 6) | sextet(c)?;
        }
        n <<= 6 * pad as u32;
        let group = [(n >> 16) as u8, (n >> 8) as u8, n as u8];
        bytes.extend_from_slice(&group[..3 - pad]);
    }
    // Go's JSON encoder writes each byte of invalid UTF-8 as U+FFFD.
    let mut out = String::with_capacity(bytes.len());
    let mut rest = &bytes[..];
    while !rest.is_empty() {
        match std::str::from_utf8(rest) {
            Ok(s) => {
                out.push_str(s);
                break;
            }
            Err(e) => {
                let good = e.valid_up_to();
                out.push_str(std::str::from_utf8(&rest[..good]).unwrap_or_default());
                out.push('\u{fffd}');
                rest = &rest[good + 1..];
            }
        }
    }
    Some(out)
}

/// True for the YAML 1.1 spellings of infinity and NaN.
pub fn is_inf_or_nan(text: &str) -> bool {
    matches!(
        text,
        ".inf"
            | ".Inf"
            | ".INF"
            | "+.inf"
            | "+.Inf"
            | "+.INF"
            | "-.inf"
            | "-.Inf"
            | "-.INF"
            | ".nan"
            | ".NaN"
            | ".NAN"
    )
}

/// A plain (unquoted, untagged) mapping key as sigs.k8s.io/yaml turns it into a JSON object key,
/// or why it cannot: go-yaml v2 reads the key as null, bool, int, float or string, and
/// sigs.k8s.io/yaml writes ints in decimal, floats as Go's `FormatFloat(f, 'g', -1, 32)` and
/// rejects null and uint64 keys.
pub fn plain_key(text: &str) -> Result<String, String> {
    if is_inf_or_nan(text) {
        let key = if text.starts_with('-') {
            "-.inf"
        } else if text.ends_with(['n', 'N']) {
            ".nan"
        } else {
            ".inf"
        };
        return Ok(key.to_string());
    }
    match resolve_plain(text) {
        Value::Null if text.is_empty() => Err(
            "null key (an empty key): Kubernetes' YAML reader cannot read a mapping key that is \
             null"
                .into(),
        ),
        Value::Null => Err(format!(
            "null key `{text}`: Kubernetes' YAML reader cannot read a mapping key that is null; \
             quote it if a string is meant"
        )),
        Value::String(s) => Ok(s),
        Value::Bool(b) => Ok(b.to_string()),
        Value::Number(n) => {
            let as_int = resolve_int(text).is_some();
            if as_int && n.as_i64().is_some() {
                Ok(n.to_string())
            } else if as_int && n.as_u64().is_some() {
                Err(format!(
                    "key {text} is above 2^63-1: Kubernetes' YAML reader cannot read it as a \
                     mapping key; quote it"
                ))
            } else {
                Ok(go_float32_g(n.as_f64().unwrap_or_default()))
            }
        }
        other => Ok(other.to_string()),
    }
}

/// Go's `strconv.FormatFloat(f, 'g', -1, 32)`: the shortest digits of `f` as an f32, with an
/// exponent (`1e+06`, `1.5e-05`) when the decimal exponent is below -4 or at least 6.
fn go_float32_g(f: f64) -> String {
    let f = f as f32;
    if f == 0.0 {
        return "0".to_string();
    }
    // `{:e}` gives the shortest round-trip digits: "9.5e15", "-1.2345679e8".
    let sci = format!("{f:e}");
    let (mantissa, exp) = sci.split_once('e').unwrap_or((&sci, "0"));
    let exp: i32 = exp.parse().unwrap_or(0);
    let negative = mantissa.starts_with('-');
    let digits: String = mantissa.chars().filter(char::is_ascii_digit).collect();
    let nd = digits.len() as i32;
    let sign = if negative { "-" } else { "" };
    if !(-4..6).contains(&exp) {
        let mut m = digits[..1].to_string();
        if nd > 1 {
            m.push('.');
            m.push_str(&digits[1..]);
        }
        let esign = if exp < 0 { '-' } else { '+' };
        return format!("{sign}{m}e{esign}{:02}", exp.abs());
    }
    let dp = exp + 1;
    let s = if dp <= 0 {
        format!("0.{}{}", "0".repeat((-dp) as usize), digits)
    } else if dp >= nd {
        format!("{}{}", digits, "0".repeat((dp - nd) as usize))
    } else {
        format!("{}.{}", &digits[..dp as usize], &digits[dp as usize..])
    };
    format!("{sign}{s}")
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
    // The characters a plain scalar may have here (no space, so none at either end either),
    // first: it rejects most long strings before the checks below build anything. (A string that starts with a digit and
    // passes the unit check below has only these characters too.)
    if !plain_characters(text) {
        return false;
    }
    if !matches!(plain_non_string(text), None | Some(Value::String(_))) {
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
    if [
        "y", "n", "yes", "no", "on", "off", "true", "false", "null", "~",
    ]
    .iter()
    .any(|word| text.eq_ignore_ascii_case(word))
    {
        return false;
    }
    // `: ` or a final `:` would start a mapping.
    !text.ends_with(':')
}

/// Only characters that stay plain inside a word in every YAML version: `:` and `@` inside a
/// word (`nginx:1.27@sha256:…`, `http://x`) included, no space.
fn plain_characters(text: &str) -> bool {
    text.bytes().all(|c| {
        c.is_ascii_alphanumeric()
            || matches!(
                c,
                b'-' | b'_' | b'.' | b'/' | b'=' | b'(' | b')' | b'$' | b':' | b'@'
            )
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

    /// Item 4 of issue 13: tags read as go-yaml v2 reads them (checked against sigs.k8s.io/yaml).
    #[test]
    fn tags_read_as_kubernetes_reads_them() {
        assert_eq!(resolve_tagged("aGVsbG8=", "binary"), json!("hello"));
        assert_eq!(resolve_tagged("aGVs\nbG8=\n", "binary"), json!("hello"));
        assert_eq!(resolve_tagged("/w==", "binary"), json!("\u{fffd}"));
        assert_eq!(
            resolve_tagged("wMCA", "binary"),
            json!("\u{fffd}\u{fffd}\u{fffd}")
        );
        assert_eq!(resolve_tagged("", "binary"), json!(""));
        assert!(binary_error("aGVsbG8").is_some());
        assert!(binary_error("aGVsbG8=").is_none());
        assert_eq!(resolve_tagged("123", "!foo"), json!("123"));
        assert_eq!(resolve_tagged("on", "!foo"), json!("on"));
        assert_eq!(resolve_tagged("", "!x"), json!(""));
        assert_eq!(resolve_tagged("on", "!"), json!("on"));
        assert_eq!(resolve_tagged("12", "foo"), json!("12"));
        assert_eq!(resolve_tagged("12", "int"), json!(12));
        assert_eq!(resolve_tagged("", "null"), Value::Null);
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
