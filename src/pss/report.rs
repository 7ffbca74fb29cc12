//! `kube-harden check`: the Pod Security verdict of every object in a stream that holds a pod,
//! and its renderings (a text table, JSON, SARIF 2.1.0). Pure: text in, values and text out.

use serde_json::{json, Map, Value};

use super::{evaluate, Level, Pod, Version};
use crate::change::ResourceRef;
use crate::config::Policy;
use crate::engine::sniff_document;
use crate::error::Error;
use crate::model::path::{FieldPath, Seg};
use crate::model::workload::pod_location;
use crate::yaml::split::split_documents;
use crate::yaml::tree::{build_document, collect_events, Data, Node, SyntaxError};

/// A failing control of one object.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Finding {
    /// The control's id (PSA's check id).
    pub control: &'static str,
    /// The level the control belongs to.
    pub level: Level,
    /// What is wrong.
    pub message: String,
    /// The offending fields (or the fields to set), from the object's root.
    pub paths: Vec<String>,
    /// 1-based line in the input of the first path (its deepest part that exists).
    pub line: usize,
    /// Whether kube-harden would fix it (when the report was asked for it).
    pub fix: Option<Fix>,
}

/// Whether hardening the object (the same rules, in memory) makes a failing control pass.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Fix {
    /// The control passes on the hardened object; these rules changed its fields.
    Fixed(Vec<&'static str>),
    /// It still fails; why (the rules' warnings, a disabled rule, no rule for the control).
    NotFixed(String),
}

impl Fix {
    /// One line for people: `fixed by seccomp` or `not fixed: …`.
    pub fn describe(&self) -> String {
        match self {
            Fix::Fixed(rules) => format!("kube-harden fixes it ({})", rules.join(", ")),
            Fix::NotFixed(why) => format!("kube-harden does not fix it: {why}"),
        }
    }
}

/// The rule that makes a control's fields compliant, if any.
fn rule_for(control: &str) -> Option<&'static str> {
    Some(match control {
        "allowPrivilegeEscalation" => "no-privilege-escalation",
        "capabilities_restricted" => "drop-capabilities",
        "runAsNonRoot" | "runAsUser" => "run-as-non-root",
        "seccompProfile_restricted" | "seccompProfile_baseline" => "seccomp",
        _ => return None,
    })
}

/// Hardens a copy of the object with `policy` and says, for every failing control, whether the
/// hardened object passes it and, if not, why.
fn fixes(
    value: &Value,
    location: &crate::model::workload::PodLocation,
    findings: &mut [Finding],
    policy: &Policy,
    version: Version,
) {
    use crate::change::Severity;
    use crate::config::Verbosity;
    use crate::engine::{harden_object, Sink};
    let mut hardened = value.clone();
    // Findings and decisions (the reasons), no record of each change (only which rules changed).
    let mut sink = Sink {
        verbosity: Verbosity::All,
        no_change_records: true,
        ..Sink::default()
    };
    harden_object(&mut hardened, policy, None, &mut sink);
    let still: Vec<&'static str> = Pod::at(&hardened, &location.metadata, &location.spec)
        .map(|pod| {
            evaluate(&pod, version)
                .violations
                .into_iter()
                .map(|v| v.control)
                .collect()
        })
        .unwrap_or_default();
    let changed_by = |rule: &str| sink.changed_rules.contains(&rule);
    for f in findings.iter_mut() {
        let rule = rule_for(f.control);
        f.fix = Some(if !still.contains(&f.control) {
            let mut rules: Vec<&'static str> = rule.filter(|r| changed_by(r)).into_iter().collect();
            if rules.is_empty() {
                rules = sink.changed_rules.clone();
            }
            Fix::Fixed(rules)
        } else {
            match rule {
                None => Fix::NotFixed(
                    "no kube-harden rule changes this control's fields; the manifest sets them explicitly"
                        .into(),
                ),
                Some(rule) if !policy.is_enabled(rule) => {
                    Fix::NotFixed(format!("rule {rule} is disabled"))
                }
                Some(rule) => {
                    let why: Vec<&str> = sink
                        .results
                        .iter()
                        .filter(|r| !r.change && (r.rule == rule || r.rule == "kube-harden"))
                        .filter(|r| r.severity != Severity::Info || r.rule == rule)
                        .map(|r| r.message.as_str())
                        .collect();
                    Fix::NotFixed(if why.is_empty() {
                        format!("{rule} made no change that satisfies it (an opt-out annotation, or an explicit value)")
                    } else {
                        why.join("; ")
                    })
                }
            }
        });
    }
}

