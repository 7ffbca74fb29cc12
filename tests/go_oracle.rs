//! Differential test against Kubernetes' own YAML reader: sigs.k8s.io/yaml over go-yaml v2, in the
//! small Go program tests/oracle/main.go that scripts/oracle-setup.sh builds from Debian's
//! golang-k8s-sigs-yaml-dev.
//!
//! For every document of tests/corpus, every golden case's input and expected output, and a
//! generated set of tricky scalars and structures:
//! - the tool's reading (`parse_document(..).root.to_value()`) is the Go reader's, and the tool
//!   rejects what the Go reader rejects (kubectl's strict decoding: duplicate keys too);
//! - the tool's output means to the Go reader what the input meant: every input field keeps its
//!   value (images may only gain a digest), generated PodDisruptionBudgets aside.
//!
//! The oracle is `$KUBE_HARDEN_GO_ORACLE`, else `${XDG_CACHE_HOME:-~/.cache}/kube-harden/oracle`.
//! Without it the tests are reported as ignored with the reason, or fail when
//! `KUBE_HARDEN_E2E_REQUIRED=1`.

#[path = "support/leaves.rs"]
mod leaves;
#[path = "support/trials.rs"]
mod trials;
use leaves::{contains, is_generated, pinned_from};

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use kube_harden::config::DigestHandle;
use kube_harden::digest::{DigestSource, ImageRef, Platform, ResolveError};
use kube_harden::yaml::split::split_documents;
use kube_harden::yaml::tree::parse_document;
use kube_harden::{process, Options};
use serde_json::Value;

/// `$KUBE_HARDEN_GO_ORACLE`, else `${XDG_CACHE_HOME:-~/.cache}/kube-harden/oracle`, or why it is
/// missing.
fn find_oracle() -> Result<PathBuf, String> {
    let path = std::env::var_os("KUBE_HARDEN_GO_ORACLE")
        .map(PathBuf::from)
        .or_else(|| {
            let cache = std::env::var_os("XDG_CACHE_HOME")
                .map(PathBuf::from)
                .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache")))?;
            Some(cache.join("kube-harden/oracle"))
        });
    match path {
        Some(p) if p.is_file() => Ok(p),
        other => Err(format!(
            "the Go oracle is not built ({}); run `bash scripts/oracle-setup.sh` and set \
             KUBE_HARDEN_GO_ORACLE to the path it prints",
            other.map_or_else(|| "no path".to_string(), |p| p.display().to_string())
        )),
    }
}

/// The oracle; the ORACLE probe has checked it is there before a test runs.
fn oracle() -> Option<PathBuf> {
    Some(find_oracle().unwrap_or_else(|why| panic!("{why}")))
}

/// Without the oracle the tests are ignored with the reason, or fail when
/// `KUBE_HARDEN_E2E_REQUIRED` is set.
const ORACLE: trials::Needs = trials::Needs::e2e(|| find_oracle().map(|_| ()));

/// What the Go reader makes of one document.
#[derive(Debug, Clone, PartialEq)]
enum Go {
    /// Read, with the strict reader's complaint if it has one.
    Value(Value, Option<String>),
    /// Not read.
    Error(String),
}

impl Go {
    /// The meaning kubectl's strict decoding gives, or its error.
    fn strict(&self) -> Result<&Value, String> {
        match self {
            Go::Value(v, None) => Ok(v),
            Go::Value(_, Some(e)) | Go::Error(e) => Err(e.clone()),
        }
    }
}

/// A document as kubectl hands it to the YAML reader: its splitter drops the `---` line.
fn kubectl_document(doc: &str) -> String {
    if let Some(rest) = doc.strip_prefix("---") {
        let (line, after) = rest.split_once('\n').unwrap_or((rest, ""));
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            return after.to_string();
        }
    }
    doc.to_string()
}

