//! The properties every fuzz target checks (fuzz/README.md). Each failure panics, which libFuzzer
//! reports as a crash and saves the input under fuzz/artifacts/<target>/.
//!
//! 1. `process` does not panic (and, by libFuzzer's `-timeout`, does not hang).
//! 2. A stream with error results is not delivered (the CLI writes nothing to stdout and exits 1);
//!    a ResourceList always is, and carries its error results.
//! 3. Idempotent: hardening the output again gives the very same bytes.
//! 4. Meaning preserved: every leaf of every input document keeps its value in the output, read
//!    back with the crate's own YAML reader; the only extra documents are generated budgets.

use kube_harden::change::Severity;
use kube_harden::rules::pod_disruption_budget::GENERATED_FOR;
use kube_harden::yaml::split::split_documents;
use kube_harden::yaml::tree::parse_document;
use kube_harden::{process, InputForm, Options};
use serde_json::Value;

/// How a target turns the fuzzer's bytes into an input.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Form {
    /// The bytes as they are: a multi-document stream.
    Stream,
    /// The bytes are the `items:` sequence of a `kind: List`.
    List,
    /// The bytes are the `items:` sequence of a KRM `ResourceList`.
    ResourceList,
}

/// The annotation writable-tmp extends (a comma-separated list of volume names).
const SAFE_TO_EVICT: &str = "cluster-autoscaler.kubernetes.io/safe-to-evict-local-volumes";

/// Builds the input text of a target from the fuzzer's bytes (`None`: not UTF-8).
pub fn input(form: Form, data: &[u8]) -> Option<String> {
    let text = std::str::from_utf8(data).ok()?;
    let header = match form {
        Form::Stream => return Some(text.to_string()),
        Form::List => "apiVersion: v1\nkind: List\nitems:\n",
        Form::ResourceList => "apiVersion: config.kubernetes.io/v1\nkind: ResourceList\nitems:\n",
    };
    let mut out = String::with_capacity(header.len() + text.len() * 2);
    out.push_str(header);
    for line in text.split_inclusive('\n') {
        out.push_str("  ");
        out.push_str(line);
    }
    Some(out)
}

/// The options of a run: the defaults, one worker thread, and no digest source at all (nothing can
/// touch the network). Inputs of odd length keep pin-image-digests on, so they exercise its
/// error results; the others switch it off, so most workloads come out without errors.
pub fn options(input: &str) -> Options {
    let mut o = Options {
        threads: 1,
        ..Options::default()
    };
    if input.len().is_multiple_of(2) {
        o.overrides.disable.push("pin-image-digests".into());
    }
    o
}

/// Runs a target on the fuzzer's bytes and checks every property.
pub fn check(form: Form, data: &[u8]) {
    let Some(input) = input(form, data) else {
        return;
    };
    let options = options(&input);
    let Ok(first) = process(&input, &options) else {
        // A fatal error: the CLI writes nothing and exits 1.
        return;
    };
    let text = first.text();
    // 2. What reaches stdout.
    let errors = first.has_errors();
    assert_eq!(
        errors,
        first.results.iter().any(|r| r.severity == Severity::Error)
    );
    match first.form {
        InputForm::Stream => assert_eq!(
            first.delivered(),
            !errors,
            "a stream with error results must not be written (and one without must be)"
        ),
        InputForm::ResourceList => {
            assert!(first.delivered(), "a ResourceList always comes back");
            if errors {
                let out = parse_all(&text).expect("the output ResourceList parses");
                let results = out
                    .first()
                    .and_then(|v| v.get("results"))
                    .and_then(Value::as_array)
                    .expect("a ResourceList with errors carries results");
                assert!(
                    results.iter().any(|r| r["severity"] == "error"),
                    "the ResourceList's results lost the error: {results:?}"
                );
            }
        }
    }
    // A ResourceList's items are edited one by one (engine/resource_list.rs) unless that path
    // cannot vouch for the list; it must give exactly what reading the list as one tree gives.
    if form == Form::ResourceList {
        kube_harden::engine::set_resource_list_fast_path(false);
        let tree = process(&input, &options);
        kube_harden::engine::set_resource_list_fast_path(true);
        let tree = tree.expect("the tree path fails where the item path did not");
        assert_eq!(text, tree.text(), "item path and tree path differ\n--- input:\n{input}");
        assert_eq!(
            format!("{:?}", first.results),
            format!("{:?}", tree.results),
            "item path and tree path give other results\n--- input:\n{input}"
        );
    }
    // 3. Idempotent.
    let second = match process(&text, &options) {
        Ok(o) => o.text(),
        Err(e) => panic!("the output does not read back: {e}\n--- output:\n{text}"),
    };
    assert!(
        second == text,
        "not idempotent\n--- first:\n{text}\n--- second:\n{second}"
    );
    let before = parse_all(&input);
    // 4. Meaning preserved (not under enforce, which overwrites explicit insecure values).
    if first.policy.enforce {
        return;
    }
    let Ok(before) = before else {
        // An input the reader rejects but the run accepted (e.g. past a ResourceList).
        return;
    };
    let after =
        parse_all(&text).unwrap_or_else(|e| panic!("the output does not parse: {e}\n{text}"));
    let mut problems = Vec::new();
    let resource_list = first.form == InputForm::ResourceList;
    sequence(&before, &after, "", resource_list, &mut problems);
    assert!(
        problems.is_empty(),
        "meaning changed:\n{}\n--- input:\n{input}\n--- output:\n{text}",
        problems.join("\n")
    );
}

