//! Fidelity over real rendered manifests (tests/corpus, pinned copies of the shared corpus): no error, every input field kept
//! with its value (images may only gain `@sha256:…`), untouched documents byte-identical, every
//! container image pinned, and a second run identical to the first. Digests come from a stand-in
//! source that derives a digest from the image name (the registry client has its own tests
//! against a real registry).

use std::path::PathBuf;

use kube_harden::config::DigestHandle;
use kube_harden::config::Policy;
use kube_harden::digest::{DigestSource, ImageRef, Platform, ResolveError};
use kube_harden::model::workload::pod_location;
use kube_harden::rules::pod_disruption_budget::{selects, GENERATED_FOR};
use kube_harden::yaml::split::split_documents;
use kube_harden::yaml::tree::parse_document;
use kube_harden::{process, Options};
use serde_json::Value;

#[path = "support/leaves.rs"]
mod leaves;
use leaves::{contains, is_generated, pinned_from};

/// The corpus run's only allowed change to an input leaf: an `image` gaining a digest.
fn same_or_pinned_image(path: &str, a: &Value, b: &Value) -> bool {
    a == b
        || matches!((a, b), (Value::String(a), Value::String(b))
            if path.ends_with(".image") && pinned_from(a, b))
}

/// Answers every tag with a digest derived from its normalised name (not a real digest).
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

fn options() -> Options {
    let mut o = Options::default();
    o.overrides.digests = Some(DigestHandle(std::sync::Arc::new(Derived)));
    o
}

/// Every container image of every pod in `v` carries a digest.
fn unpinned_images(v: &Value, out: &mut Vec<String>) {
    match v {
        Value::Object(m) => {
            for key in ["containers", "initContainers", "ephemeralContainers"] {
                if let Some(Value::Array(list)) = m.get(key) {
                    for c in list {
                        if let Some(Value::String(image)) = c.get("image") {
                            // A placeholder such as `<your-private-image>` is reported instead.
                            if !image.contains("@sha256:") && ImageRef::parse(image).is_ok() {
                                out.push(image.clone());
                            }
                        }
                    }
                }
            }
            m.values().for_each(|x| unpinned_images(x, out));
        }
        Value::Array(a) => a.iter().for_each(|x| unpinned_images(x, out)),
        _ => {}
    }
}