/// The verdict for one object that holds a pod.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ObjectReport {
    /// Which object.
    pub resource: ResourceRef,
    /// 1-based line where the object starts.
    pub line: usize,
    /// The most restrictive level its pod meets.
    pub level: Level,
    /// The controls it fails.
    pub findings: Vec<Finding>,
}

/// The objects of one input (a file, or stdin).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileReport {
    /// Where the input came from, as SARIF and the table name it.
    pub uri: String,
    /// Its objects that hold a pod, in input order.
    pub objects: Vec<ObjectReport>,
}

/// Evaluates every object of a YAML/JSON stream (Lists and ResourceLists included) that holds a
/// pod. Objects without a pod are skipped; a document that does not parse is an error.
pub fn check(text: &str, policy: &Policy, version: Version) -> Result<Vec<ObjectReport>, Error> {
    check_with(text, policy, version, None)
}

/// Like [`check`]; with `fix_policy`, every failing control also says whether kube-harden (with
/// that policy) would fix it ([`Finding::fix`]): the object is hardened in memory and evaluated
/// again. Only objects with a failing control are hardened.
pub fn check_with(
    text: &str,
    policy: &Policy,
    version: Version,
    fix_policy: Option<&Policy>,
) -> Result<Vec<ObjectReport>, Error> {
    let mut doc_no = 0;
    let segments: Vec<_> = split_documents(text)
        .into_iter()
        .filter(|seg| !seg.is_blank())
        .map(|seg| {
            doc_no += 1;
            (seg, doc_no)
        })
        .collect();
    let run = |part: &[(crate::yaml::split::Segment<'_>, usize)]| {
        let mut out = Vec::new();
        for (seg, doc_no) in part {
            check_document(seg, *doc_no, policy, version, fix_policy, &mut out)?;
        }
        Ok::<_, Error>(out)
    };
    // Documents are independent: a large stream is checked on every core, as it is hardened.
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
    if threads <= 1 || segments.len() < 64 || cfg!(target_family = "wasm") {
        return run(&segments);
    }
    let per = segments.len().div_ceil(threads);
    let parts: Vec<Result<Vec<ObjectReport>, Error>> = std::thread::scope(|scope| {
        let handles: Vec<_> = segments
            .chunks(per)
            .map(|part| scope.spawn(move || run(part)))
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().expect("check worker panicked"))
            .collect()
    });
    let mut out = Vec::new();
    for part in parts {
        out.extend(part?);
    }
    Ok(out)
}

/// Checks one document (its objects that hold a pod go to `out`).
fn check_document(
    seg: &crate::yaml::split::Segment<'_>,
    doc_no: usize,
    policy: &Policy,
    version: Version,
    fix_policy: Option<&Policy>,
    out: &mut Vec<ObjectReport>,
) -> Result<(), Error> {
    let fail = |e: SyntaxError| Error::Input {
        doc: doc_no,
        line: seg.first_line + e.line.saturating_sub(1),
        message: e.message,
    };
    let events = collect_events(seg.text).map_err(fail)?;
    // Only documents that can hold a pod are built into trees (as the hardening run does).
    let sniffed = sniff_document(seg.text, &events);
    let (Some(api_version), Some(kind)) = (&sniffed.api_version, &sniffed.kind) else {
        return Ok(());
    };
    if !kind.ends_with("List") && pod_location(api_version, kind, policy).is_none() {
        return Ok(());
    }
    let doc = build_document(seg.text, &events).map_err(fail)?;
    let Some(root) = &doc.root else {
        return Ok(());
    };
    let value = root.to_value();
    let line_of = |node: &Node<'_>| seg.first_line + count_lines(&seg.text[..node.start]);
    check_object(&value, root, policy, version, fix_policy, &line_of, out);
    Ok(())
}

fn count_lines(text: &str) -> usize {
    text.bytes().filter(|&b| b == b'\n').count()
}