fn read_go(oracle: &Path, docs: &[String]) -> Vec<Go> {
    let docs: Vec<String> = docs.iter().map(|d| kubectl_document(d)).collect();
    let mut child = Command::new(oracle)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("{}: {e}", oracle.display()));
    let input = serde_json::to_vec(&docs).unwrap();
    let mut stdin = child.stdin.take().unwrap();
    let writer = std::thread::spawn(move || stdin.write_all(&input));
    let out = child.wait_with_output().unwrap();
    writer.join().unwrap().unwrap();
    assert!(
        out.status.success(),
        "oracle failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let results: Vec<Value> = serde_json::from_slice(&out.stdout).expect("oracle output is JSON");
    assert_eq!(results.len(), docs.len());
    results
        .into_iter()
        .map(|r| match r.get("error") {
            Some(Value::String(e)) => Go::Error(e.clone()),
            _ => Go::Value(
                r.get("value").cloned().unwrap_or(Value::Null),
                r.get("strict_error")
                    .and_then(Value::as_str)
                    .map(String::from),
            ),
        })
        .collect()
}

/// The tool's reading of one document (an empty document reads as null, as in Go).
fn read_tool(text: &str) -> Result<Value, String> {
    parse_document(text)
        .map(|d| d.root.map_or(Value::Null, |r| r.to_value()))
        .map_err(|e| format!("line {}: {}", e.line, e.message))
}

fn documents(text: &str) -> Vec<String> {
    split_documents(text)
        .into_iter()
        .map(|s| s.text.to_string())
        .collect()
}

fn short(text: &str) -> String {
    let t: String = text.chars().take(120).collect();
    format!("{t:?}")
}

/// Equal JSON values; floats within rounding, since serde_json (without `float_roundtrip`) may
/// parse the oracle's shortest digits one ulp away from the value both readers hold.
fn same(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Number(x), Value::Number(y)) if x.is_f64() || y.is_f64() => {
            let (x, y) = (
                x.as_f64().unwrap_or(f64::NAN),
                y.as_f64().unwrap_or(f64::NAN),
            );
            x == y || (x - y).abs() <= f64::EPSILON * 4.0 * x.abs().max(y.abs())
        }
        (Value::Array(x), Value::Array(y)) => {
            x.len() == y.len() && x.iter().zip(y).all(|(a, b)| same(a, b))
        }
        (Value::Object(x), Value::Object(y)) => {
            x.len() == y.len() && x.iter().all(|(k, v)| y.get(k).is_some_and(|w| same(v, w)))
        }
        _ => a == b,
    }
}

/// Where the tool knowingly parts from the Go reader (README, "Limits on input"). None today:
/// what its YAML 1.2 parser reads otherwise is either read go-yaml's way (a tab after `:`, a lone
/// `-` in a flow collection) or refused with a message naming Kubernetes' reader (a tag followed
/// directly by `,`, `]` or `}`; a document that is only `...`).
const KNOWN: &[&str] = &[];

/// True when the tool's error is one of its deliberate refusals: something Kubernetes' reader
/// reads differently from YAML 1.2 (the message says so), or a key set twice (kubectl's strict
/// decoding rejects duplicates; keys that only collide as JSON keys are rejected too).
fn refused_clearly(message: &str) -> bool {
    message.contains("Kubernetes' YAML reader") || message.contains("duplicate key")
}

/// The tool reads each document as the Go reader does: same value, or both reject it.
fn compare_readings(what: &str, docs: &[String], go: &[Go], failures: &mut Vec<String>) {
    for (i, (doc, go)) in docs.iter().zip(go).enumerate() {
        if KNOWN.contains(&doc.as_str()) {
            eprintln!("known disagreement, not compared: {}", short(doc));
            continue;
        }
        let tool = read_tool(doc);
        // A merged key that an explicit key overrides is a duplicate to go-yaml's strict mode
        // only; the tool reads such documents as the non-strict reader does.
        if let (Ok(a), Go::Value(b, Some(_))) = (&tool, go) {
            if same(a, b) {
                continue;
            }
        }
        match (&tool, go.strict()) {
            (Ok(a), Ok(b)) if same(a, b) => {}
            (Err(_), Err(_)) => {}
            (Err(e), Ok(_)) if refused_clearly(e) => {
                eprintln!("refused (Kubernetes reads it): {} - {e}", short(doc));
            }
            (Ok(a), Ok(b)) => failures.push(format!(
                "{what} document {i} {}: the tool reads {a}, Kubernetes {b}",
                short(doc)
            )),
            (Ok(a), Err(e)) => failures.push(format!(
                "{what} document {i} {}: the tool reads {a}, Kubernetes rejects it: {e}",
                short(doc)
            )),
            (Err(e), Ok(b)) => failures.push(format!(
                "{what} document {i} {}: the tool rejects it ({e}), Kubernetes reads {b}",
                short(doc)
            )),
        }
    }
}

