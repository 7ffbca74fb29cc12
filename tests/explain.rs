//! `kube-harden explain`: applying each object's JSON Patch to the input object gives the output
//! object, on the whole pinned corpus and the image-facts golden cases, checked with the
//! `json-patch` crate and with an independent RFC 6902 applier written here.

use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::Value;

fn bin() -> &'static str {
    env!("CARGO_BIN_EXE_kube-harden")
}

fn run(args: &[&str]) -> (bool, String, String) {
    let out = Command::new(bin())
        .args(args)
        .env_remove("KUBE_HARDEN_LOCK")
        .output()
        .unwrap();
    (
        out.status.success(),
        String::from_utf8(out.stdout).unwrap(),
        String::from_utf8(out.stderr).unwrap(),
    )
}

/// Every object of a stream, Lists flattened, read with the crate's reader.
fn objects(stream: &str) -> Vec<Value> {
    fn flatten(v: Value, out: &mut Vec<Value>) {
        let kind = v
            .get("kind")
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_string();
        match v.get("items") {
            Some(Value::Array(items)) if kind.ends_with("List") => {
                for i in items.clone() {
                    flatten(i, out);
                }
            }
            _ if v.is_null() => {}
            _ => out.push(v),
        }
    }
    let mut out = Vec::new();
    for seg in kube_harden::yaml::split::split_documents(stream) {
        if seg.is_blank() {
            continue;
        }
        if let Some(root) = kube_harden::yaml::tree::parse_document(seg.text)
            .unwrap()
            .root
        {
            flatten(root.to_value(), &mut out);
        }
    }
    out
}

fn identity(v: &Value) -> (String, String, String, String) {
    let s = |p: &str| {
        v.pointer(p)
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_string()
    };
    (
        s("/apiVersion"),
        s("/kind"),
        s("/metadata/namespace"),
        s("/metadata/name"),
    )
}

/// RFC 6901 pointer tokens.
fn tokens(pointer: &str) -> Vec<String> {
    if pointer.is_empty() {
        return Vec::new();
    }
    pointer[1..]
        .split('/')
        .map(|t| t.replace("~1", "/").replace("~0", "~"))
        .collect()
}

/// A small RFC 6902 applier (add, remove, replace, move, copy, test), independent of the crate.
fn apply(doc: &mut Value, patch: &[Value]) -> Result<(), String> {
    fn parent<'a>(doc: &'a mut Value, toks: &[String]) -> Result<&'a mut Value, String> {
        let mut at = doc;
        for t in toks {
            at = match at {
                Value::Object(m) => m.get_mut(t).ok_or(format!("no {t}"))?,
                Value::Array(a) => a
                    .get_mut(t.parse::<usize>().map_err(|e| e.to_string())?)
                    .ok_or(format!("no index {t}"))?,
                _ => return Err(format!("{t}: not a container")),
            };
        }
        Ok(at)
    }
    fn get(doc: &Value, toks: &[String]) -> Option<Value> {
        let mut at = doc;
        for t in toks {
            at = match at {
                Value::Object(m) => m.get(t)?,
                Value::Array(a) => a.get(t.parse::<usize>().ok()?)?,
                _ => return None,
            };
        }
        Some(at.clone())
    }
    fn add(doc: &mut Value, toks: &[String], value: Value) -> Result<(), String> {
        let Some((last, head)) = toks.split_last() else {
            *doc = value;
            return Ok(());
        };
        match parent(doc, head)? {
            Value::Object(m) => {
                m.insert(last.clone(), value);
            }
            Value::Array(a) if last == "-" => a.push(value),
            Value::Array(a) => {
                let i: usize = last.parse().map_err(|_| format!("bad index {last}"))?;
                if i > a.len() {
                    return Err(format!("index {i} out of range"));
                }
                a.insert(i, value);
            }
            _ => return Err("add into a scalar".into()),
        }
        Ok(())
    }
    fn remove(doc: &mut Value, toks: &[String]) -> Result<Value, String> {
        let (last, head) = toks.split_last().ok_or("remove the root")?;
        match parent(doc, head)? {
            Value::Object(m) => m.remove(last).ok_or(format!("no {last}")),
            Value::Array(a) => {
                let i: usize = last.parse().map_err(|_| format!("bad index {last}"))?;
                (i < a.len())
                    .then(|| a.remove(i))
                    .ok_or(format!("no index {i}"))
            }
            _ => Err("remove from a scalar".into()),
        }
    }
    for op in patch {
        let path = tokens(op["path"].as_str().ok_or("no path")?);
        match op["op"].as_str().ok_or("no op")? {
            "add" => add(doc, &path, op["value"].clone())?,
            "remove" => {
                remove(doc, &path)?;
            }
            "replace" => {
                if path.is_empty() {
                    *doc = op["value"].clone();
                } else {
                    remove(doc, &path)?;
                    add(doc, &path, op["value"].clone())?;
                }
            }
            "move" => {
                let v = remove(doc, &tokens(op["from"].as_str().ok_or("no from")?))?;
                add(doc, &path, v)?;
            }
            "copy" => {
                let v =
                    get(doc, &tokens(op["from"].as_str().ok_or("no from")?)).ok_or("no from")?;
                add(doc, &path, v)?;
            }
            "test" => {
                if get(doc, &path).as_ref() != Some(&op["value"]) {
                    return Err("test failed".into());
                }
            }
            other => return Err(format!("unknown op {other}")),
        }
    }
    Ok(())
}

