//! Issue 16's rows in one run (`cargo bench --bench speed`, baselines from
//! `eval "$(bash scripts/bench-setup.sh)"`; `benches/speed.sh` does both): each figure is a
//! ratio measured here, interleaved, median of `--runs` (default 3), every program in its own
//! process with its peak RSS.
//!
//! 1. KRM: the same 3×`--krm N` objects (default 700 each: Deployments, Services, ConfigMaps) as
//!    the `ResourceList` `kpt fn source` writes and as a plain stream; seconds per input byte of
//!    the list over the stream's (goal ≤ 1.2), the list's peak RSS (goal ≤ 2 × input + 32 MB), and
//!    the list's output size and result count (results sized by what people read).
//! 2. Stream: the 3×`--docs N` stream (default 10,000 each) through `kube-harden` vs a plain
//!    serde-saphyr parse + emit (goal ≥ 2×), rapidyaml's (C++) parse + emit (goal ≥ 1×; its own
//!    timing of parse + emit, without Python's start-up) and gopkg.in/yaml.v3's decode + encode
//!    (what Go KRM functions pay; for reference).
//! 3. `--results` on `--pods N` small Pods (default 40,000): peak RSS (goal ≤ 2 × input + 32 MB +
//!    the results file's size).
//!
//! `--only krm`, `--only stream` or `--only results` runs one row.
//!
//! The kpt row (`kpt fn eval --exec`) is `benches/kpt.sh`; the WASI row is `wasm/bench.sh`.

use std::ffi::OsStr;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

#[path = "support/args.rs"]
mod args;
#[path = "support/measure.rs"]
mod measure;
#[path = "support/serde_saphyr.rs"]
mod serde_saphyr_baseline;
use serde_saphyr_baseline::serde_saphyr_round_trip;
#[path = "support/stream.rs"]
mod stream;
use measure::{measure, Run};

/// A named program under measurement: one call, one run.
type Program<'a> = Box<dyn FnMut() -> Run + 'a>;

fn median(mut runs: Vec<Run>) -> Run {
    runs.sort_by(|a, b| a.seconds.total_cmp(&b.seconds));
    let mid = runs.len() / 2;
    runs.swap_remove(mid)
}

/// Runs every program of `programs` `runs` times, interleaved (one round runs each once), and
/// gives each one's median run.
fn interleaved(runs: usize, programs: &mut [&mut dyn FnMut() -> Run]) -> Vec<Run> {
    let mut all: Vec<Vec<Run>> = programs.iter().map(|_| Vec::new()).collect();
    for _ in 0..runs.max(1) {
        for (p, program) in programs.iter_mut().enumerate() {
            all[p].push(program());
        }
    }
    all.into_iter().map(median).collect()
}

fn verdict(met: bool) -> &'static str {
    if met {
        "met"
    } else {
        "NOT met"
    }
}

fn mb(bytes: usize) -> f64 {
    bytes as f64 / 1e6
}

fn temp(name: &str) -> PathBuf {
    std::env::temp_dir().join(format!("kube-harden-speed-{}-{name}", std::process::id()))
}

fn harden(exe: &str, lock: &Path, input: &[u8], out: Option<&Path>, extra: &[&str]) -> Run {
    let mut args: Vec<&OsStr> = vec!["--quiet".as_ref(), "--offline".as_ref(), "--lock".as_ref()];
    args.push(lock.as_os_str());
    args.extend(extra.iter().map(|a| OsStr::new(*a)));
    measure(Path::new(exe), &args, input, out)
}

/// How many results a ResourceList output carries (items of its top-level `results:`).
fn result_count(output: &str) -> usize {
    let doc = kube_harden::yaml::tree::parse_document(output).expect("output parses");
    let value = doc.root.map(|r| r.to_value()).unwrap_or_default();
    value
        .get("results")
        .and_then(|r| r.as_array())
        .map_or(0, Vec::len)
}

