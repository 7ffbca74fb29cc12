#!/usr/bin/env bash
# Builds and tests every WASM artifact (what .ci/run calls):
#   1. wasm/build.sh (installs missing tools through wasm/setup.sh)
#   2. native unit tests of the two wasm crates
#   3. parity: the WASI builds vs the native binary on every testdata case, every tests/corpus
#      file and the CLI's other command lines, under wasmtime and node (the threaded module and
#      the single-threaded one)
#   4. kpt: the kpt module under the real kpt (KPT_FN_WASM_RUNTIME=nodejs)
#   5. the npm package in node, and its TypeScript types
#   6. the playground in headless Chromium (screenshots kept in wasm/dist/screenshots/)
# A part whose runtime cannot be installed is skipped with the reason printed; anything else that
# goes wrong fails the script. With KUBE_HARDEN_E2E_REQUIRED set (not empty, not 0; .ci/run sets it)
# nothing may be skipped: setup must install every runtime, and a skip fails the script instead.
set -euo pipefail
wasm=$(cd "$(dirname "$0")" && pwd)
root=$(dirname "$wasm")
cd "$root"
export CARGO_BUILD_JOBS=${CARGO_BUILD_JOBS:-1} CARGO_TERM_COLOR=${CARGO_TERM_COLOR:-never}
step() { echo "=== wasm/test: $*"; }
# The same test as tests/common/mod.rs; the test scripts below read the variable themselves.
strict=
case ${KUBE_HARDEN_E2E_REQUIRED:-0} in 0 | '') ;; *) strict=1 ;; esac
skip() {
  if [ -n "$strict" ]; then
    echo "wasm/test: FAILED: $* (KUBE_HARDEN_E2E_REQUIRED is set, so nothing may be skipped; bash wasm/setup.sh installs it)"
    exit 1
  fi
  echo "wasm/test: SKIPPED: $*"
}
start=$(date +%s)

step "build"
bash "$wasm/build.sh"

step "clippy on the wasm crates (wasm32) and the CLI (wasm32-wasip1, wasm32-wasip1-threads)"
cargo clippy --locked --quiet -p kube-harden-wasm -p kube-harden-kpt --target wasm32-unknown-unknown -- -D warnings
cargo clippy --locked --quiet --target wasm32-wasip1 --bin kube-harden -- -D warnings
cargo clippy --locked --quiet --target wasm32-wasip1-threads --bin kube-harden -- -D warnings

step "unit tests of the wasm crates (native)"
cargo test --locked --quiet -p kube-harden-wasm -p kube-harden-kpt

step "native binary for comparison"
cargo build --locked --quiet --bin kube-harden
native=$(cargo metadata --locked --format-version 1 --no-deps | python3 -c 'import json,sys; print(json.load(sys.stdin)["target_directory"])')/debug/kube-harden

# `node` runs the threaded module (wasm32-wasip1-threads), `node-single` the single-threaded one.
runtimes=node,node-single
if python3 -c 'import wasmtime' >/dev/null 2>&1; then
  runtimes=wasmtime,node,node-single
else
  skip "parity under wasmtime: the wasmtime Python package is not installed (parity runs under node only)"
fi
step "parity: WASI build vs native ($runtimes)"
python3 "$wasm/tests/parity.py" "$native" "$wasm/dist/kube-harden-wasi" "$runtimes" "$root"

step "kpt alpha WASM runtime"
bash "$wasm/tests/kpt.sh" "$wasm/dist" "$native"

step "npm package (node)"
KUBE_HARDEN_NATIVE=$native node --test "$wasm/tests/npm.test.cjs"

if [ -x "$wasm/tests/node_modules/.bin/tsc" ]; then
  step "npm package TypeScript types"
  "$wasm/tests/node_modules/.bin/tsc" -p "$wasm/tests"
else
  skip "TypeScript check: typescript is not installed (npm ci in wasm/tests failed)"
fi

step "playground (headless Chromium)"
node "$wasm/tests/playground.test.mjs" "$wasm/dist/playground" "$wasm/dist/screenshots"

echo "=== wasm/test: all passed in $(( $(date +%s) - start )) s"
