//! The one core every integration calls: reads a stream, a `List` or a KRM `ResourceList`, runs
//! the enabled rules on every pod it finds, and writes the answer in the form it was given.
//! Documents no rule changes are passed through as the very same bytes.

use std::borrow::Cow;
use std::io::{self, Write};

use saphyr_parser::Event;
use serde_json::Value;

use crate::change::{self, Findings, KrmResult, ResourceRef, Severity};
use crate::config::{self, Overrides, Policy, PolicySpec};
use crate::error::Error;
use crate::model::workload::{pod_location, PodView, LOCAL_CONFIG};
use crate::rules;
use crate::yaml::patch::patch_document;
use crate::yaml::split::{split_documents, Segment};
use crate::yaml::tree::{build_document, collect_events, SpannedEvent, SyntaxError};

/// How a run is configured.
#[derive(Debug, Clone, Default)]
pub struct Options {
    /// Settings from `--config FILE`; a KRM functionConfig replaces them.
    pub spec: Option<PolicySpec>,
    /// Command-line switches applied on top.
    pub overrides: Overrides,
}

/// The shape the input came in, which is also the shape of the output.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum InputForm {
    /// A multi-document YAML/JSON stream (a `List` document is processed in place).
    Stream,
    /// A KRM `ResourceList`.
    ResourceList,
}

/// Counters for the summary line.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Stats {
    /// Objects that hold a pod.
    pub workloads: usize,
    /// Objects at least one rule changed.
    pub changed: usize,
    /// Changes applied.
    pub changes: usize,
    /// Documents rewritten in block style because an in-place edit was impossible.
    pub reemitted: usize,
}

/// The result of a run.
#[derive(Debug)]
pub struct Output<'a> {
    /// The output text, in pieces: untouched documents borrow the input.
    pub chunks: Vec<Cow<'a, str>>,
    /// Every result (info, warning, error).
    pub results: Vec<KrmResult>,
    /// The input's form.
    pub form: InputForm,
    /// Counters.
    pub stats: Stats,
}

impl Output<'_> {
    /// True when a result has severity error (the run must exit 1).
    pub fn has_errors(&self) -> bool {
        self.results.iter().any(|r| r.severity == Severity::Error)
    }

    /// Writes the output text.
    pub fn write_to(&self, w: &mut impl Write) -> io::Result<()> {
        for c in &self.chunks {
            w.write_all(c.as_bytes())?;
        }
        Ok(())
    }

    /// The output text as one string.
    pub fn text(&self) -> String {
        self.chunks.concat()
    }

    /// Results that are warnings or errors.
    pub fn problems(&self) -> impl Iterator<Item = &KrmResult> {
        self.results.iter().filter(|r| r.severity != Severity::Info)
    }
}

/// Processes raw bytes (must be UTF-8; a leading BOM is kept).
pub fn process_bytes<'a>(input: &'a [u8], options: &Options) -> Result<Output<'a>, Error> {
    let text = std::str::from_utf8(input).map_err(|e| Error::NotUtf8(e.valid_up_to()))?;
    process(text, options)
}