/// Checks explain on one file: every changed or generated object is explained, and both
/// appliers turn its input object into its output object. Returns how many were checked.
fn check_file(file: &Path, flags: &[&str]) -> usize {
    let f = file.to_str().unwrap();
    let mut args = flags.to_vec();
    args.push(f);
    let (ok, hardened, err) = run(&args);
    assert!(ok, "{f}: {err}");
    let mut explain_args = vec!["explain", "-o", "json"];
    explain_args.extend_from_slice(flags);
    explain_args.push(f);
    let (ok, json, err) = run(&explain_args);
    assert!(ok, "{f}: explain: {err}");
    let explained: Value = serde_json::from_str(&json).unwrap();
    let input = objects(&std::fs::read_to_string(file).unwrap());
    let output = objects(&hardened);
    // Pair by identity in order, independently of explain's own pairing.
    let mut unused: Vec<Option<Value>> = input.into_iter().map(Some).collect();
    let mut changed = Vec::new();
    for out in &output {
        let before = unused
            .iter_mut()
            .find(|v| v.as_ref().is_some_and(|v| identity(v) == identity(out)))
            .and_then(Option::take)
            .unwrap_or(Value::Null);
        if &before != out {
            changed.push((before, out.clone()));
        }
    }
    let objects = explained["objects"].as_array().unwrap();
    assert_eq!(
        objects.len(),
        changed.len(),
        "{f}: every changed object, once"
    );
    for (entry, (before, after)) in objects.iter().zip(&changed) {
        assert_eq!(entry["kind"], after["kind"], "{f}");
        assert_eq!(entry["name"], after["metadata"]["name"], "{f}");
        let ops = entry["patch"].as_array().unwrap();
        let patch: json_patch::Patch = serde_json::from_value(entry["patch"].clone()).unwrap();
        let mut by_crate = before.clone();
        json_patch::patch(&mut by_crate, &patch).unwrap_or_else(|e| panic!("{f}: {e}"));
        assert_eq!(
            &by_crate, after,
            "{f}: {} (json-patch crate)",
            entry["name"]
        );
        let mut by_hand = before.clone();
        apply(&mut by_hand, ops).unwrap_or_else(|e| panic!("{f}: {e}"));
        assert_eq!(
            &by_hand, after,
            "{f}: {} (independent applier)",
            entry["name"]
        );
        if !entry["generated"].as_bool().unwrap() {
            assert!(
                !entry["changes"].as_array().unwrap().is_empty(),
                "{f}: {entry}"
            );
        }
    }
    changed.len()
}

#[test]
fn patches_reproduce_the_output_on_the_whole_corpus() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/corpus");
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "yaml"))
        .collect();
    files.sort();
    assert!(files.len() > 10);
    let mut total = 0;
    for f in &files {
        total += check_file(f, &["--offline", "--disable", "pin-image-digests"]);
    }
    assert!(total > 100, "{total} changed objects");
}

#[test]
fn patches_with_image_facts_and_digests() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let lock = root.join("examples/basic/images.lock");
    let n = check_file(
        &root.join("examples/basic/deployment.yaml"),
        &["--offline", "--lock", lock.to_str().unwrap()],
    );
    assert_eq!(n, 2, "the Deployment and its generated budget");
    let (ok, text, _) = run(&[
        "explain",
        "--offline",
        "--lock",
        lock.to_str().unwrap(),
        root.join("examples/basic/deployment.yaml")
            .to_str()
            .unwrap(),
    ]);
    assert!(ok);
    assert!(
        text.contains(
            "run-as-non-root: spec.template.spec.containers[0].securityContext.runAsUser"
        ),
        "{text}"
    );
    assert!(
        text.contains("PodDisruptionBudget/cache: generated"),
        "{text}"
    );
}