fn krm_row(exe: &str, runs: usize) {
    let n = args::arg("--krm", 700) as usize;
    let list = stream::resource_list(n);
    let plain = stream::generate(n);
    let lock = temp("krm.lock");
    std::fs::write(&lock, stream::lock(n)).unwrap();
    let list_out = temp("krm-out.yaml");
    println!(
        "\n== KRM: {} objects as a ResourceList ({:.2} MB) and as a stream ({:.2} MB)",
        3 * n,
        mb(list.len()),
        mb(plain.len())
    );
    let medians = interleaved(
        runs,
        &mut [
            &mut || harden(exe, &lock, list.as_bytes(), Some(&list_out), &[]),
            &mut || harden(exe, &lock, plain.as_bytes(), None, &[]),
        ],
    );
    let (l, s) = (&medians[0], &medians[1]);
    let per_byte = (l.seconds / list.len() as f64) / (s.seconds / plain.len() as f64);
    let limit_mb = 2.0 * list.len() as f64 / 1048576.0 + 32.0;
    let output = std::fs::read_to_string(&list_out).unwrap();
    let results = result_count(&output);
    println!(
        "ResourceList {:.3} s ({:.3} s CPU), {:.1} MB peak; stream {:.3} s ({:.3} s CPU), {:.1} MB peak",
        l.seconds,
        l.cpu_seconds,
        l.peak_rss_mb(),
        s.seconds,
        s.cpu_seconds,
        s.peak_rss_mb()
    );
    println!(
        "time per input byte, list / stream: {per_byte:.2}x (goal <= 1.2x): {}",
        verdict(per_byte <= 1.2)
    );
    println!(
        "list peak RSS {:.1} MB vs 2 x input + 32 MB = {limit_mb:.1} MB ({:.0}x the input): {}",
        l.peak_rss_mb(),
        l.peak_rss_kb as f64 * 1024.0 / list.len() as f64,
        verdict(l.peak_rss_mb() <= limit_mb)
    );
    println!(
        "list output {:.2} MB ({:.2}x the input), {results} results",
        mb(output.len()),
        output.len() as f64 / list.len() as f64
    );
    for p in [&lock, &list_out] {
        let _ = std::fs::remove_file(p);
    }
}

fn stream_row(exe: &str, me: &Path, runs: usize) {
    let n = args::arg("--docs", 10_000) as usize;
    let input = stream::generate(n);
    let lock = temp("stream.lock");
    std::fs::write(&lock, stream::lock(n)).unwrap();
    println!(
        "\n== Stream: 3 x {n} documents, {:.1} MB (kube-harden on every core; baselines single-threaded)",
        mb(input.len())
    );
    let python = std::env::var("KUBE_HARDEN_BENCH_PYTHON").ok();
    let yamlv3 = std::env::var("KUBE_HARDEN_BENCH_YAMLV3").ok();
    let script = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/benches/baselines/rapidyaml.py"
    );
    let mut programs: Vec<(&str, Program)> = vec![
        (
            "kube-harden",
            Box::new(|| harden(exe, &lock, input.as_bytes(), None, &[])),
        ),
        (
            "serde-saphyr parse + emit",
            Box::new(|| {
                measure(
                    me,
                    &["--serde-saphyr-child".as_ref()],
                    input.as_bytes(),
                    None,
                )
            }),
        ),
    ];
    if let Some(python) = python.clone() {
        let out = temp("ryml-time");
        let input = &input;
        programs.push((
            "rapidyaml parse + emit",
            Box::new(move || {
                let mut run = measure(
                    Path::new(&python),
                    &[script.as_ref()],
                    input.as_bytes(),
                    Some(&out),
                );
                // The script's own timing of parse + emit replaces the process's.
                run.seconds = std::fs::read_to_string(&out)
                    .unwrap()
                    .trim()
                    .parse()
                    .unwrap();
                run
            }),
        ));
    }
    if let Some(yamlv3) = yamlv3.clone() {
        let input = &input;
        programs.push((
            "yaml.v3 decode + encode",
            Box::new(move || measure(Path::new(&yamlv3), &[], input.as_bytes(), None)),
        ));
    }
    let mut refs: Vec<&mut dyn FnMut() -> Run> = programs
        .iter_mut()
        .map(|(_, p)| p.as_mut() as &mut dyn FnMut() -> Run)
        .collect();
    let medians = interleaved(runs, &mut refs);
    drop(refs);
    let names: Vec<&str> = programs.iter().map(|(n, _)| *n).collect();
    drop(programs);
    println!(
        "{:<28} {:>9} {:>9} {:>9} {:>12}",
        "", "seconds", "CPU s", "MB/s", "peak RSS"
    );
    for (name, run) in names.iter().zip(&medians) {
        println!(
            "{name:<28} {:>9.3} {:>9.3} {:>9.1} {:>9.1} MB",
            run.seconds,
            run.cpu_seconds,
            mb(input.len()) / run.seconds,
            run.peak_rss_mb()
        );
    }
    println!(
        "(CPU s: user + system of the process, all threads; rapidyaml's includes Python's \
         start-up, its seconds do not. On a machine shared with other work, compare CPU s.)"
    );
    let h = medians[0].seconds;
    let ratio = |i: usize| medians[i].seconds / h;
    println!(
        "kube-harden vs serde-saphyr: {:.2}x faster (goal >= 2x): {}; by CPU time {:.2}x",
        ratio(1),
        verdict(ratio(1) >= 2.0),
        medians[1].cpu_seconds / medians[0].cpu_seconds
    );
    let mut next = 2;
    match python {
        Some(_) => {
            println!(
                "kube-harden vs rapidyaml: {:.2}x faster (goal >= 1x): {}",
                ratio(next),
                verdict(ratio(next) >= 1.0)
            );
            next += 1;
        }
        None => println!("rapidyaml: not installed (eval \"$(bash scripts/bench-setup.sh)\")"),
    }
    match yamlv3 {
        Some(_) => println!("kube-harden vs yaml.v3: {:.2}x faster", ratio(next)),
        None => println!("yaml.v3: not built (eval \"$(bash scripts/bench-setup.sh)\")"),
    }
    let _ = std::fs::remove_file(&lock);
}

