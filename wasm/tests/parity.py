#!/usr/bin/env python3
"""Parity test: the WASI build must behave exactly like the native binary.

Usage: parity.py NATIVE_BINARY WASI_RUNNER RUNTIME[,RUNTIME...] [REPO_ROOT]

For every golden case under testdata/ and every file under tests/corpus/, and for a set of
command lines (subcommands, bad flags, bad config, bad input), runs the native binary and the WASI
module (through WASI_RUNNER, the `kube-harden-wasi` script, once per runtime: `node` is the
wasm32-wasip1-threads module, `node-single` the single-threaded one) and requires:
byte-identical stdout, the same exit status, the same `--results` file, and the same stderr (after
writing `(os error N)` as `(os error)`: WASI numbers errno values differently, e.g. ENOENT is 44).
Exits 1 listing every difference.
"""

import os
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

OS_ERROR = re.compile(rb"\(os error \d+\)")


def run(argv, cwd, stdin_bytes, env=None):
    proc = subprocess.run(
        argv,
        cwd=cwd,
        input=stdin_bytes,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=env,
        timeout=600,
    )
    results = Path(cwd, "results.out")
    results_bytes = results.read_bytes() if results.exists() else None
    if results.exists():
        results.unlink()
    return proc.returncode, proc.stdout, OS_ERROR.sub(b"(os error)", proc.stderr), results_bytes


def describe_difference(name, a, b):
    if a == b:
        return None
    if a is None or b is None:
        return f"{name}: native {'absent' if a is None else 'present'}, wasm {'absent' if b is None else 'present'}"
    for i, (x, y) in enumerate(zip(a, b)):
        if x != y:
            return (
                f"{name}: first difference at byte {i}: native {a[max(0, i - 40):i + 40]!r} "
                f"wasm {b[max(0, i - 40):i + 40]!r}"
            )
    return f"{name}: lengths differ (native {len(a)}, wasm {len(b)})"


