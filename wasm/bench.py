#!/usr/bin/env python3
"""WASM numbers (a benchmark, not a test): the size of each .wasm, and the WASI build's time on the
throughput benchmark's stream under wasmtime and node relative to the native binary, in one run.

Usage: bench.py STREAM NATIVE_BINARY DIST_DIR [RUNS] [LOCK]
Each command reads STREAM on stdin and writes to a pipe that is drained; best wall time of RUNS
(default 3) after one warm-up run (which also fills wasmtime's compilation cache). All outputs must
be byte-identical to the native one. Target: at most 2.5x native.
Node runs the threaded module (wasm32-wasip1-threads, what the runner script runs under node) and
the single-threaded one (KUBE_HARDEN_WASI_RUNTIME=node-single), each twice: as the runner script runs
it (`--single-threaded-gc --no-incremental-marking`) and without those flags (node's default GC),
which node 20 survives only on small inputs with the single-threaded module (its V8 crashes in
mark-compact while a big wasm memory grows): a crash is reported as such, not as a time. Both are
also measured on the stream's first ~4 MB (cut at a document boundary), where both finish.
With LOCK (an ImageLock for the stream's images, as benches/throughput.rs writes with
BENCH_SAVE_LOCK) every command runs `--offline --lock` in a scratch directory holding a copy of it
(the WASI module sees only its current directory), as the native benchmark does; without it,
pin-image-digests is disabled for every command.
"""

import gzip
import hashlib
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

TARGET = 2.5


def measure(argv, stream, env, cwd, allow_failure=False):
    with open(stream, "rb") as stdin:
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        start = time.perf_counter()
        proc = subprocess.run(argv, stdin=stdin, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env, cwd=cwd)
        seconds = time.perf_counter() - start
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if proc.returncode != 0 and allow_failure:
        return None, proc.returncode, proc.stderr.decode(errors="replace").strip().splitlines()[-1:]
    if proc.returncode != 0:
        sys.exit(f"bench: {' '.join(argv)} exited {proc.returncode}: {proc.stderr.decode()[-2000:]}")
    # ru_maxrss of children is the largest child so far; report it only when it grew.
    return seconds, hashlib.sha256(proc.stdout).hexdigest(), max(after.ru_maxrss, before.ru_maxrss)