/// The values of a stream's documents (empty documents left out). Blank segments (markers and
/// comments only) are not read, as the engine does not read them: it passes them through as they
/// are, whatever bytes their comments hold.
fn parse_all(text: &str) -> Result<Vec<Value>, String> {
    let mut out = Vec::new();
    for seg in split_documents(text).into_iter().filter(|s| !s.is_blank()) {
        let doc = parse_document(seg.text).map_err(|e| format!("{e:?}"))?;
        if let Some(root) = doc.root {
            out.push(root.to_value());
        }
    }
    Ok(out)
}

fn is_generated(v: &Value) -> bool {
    v.pointer("/metadata/annotations")
        .and_then(|a| a.get(GENERATED_FOR))
        .is_some()
}

/// `after` holds every element of `before` in order; what it adds are generated budgets only.
fn sequence(before: &[Value], after: &[Value], path: &str, rl: bool, problems: &mut Vec<String>) {
    let mut j = 0;
    for (i, b) in before.iter().enumerate() {
        loop {
            let Some(a) = after.get(j) else {
                problems.push(format!("{path}[{i}] lost"));
                return;
            };
            j += 1;
            // A budget the run added is never an input document (which it could resemble:
            // a budget with `metadata: null` matches any metadata).
            if is_generated(a) && !is_generated(b) {
                continue;
            }
            let mut p = Vec::new();
            contains(b, a, &format!("{path}[{i}]"), rl, &mut p);
            if p.is_empty() {
                break;
            }
            if !is_generated(a) {
                problems.extend(p);
                break;
            }
        }
    }
    for (k, a) in after.iter().enumerate().skip(j) {
        if !is_generated(a) {
            problems.push(format!(
                "{path}: output element {k} is new and no generated budget"
            ));
        }
    }
}

/// True when `after` is `before` with a digest appended (a policy's own `images.digests`).
fn pinned_from(before: &str, after: &str) -> bool {
    !before.contains('@')
        && after
            .strip_prefix(before)
            .and_then(|rest| rest.strip_prefix("@sha256:"))
            .is_some_and(|h| h.len() == 64 && h.bytes().all(|b| b.is_ascii_hexdigit()))
}

/// Every leaf of `before` has the same value in `after` (`rl`: `before` is a ResourceList, whose
/// top-level `results` the run writes anew).
fn contains(before: &Value, after: &Value, path: &str, rl: bool, problems: &mut Vec<String>) {
    match (before, after) {
        (Value::Object(a), Value::Object(b)) => {
            let is_list = a
                .get("kind")
                .and_then(Value::as_str)
                .is_some_and(|k| k.ends_with("List"));
            for (k, v) in a {
                let p = format!("{path}.{k}");
                // (`rl` is only ever set for the ResourceList document itself.)
                if rl && k == "results" {
                    continue;
                }
                match (b.get(k), v) {
                    (None, _) => problems.push(format!("{p} lost")),
                    (Some(Value::Array(w)), Value::Array(v)) if is_list && k == "items" => {
                        sequence(v, w, &p, false, problems)
                    }
                    (Some(w), v) => contains(v, w, &p, false, problems),
                }
            }
        }
        (Value::Array(a), Value::Array(b)) => {
            if b.len() < a.len() {
                problems.push(format!(
                    "{path}: list shrank from {} to {}",
                    a.len(),
                    b.len()
                ));
            }
            for (i, (v, w)) in a.iter().zip(b).enumerate() {
                contains(v, w, &format!("{path}[{i}]"), false, problems);
            }
        }
        (a, b) if a == b => {}
        // A null field is an absent one (to the API server too): rules may fill it.
        (Value::Null, _) => {}
        (Value::String(a), Value::String(b)) if path.ends_with(".image") && pinned_from(a, b) => {}
        (Value::String(a), Value::String(b)) if path.ends_with(SAFE_TO_EVICT) => {
            let names = |s: &str| -> Vec<String> {
                s.split(',')
                    .map(|n| n.trim().to_string())
                    .filter(|n| !n.is_empty())
                    .collect()
            };
            let kept = names(b);
            if !names(a).iter().all(|n| kept.contains(n)) {
                problems.push(format!("{path}: {a:?} became {b:?}"));
            }
        }
        (a, b) => problems.push(format!("{path}: {a} became {b}")),
    }
}