fn results_row(exe: &str) {
    let n = args::arg("--pods", 40_000) as usize;
    let mut input = String::with_capacity(n * 140);
    let mut lock = String::from("apiVersion: kube-harden.dev/v1alpha1\nkind: ImageLock\nimages:\n");
    for i in 0..n {
        write!(input, "---\napiVersion: v1\nkind: Pod\nmetadata:\n  name: pod-{i}\nspec:\n  containers:\n  - name: app\n    image: registry.example.com/team/app-{i}:1.2.{i}\n").unwrap();
        writeln!(
            lock,
            "- image: registry.example.com/team/app-{i}:1.2.{i}\n  digest: sha256:{i:064x}"
        )
        .unwrap();
    }
    let lock_path = temp("pods.lock");
    std::fs::write(&lock_path, lock).unwrap();
    let results = temp("pods-results.yaml");
    let results_arg = results.to_str().unwrap().to_string();
    let run = harden(
        exe,
        &lock_path,
        input.as_bytes(),
        None,
        &["--results", &results_arg],
    );
    let size = std::fs::metadata(&results).unwrap().len() as usize;
    let limit_mb = (2.0 * input.len() as f64 + size as f64) / 1048576.0 + 32.0;
    println!(
        "\n== --results on {n} Pods ({:.1} MB): {:.3} s, peak RSS {:.1} MB, results file {:.1} MB",
        mb(input.len()),
        run.seconds,
        run.peak_rss_mb(),
        mb(size)
    );
    println!(
        "peak RSS vs 2 x input + 32 MB + results file = {limit_mb:.1} MB: {}",
        verdict(run.peak_rss_mb() <= limit_mb)
    );
    for p in [&lock_path, &results] {
        let _ = std::fs::remove_file(p);
    }
}

/// `--write-stream DIR N` (for profiling): the stream row's input as `DIR/stream.yaml`, the same
/// objects as the KRM row's `ResourceList` as `DIR/list.yaml`, and their image lock as
/// `DIR/images.lock`.
///
/// `--write-package DIR N` (for `benches/kpt.sh`): the objects of `generate(N)` as a kpt package,
/// one file per object in `DIR/package/`, and their image lock as `DIR/images.lock`.
fn write_package(dir: &Path, n: usize) {
    let pkg = dir.join("package");
    std::fs::create_dir_all(&pkg).unwrap();
    for doc in stream::generate(n).split("---\n").filter(|d| !d.is_empty()) {
        let (source, body) = doc.split_once('\n').unwrap();
        let name = source.rsplit('/').next().unwrap();
        std::fs::write(pkg.join(name), body).unwrap();
    }
    std::fs::write(dir.join("images.lock"), stream::lock(n)).unwrap();
}

fn main() {
    if measure::launcher() {
        return;
    }
    let argv: Vec<String> = std::env::args().collect();
    if argv.get(1).map(String::as_str) == Some("--serde-saphyr-child") {
        let mut input = String::new();
        std::io::Read::read_to_string(&mut std::io::stdin(), &mut input).unwrap();
        let out = serde_saphyr_round_trip(&input);
        std::io::Write::write_all(&mut std::io::stdout(), out.as_bytes()).unwrap();
        return;
    }
    if let Some(i) = argv.iter().position(|a| a == "--write-stream") {
        let dir = Path::new(&argv[i + 1]);
        let n: usize = argv[i + 2].parse().expect("--write-stream DIR N");
        std::fs::create_dir_all(dir).unwrap();
        std::fs::write(dir.join("stream.yaml"), stream::generate(n)).unwrap();
        std::fs::write(dir.join("list.yaml"), stream::resource_list(n)).unwrap();
        std::fs::write(dir.join("images.lock"), stream::lock(n)).unwrap();
        return;
    }
    if let Some(i) = argv.iter().position(|a| a == "--write-package") {
        let dir = Path::new(&argv[i + 1]);
        let n: usize = argv[i + 2].parse().expect("--write-package DIR N");
        write_package(dir, n);
        return;
    }
    let exe = env!("CARGO_BIN_EXE_kube-harden");
    let me = std::env::current_exe().unwrap();
    let runs = args::arg("--runs", 3) as usize;
    let only = argv
        .iter()
        .position(|a| a == "--only")
        .and_then(|i| argv.get(i + 1))
        .map(String::as_str);
    let row = |name: &str| only.is_none_or(|o| o == name);
    if let Some(o) = only.filter(|o| !["krm", "stream", "results"].contains(o)) {
        panic!("--only {o}: expected krm, stream or results");
    }
    if row("krm") {
        krm_row(exe, runs);
    }
    if row("stream") {
        stream_row(exe, &me, runs);
    }
    if row("results") {
        results_row(exe);
    }
}
