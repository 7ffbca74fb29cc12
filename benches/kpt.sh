#!/usr/bin/env bash
# Issue 16's kpt row: `kpt fn eval --exec kube-harden` against `kpt fn eval --exec cat` (kpt's own
# cost: reading the package, the ResourceList both ways, nothing else) on a package of N
# Deployments + N Services + N ConfigMaps, one file each (default N=700; the objects of
# benches/speed.rs, written by it). Images are pinned from a lock ($KUBE_HARDEN_LOCK), so no
# registry is asked. Runs interleaved, median of RUNS (default 5); the goal is <= 1.05x.
# A third arm, `replay`, reads kpt's input and writes kube-harden's recorded output for it: the
# difference between `cat` and `replay` is what kpt itself pays for the larger output (it parses
# and writes every added field), the difference between `replay` and `kube-harden` is kube-harden's
# own process time.
# A third arm's twin, `replay-items`, writes the same output without its `results`: what kpt pays
# for the hardened objects alone (a floor no function that writes them can go under).
# A fourth arm runs kube-harden with a lock that also records each image's facts (a numeric
# non-root USER, an entrypoint, a world-writable /tmp), as `kube-harden lock` writes them for such
# an image: then every rule can act and no warning is written. The default lock has digests only,
# so kube-harden warns 4 times per Deployment (what a user without facts sees).
# Needs kpt on PATH (1.0.0-beta.56 was measured).
set -euo pipefail
cd "$(dirname "$0")/.."
n=${1:-700}
runs=${RUNS:-5}
command -v kpt >/dev/null 2>&1 || { echo "kpt.sh: kpt not found on PATH" >&2; exit 1; }
export CARGO_BUILD_JOBS=${CARGO_BUILD_JOBS:-1}
cargo build --locked --release --bin kube-harden --quiet
target_dir=$(cargo metadata --locked --format-version 1 --no-deps | python3 -c 'import json,sys; print(json.load(sys.stdin)["target_directory"])')
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
cargo bench --locked --quiet --bench speed -- --write-package "$work" "$n" >/dev/null
mkdir -p "$work/bin"
ln -s "$target_dir/release/kube-harden" "$work/bin/kube-harden"
export KUBE_HARDEN_LOCK="$work/images.lock"
python3 - "$work/images.lock" "$work/facts.lock" <<'PY'
import sys
src, dst = sys.argv[1], sys.argv[2]
out = []
for line in open(src):
    out.append(line.replace("v1alpha1", "v1alpha2"))
    if line.startswith("  digest: "):
        out.append('  facts:\n    user: "1000"\n    entrypoint: [/app]\n    cmd: []\n'
                   '    filesystem:\n      dirs:\n      - {path: /tmp, uid: 0, gid: 0, mode: "1777"}\n')
open(dst, "w").write("".join(out))
PY
cat >"$work/bin/with-facts" <<SH
#!/bin/sh
KUBE_HARDEN_LOCK="$work/facts.lock" exec "$target_dir/release/kube-harden"
SH
export PATH="$work/bin:$PATH"
# Record kube-harden's answer to the exact ResourceList kpt sends, for the replay arm.
cat >"$work/bin/record" <<SH
#!/bin/sh
exec "$target_dir/release/kube-harden" | tee "$work/recorded.yaml"
SH
cat >"$work/bin/replay" <<SH
#!/bin/sh
cat >/dev/null
exec cat "$work/recorded.yaml"
SH
cat >"$work/bin/replay-items" <<SH
#!/bin/sh
cat >/dev/null
exec cat "$work/recorded-items.yaml"
SH
chmod +x "$work/bin/record" "$work/bin/replay" "$work/bin/replay-items" "$work/bin/with-facts"
(cd "$work" && kpt fn eval package -o stdout --exec record >/dev/null 2>&1)
# The recorded ResourceList up to its results (the last top-level key kube-harden writes).
awk '/^results:/ { exit } { print }' "$work/recorded.yaml" >"$work/recorded-items.yaml"
grep -q '^items:' "$work/recorded-items.yaml" || { echo "kpt.sh: no items in the recorded output" >&2; exit 1; }
echo "kpt $(kpt version 2>/dev/null | head -n 1): $((3 * n)) objects, $(du -sh "$work/package" | cut -f1) package, $runs runs interleaved"
python3 - "$work" "$runs" <<'PY'
import statistics, subprocess, sys, time
work, runs = sys.argv[1], int(sys.argv[2])
def run(exe):
    start = time.perf_counter()
    subprocess.run(["kpt", "fn", "eval", "package", "-o", "stdout", "--exec", exe],
                   cwd=work, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return time.perf_counter() - start
times = {"cat": [], "replay-items": [], "replay": [], "kube-harden": [], "with-facts": []}
for _ in range(runs):
    for exe in times:
        times[exe].append(run(exe))
cat = statistics.median(times["cat"])
replay = statistics.median(times["replay"])
kh = statistics.median(times["kube-harden"])
ratio = kh / cat
print(f"kpt fn eval --exec cat          {cat:.3f} s")
items = statistics.median(times["replay-items"])
print(f"kpt fn eval --exec replay-items {items:.3f} s  (the hardened objects without results: {items / cat:.3f}x, the floor)")
print(f"kpt fn eval --exec replay       {replay:.3f} s  (kpt reading kube-harden's recorded output: {replay / cat:.3f}x)")
print(f"kpt fn eval --exec kube-harden  {kh:.3f} s  (kube-harden's own share: {kh / replay:.3f}x the replay)")
print(f"overhead: {ratio:.3f}x kpt's own time (goal <= 1.05x): {'met' if ratio <= 1.05 else 'NOT met'}")
facts = statistics.median(times["with-facts"])
print(f"kpt fn eval --exec kube-harden, lock with image facts: {facts:.3f} s")
print(f"overhead with image facts: {facts / cat:.3f}x kpt's own time (goal <= 1.05x): {'met' if facts / cat <= 1.05 else 'NOT met'}")
PY
