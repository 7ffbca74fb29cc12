#!/usr/bin/env bash
# kube-harden-kpt.wasm under the real kpt's alpha WASM runtime (KPT_FN_WASM_RUNTIME=nodejs):
# `kpt fn eval --allow-alpha-wasm --exec` and `kpt fn render --allow-alpha-wasm --allow-exec`
# harden the package exactly as the native binary does as an exec function, keep comments, and an
# error (a bad functionConfig) fails the function with the error shown as a result and no file
# written. Also runs the WASI runner as a plain `exec:` function for the same package.
# Usage: kpt.sh DIST_DIR NATIVE_BINARY
set -euo pipefail
dist=$(cd "$1" && pwd)
native=$(cd "$(dirname "$2")" && pwd)/$(basename "$2")
root=$(cd "$(dirname "$0")/../.." && pwd)
# KUBE_HARDEN_E2E_REQUIRED set (not empty, not 0): whatever would be skipped fails instead.
strict=
case ${KUBE_HARDEN_E2E_REQUIRED:-0} in 0 | '') ;; *) strict=1 ;; esac
if ! command -v kpt >/dev/null 2>&1; then
  if [ -n "$strict" ]; then
    echo "kpt test: FAILED: no kpt on PATH (install kpt 1.0.0-beta.x; KUBE_HARDEN_E2E_REQUIRED is set)"
    exit 1
  fi
  echo "kpt test: SKIPPED: no kpt on PATH (install kpt 1.0.0-beta.x)"
  exit 0
fi
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
# kpt's nodejs runtime leaves a directory per run under $TMPDIR/kpt-wasm-fn; keep them in $work.
export TMPDIR=$work/tmp KPT_FN_WASM_RUNTIME=nodejs
mkdir -p "$TMPDIR"
cd "$work"
cp "$dist/kube-harden-kpt.wasm" "$dist/kube-harden-wasi.wasm" "$dist/kube-harden-wasi-threads.wasm" "$dist/kube-harden-wasi" "$dist/run-node.mjs" "$dist/run-node-threads.mjs" "$dist/run-wasmtime.py" .
fail=0
check() { if "$@"; then :; else echo "kpt test: FAILED: $*"; fail=1; fi; }

new_pkg() {
  rm -rf "$1"
  mkdir -p "$1"
  printf 'apiVersion: kpt.dev/v1\nkind: Kptfile\nmetadata:\n  name: demo\n' > "$1/Kptfile"
  cp "$root/examples/basic/deployment.yaml" "$1/app.yaml"
  cat > "$1/job.yaml" <<'YAML'
# A comment that must survive.
apiVersion: batch/v1
kind: Job
metadata:
  name: migrate   # inline comment
spec:
  template:
    spec:
      restartPolicy: Never
      containers:
      - name: migrate
        image: "migrate:1.0"
        securityContext:
          allowPrivilegeEscalation: true
YAML
}

# pin-image-digests has no registry in WASM: both images' digests come with the config (the
# memcached one is its published digest, examples/basic/images.lock; migrate's is made up).
DIGESTS='{digests: [{image: "memcached:1.6.45-alpine", digest: "sha256:c29847751abb41f4c268c84fb3087fee05d4edcbda44409ccb5086e26148e8a7"}, {image: "migrate:1.0", digest: "sha256:36aa57af013ed7f7d5eda4d65f8161c933cabadf7c96e7463838711e1d846155"}]}'

# 1. eval: WASM module vs the native binary as an exec function, with `-- key=value` config.
new_pkg native
new_pkg wasm
kpt fn eval native --exec "$native" -- disable=writable-tmp runAsUser=10001 verbosity=changes "images=$DIGESTS" > native.log 2>&1
kpt fn eval wasm --allow-alpha-wasm --truncate-output=false --exec ./kube-harden-kpt.wasm -- disable=writable-tmp runAsUser=10001 verbosity=changes "images=$DIGESTS" > wasm.log 2>&1
check grep -q '\[PASS\] "./kube-harden-kpt.wasm"' wasm.log
check diff -r native wasm
check grep -q 'runAsUser: 10001' wasm/app.yaml
check grep -q 'allowPrivilegeEscalation: false' wasm/app.yaml
check grep -q '# A comment that must survive.' wasm/job.yaml
check grep -q 'name: migrate *# inline comment' wasm/job.yaml
# The explicit `allowPrivilegeEscalation: true` stays, with a warning result kpt shows.
check grep -q 'allowPrivilegeEscalation: true' wasm/job.yaml
check grep -q '\[warning\]' wasm.log
# verbosity=changes: one info line per changed object, saying what was hardened.
check grep -q '\[info\] apps/v1/Deployment/cache: hardened ' wasm.log
check grep -q '\[info\] batch/v1/Job/migrate: hardened ' wasm.log
# Idempotent: a second run changes nothing.
cp -r wasm wasm-again
kpt fn eval wasm-again --allow-alpha-wasm --exec ./kube-harden-kpt.wasm -- disable=writable-tmp runAsUser=10001 verbosity=changes "images=$DIGESTS" > again.log 2>&1
check diff -r wasm wasm-again