/// Processes a stream, a `List` or a `ResourceList`.
pub fn process<'a>(input: &'a str, options: &Options) -> Result<Output<'a>, Error> {
    let mut policy =
        Policy::with_overrides(options.spec.clone().unwrap_or_default(), &options.overrides)?;
    let mut out = Output {
        chunks: Vec::new(),
        results: Vec::new(),
        form: InputForm::Stream,
        stats: Stats::default(),
    };
    let mut doc_no = 0usize;
    let mut first_content = true;
    for seg in split_documents(input) {
        if seg.is_blank() {
            out.chunks.push(Cow::Borrowed(seg.text));
            continue;
        }
        doc_no += 1;
        let fail = |e: SyntaxError| Error::Input {
            doc: doc_no,
            line: seg.first_line + e.line.saturating_sub(1),
            message: e.message,
        };
        let events = collect_events(seg.text).map_err(fail)?;
        let sniff = sniff(&events);
        let is_first = std::mem::take(&mut first_content);
        match sniff.root {
            Root::Empty => {
                doc_no -= 1;
                out.chunks.push(Cow::Borrowed(seg.text));
                continue;
            }
            Root::Other => {
                return Err(Error::Input {
                    doc: doc_no,
                    line: content_line(&seg),
                    message: "not a Kubernetes object: expected a mapping with apiVersion and kind"
                        .into(),
                })
            }
            Root::Map => {}
        }
        let (Some(api_version), Some(kind)) = (sniff.api_version.as_deref(), sniff.kind.as_deref())
        else {
            let missing = if sniff.api_version.is_none() {
                "apiVersion"
            } else {
                "kind"
            };
            return Err(Error::Input {
                doc: doc_no,
                line: content_line(&seg),
                message: format!("object has no {missing}"),
            });
        };
        let is_resource_list = kind == "ResourceList";
        let is_list = kind == "List" || kind.ends_with("List");
        if !is_resource_list && !is_list && pod_location(api_version, kind, &policy).is_none() {
            out.chunks.push(Cow::Borrowed(seg.text));
            continue;
        }
        let doc = build_document(seg.text, &events).map_err(fail)?;
        let Some(root) = doc.root.as_ref() else {
            out.chunks.push(Cow::Borrowed(seg.text));
            continue;
        };
        let mut value = root.to_value();
        let source = source_of(&seg);
        let changed = if is_resource_list && is_first {
            out.form = InputForm::ResourceList;
            if let Some(fc) = value.get("functionConfig").filter(|v| !v.is_null()) {
                let spec = function_config_spec(fc)?;
                policy = Policy::with_overrides(spec, &options.overrides)?;
            }
            let mut changed = harden_items(&mut value, &policy, None, &mut out);
            // Results go into the ResourceList itself, after any earlier function's results.
            let results: Vec<Value> = out.results.iter().map(KrmResult::to_value).collect();
            if !results.is_empty() {
                match value.get_mut("results") {
                    Some(Value::Array(existing)) => existing.extend(results),
                    _ => {
                        value["results"] = Value::Array(results);
                    }
                }
                changed = true;
            }
            changed
        } else if value.get("items").is_some_and(Value::is_array) && (is_list || is_resource_list) {
            harden_items(&mut value, &policy, source.as_deref(), &mut out)
        } else {
            harden_object(&mut value, &policy, source.as_deref(), &mut out)
        };
        if changed {
            let (text, mode) = patch_document(seg.text, &doc, &value);
            if mode == crate::yaml::patch::PatchMode::Reemitted {
                out.stats.reemitted += 1;
            }
            out.chunks.push(Cow::Owned(text));
        } else {
            out.chunks.push(Cow::Borrowed(seg.text));
        }
    }
    Ok(out)
}

fn function_config_spec(fc: &Value) -> Result<PolicySpec, Error> {
    config::spec_from_object(fc).map_err(|e| match e {
        Error::Config(m) => Error::Config(format!("functionConfig: {m}")),
        other => other,
    })
}

/// Hardens every item of a `List`/`ResourceList`; returns true when one changed.
fn harden_items(
    list: &mut Value,
    policy: &Policy,
    source: Option<&str>,
    out: &mut Output<'_>,
) -> bool {
    let mut changed = false;
    if let Some(Value::Array(items)) = list.get_mut("items") {
        for item in items.iter_mut() {
            let file = item_file(item).or_else(|| source.map(str::to_string));
            changed |= harden_object(item, policy, file.as_deref(), out);
        }
    }
    changed
}

fn item_file(item: &Value) -> Option<String> {
    let annotations = item.pointer("/metadata/annotations")?;
    [
        "internal.config.kubernetes.io/path",
        "config.kubernetes.io/path",
        "postrenderer.helm.sh/postrender-filename",
    ]
    .iter()
    .find_map(|k| {
        annotations
            .get(*k)
            .and_then(Value::as_str)
            .map(str::to_string)
    })
}