fn check_object(
    value: &Value,
    node: &Node<'_>,
    policy: &Policy,
    version: Version,
    fix_policy: Option<&Policy>,
    line_of: &dyn Fn(&Node<'_>) -> usize,
    out: &mut Vec<ObjectReport>,
) {
    let s = |k: &str| value.get(k).and_then(Value::as_str).unwrap_or("");
    let (api_version, kind) = (s("apiVersion"), s("kind"));
    if kind.ends_with("List") {
        if let (Some(Value::Array(items)), Some(Data::Seq { items: nodes, .. })) =
            (value.get("items"), node.get("items").map(|n| &n.data))
        {
            for (item, item_node) in items.iter().zip(nodes) {
                check_object(item, item_node, policy, version, fix_policy, line_of, out);
            }
        }
        return;
    }
    let Some(location) = pod_location(api_version, kind, policy) else {
        return;
    };
    let Some(pod) = Pod::at(value, &location.metadata, &location.spec) else {
        return;
    };
    let verdict = evaluate(&pod, version);
    let mut findings: Vec<Finding> = verdict
        .violations
        .into_iter()
        .map(|v| Finding {
            control: v.control,
            level: v.level,
            line: v
                .failure
                .paths
                .first()
                .map_or_else(|| line_of(node), |p| line_of(deepest(node, p))),
            paths: v.failure.paths.iter().map(ToString::to_string).collect(),
            message: v.failure.message,
            fix: None,
        })
        .collect();
    if let Some(fix_policy) = fix_policy.filter(|_| !findings.is_empty()) {
        fixes(value, &location, &mut findings, fix_policy, version);
    }
    out.push(ObjectReport {
        resource: ResourceRef::of(value),
        line: line_of(node),
        level: verdict.level,
        findings,
    });
}

/// The node for the deepest part of `path` that exists (a key's own node for mapping entries).
fn deepest<'n, 'a>(root: &'n Node<'a>, path: &FieldPath) -> &'n Node<'a> {
    let mut cur = root;
    for seg in &path.0 {
        let next = match (seg, &cur.data) {
            (Seg::Key(k), Data::Map { entries, .. }) => entries.iter().rev().find(|e| &e.key == k),
            (Seg::Index(i), Data::Seq { items, .. }) => match items.get(*i) {
                Some(n) => {
                    cur = n;
                    continue;
                }
                None => None,
            },
            _ => None,
        };
        match next {
            // The value's node, unless it is the last step: then point at the key's line.
            Some(e) => {
                cur = if matches!(e.value.data, Data::Map { .. } | Data::Seq { .. }) {
                    &e.value
                } else {
                    &e.key_node
                }
            }
            None => break,
        }
    }
    cur
}

/// The number of objects at each level: `[privileged, baseline, restricted]`.
pub fn counts(files: &[FileReport]) -> [usize; 3] {
    let mut n = [0; 3];
    for o in files.iter().flat_map(|f| &f.objects) {
        n[o.level as usize] += 1;
    }
    n
}

/// True when every object meets `level`.
pub fn all_meet(files: &[FileReport], level: Level) -> bool {
    files
        .iter()
        .flat_map(|f| &f.objects)
        .all(|o| o.level >= level)
}

fn object_name(r: &ResourceRef) -> String {
    match &r.namespace {
        Some(ns) => format!("{}/{}/{}", r.kind, ns, r.name),
        None => format!("{}/{}", r.kind, r.name),
    }
}

/// A table for people: one line per object, its failing controls under it.
pub fn text(files: &[FileReport], version: Version, required: Option<Level>) -> String {
    let rows: Vec<(String, String, &ObjectReport)> = files
        .iter()
        .flat_map(|f| {
            f.objects
                .iter()
                .map(move |o| (object_name(&o.resource), format!("{}:{}", f.uri, o.line), o))
        })
        .collect();
    let w_obj = rows.iter().map(|r| r.0.len()).max().unwrap_or(0).max(6);
    let w_loc = rows.iter().map(|r| r.1.len()).max().unwrap_or(0).max(8);
    let mut out = String::new();
    if !rows.is_empty() {
        out.push_str(&format!(
            "{:<w_obj$}  {:<w_loc$}  LEVEL\n",
            "OBJECT", "LOCATION"
        ));
    }
    for (name, loc, o) in &rows {
        let mark = match required {
            Some(l) if o.level < l => "  ✗",
            _ => "",
        };
        out.push_str(&format!(
            "{name:<w_obj$}  {loc:<w_loc$}  {}{mark}\n",
            o.level
        ));
        for f in &o.findings {
            out.push_str(&format!(
                "    {:<10}  {}  (line {})\n      {}\n",
                f.level.as_str(),
                f.control,
                f.line,
                f.message
            ));
            for p in &f.paths {
                out.push_str(&format!("      - {p}\n"));
            }
            if let Some(fix) = &f.fix {
                out.push_str(&format!("      → {}\n", fix.describe()));
            }
        }
    }
    let [p, b, r] = counts(files);
    out.push_str(&format!(
        "{} objects with pods (Pod Security {version}): {r} restricted, {b} baseline, {p} privileged",
        p + b + r
    ));
    if let Some(level) = required {
        let below = files
            .iter()
            .flat_map(|f| &f.objects)
            .filter(|o| o.level < level)
            .count();
        out.push_str(&format!("; {below} below {level}"));
    }
    out.push('\n');
    out
}

/// The report as data.
pub fn json(files: &[FileReport], version: Version, required: Option<Level>) -> Value {
    let [p, b, r] = counts(files);
    let objects: Vec<Value> = files
        .iter()
        .flat_map(|f| {
            f.objects.iter().map(move |o| {
                let mut m = Map::new();
                m.insert("file".into(), json!(f.uri));
                m.insert("line".into(), json!(o.line));
                m.insert("apiVersion".into(), json!(o.resource.api_version));
                m.insert("kind".into(), json!(o.resource.kind));
                if let Some(ns) = &o.resource.namespace {
                    m.insert("namespace".into(), json!(ns));
                }
                m.insert("name".into(), json!(o.resource.name));
                m.insert("level".into(), json!(o.level.as_str()));
                if let Some(l) = required {
                    m.insert("meetsRequired".into(), json!(o.level >= l));
                }
                m.insert(
                    "failures".into(),
                    o.findings
                        .iter()
                        .map(|f| {
                            let mut v = json!({
                                "control": f.control,
                                "level": f.level.as_str(),
                                "message": f.message,
                                "paths": f.paths,
                                "line": f.line,
                            });
                            if let Some(fix) = &f.fix {
                                v["fix"] = fix_json(fix);
                            }
                            v
                        })
                        .collect(),
                );
                Value::Object(m)
            })
        })
        .collect();
    let mut top = Map::new();
    top.insert("pssVersion".into(), json!(version.to_string()));
    if let Some(l) = required {
        top.insert("requiredLevel".into(), json!(l.as_str()));
        top.insert("pass".into(), json!(all_meet(files, l)));
    }
    top.insert(
        "summary".into(),
        json!({"restricted": r, "baseline": b, "privileged": p}),
    );
    top.insert("objects".into(), Value::Array(objects));
    Value::Object(top)
}

/// `{"fixed": true, "rules": [...]}` or `{"fixed": false, "reason": "..."}`.
fn fix_json(fix: &Fix) -> Value {
    match fix {
        Fix::Fixed(rules) => json!({"fixed": true, "rules": rules}),
        Fix::NotFixed(why) => json!({"fixed": false, "reason": why}),
    }
}

/// SARIF 2.1.0: one rule per control, one result per failing control of an object. With a
/// required level, failures of controls at or below it are errors and the rest warnings;
/// without one, every failure is a warning.
pub fn sarif(
    files: &[FileReport],
    version: Version,
    required: Option<Level>,
    tool_version: &str,
) -> Value {
    let rules: Vec<Value> = super::controls()
        .iter()
        .map(|c| {
            json!({
                "id": c.id,
                "name": c.id,
                "shortDescription": {"text": format!("Pod Security Standards {} control {}", c.level, c.id)},
                "helpUri": "https://kubernetes.io/docs/concepts/security/pod-security-standards/",
                "properties": {"level": c.level.as_str(), "tags": ["security", "kubernetes", c.level.as_str()]},
            })
        })
        .collect();
    let index_of = |id: &str| super::controls().iter().position(|c| c.id == id);
    let mut results = Vec::new();
    for f in files {
        for o in &f.objects {
            for finding in &o.findings {
                let severity = match required {
                    Some(l) if finding.level <= l => "error",
                    _ => "warning",
                };
                let fix = finding
                    .fix
                    .as_ref()
                    .map_or(String::new(), |f| format!(" — {}", f.describe()));
                let mut properties =
                    json!({"paths": finding.paths, "objectLevel": o.level.as_str()});
                if let Some(f) = &finding.fix {
                    properties["fix"] = fix_json(f);
                }
                results.push(json!({
                    "ruleId": finding.control,
                    "ruleIndex": index_of(finding.control),
                    "level": severity,
                    "message": {"text": format!("{} ({}, Pod Security {version}): {}{fix}", object_name(&o.resource), finding.level, finding.message)},
                    "locations": [{
                        "physicalLocation": {
                            "artifactLocation": {"uri": f.uri},
                            "region": {"startLine": finding.line},
                        },
                        "logicalLocations": [{
                            "fullyQualifiedName": format!("{}:{}", object_name(&o.resource), finding.paths.first().map_or("", String::as_str)),
                            "kind": "object",
                        }],
                    }],
                    "properties": properties,
                }));
            }
        }
    }
    json!({
        "version": "2.1.0",
        "$schema": "https://json.schemastore.org/sarif-2.1.0.json",
        "runs": [{
            "tool": {"driver": {
                "name": "kube-harden",
                "version": tool_version,
                "informationUri": "https://github.com/kube-harden/kube-harden",
                "rules": rules,
            }},
            "results": results,
        }],
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const DEPLOY: &str = "\
apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
  namespace: shop
spec:
  template:
    spec:
      hostNetwork: true
      containers:
      - name: app
        image: nginx
        securityContext:
          privileged: true
---
apiVersion: v1
kind: ConfigMap
metadata:
  name: c
---
apiVersion: v1
kind: List
items:
- apiVersion: v1
  kind: Pod
  metadata:
    name: p
  spec:
    securityContext:
      runAsNonRoot: true
      seccompProfile:
        type: RuntimeDefault
    containers:
    - name: a
      securityContext:
        allowPrivilegeEscalation: false
        capabilities:
          drop: [ALL]
";

    fn policy() -> Policy {
        Policy::from_spec(Default::default()).unwrap()
    }

    #[test]
    fn reports_levels_paths_and_lines() {
        let objects = check(DEPLOY, &policy(), Version::LATEST).unwrap();
        assert_eq!(objects.len(), 2);
        let d = &objects[0];
        assert_eq!(d.level, Level::Privileged);
        assert_eq!(d.line, 1);
        let host = d
            .findings
            .iter()
            .find(|f| f.control == "hostNamespaces")
            .unwrap();
        assert_eq!(host.paths, ["spec.template.spec.hostNetwork"]);
        assert_eq!(host.line, 9);
        let privileged = d
            .findings
            .iter()
            .find(|f| f.control == "privileged")
            .unwrap();
        assert_eq!(
            privileged.paths,
            ["spec.template.spec.containers[0].securityContext.privileged"]
        );
        assert_eq!(privileged.line, 14);
        assert!(d.findings.iter().any(|f| f.control == "runAsNonRoot"));
        let p = &objects[1];
        assert_eq!(p.resource.name, "p");
        assert_eq!(p.level, Level::Restricted, "{:?}", p.findings);
        assert_eq!(p.line, 24);
    }

    #[test]
    fn renderings() {
        let files = vec![FileReport {
            uri: "deploy.yaml".into(),
            objects: check(DEPLOY, &policy(), Version::v1(25)).unwrap(),
        }];
        assert!(!all_meet(&files, Level::Baseline));
        assert!(all_meet(&files, Level::Privileged));
        let t = text(&files, Version::v1(25), Some(Level::Baseline));
        assert!(t.contains("Deployment/shop/web"), "{t}");
        assert!(t.contains("deploy.yaml:1"), "{t}");
        let j = json(&files, Version::v1(25), Some(Level::Baseline));
        assert_eq!(j["summary"]["restricted"], 1);
        assert_eq!(j["pass"], false);
        let s = sarif(&files, Version::v1(25), Some(Level::Baseline), "0");
        assert_eq!(s["version"], "2.1.0");
        let results = s["runs"][0]["results"].as_array().unwrap();
        assert!(results.iter().any(|r| r["ruleId"] == "privileged"
            && r["level"] == "error"
            && r["locations"][0]["physicalLocation"]["region"]["startLine"] == 14));
    }
}
