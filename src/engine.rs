//! The one core every integration calls: reads a stream, a `List` or a KRM `ResourceList`, runs
//! the enabled rules on every pod it finds, and writes the answer in the form it was given.
//! Documents no rule changes are passed through as the very same bytes.

use crate::config::{Overrides, Policy, PolicySpec, Verbosity};
use crate::error::Error;

mod document;
mod form;
mod hooks;
mod identity;
mod pipeline;
mod resource_list;
mod results;
mod schedule;
mod stream;

use document::{process_segment, SegmentOut};
use form::content_line;
pub(crate) use form::sniff_document;
pub use form::InputForm;
use identity::check_repeated;
pub use pipeline::harden_object;
#[doc(hidden)]
pub use resource_list::set_enabled as set_resource_list_fast_path;
pub use results::{Chunk, Output, ResultsTo, ResultsWriter, Sink, Stats, NOTED_OBJECTS};
use schedule::{number_segments, run, thread_count};
use stream::{index_stream, place_in_stream, withdraw_repeated};

/// How a run is configured.
#[derive(Debug, Clone)]
pub struct Options {
    /// Settings from `--config FILE`; a KRM functionConfig replaces them.
    pub spec: Option<PolicySpec>,
    /// Command-line switches applied on top.
    pub overrides: Overrides,
    /// The verbosity when neither the policy (`spec.verbosity`, a ResourceList's
    /// functionConfig) nor `--verbosity` sets one. The CLI uses `all` for `--results FILE` and
    /// `explain`, `problems` otherwise, so a large stream does not hold a result per change.
    pub verbosity: Verbosity,
    /// Keep a stream's results as YAML text ([`Output::results_yaml`], the items of a results
    /// file) rather than as values: memory about the size of that text ([`Options::results_to`]
    /// writes them instead). Warnings and errors are kept as values too. A ResourceList carries
    /// its results as values whatever this says.
    pub render_results: bool,
    /// Worker threads for a stream (0: one per core). Documents are independent, so a stream is
    /// cut into contiguous runs processed side by side and joined in order.
    pub threads: usize,
    /// The caller reads the results only for a summary like the CLI's stderr one (the first
    /// [`NOTED_OBJECTS`] objects' problems and the totals): a stream's or a `List`'s warnings of
    /// other objects are then counted ([`Stats::warnings_not_kept`]) rather than held, so
    /// memory does not grow with them. A ResourceList keeps every result (they are part of its
    /// output); errors are always kept.
    pub summary_only: bool,
    /// Write the results file (`results:` and an item per result, what `--results FILE` holds)
    /// as the run goes, instead of holding it: items are written as soon as the documents
    /// before them are done. Implies `render_results` for a stream; a ResourceList's results
    /// are written at the end. [`Output::results_yaml`] is then `None`.
    pub results_to: Option<ResultsTo>,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            spec: None,
            overrides: Overrides::default(),
            verbosity: Verbosity::Problems,
            render_results: false,
            threads: 0,
            summary_only: false,
            results_to: None,
        }
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
    // Number the documents first: errors name the document, and workers need their numbers.
    let (segments, first) = number_segments(input);
    // Rules' index hooks see the whole stream first (autoscalers, budgets already written).
    let index = &index_stream(&segments, first);
    let mut parts: Vec<SegmentOut<'a>> = Vec::with_capacity(segments.len());
    let mut out = Output {
        chunks: Vec::new(),
        origins: Vec::new(),
        results: Vec::new(),
        form: InputForm::Stream,
        stats: Stats::default(),
        unresolved: Vec::new(),
        policy: PolicySpec::default(),
        notes: Vec::new(),
        results_yaml: None,
    };
    let mut sink = Sink::new(
        policy.verbosity(options.verbosity),
        options.render_results || options.results_to.is_some(),
    );
    sink.default_verbosity = options.verbosity;
    if let Some(to) = &options.results_to {
        sink.write_results_to(to.clone()).map_err(Error::Results)?;
    }
    // The first document decides the form; a ResourceList brings its own policy.
    let threads = thread_count(options.threads);
    for (seg, no) in &segments[..(first + 1).min(segments.len())] {
        let fast = resource_list::process(
            seg,
            &mut policy,
            &options.overrides,
            index,
            &mut sink,
            threads,
        );
        let part = match fast {
            Some(part) => part,
            None => process_segment(
                seg,
                *no,
                true,
                &mut policy,
                &options.overrides,
                index,
                &mut sink,
            )?,
        };
        if let Some(form) = part.form {
            out.form = form;
        }
        parts.push(part);
    }
    let rest = &segments[(first + 1).min(segments.len())..];
    // A KRM function reads one ResourceList: documents after it would be hardened as a stream
    // whose results the list never shows, and delivered with it even when they fail.
    if out.form == InputForm::ResourceList {
        if let Some((seg, no)) = rest.iter().find(|(seg, _)| !seg.is_blank()) {
            return Err(Error::Input {
                doc: *no,
                line: content_line(seg),
                message: "a ResourceList must be the only document of its input".into(),
            });
        }
    }
    sink.summary_only = options.summary_only && out.form != InputForm::ResourceList;
    parts.extend(run(
        rest,
        threads,
        &mut policy,
        &options.overrides,
        index,
        &mut sink,
    )?);
    // A workload in the input twice, once as a list's item, is an error.
    check_repeated(&sink.workloads)?;
    withdraw_repeated(&mut parts, &mut sink);
    place_in_stream(parts, &segments, index, threads, &mut sink, &mut out);
    if sink.summary_only {
        sink.trim();
    }
    sink.end_results().map_err(Error::Results)?;
    sink.finish(&mut out);
    out.policy = policy.spec.clone();
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::yaml::split::split_documents;
    use serde_json::Value;

    fn input_error(input: &str) -> (usize, usize, String) {
        match process(input, &Options::default()) {
            Err(Error::Input { doc, line, message }) => (doc, line, message),
            Err(e) => panic!("unexpected error {e}"),
            Ok(out) => panic!("accepted: {}", out.text()),
        }
    }

    /// Issue 13, item 13: Kubernetes' reader resolves aliases and merge keys before it looks at
    /// `kind`, so a workload whose `kind` comes through one is still hardened.
    #[test]
    fn kind_through_an_alias_or_a_merge_key() {
        let pod = "metadata: {name: a}\nspec:\n  containers:\n  - name: c\n    image: nginx:1\n";
        for head in [
            "apiVersion: v1\nk: &k kind\n*k : Pod\n",
            "base: &b {apiVersion: v1, kind: Pod}\n<<: *b\n",
            "<<: {kind: Pod}\napiVersion: v1\n",
        ] {
            let input = format!("{head}{pod}");
            let out = process(&input, &Options::default()).expect(&input);
            let text = out.text();
            let value = crate::yaml::tree::parse_document(&text)
                .unwrap()
                .root
                .unwrap()
                .to_value();
            assert_eq!(value["kind"], "Pod", "{text}");
            assert_eq!(
                value.pointer("/spec/securityContext/seccompProfile/type"),
                Some(&serde_json::json!("RuntimeDefault")),
                "{input:?} was not hardened:\n{text}"
            );
        }
    }

    /// Issue 13, item 13: kubectl drops `---` lines, so a later document may start with a byte
    /// order mark, which go-yaml skips.
    #[test]
    fn a_byte_order_mark_after_a_document_marker_is_read() {
        let input = "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: a}\n---\n\u{feff}\
                     apiVersion: v1\nkind: Pod\nmetadata: {name: p}\nspec:\n  containers:\n  \
                     - name: c\n    image: nginx:1\n";
        let out = process(input, &Options::default()).unwrap().text();
        assert!(out.contains("RuntimeDefault"), "{out}");
        let (_, line, message) = input_error("a: 1\n\u{feff}b: 2\n");
        assert_eq!(line, 2, "{message}");
        assert!(message.contains("byte order mark"), "{message}");
    }

    #[test]
    fn alias_bombs_are_rejected_on_every_path() {
        // The budget index parses any document that mentions PodDisruptionBudget, even in a
        // comment; the bomb must be refused there too, naming the document.
        let mut bomb = String::from(
            "# not a PodDisruptionBudget\napiVersion: v1\nkind: ConfigMap\nl0: &l0 [\"lol\"]\n",
        );
        for n in 1..=9 {
            let items = vec![format!("*l{}", n - 1); 10].join(", ");
            bomb.push_str(&format!("l{n}: &l{n} [{items}]\n"));
        }
        let input = format!("apiVersion: v1\nkind: Namespace\nmetadata: {{name: a}}\n---\n{bomb}");
        let (doc, line, message) = input_error(&input);
        assert_eq!(doc, 2);
        assert_eq!(
            line, 12,
            "line of the alias that crosses the limit in the stream"
        );
        assert!(message.contains("excessive aliasing"), "{message}");
    }

    #[test]
    fn duplicate_keys_name_key_document_and_line() {
        let input = "apiVersion: v1\nkind: Namespace\nmetadata: {name: a}\n---\napiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: web\nspec:\n  replicas: 1\n  replicas: 3\n  template:\n    spec:\n      containers: [{name: c, image: nginx}]\n";
        let (doc, line, message) = input_error(input);
        assert_eq!((doc, line), (2, 11));
        assert!(message.contains("duplicate key \"replicas\""), "{message}");
    }

    #[test]
    fn duplicate_keys_in_documents_no_rule_reads_are_errors() {
        // A ConfigMap passes through unread, but kubectl refuses it all the same.
        let input = "apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: web}\nspec:\n  template:\n    spec:\n      containers: [{name: c, image: nginx}]\n---\n# Source: c.yaml\napiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: web\ndata:\n  mode: a\n  other: b\n  mode: c\n";
        let (doc, line, message) = input_error(input);
        assert_eq!((doc, line), (2, 17));
        assert!(message.contains("duplicate key \"mode\""), "{message}");
        // Repeated merge keys are still fine, and the document still passes through untouched.
        let fine = "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: web}\nbase: &b {a: x}\nextra: &e {b: y}\ndata:\n  <<: *b\n  <<: *e\n  c: z # kept\n";
        let out = process(fine, &Options::default()).unwrap();
        assert!(!out.has_errors());
        assert_eq!(out.text(), fine);
    }

    /// A workload written with go-yaml's allowances (a tab after `:`, `[-]`) is hardened in place:
    /// the parser reads a copy with the same byte offsets, the edits go into the original text.
    #[test]
    fn go_reader_allowances_are_edited_in_place() {
        let input = "apiVersion: v1\nkind: Pod\nmetadata:\n  name:\tweb\nspec:\n  containers:\n  - name: c\n    image: nginx\n    args: [-, x]\n";
        let out = process(input, &Options::default()).unwrap();
        let text = out.text();
        assert!(
            text.contains("  name:\tweb\n") && text.contains("args: [-, x]"),
            "{text}"
        );
        assert!(text.contains("seccompProfile"), "{text}");
        assert_eq!(out.stats.reemitted, 0);
        assert_eq!(process(&text, &Options::default()).unwrap().text(), text);
        // A piece of the stream that is only `...` is refused, as kubectl refuses it.
        let (doc, line, message) =
            input_error("apiVersion: v1\nkind: Namespace\nmetadata: {name: a}\n---\n...\n");
        assert_eq!((doc, line), (2, 5));
        assert!(
            message.contains("nothing before its end marker"),
            "{message}"
        );
        // A second `...` after a document's own stays with it.
        assert!(process(
            "apiVersion: v1\nkind: Namespace\nmetadata: {name: a}\n...\n...\n",
            &Options::default()
        )
        .is_ok());
    }

    /// Found by the `resource_list` fuzz target
    /// (fuzz/regressions/resourcelist-budget-results-second-run.yaml): a workload left without a
    /// budget for its own reason (its selector does not match its pods) was told, on the second
    /// run, that the budget generated for a sibling already selects its pods: a new result.
    #[test]
    fn a_second_run_decides_budgets_alike() {
        let input = include_str!("../fuzz/regressions/resourcelist-budget-results-second-run.yaml");
        let mut options = Options {
            threads: 1,
            ..Options::default()
        };
        options.overrides.disable.push("pin-image-digests".into());
        let first = process(input, &options).unwrap();
        assert_eq!(first.form, InputForm::ResourceList);
        let text = first.text();
        assert!(
            text.contains("generated-for: Deployment/hello-v2"),
            "{text}"
        );
        let mismatch = "the selector does not match the pod template's labels";
        assert!(text.contains(mismatch), "{text}");
        let second = process(&text, &options).unwrap();
        assert_eq!(second.text(), text);
        let hello_v1: Vec<&str> = second
            .results
            .iter()
            .filter(|r| r.rule == crate::rules::pod_disruption_budget::ID)
            .filter(|r| r.resource.as_ref().is_some_and(|r| r.name == "hello-v1"))
            .map(|r| r.message.as_str())
            .collect();
        assert_eq!(hello_v1.len(), 1);
        assert!(hello_v1[0].contains(mismatch), "{hello_v1:?}");
    }

    /// Found by the `list` fuzz target (fuzz/regressions/list-duplicate-workload-names.yaml): two
    /// workloads of one kind, namespace and name each got a budget generated for `Kind/name`, and
    /// the second run took one's budget for the other's and decided otherwise. A workload in the
    /// input twice now gets no budget (real streams have such repeats: concatenated examples),
    /// the same on every run.
    #[test]
    fn a_workload_in_the_input_twice_gets_no_budget() {
        let deployment = |ns: &str, app: &str| {
            format!("apiVersion: apps/v1\nkind: Deployment\nmetadata: {{name: web, namespace: {ns}}}\nspec:\n  replicas: 2\n  selector: {{matchLabels: {{app: {app}}}}}\n  template:\n    metadata: {{labels: {{app: {app}}}}}\n    spec:\n      containers: [{{name: c, image: nginx}}]\n")
        };
        // The info results saying why are kept at `verbosity: all`.
        let mut options = Options {
            threads: 1,
            verbosity: crate::config::Verbosity::All,
            ..Options::default()
        };
        options.overrides.disable.push("pin-image-digests".into());
        let repeated = |out: &Output<'_>| -> Vec<String> {
            out.results
                .iter()
                .filter(|r| r.message.contains("is in the input more than once"))
                .map(|r| format!("{:?}", r.resource.as_ref().map(|r| &r.namespace)))
                .collect()
        };
        let twice_then_again = |input: &str, want: usize| {
            let first = process(input, &options).unwrap();
            assert!(!first.has_errors(), "{:?}", first.results);
            let text = first.text();
            assert_eq!(
                text.matches("generated-for: Deployment/web").count(),
                want,
                "{text}"
            );
            assert_eq!(repeated(&first).len(), 2, "{:?}", first.results);
            let second = process(&text, &options).unwrap();
            assert_eq!(second.text(), text);
            assert_eq!(repeated(&second), repeated(&first));
        };
        // A stream: the same name in another namespace, or of another kind, is another object;
        // namespace b's web gets its budget, namespace a's two get none.
        let stream = format!(
            "{}---\napiVersion: v1\nkind: Service\nmetadata: {{name: web, namespace: a}}\n---\n{}---\n{}",
            deployment("a", "p"),
            deployment("b", "p"),
            deployment("a", "q")
        );
        twice_then_again(&stream, 1);
        // In a List (and a List in it), and in a ResourceList.
        let items = |a: &str, b: &str| {
            format!(
                "items:\n- {}\n- apiVersion: v1\n  kind: List\n  items:\n  - {}\n",
                a.trim_end().replace('\n', "\n  "),
                b.trim_end().replace('\n', "\n    ")
            )
        };
        let pair = items(&deployment("a", "p"), &deployment("a", "q"));
        twice_then_again(&format!("apiVersion: v1\nkind: List\n{pair}"), 0);
        twice_then_again(
            &format!("apiVersion: config.kubernetes.io/v1\nkind: ResourceList\n{pair}"),
            0,
        );
        // Once as a list's item and once as a document: the list decides its budgets alone, so
        // this is an error naming both.
        let mixed = format!(
            "{}---\napiVersion: v1\nkind: List\nitems:\n- {}",
            deployment("a", "p"),
            deployment("a", "q").trim_end().replace('\n', "\n  ")
        );
        match process(&mixed, &options) {
            Err(Error::SameObject {
                doc,
                line,
                message,
                first_doc,
                first_line,
                first_item,
            }) => {
                assert_eq!((doc, line, first_doc, first_line), (2, 12, 1, 1));
                assert_eq!(first_item, "");
                assert!(
                    message.starts_with(
                        "items[0]: Deployment web in namespace a is in the input twice"
                    ),
                    "{message}"
                );
            }
            other => panic!("{other:?}"),
        }
    }

    /// Found by the `stream` fuzz target (fuzz/regressions/block-scalar-at-end-then-budget.yaml):
    /// the budget placed after a workload whose block scalar ended the input without a line
    /// break added one to that value.
    #[test]
    fn no_budget_after_a_block_scalar_that_ends_the_input() {
        // The document ends in an init container's `|` script, with no line break after it;
        // nothing the rules add comes after it, but the budget would.
        let workload = include_str!("../fuzz/regressions/block-scalar-at-end-then-budget.yaml");
        assert!(!workload.ends_with('\n'));
        // The script that ends the input, as a value (`..` with no line break after it).
        fn scripts(v: &Value, out: &mut Vec<String>) {
            match v {
                Value::String(s) if s.contains("FRONTEND_ADDR}..") => out.push(s.clone()),
                Value::Array(a) => a.iter().for_each(|x| scripts(x, out)),
                Value::Object(m) => m.values().for_each(|x| scripts(x, out)),
                _ => {}
            }
        }
        let script = |text: &str| -> Vec<String> {
            let mut out = Vec::new();
            for seg in split_documents(text) {
                if let Some(root) = crate::yaml::tree::parse_document(seg.text).unwrap().root {
                    scripts(&root.to_value(), &mut out);
                }
            }
            out
        };
        let before = script(workload);
        assert!(before.iter().any(|s| s.ends_with("..")), "{before:?}");
        let mut options = Options::default();
        options.overrides.disable.push("pin-image-digests".into());
        let out = process(workload, &options).unwrap();
        let text = out.text();
        assert_eq!(script(&text), before, "{text}");
        assert!(!text.contains("kind: PodDisruptionBudget"), "{text}");
        assert!(out
            .problems()
            .any(|r| r.message.contains("ends inside a block scalar")));
        // With a final line break the budget comes as usual.
        let ended = format!("{workload}\n");
        let out = process(&ended, &options).unwrap();
        let text = out.text();
        assert!(text.contains("kind: PodDisruptionBudget"), "{text}");
        assert_eq!(script(&text), script(&ended));
    }

    /// Found by the `stream` fuzz target (fuzz/regressions/resourcelist-then-stream.yaml): the
    /// documents after a ResourceList were hardened as a stream whose error results the list never
    /// showed, and the whole output was delivered even so.
    #[test]
    fn documents_after_a_resource_list_are_refused() {
        let input = "apiVersion: config.kubernetes.io/v1\nkind: ResourceList\nitems: []\n---\n# c\n---\napiVersion: apps/v1\nkind: Deployment\nmetadata: {name: web}\nspec:\n  template:\n    spec:\n      containers: [{name: c, image: nginx}]\n";
        let (doc, line, message) = input_error(input);
        assert_eq!((doc, line), (2, 7));
        assert!(message.contains("only document"), "{message}");
        // Blank documents around it are fine.
        let alone =
            "---\napiVersion: config.kubernetes.io/v1\nkind: ResourceList\nitems: []\n---\n# c\n";
        let out = process(alone, &Options::default()).unwrap();
        assert_eq!(out.form, InputForm::ResourceList);
    }
}