# 2. eval with an error: a bad functionConfig fails the function, shows the error, writes nothing.
new_pkg bad
cp -r bad bad-before
if kpt fn eval bad --allow-alpha-wasm --exec ./kube-harden-kpt.wasm --results-dir results -- disable=no-such-rule > bad.log 2>&1; then
  echo "kpt test: FAILED: a bad functionConfig did not fail kpt"
  fail=1
fi
check grep -q '\[FAIL\] "./kube-harden-kpt.wasm"' bad.log
check grep -q '\[error\].*unknown rule id `no-such-rule`' bad.log
check grep -q 'severity: error' results/results.yaml
check diff -r bad-before bad

# 3. render: a Kptfile pipeline with the module as an exec mutator (paths are relative to kpt's
# working directory) and a configMap; same result as the native binary in the same pipeline.
for variant in native wasm; do
  new_pkg "render-$variant"
  if [ "$variant" = wasm ]; then fn=kube-harden-kpt.wasm; else fn=$native; fi
  printf 'pipeline:\n  mutators:\n  - exec: %s\n    configMap:\n      disable: read-only-root-filesystem\n      images: %s\n' "$fn" "'$DIGESTS'" >> "render-$variant/Kptfile"
done
kpt fn render render-native --allow-exec > render-native.log 2>&1
kpt fn render render-wasm --allow-alpha-wasm --allow-exec > render-wasm.log 2>&1
check grep -q '\[PASS\] "kube-harden-kpt.wasm"' render-wasm.log
check diff <(cd render-native && cat app.yaml job.yaml) <(cd render-wasm && cat app.yaml job.yaml)
check grep -q 'seccompProfile' render-wasm/app.yaml
if grep -q 'readOnlyRootFilesystem' render-wasm/app.yaml; then echo "kpt test: FAILED: configMap disable ignored"; fail=1; fi

# 4. The WASI build through its runner as an ordinary exec function (no alpha flags).
new_pkg wasi
kpt fn eval wasi --exec ./kube-harden-wasi -- disable=writable-tmp runAsUser=10001 "images=$DIGESTS" > wasi.log 2>&1
check diff -r native wasi

# 5. The glue kpt itself ran (kpt leaves it in $TMPDIR), driven directly for parity with the native
# binary on bigger inputs: every testdata ResourceList case, and every tests/corpus file as the
# ResourceList `kpt fn source` makes of it. Same output (the glue adds one newline), same exit status.
glue=$(ls "$TMPDIR"/kpt-wasm-fn/*/kpt-fn-wasm-glue-runner.js 2>/dev/null | head -n 1)
if [ -z "$glue" ]; then
  echo "kpt test: FAILED: kpt left no nodejs glue under $TMPDIR/kpt-wasm-fn"
  fail=1
else
  lists=()
  for input in "$root"/testdata/*/*/input.yaml; do
    [ -f "$(dirname "$input")/config.yaml" ] && continue
    grep -q '^kind: ResourceList' "$input" && lists+=("$input")
  done
  mkdir -p corpus-lists
  for f in "$root"/tests/corpus/*.yaml; do
    [ -f "$f" ] || continue
    rm -rf one && mkdir one && cp "$f" one/
    if kpt fn source one > "corpus-lists/$(basename "$f")" 2>/dev/null; then
      lists+=("corpus-lists/$(basename "$f")")
    else
      echo "kpt test: note: kpt fn source cannot read $(basename "$f"); not compared"
      [ -z "$strict" ] || { echo "kpt test: FAILED: a corpus file was not compared (KUBE_HARDEN_E2E_REQUIRED is set)"; fail=1; }
    fi
  done
  # ...and all of them as one ResourceList, twice over (~22 MB).
  if ls corpus-lists/*.yaml >/dev/null 2>&1; then
    { printf 'apiVersion: config.kubernetes.io/v1\nkind: ResourceList\nitems:\n'
      for pass in 1 2; do for f in corpus-lists/*.yaml; do sed '1,/^items:$/d' "$f"; done; done
    } > big-list.yaml
    lists+=(big-list.yaml)
  fi
  compared=0
  for rl in "${lists[@]}"; do
    set +e
    # --offline: the module has no network either (images without digests fail closed in both).
    "$native" --quiet --offline < "$rl" > native.out 2>/dev/null
    native_rc=$?
    KPT_FN_WASM_PATH=$work/kube-harden-kpt.wasm node "$glue" < "$rl" > wasm.out 2> wasm.err
    wasm_rc=$?
    set -e
    printf '\n' >> native.out
    if [ "$native_rc" != "$wasm_rc" ] || ! cmp -s native.out wasm.out; then
      echo "kpt test: FAILED: glue parity on $rl: native exit $native_rc, wasm exit $wasm_rc"
      diff native.out wasm.out | head -n 20
      head -n 5 wasm.err
      fail=1
    fi
    compared=$((compared + 1))
  done
  echo "kpt test: glue parity compared $compared ResourceLists"
  [ "$compared" -gt 3 ] || { echo "kpt test: FAILED: too few ResourceLists compared"; fail=1; }
fi

if [ "$fail" != 0 ]; then
  for f in *.log; do echo "--- $f"; cat "$f"; done
  exit 1
fi
echo "kpt test: passed (eval, eval error, render, idempotency under KPT_FN_WASM_RUNTIME=nodejs; WASI runner as exec)"