def main():
    stream, native, dist = Path(sys.argv[1]), sys.argv[2], Path(sys.argv[3])
    runs = int(sys.argv[4]) if len(sys.argv) > 4 else 3
    lock = Path(sys.argv[5]).resolve() if len(sys.argv) > 5 else None
    stream = stream.resolve()
    work = tempfile.mkdtemp(prefix="kube-harden-wasm-bench-")
    if lock:
        shutil.copyfile(lock, Path(work, "bench.lock"))
        flags = ["--quiet", "--offline", "--lock", "bench.lock"]
    else:
        flags = ["--quiet", "--disable", "pin-image-digests"]
    mb = stream.stat().st_size / 1e6
    print(f"stream: {stream} ({mb:.1f} MB)")
    print()
    print(f"{'module':<40} {'bytes':>10} {'gzip -9':>10}")
    for wasm in sorted(dist.glob("*.wasm")) + sorted(dist.glob("npm/node/*.wasm")):
        data = wasm.read_bytes()
        print(f"{str(wasm.relative_to(dist)):<40} {len(data):>10} {len(gzip.compress(data, 9)):>10}")
    print()
    runner = str(dist.resolve() / "kube-harden-wasi")
    native = str(Path(native).resolve())
    commands = [("native (all cores)", [native] + flags, {})]
    if shutil.which("taskset"):
        # The single-threaded WASM builds run documents on one thread; like for like for them.
        commands.append(("native (one core: taskset -c 0)", ["taskset", "-c", "0", native] + flags, {}))
    try:
        import wasmtime  # noqa: F401

        commands.append(("WASI, wasmtime (Python package)", [runner] + flags, {"KUBE_HARDEN_WASI_RUNTIME": "wasmtime"}))
    except ImportError:
        print("bench: note: no wasmtime Python package; wasmtime not measured")
    node = subprocess.run(["node", "--version"], capture_output=True, text=True).stdout.strip()
    threaded = dist.resolve() / "kube-harden-wasi-threads.wasm"
    if threaded.exists():
        # What the runner script runs under node: the wasm32-wasip1-threads module, documents on
        # every core (KUBE_HARDEN_THREADS: node's count).
        commands.append((f"WASI threads, node {node}", [runner] + flags, {"KUBE_HARDEN_WASI_RUNTIME": "node"}))
        plain = ["node", "--no-warnings", str(dist.resolve() / "run-node-threads.mjs"), str(threaded)] + flags
        commands.append((f"WASI threads, node {node} default GC", plain, {}))
    else:
        print("bench: note: no kube-harden-wasi-threads.wasm; the threaded module not measured")
    commands.append((f"WASI, node {node} --single-threaded-gc", [runner] + flags, {"KUBE_HARDEN_WASI_RUNTIME": "node-single"}))
    # node's default GC: the runner script's command without its two GC flags.
    plain_node = ["node", "--no-warnings", str(dist.resolve() / "run-node.mjs"), str(dist.resolve() / "kube-harden-wasi.wasm")] + flags
    commands.append((f"WASI, node {node} default GC", plain_node, {}))
    results = run_all(commands, stream, work, runs)
    ok = report(results, mb, runs)
    # The same on a smaller stream that node's default GC survives.
    small = Path(work, "small.yaml")
    text = stream.read_bytes()
    cut = text.find(b"\n---\n", 4_000_000)
    small.write_bytes(text if cut < 0 else text[: cut + 1])
    small_mb = small.stat().st_size / 1e6
    print()
    print(f"the stream's first {small_mb:.1f} MB:")
    node_arms = [c for c in commands if c[0].startswith("native") or "node" in c[0]]
    ok &= report(run_all(node_arms, small, work, runs), small_mb, runs)
    shutil.rmtree(work, ignore_errors=True)
    return 0 if ok else 1


def run_all(commands, stream, work, runs):
    """Each command's best time of `runs` after a warm-up, and its output's digest (None and the
    exit status with the last stderr line for a command that failed)."""
    results = []
    for name, argv, extra in commands:
        env = dict(os.environ, **extra)
        failing = "default GC" in name
        warm = measure(argv, stream, env, work, allow_failure=failing)  # and wasmtime's compile cache
        if warm[0] is None:
            results.append((name, None, warm))
            continue
        best = None
        digest = None
        for _ in range(runs):
            seconds, digest, _ = measure(argv, stream, env, work, allow_failure=failing)
            if seconds is None:
                best, digest = None, (seconds, digest, _)
                break
            best = seconds if best is None else min(best, seconds)
        results.append((name, best, digest))
    return results


def report(results, mb, runs):
    """Prints each command's time against native's; False if an output differs from native's."""
    native_seconds, native_digest = results[0][1], results[0][2]
    one_core = next((r[1] for r in results if "one core" in r[0]), None)
    head = f"{'run (best of ' + str(runs) + ')':<40} {'seconds':>8} {'MB/s':>8} {'x native':>9}"
    print(head + (f" {'x 1 core':>9}" if one_core else "") + "  output")
    ok = True
    for name, seconds, digest in results:
        if seconds is None:
            print(f"{name:<40} crashed: exit {digest[1]}: {' '.join(digest[2])[:160]}")
            continue
        same = "identical" if digest == native_digest else "DIFFERS"
        ok &= digest == native_digest
        ratio = seconds / native_seconds
        flag = "" if ratio <= TARGET or name.startswith("native") else f"  (over the {TARGET}x target)"
        extra = f" {seconds / one_core:>8.2f}x" if one_core else ""
        print(f"{name:<40} {seconds:>8.2f} {mb / seconds:>8.1f} {ratio:>8.2f}x{extra}  {same}{flag}")
    print(f"(target: WASI at most {TARGET}x native; native and `WASI threads` use every core for a stream, the other WASM builds one)")
    return ok


if __name__ == "__main__":
    sys.exit(main())