fn corpus_files() -> Vec<PathBuf> {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/corpus");
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| {
            panic!(
                "{}: {e} (the corpus is part of the repository)",
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

/// Every generated budget follows its workload, in its namespace, and selects exactly the pods
/// of the workload's template.
fn check_budgets(name: &str, docs: &[(String, Option<Value>)], failures: &mut Vec<String>) {
    let policy = Policy::default();
    let mut workload: Option<&Value> = None;
    let mut generated = 0;
    for (_, v) in docs {
        let Some(v) = v else { continue };
        if !is_generated(v) {
            workload = Some(v);
            continue;
        }
        generated += 1;
        let target = v["metadata"]["annotations"][GENERATED_FOR]
            .as_str()
            .unwrap();
        let Some(w) = workload else {
            failures.push(format!("{name}: budget for {target} comes first"));
            continue;
        };
        let s = |v: &Value, p: &str| v.pointer(p).and_then(Value::as_str).map(str::to_string);
        let w_id = format!(
            "{}/{}",
            s(w, "/kind").unwrap_or_default(),
            s(w, "/metadata/name").unwrap_or_default()
        );
        if w_id != target {
            failures.push(format!("{name}: budget for {target} follows {w_id}"));
            continue;
        }
        if s(w, "/metadata/namespace") != s(v, "/metadata/namespace") {
            failures.push(format!("{name}: budget for {target} in another namespace"));
        }
        let loc = pod_location(
            w["apiVersion"].as_str().unwrap(),
            w["kind"].as_str().unwrap(),
            &policy,
        )
        .unwrap();
        let labels = loc
            .metadata
            .key("labels")
            .get(w)
            .and_then(Value::as_object)
            .cloned()
            .unwrap_or_default();
        let selector = &v["spec"]["selector"];
        if !selects(selector, &labels, false) {
            failures.push(format!(
                "{name}: budget for {target}: selector {selector} does not select template labels {labels:?}"
            ));
        }
    }
    // No workload's pods under two budgets (generated or not): the eviction API would refuse
    // to evict them and every node drain would block.
    let budgets: Vec<&Value> = docs
        .iter()
        .filter_map(|(_, v)| v.as_ref())
        .filter(|v| v["kind"] == "PodDisruptionBudget")
        .collect();
    for (_, v) in docs {
        let Some(w) = v else { continue };
        let (Some(av), Some(kind)) = (w["apiVersion"].as_str(), w["kind"].as_str()) else {
            continue;
        };
        let Some(loc) = pod_location(av, kind, &policy) else {
            continue;
        };
        let labels = loc
            .metadata
            .key("labels")
            .get(w)
            .and_then(Value::as_object)
            .cloned()
            .unwrap_or_default();
        let covering: Vec<&str> = budgets
            .iter()
            .filter(|b| b["metadata"]["namespace"] == w["metadata"]["namespace"])
            .filter(|b| {
                selects(
                    &b["spec"]["selector"],
                    &labels,
                    b["apiVersion"] != "policy/v1beta1",
                )
            })
            .map(|b| b["metadata"]["name"].as_str().unwrap_or("?"))
            .collect();
        let generated_here = budgets.iter().any(|b| {
            is_generated(b) && covering.contains(&b["metadata"]["name"].as_str().unwrap_or("?"))
        });
        if covering.len() > 1 && generated_here {
            failures.push(format!(
                "{name}: {kind} {} is under budgets {covering:?}",
                w["metadata"]["name"]
            ));
        }
    }
    eprintln!("{name}: {generated} budgets generated");
}

#[test]
fn corpus_is_kept_and_idempotent() {
    let mut failures = Vec::new();
    for file in corpus_files() {
        let name = file.file_name().unwrap().to_string_lossy().to_string();
        let input = std::fs::read_to_string(&file).unwrap();
        let first = match process(&input, &options()) {
            Ok(o) => o,
            Err(e) => {
                failures.push(format!("{name}: {e}"));
                continue;
            }
        };
        // The only errors allowed: placeholders that are no image reference at all (the
        // k8s website's `<your-private-image>`), which pin-image-digests must report.
        let errors: Vec<_> = first
            .problems()
            .filter(|r| r.severity == kube_harden::change::Severity::Error)
            .filter(|r| {
                !(r.rule == "pin-image-digests"
                    && r.message.contains("not a valid image reference"))
            })
            .collect();
        if !errors.is_empty() {
            failures.push(format!("{name}: error results: {errors:?}"));
        }
        let out = first.text();
        let before = values(&input);
        let mut after = values(&out);
        check_budgets(&name, &after, &mut failures);
        after.retain(|(_, v)| !v.as_ref().is_some_and(is_generated));
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
                    let mut loose = Vec::new();
                    unpinned_images(b, &mut loose);
                    for image in loose {
                        failures.push(format!("{name}: document {i}: {image} not pinned"));
                    }
                    let mut problems = Vec::new();
                    contains(a, b, "", &same_or_pinned_image, &mut problems);
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
        let second = process(&out, &options()).unwrap().text();
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

/// The effective value of a securityContext field for a container: its own, else the pod's.
fn effective<'v>(pod: &'v Value, container: &'v Value, field: &str) -> Option<&'v Value> {
    container
        .pointer(&format!("/securityContext/{field}"))
        .filter(|v| !v.is_null())
        .or_else(|| {
            pod.pointer(&format!("/securityContext/{field}"))
                .filter(|v| !v.is_null())
        })
}

/// Issue 12's acceptance: with no image facts (no lock, `unknownImages` at its default), no
/// container gains `runAsNonRoot` unless a non-zero `runAsUser` is known for it from the
/// manifest, because the kubelet refuses root images and images whose USER is a name.
#[test]
fn corpus_without_facts_adds_run_as_non_root_only_for_known_users() {
    let policy = Policy::default();
    let mut failures = Vec::new();
    let (mut gained, mut containers) = (0usize, 0usize);
    for file in corpus_files() {
        let name = file.file_name().unwrap().to_string_lossy().to_string();
        let input = std::fs::read_to_string(&file).unwrap();
        let out = process(&input, &options()).unwrap().text();
        let before = values(&input);
        let mut after = values(&out);
        after.retain(|(_, v)| !v.as_ref().is_some_and(is_generated));
        for (i, ((_, v0), (_, v1))) in before.iter().zip(&after).enumerate() {
            let (Some(a), Some(b)) = (v0, v1) else {
                continue;
            };
            let s = |v: &Value, k: &str| v.get(k).and_then(Value::as_str).unwrap_or("").to_string();
            let Some(loc) = pod_location(&s(a, "apiVersion"), &s(a, "kind"), &policy) else {
                continue;
            };
            let (Some(pa), Some(pb)) = (loc.spec.get(a), loc.spec.get(b)) else {
                continue;
            };
            for group in ["initContainers", "containers", "ephemeralContainers"] {
                let list_a = pa.get(group).and_then(Value::as_array);
                let list_b = pb.get(group).and_then(Value::as_array);
                let (Some(list_a), Some(list_b)) = (list_a, list_b) else {
                    continue;
                };
                for (ca, cb) in list_a.iter().zip(list_b) {
                    containers += 1;
                    let was = effective(pa, ca, "runAsNonRoot") == Some(&Value::Bool(true));
                    let now = effective(pb, cb, "runAsNonRoot") == Some(&Value::Bool(true));
                    if now && !was {
                        gained += 1;
                        let uid = effective(pa, ca, "runAsUser").and_then(Value::as_i64);
                        if uid.is_none_or(|u| u <= 0) {
                            failures.push(format!(
                                "{name}: document {i}: container {} gained runAsNonRoot without a known non-zero runAsUser",
                                cb["name"]
                            ));
                        }
                    }
                }
            }
        }
    }
    eprintln!("{gained} of {containers} containers gained runAsNonRoot (no facts)");
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}
