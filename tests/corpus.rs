//! Fidelity over real rendered manifests (../shared/corpus): no error, every input field kept
//! with its value, untouched documents byte-identical, and a second run identical to the first.

use std::path::PathBuf;

use kube_harden::yaml::split::split_documents;
use kube_harden::yaml::tree::parse_document;
use kube_harden::{process, Options};
use serde_json::Value;

fn corpus_files() -> Vec<PathBuf> {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../shared/corpus");
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| {
            panic!(
                "{}: {e} (the corpus must sit beside the repo)",
                dir.display()
            )
        })
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "yaml"))
        .collect();
    files.sort();
    assert!(!files.is_empty(), "no corpus files in {}", dir.display());
    files
}

/// Every field of `input` is in `output` with the same value (output may only add).
fn contains(input: &Value, output: &Value, path: &str, problems: &mut Vec<String>) {
    match (input, output) {
        (Value::Object(a), Value::Object(b)) => {
            for (k, v) in a {
                match b.get(k) {
                    Some(w) => contains(v, w, &format!("{path}.{k}"), problems),
                    None => problems.push(format!("{path}.{k} lost")),
                }
            }
        }
        (Value::Array(a), Value::Array(b)) => {
            if b.len() < a.len() {
                problems.push(format!("{path}: list shrank"));
            }
            for (i, (v, w)) in a.iter().zip(b).enumerate() {
                contains(v, w, &format!("{path}[{i}]"), problems);
            }
        }
        (a, b) if a == b => {}
        (a, b) => problems.push(format!("{path}: {a} became {b}")),
    }
}

fn values(text: &str) -> Vec<(String, Option<Value>)> {
    split_documents(text)
        .into_iter()
        .map(|s| {
            let v = parse_document(s.text)
                .expect("output parses")
                .root
                .map(|r| r.to_value());
            (s.text.to_string(), v)
        })
        .collect()
}

#[test]
fn corpus_is_kept_and_idempotent() {
    let mut failures = Vec::new();
    for file in corpus_files() {
        let name = file.file_name().unwrap().to_string_lossy().to_string();
        let input = std::fs::read_to_string(&file).unwrap();
        let first = match process(&input, &Options::default()) {
            Ok(o) => o,
            Err(e) => {
                failures.push(format!("{name}: {e}"));
                continue;
            }
        };
        if first.has_errors() {
            failures.push(format!(
                "{name}: error results: {:?}",
                first.problems().collect::<Vec<_>>()
            ));
        }
        let out = first.text();
        let (before, after) = (values(&input), values(&out));
        if before.len() != after.len() {
            failures.push(format!(
                "{name}: {} documents became {}",
                before.len(),
                after.len()
            ));
            continue;
        }
        let mut changed = 0;
        for (i, ((t0, v0), (t1, v1))) in before.iter().zip(&after).enumerate() {
            match (v0, v1) {
                (Some(a), Some(b)) if a == b => {
                    if t0 != t1 {
                        failures.push(format!(
                            "{name}: document {i} unchanged in meaning but not byte-identical"
                        ));
                    }
                }
                (Some(a), Some(b)) => {
                    changed += 1;
                    let mut problems = Vec::new();
                    contains(a, b, "", &mut problems);
                    for p in problems {
                        failures.push(format!("{name}: document {i}: {p}"));
                    }
                    let head = |t: &str| {
                        t.lines()
                            .take_while(|l| {
                                l.starts_with('#') || l.trim() == "---" || l.trim().is_empty()
                            })
                            .map(str::to_string)
                            .collect::<Vec<_>>()
                    };
                    if head(t0) != head(t1) {
                        failures.push(format!("{name}: document {i}: header comments changed"));
                    }
                }
                (None, None) => {
                    if t0 != t1 {
                        failures.push(format!("{name}: empty document {i} changed"));
                    }
                }
                _ => failures.push(format!("{name}: document {i} appeared or vanished")),
            }
        }
        let second = process(&out, &Options::default()).unwrap().text();
        if second != out {
            failures.push(format!("{name}: second run differs from the first"));
        }
        eprintln!(
            "{name}: {changed} documents changed, {} re-emitted",
            first.stats.reemitted
        );
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}