/// What the rules may do to an input leaf: fill a null (Kubernetes drops a null field), append a
/// digest to an image (also in a custom resource's field), and set the fields `enforce` may
/// overwrite. Otherwise the value must mean the same (numbers compared as numbers).
fn rule_change(path: &str, a: &Value, b: &Value) -> bool {
    same(a, b)
        || a.is_null()
        || matches!((a, b), (Value::String(a), Value::String(b)) if pinned_from(a, b))
        || RULE_FIELDS.iter().any(|f| path.ends_with(f))
}

/// Fields a rule may change under `enforce` (and writable-tmp's annotation it extends).
const RULE_FIELDS: &[&str] = &[
    "securityContext.allowPrivilegeEscalation",
    "securityContext.runAsNonRoot",
    "securityContext.seccompProfile.type",
    ".annotations.cluster-autoscaler.kubernetes.io/safe-to-evict-local-volumes",
];

/// The output means, to the Go reader, what the input meant, plus what the rules add.
fn compare_meanings(
    what: &str,
    input: &[String],
    go_in: &[Go],
    output: &[String],
    go_out: &[Go],
    failures: &mut Vec<String>,
) {
    let before: Vec<(&String, &Go)> = input
        .iter()
        .zip(go_in)
        .filter(|(_, g)| !matches!(g, Go::Value(v, _) if is_generated(v)))
        .collect();
    let after: Vec<(&String, &Go)> = output
        .iter()
        .zip(go_out)
        .filter(|(_, g)| !matches!(g, Go::Value(v, _) if is_generated(v)))
        .collect();
    if before.len() != after.len() {
        failures.push(format!(
            "{what}: {} input documents, {} in the output",
            before.len(),
            after.len()
        ));
        return;
    }
    for (i, ((t0, g0), (t1, g1))) in before.iter().zip(&after).enumerate() {
        if t0 == t1 {
            continue;
        }
        match (g0.strict(), g1.strict()) {
            (Ok(a), Ok(b)) => {
                let mut problems = Vec::new();
                contains(a, b, "", &rule_change, &mut problems);
                for p in problems {
                    failures.push(format!("{what} document {i}: to Kubernetes, {p}"));
                }
            }
            (Err(_), Err(_)) => {}
            (Ok(_), Err(e)) => failures.push(format!(
                "{what} document {i}: Kubernetes reads the input but rejects the output: {e}"
            )),
            (Err(e), Ok(_)) => failures.push(format!(
                "{what} document {i}: Kubernetes rejects the input ({e}) but the tool wrote it out"
            )),
        }
    }
}

/// Answers every tag with a digest derived from its name (as tests/corpus.rs does).
struct Derived;

impl DigestSource for Derived {
    fn resolve(&self, image: &ImageRef, _: Option<&Platform>) -> Result<String, ResolveError> {
        use std::hash::{Hash, Hasher};
        let mut hex = String::new();
        for salt in 0..4u8 {
            let mut h = std::collections::hash_map::DefaultHasher::new();
            (salt, image.normalized_tag()).hash(&mut h);
            hex.push_str(&format!("{:016x}", h.finish()));
        }
        Ok(format!("sha256:{hex}"))
    }
    fn exists(&self, _: &ImageRef, _: &str) -> Result<bool, ResolveError> {
        Ok(true)
    }
}

fn files(dir: &Path, name: &dyn Fn(&Path) -> bool, out: &mut Vec<PathBuf>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    let mut entries: Vec<PathBuf> = entries.filter_map(Result::ok).map(|e| e.path()).collect();
    entries.sort();
    for p in entries {
        if p.is_dir() {
            files(&p, name, out);
        } else if name(&p) {
            out.push(p);
        }
    }
}

