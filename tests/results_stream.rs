//! The results file written as the run goes (`Options::results_to`, what `--results FILE` uses)
//! holds exactly the bytes of the results held until the end (`Options::render_results`, or the
//! values of a ResourceList), on one thread and on several, past the point where the summary's
//! results are trimmed and past the size of a rendered block; and a write error ends the run
//! with `Error::Results`, on any number of threads, without a hang.

use std::io;
use std::sync::{Arc, Mutex};

use kube_harden::engine::{ResultsTo, ResultsWriter};
use kube_harden::yaml::emit::{sequence_items, Layout};
use kube_harden::{process, Error, InputForm, Options, Output};

/// A writer whose bytes the test reads back; it fails once it holds `fail_at` bytes or more.
#[derive(Clone, Default)]
struct Shared {
    bytes: Arc<Mutex<Vec<u8>>>,
    fail_at: Option<usize>,
}

impl ResultsWriter for Shared {
    fn write(&mut self, bytes: &[u8]) -> io::Result<()> {
        let mut held = self.bytes.lock().unwrap();
        if self.fail_at.is_some_and(|at| held.len() >= at) {
            return Err(io::Error::new(io::ErrorKind::StorageFull, "disk full"));
        }
        held.extend_from_slice(bytes);
        Ok(())
    }

    fn restart(&mut self) -> io::Result<()> {
        self.bytes.lock().unwrap().clear();
        Ok(())
    }

    fn finish(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl Shared {
    fn text(&self) -> String {
        String::from_utf8(self.bytes.lock().unwrap().clone()).unwrap()
    }
}

/// The results file as the held output gives it: its rendered blocks (a stream, a List) or
/// each value rendered (a ResourceList).
fn held_file(out: &Output<'_>) -> String {
    let mut items = String::new();
    match &out.results_yaml {
        Some(blocks) => blocks.iter().for_each(|b| items.push_str(b)),
        None => {
            for r in &out.results {
                sequence_items(&mut items, &[r.to_value()], 0, &Layout::default());
            }
        }
    }
    if items.is_empty() {
        "results: []\n".into()
    } else {
        format!("results:\n{items}")
    }
}

fn pod(i: usize, extra: &str) -> String {
    format!(
        "apiVersion: v1\nkind: Pod\nmetadata:\n  name: pod-{i}\nspec:\n  containers:\n  - name: app\n    image: registry.example.com/app-{i}:1.{i}\n{extra}"
    )
}

fn stream(n: usize) -> String {
    (0..n)
        .map(|i| {
            let extra = if i % 7 == 0 {
                "    securityContext: {privileged: true}\n"
            } else {
                ""
            };
            format!("---\n{}", pod(i, extra))
        })
        .collect()
}

fn options(threads: usize) -> Options {
    let mut options = Options {
        threads,
        verbosity: kube_harden::config::Verbosity::All,
        ..Options::default()
    };
    options.overrides.disable.push("pin-image-digests".into());
    options
}

/// (file written as the run goes, the run's output text, its stats) for `threads`.
fn streamed(input: &str, threads: usize, summary_only: bool) -> (String, String, usize) {
    let shared = Shared::default();
    let out = process(
        input,
        &Options {
            results_to: Some(ResultsTo::new(shared.clone())),
            summary_only,
            ..options(threads)
        },
    )
    .unwrap();
    assert!(out.results_yaml.is_none());
    (shared.text(), out.text(), out.stats.warnings_not_kept)
}

fn held(input: &str, threads: usize) -> (String, String) {
    let out = process(
        input,
        &Options {
            render_results: true,
            ..options(threads)
        },
    )
    .unwrap();
    (held_file(&out), out.text())
}

#[test]
fn a_stream_s_results_file_is_the_same_streamed_or_held_on_any_number_of_threads() {
    // 1,500 Pods: four or more warnings each (well past the 1,024 results where the summary's
    // are trimmed), several MiB of results (past a 1 MiB rendered block), several pieces per
    // worker.
    let input = stream(1500);
    let (want, text) = held(&input, 1);
    assert!(want.len() > 3 << 20, "{}", want.len());
    assert!(want.matches("\n  severity: warning\n").count() > 4000);
    for threads in [1, 2, 3, 8] {
        assert_eq!(held(&input, threads), (want.clone(), text.clone()));
        for summary_only in [false, true] {
            let (file, out_text, not_kept) = streamed(&input, threads, summary_only);
            assert!(
                file == want,
                "{threads} threads, summary_only {summary_only}"
            );
            assert_eq!(out_text, text);
            assert_eq!(not_kept > 0, summary_only, "{threads} threads");
        }
    }
}

#[test]
fn lists_resource_lists_and_empty_results_are_written_as_held() {
    let items: String = (0..300)
        .map(|i| format!("- {}", pod(i, "").trim_end().replace('\n', "\n  ") + "\n"))
        .collect();
    let list = format!("apiVersion: v1\nkind: List\nitems:\n{items}");
    let resource_list =
        format!("apiVersion: config.kubernetes.io/v1\nkind: ResourceList\nitems:\n{items}");
    let empty = "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: c}\n".to_string();
    for (input, form) in [
        (list, InputForm::Stream),
        (resource_list, InputForm::ResourceList),
        (empty, InputForm::Stream),
    ] {
        for threads in [1, 4] {
            let (want, text) = held(&input, threads);
            let (file, out_text, _) = streamed(&input, threads, true);
            assert_eq!(file, want);
            assert_eq!(out_text, text);
            assert_eq!(process(&input, &options(1)).unwrap().form, form);
        }
    }
    assert_eq!(
        streamed("apiVersion: v1\nkind: ConfigMap\n", 1, true).0,
        "results: []\n"
    );
}

#[test]
fn a_second_run_with_the_same_writer_starts_the_file_over() {
    let input = stream(100);
    let shared = Shared::default();
    let options = Options {
        results_to: Some(ResultsTo::new(shared.clone())),
        ..options(2)
    };
    process(&input, &options).unwrap();
    let once = shared.text();
    process(&input, &options).unwrap();
    assert_eq!(shared.text(), once);
}

#[test]
fn a_write_error_ends_the_run_on_any_number_of_threads() {
    let input = stream(1500);
    for threads in [1, 2, 8] {
        for fail_at in [0, 10, 2 << 20] {
            let shared = Shared {
                fail_at: Some(fail_at),
                ..Shared::default()
            };
            let result = process(
                &input,
                &Options {
                    results_to: Some(ResultsTo::new(shared.clone())),
                    ..options(threads)
                },
            );
            match result {
                Err(Error::Results(e)) => {
                    assert_eq!(e.kind(), io::ErrorKind::StorageFull);
                    assert!(
                        Error::Results(e).to_string().contains("disk full"),
                        "{threads} threads"
                    );
                }
                Err(e) => panic!("{threads} threads, at {fail_at}: {e}"),
                Ok(_) => panic!("{threads} threads, at {fail_at}: the run succeeded"),
            }
            assert!(shared.text().len() <= fail_at.max(1) + (1 << 20) + 64);
        }
    }
}