def main() -> int:
    native, runner, runtimes = sys.argv[1], sys.argv[2], sys.argv[3].split(",")
    root = Path(sys.argv[4] if len(sys.argv) > 4 else Path(__file__).resolve().parents[2])
    native = str(Path(native).resolve())
    runner = str(Path(runner).resolve())

    # (label, files to copy into the work directory {name: source}, args, stdin)
    runs = []
    for case in sorted(root.glob("testdata/*/*/input.yaml")):
        case_dir = case.parent
        label = str(case_dir.relative_to(root / "testdata"))
        files = {"input.yaml": case}
        config = []
        if (case_dir / "config.yaml").exists():
            files["config.yaml"] = case_dir / "config.yaml"
            config = ["--config", "config.yaml"]
        # Digests as in tests/golden.rs: the case's lock, never the network; cases about other
        # rules without a lock run without pin-image-digests.
        if (case_dir / "images.lock").exists():
            files["images.lock"] = case_dir / "images.lock"
            config += ["--offline", "--lock", "images.lock"]
        elif case_dir.parent.name == "pin-image-digests":
            config += ["--offline"]
        else:
            config += ["--disable", "pin-image-digests"]
        runs.append((f"testdata/{label} (file, --results)", files, config + ["--results", "results.out", "input.yaml"], b""))
        runs.append((f"testdata/{label} (stdin)", files, config, case.read_bytes()))
    corpus = root / "tests" / "corpus"
    corpus_files = sorted(corpus.glob("*.yaml")) + sorted(corpus.glob("*.json"))
    if not corpus_files:
        if os.environ.get("KUBE_HARDEN_E2E_REQUIRED", "0") not in ("", "0"):
            print(f"parity: FAILED: no corpus at {corpus} (KUBE_HARDEN_E2E_REQUIRED is set)")
            return 1
        print(f"parity: note: no corpus at {corpus}; testdata only")
    for f in corpus_files:
        # The corpus has no lock: digests are compared on testdata (pin-image-digests cases).
        nopin = ["--disable", "pin-image-digests"]
        runs.append((f"corpus/{f.name} (stdin)", {}, nopin, f.read_bytes()))
        runs.append((f"corpus/{f.name} (file, --results, --quiet)", {f.name: f}, nopin + ["--quiet", "--results", "results.out", f.name], b""))
    if corpus_files:
        # One big stream (every corpus file twice, ~21 MB) on stdin: large wasm memories are where
        # runtimes break (node 20's GC crashed on every input above ~8 MB without the runner's flags).
        big = b""
        for f in corpus_files * 2:
            data = f.read_bytes()
            if big and not big.endswith(b"\n"):
                big += b"\n"
            if big:
                big += b"---\n"
            big += data
        runs.append((f"corpus, every file twice as one stream ({len(big) / 1e6:.0f} MB, stdin)", {}, ["--quiet", "--disable", "pin-image-digests"], big))
    example = root / "examples" / "basic" / "deployment.yaml"
    lock = {"images.lock": root / "examples" / "basic" / "images.lock"}
    offline = ["--offline", "--lock", "images.lock"]
    bad_config = b"apiVersion: kube-harden.dev/v1alpha1\nkind: HardeningPolicy\nspec:\n  disable: [no-such-rule]\n"
    cli = [
        ("rules", {}, ["rules"], b""),
        ("docs", {}, ["docs"], b""),
        ("docs seccomp", {}, ["docs", "seccomp"], b""),
        ("docs unknown rule", {}, ["docs", "nope"], b""),
        ("schema", {}, ["schema"], b""),
        ("completions bash", {}, ["completions", "bash"], b""),
        ("--help", {}, ["--help"], b""),
        ("--version", {}, ["--version"], b""),
        ("unknown flag", {}, ["--no-such-flag"], b""),
        ("--disable unknown rule", lock, offline + ["--disable", "nope"], example.read_bytes()),
        ("--disable/--enforce", lock, offline + ["--disable", "writable-tmp,seccomp", "--enforce"], example.read_bytes()),
        ("bad config", {"bad.yaml": bad_config, **lock}, offline + ["--config", "bad.yaml"], example.read_bytes()),
        ("missing file", {}, ["missing.yaml"], b""),
        ("two files and stdin", {"a.yaml": example, **lock}, offline + ["a.yaml", "-", "a.yaml"], example.read_bytes()),
        ("offline without a lock: fail closed", {}, ["--offline"], example.read_bytes()),
        ("missing lock file", {}, ["--lock", "nope.lock"], example.read_bytes()),
        ("malformed YAML", {}, [], b"apiVersion: v1\nkind: Pod\nmetadata: {name: x\n"),
        ("not UTF-8", {}, [], b"apiVersion: v1\nkind: ConfigMap\ndata: {a: \"\xff\"}\n"),
        ("empty input", {}, [], b""),
    ]
    runs.extend(cli)

    failures = []
    count = 0
    with tempfile.TemporaryDirectory(prefix="kube-harden-parity-") as tmp:
        for label, files, args, stdin_bytes in runs:
            work = Path(tmp, "work")
            shutil.rmtree(work, ignore_errors=True)
            work.mkdir()
            for name, source in files.items():
                if isinstance(source, bytes):
                    Path(work, name).write_bytes(source)
                else:
                    shutil.copyfile(source, work / name)
            expected = run([native] + args, work, stdin_bytes)
            for runtime in runtimes:
                env = dict(os.environ, KUBE_HARDEN_WASI_RUNTIME=runtime)
                got = run([runner] + args, work, stdin_bytes, env)
                count += 1
                problems = []
                if expected[0] != got[0]:
                    problems.append(f"exit status: native {expected[0]}, wasm {got[0]}")
                for name, a, b in (("stdout", expected[1], got[1]), ("stderr", expected[2], got[2]), ("--results file", expected[3], got[3])):
                    d = describe_difference(name, a, b)
                    if d:
                        problems.append(d)
                if problems:
                    failures.append(f"[{runtime}] {label}:\n    " + "\n    ".join(problems))
    print(f"parity: {count} wasm runs ({len(runs)} command lines x {len(runtimes)} runtimes: {', '.join(runtimes)}) compared with native")
    if failures:
        print(f"parity: {len(failures)} differ:")
        for f in failures:
            print("  " + f)
        return 1
    print("parity: all identical (stdout, stderr, exit status, --results file)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