fn corpus_and_golden_mean_to_kubernetes_what_they_mean_to_the_tool() {
    let Some(oracle) = oracle() else { return };
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut failures = Vec::new();
    let (mut read, mut checked_outputs) = (0, 0);

    let mut corpus = Vec::new();
    files(
        &root.join("tests/corpus"),
        &|p| p.extension().is_some_and(|x| x == "yaml"),
        &mut corpus,
    );
    assert!(!corpus.is_empty());
    let mut options = Options::default();
    options.overrides.digests = Some(DigestHandle(std::sync::Arc::new(Derived)));
    for file in &corpus {
        let name = file.strip_prefix(root).unwrap().display().to_string();
        let input = std::fs::read_to_string(file).unwrap();
        let docs = documents(&input);
        let go_in = read_go(&oracle, &docs);
        compare_readings(&name, &docs, &go_in, &mut failures);
        read += docs.len();
        match process(&input, &options) {
            Ok(out) => {
                let out_docs = documents(&out.text());
                let go_out = read_go(&oracle, &out_docs);
                compare_readings(
                    &format!("{name} (output)"),
                    &out_docs,
                    &go_out,
                    &mut failures,
                );
                compare_meanings(&name, &docs, &go_in, &out_docs, &go_out, &mut failures);
                read += out_docs.len();
                checked_outputs += docs.len();
            }
            Err(e) => failures.push(format!("{name}: {e}")),
        }
    }

    // Golden cases: the expected output is the tool's output (tests/golden.rs checks that).
    let mut inputs = Vec::new();
    files(
        &root.join("testdata"),
        &|p| p.file_name().is_some_and(|n| n == "input.yaml"),
        &mut inputs,
    );
    assert!(!inputs.is_empty());
    for input_path in &inputs {
        let name = input_path
            .parent()
            .unwrap()
            .strip_prefix(root)
            .unwrap()
            .display()
            .to_string();
        let Ok(input) = std::fs::read_to_string(input_path) else {
            continue;
        };
        let docs = documents(&input);
        let go_in = read_go(&oracle, &docs);
        compare_readings(&format!("{name}/input.yaml"), &docs, &go_in, &mut failures);
        read += docs.len();
        let Ok(expected) = std::fs::read_to_string(input_path.with_file_name("expected.yaml"))
        else {
            continue;
        };
        let out_docs = documents(&expected);
        let go_out = read_go(&oracle, &out_docs);
        compare_readings(
            &format!("{name}/expected.yaml"),
            &out_docs,
            &go_out,
            &mut failures,
        );
        read += out_docs.len();
        // A ResourceList (KRM) case compares its items; a stream compares document by document.
        compare_meanings(&name, &docs, &go_in, &out_docs, &go_out, &mut failures);
        checked_outputs += docs.len();
    }
    eprintln!(
        "go oracle: {} corpus files and {} golden cases; {read} documents read by both readers, \
         {checked_outputs} input documents checked against their output",
        corpus.len(),
        inputs.len()
    );
    assert!(
        failures.is_empty(),
        "{} disagreements with Kubernetes' YAML reader:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

/// Scalars whose meaning differs between YAML versions and readers.
fn tricky_scalars() -> Vec<String> {
    let mut s: Vec<String> = Vec::new();
    for word in ["y", "n", "yes", "no", "on", "off", "true", "false", "null"] {
        let upper = word.to_uppercase();
        let title = word[..1].to_uppercase() + &word[1..];
        let mut mixed: String = word
            .chars()
            .enumerate()
            .map(|(i, c)| {
                if i % 2 == 1 {
                    c.to_ascii_uppercase()
                } else {
                    c
                }
            })
            .collect();
        if mixed == word {
            mixed = format!("{word}X");
        }
        s.extend([word.to_string(), upper, title, mixed]);
    }
    for t in [
        "~",
        "Null",
        "NULL",
        ".inf",
        "-.inf",
        "+.inf",
        ".Inf",
        ".INF",
        ".nan",
        ".NaN",
        ".NAN",
        "0644",
        "0o644",
        "0O644",
        "0x1F",
        "0X1f",
        "0b101",
        "-0b101",
        "+0x1F",
        "0",
        "00",
        "-0",
        "+0",
        "09",
        "0.5",
        ".5",
        "5.",
        "-.5",
        "1e3",
        "1E3",
        "1e+3",
        "1e-3",
        "-1e3",
        "1.5e3",
        "1.0",
        "1_000",
        "1__0",
        "_1",
        "1_",
        "0x_1F",
        "1:20",
        "-1:20",
        "1:20:30.5",
        "190:20:30",
        "12345678901234567890",
        "-9223372036854775808",
        "9223372036854775808",
        "18446744073709551616",
        "9.5e15",
        "1e21",
        "123456789.123456789",
        "0.1",
        "1e400",
        "2001-12-14",
        "2001-12-14t21:59:43.10-05:00",
        "2001-12-14 21:59:43.10 -5",
        "2001-12-15T02:59:43.1Z",
        "2002-1-1",
        "64Mi",
        "500m",
        "1Gi",
        "1e3Mi",
        "0x",
        "0b",
        "0o",
        "+",
        "-",
        ".",
        "..",
        "...x",
        "=",
        "<<",
        "a:b",
        "http://x:80/y",
        "a #b",
        "a#b",
        "'quoted'",
        "\"dq\"",
        "'0644'",
        "\"0644\"",
        "'on'",
        "\"on\"",
        "\"\"",
        "''",
        "\"\\u0085\"",
        "\"\\x85\"",
        "\"\\u2028\"",
        "\"\\u00a0\"",
        "\"\\N\"",
        "\"\\L\"",
        "\"\\P\"",
        "\"\\_\"",
        "\"\\e\"",
        "\"\\0\"",
        "\"\\t\"",
        "\"a\\\n  b\"",
        "\"\\ufeff\"",
        "'it''s'",
        "\"\\/\"",
        "!!str 123",
        "!!str on",
        "!!str",
        "!!int 0644",
        "!!int \"12\"",
        "!!float 1",
        "!!bool yes",
        "!!null ''",
        "!!null",
        "!!binary aGVsbG8=",
        "!!binary |\n  aGVs\n  bG8=",
        "!!binary \"aGVsbG8=\"",
        "!!binary ''",
        "!!timestamp 2001-12-14",
        "!foo 123",
        "!foo on",
        "!foo",
        "!foo ''",
        "!foo \"x\"",
        "! 123",
        "! on",
        "!<tag:yaml.org,2002:str> 12",
        "!<tag:yaml.org,2002:int> 12",
        "!<!foo> 12",
        "!!foo 12",
        "&a 12",
        "&a on",
        "|\n  a\n  b\n",
        "|-\n  a\n\n",
        "|+\n  a\n\n",
        ">\n  a\n  b\n\n  c\n",
        ">-\n  a\n",
        ">+\n  a\n\n",
        "|2\n    a\n",
        "|1-\n  a\n",
        ">\n  a\n    b\n  c\n",
        "",
        "a\u{a0}b",
        "\u{e9}t\u{e9}",
        "x\u{2029}",
        "[]",
        "{}",
        "[a, 1, on, ~]",
        "{a: 1, b: on}",
    ] {
        s.push(t.to_string());
    }
    s
}

fn tricky_scalars_mean_to_the_tool_what_they_mean_to_kubernetes() {
    let Some(oracle) = oracle() else { return };
    let scalars = tricky_scalars();
    let mut docs = Vec::new();
    for v in &scalars {
        docs.push(format!("v: {v}\n"));
        docs.push(format!("- {v}\n"));
        if !v.contains('\n') {
            docs.push(format!("f: [{v}]\n"));
            docs.push(format!("k:\n  {v}: x\n"));
        }
    }
    // Structures: anchors, aliases, merge keys, block scalars, empty values.
    for structure in [
        "a: &x {k: 1}\nb: *x\n",
        "a: &x [1, 2]\nb: *x\n",
        "a: &x on\nb: *x\n",
        "base: &b {k: 1, j: 2}\nm:\n  <<: *b\n  j: 3\n",
        "a: &a {x: 1}\nb: &b {x: 2, y: 2}\nm:\n  <<: [*a, *b]\n",
        "a: &a {x: 1}\nm:\n  <<: *a\n  <<: {y: 2}\n",
        "m:\n  '<<': {x: 1}\n",
        "m:\n  !!merge <<: {x: 1}\n",
        "m:\n  <<: {x: 1}\n  x: 2\n",
        "a:\nb: ~\nc: ''\nd: \"\"\n",
        "a: |\n  x\n\n\nb: 1\n",
        "a: |-\n  x\n\n\nb: 1\n",
        "a: |+\n  x\n\n\nb: 1\n",
        "a: >\n  x\n  y\n\n  z\n\nb: 1\n",
        "a: >-\n  x\n  y\n",
        "a: >+\n  x\n  y\n\n",
        "a: |\n  x",
        "a: |\n\n  x\n",
        "? a\n: 1\n",
        "? [a, b]\n: 1\n",
        "1: a\n2: b\n",
        "on: a\n",
        "1.5: a\n",
        "~: a\n",
        "? \n: a\n",
        "\"\": a\n",
        "a: 1\na: 2\n",
        "{a: 1, a: 1}\n",
        "1: a\n\"1\": b\n",
        "a: &x k\n*x : v\n",
        "a: &k kind\n*k : Pod\n",
        "base: &b {kind: Pod}\n<<: *b\napiVersion: v1\n",
        "%YAML 1.1\n---\na: 1\n",
        "%YAML 1.2\n---\na: 1\n",
        "%TAG !e! tag:example.com,2000:\n---\na: !e!x 1\n",
        "- \tx\n",
        "-\tx\n",
        "a:\tb\n",
        "a: b\tc\n",
        "a:\t\tb\n",
        "a:\t|\n  x\n",
        "a: b\nc:\td\n",
        "a:\n  b:\tc\n",
        "[a:\tb]\n",
        "{a:\tb}\n",
        "a:\tb\tc\n",
        "a: \"x:\tb\"\n",
        "? a\n:\tb\n",
        "f: [-]\n",
        "f: [-, a]\n",
        "f: [a,-]\n",
        "f: [ -]\n",
        "f: [- ]\n",
        "f: {a: -}\n",
        "f: [&x -, *x]\n",
        "f: [!!null]\n",
        "f: [!!str]\n",
        "f: [!foo]\n",
        "f: [!x, a]\n",
        "f: [!x , a]\n",
        "f: {a: !x}\n",
        "f: [a, !x]\n",
        "f: [&a]\n",
        "...\n",
        "# c\n...\n",
        "a: 1\n...\n",
        "a: \u{1}b\n",
        "a: b\u{7f}c\n",
        "a: \u{85}\n",
        "a: b\u{85}c: d\n",
        "a: b\u{2028}c: d\n",
        "a: b\u{2029}c\n",
        "\u{feff}a: 1\n",
        "---\n\u{feff}a: 1\n",
        "--- # c\n\u{feff}a: 1\n",
        "# c\n\u{feff}a: 1\n",
        "a: 1\n\u{feff}\n",
        "a: \"x\u{85}y\"\n",
        "a: 'x\u{2028}y'\n",
        "a: [1, 2,]\n",
        "a: {b: 1,}\n",
        "[a, b]\n",
        "just a scalar\n",
        "---\n...\n",
        "# only a comment\n",
    ] {
        docs.push(structure.to_string());
    }
    let go = read_go(&oracle, &docs);
    let mut failures = Vec::new();
    compare_readings("tricky", &docs, &go, &mut failures);
    eprintln!(
        "go oracle: {} scalars, {} documents compared, {} disagreements",
        scalars.len(),
        docs.len(),
        failures.len()
    );
    assert!(
        failures.is_empty(),
        "{} disagreements with Kubernetes' YAML reader:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

fn main() {
    trials::main(vec![
        trials::needs(
            "corpus_and_golden_mean_to_kubernetes_what_they_mean_to_the_tool",
            ORACLE,
            corpus_and_golden_mean_to_kubernetes_what_they_mean_to_the_tool,
        ),
        trials::needs(
            "tricky_scalars_mean_to_the_tool_what_they_mean_to_kubernetes",
            ORACLE,
            tricky_scalars_mean_to_the_tool_what_they_mean_to_kubernetes,
        ),
    ])
}