/// Runs every enabled rule on the object's pod; returns true when something changed.
pub fn harden_object(
    object: &mut Value,
    policy: &Policy,
    file: Option<&str>,
    out: &mut Output<'_>,
) -> bool {
    if !object.is_object() {
        return false;
    }
    if object
        .pointer(&format!(
            "/metadata/annotations/{}",
            LOCAL_CONFIG.replace('/', "~1")
        ))
        .and_then(Value::as_str)
        == Some("true")
    {
        return false;
    }
    let resource = ResourceRef::of(object);
    let Some(location) = pod_location(&resource.api_version, &resource.kind, policy) else {
        return false;
    };
    let file = file.map(str::to_string).or_else(|| item_file(object));
    let report = |out: &mut Output<'_>,
                  rule: &'static str,
                  severity,
                  message: String,
                  path: Option<String>,
                  current,
                  proposed| {
        out.results.push(KrmResult {
            rule,
            severity,
            message,
            resource: Some(resource.clone()),
            path,
            current,
            proposed,
            file: file.clone(),
        });
    };
    match PodView::new(object, location.clone()) {
        Err(problem) => {
            report(
                out,
                "kube-harden",
                Severity::Error,
                format!("cannot harden: {problem}"),
                None,
                None,
                None,
            );
            return false;
        }
        Ok(None) => return false,
        Ok(Some(view)) => {
            out.stats.workloads += 1;
            if view.host_process {
                report(
                    out,
                    "kube-harden",
                    Severity::Info,
                    "Windows HostProcess pod left as it is".into(),
                    Some(location.spec.to_string()),
                    None,
                    None,
                );
                return false;
            }
        }
    }
    let mut changed = 0usize;
    for rule in rules::registry()
        .iter()
        .filter(|r| policy.is_enabled(r.id()))
    {
        let mut findings = Findings::default();
        {
            let Ok(Some(view)) = PodView::new(object, location.clone()) else {
                break;
            };
            rule.check(&view, policy, &mut findings);
        }
        for f in findings.findings {
            report(
                out,
                f.rule,
                f.severity,
                f.message,
                f.path.map(|p| p.to_string()),
                f.current,
                f.proposed,
            );
        }
        for c in findings.changes {
            match change::apply(object, &c) {
                Ok(true) => {
                    changed += 1;
                    let (current, proposed) = match &c.op {
                        change::Op::Add(v) | change::Op::Append(v) => (None, Some(v.clone())),
                        change::Op::Replace { from, to } => (Some(from.clone()), Some(to.clone())),
                    };
                    report(
                        out,
                        c.rule,
                        Severity::Info,
                        c.message,
                        Some(c.path.to_string()),
                        current,
                        proposed,
                    );
                }
                Ok(false) => {}
                Err(problem) => report(
                    out,
                    c.rule,
                    Severity::Error,
                    format!("cannot apply change: {problem}"),
                    Some(c.path.to_string()),
                    None,
                    None,
                ),
            }
        }
    }
    out.stats.changes += changed;
    if changed > 0 {
        out.stats.changed += 1;
    }
    changed > 0
}

/// The file a document came from: Helm 3's `# Source:` header.
fn source_of(seg: &Segment<'_>) -> Option<String> {
    seg.header_comments()
        .iter()
        .find_map(|c| c.strip_prefix("# Source:").map(|s| s.trim().to_string()))
}

/// The stream line of the document's first content line.
fn content_line(seg: &Segment<'_>) -> usize {
    let mut line = seg.first_line;
    for l in seg.text.lines() {
        let t = l.trim_start_matches('\u{feff}').trim();
        if !(t.is_empty() || t.starts_with('#') || t == "---") {
            break;
        }
        line += 1;
    }
    line
}

enum Root {
    Empty,
    Map,
    Other,
}

struct Sniff {
    root: Root,
    api_version: Option<String>,
    kind: Option<String>,
}

/// Reads the root's shape and its top-level `apiVersion` and `kind` without building a tree.
fn sniff(events: &[SpannedEvent<'_>]) -> Sniff {
    let mut s = Sniff {
        root: Root::Empty,
        api_version: None,
        kind: None,
    };
    let mut depth = 0usize;
    let mut key: Option<&str> = None;
    let mut expect_key = true;
    for (event, _) in events {
        match event {
            Event::StreamStart
            | Event::StreamEnd
            | Event::DocumentStart(_)
            | Event::DocumentEnd
            | Event::Nothing => {}
            Event::MappingStart(..) | Event::SequenceStart(..) => {
                if depth == 0 {
                    s.root = if matches!(event, Event::MappingStart(..)) {
                        Root::Map
                    } else {
                        Root::Other
                    };
                }
                depth += 1;
            }
            Event::MappingEnd | Event::SequenceEnd => {
                depth = depth.saturating_sub(1);
                if depth == 1 {
                    expect_key = !expect_key;
                    key = None;
                }
            }
            Event::Scalar(text, style, _, _) => {
                if depth == 0 {
                    let empty =
                        text.is_empty() && matches!(style, saphyr_parser::ScalarStyle::Plain);
                    s.root = if empty { Root::Empty } else { Root::Other };
                } else if depth == 1 {
                    if expect_key {
                        key = Some(text.as_ref());
                    } else {
                        match key {
                            Some("apiVersion") => s.api_version = Some(text.to_string()),
                            Some("kind") => s.kind = Some(text.to_string()),
                            _ => {}
                        }
                        key = None;
                    }
                    expect_key = !expect_key;
                }
            }
            Event::Alias(_) => {
                if depth == 1 {
                    expect_key = !expect_key;
                }
            }
        }
    }
    s.api_version = s.api_version.filter(|v| !v.is_empty());
    s.kind = s.kind.filter(|v| !v.is_empty());
    s
}
