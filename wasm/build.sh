#!/usr/bin/env bash
# Builds every WASM artifact into wasm/dist/:
#   kube-harden-wasi.wasm   the CLI for WASI (wasm32-wasip1), with its runners: kube-harden-wasi
#                           (the command, usable as a kpt/kustomize `exec:` function),
#                           run-wasmtime.py, run-node.mjs
#   kube-harden-wasi-threads.wasm  the same CLI for wasm32-wasip1-threads (documents on every
#                           core), what kube-harden-wasi runs under node (run-node-threads.mjs)
#   kube-harden-kpt.wasm    for kpt's alpha WASM runtime (Go js/wasm host interface)
#   npm/                    the npm package `kube-harden` (wasm-bindgen; node and web builds, types,
#                           and the WASI CLI as its `kube-harden` bin)
#   playground/             the static playground page
# Honours CARGO_BUILD_JOBS (default 1) and CARGO_TARGET_DIR.
set -euo pipefail
wasm=$(cd "$(dirname "$0")" && pwd)
root=$(dirname "$wasm")
cd "$root"
export CARGO_BUILD_JOBS=${CARGO_BUILD_JOBS:-1}
log() { echo "wasm/build: $*" >&2; }

PATH=$(bash "$wasm/setup.sh" | tail -n 1):$PATH

# One version everywhere: the npm package and both modules carry the CLI's version.
read -r version target_dir < <(cargo metadata --locked --format-version 1 --no-deps | python3 -c '
import json, sys
m = json.load(sys.stdin)
v = {p["name"]: p["version"] for p in m["packages"]}
if len(set(v.values())) != 1:
    sys.exit("wasm/build: versions differ, keep them equal: %s" % v)
print(v["kube-harden"], m["target_directory"])')
log "kube-harden $version"

dist=$wasm/dist
rm -rf "$dist"
mkdir -p "$dist"

log "WASI CLI (wasm32-wasip1, with 128-bit SIMD)"
# Fixed-width SIMD (WebAssembly 2.0; node >= 16.4, wasmtime, wasmer, every current browser):
# the byte scans of the reader and the splitter do 16 bytes at a time (about 9% of a stream run).
CARGO_TARGET_WASM32_WASIP1_RUSTFLAGS="${CARGO_TARGET_WASM32_WASIP1_RUSTFLAGS:-} -C target-feature=+simd128" \
  cargo build --locked --quiet --profile wasm --target wasm32-wasip1 --bin kube-harden
cp "$target_dir/wasm32-wasip1/wasm/kube-harden.wasm" "$dist/kube-harden-wasi.wasm"
cp "$wasm/wasi/kube-harden-wasi" "$wasm/wasi/run-wasmtime.py" "$wasm/wasi/run-node.mjs" "$dist/"

log "WASI CLI with threads (wasm32-wasip1-threads, with 128-bit SIMD)"
# Shared memory, atomics and the wasi-threads `thread-spawn` import: the engine runs a stream's
# documents on every core there (build.rs sets cfg(wasm_threads)); run-node-threads.mjs runs it.
CARGO_TARGET_WASM32_WASIP1_THREADS_RUSTFLAGS="${CARGO_TARGET_WASM32_WASIP1_THREADS_RUSTFLAGS:-} -C target-feature=+simd128" \
  cargo build --locked --quiet --profile wasm --target wasm32-wasip1-threads --bin kube-harden
cp "$target_dir/wasm32-wasip1-threads/wasm/kube-harden.wasm" "$dist/kube-harden-wasi-threads.wasm"
cp "$wasm/wasi/run-node-threads.mjs" "$dist/"

log "kpt js/wasm module (wasm32-unknown-unknown)"
cargo build --locked --quiet --profile wasm --target wasm32-unknown-unknown -p kube-harden-kpt
cp "$target_dir/wasm32-unknown-unknown/wasm/kube_harden_kpt.wasm" "$dist/kube-harden-kpt.wasm"

log "npm package (wasm-bindgen $(wasm-bindgen --version | cut -d' ' -f2))"
cargo build --locked --quiet --profile wasm --target wasm32-unknown-unknown -p kube-harden-wasm
lib=$target_dir/wasm32-unknown-unknown/wasm/kube_harden_wasm.wasm
npm=$dist/npm
wasm-bindgen --target nodejs --out-dir "$npm/node" --out-name kube_harden "$lib"
wasm-bindgen --target web --out-dir "$npm/web" --out-name kube_harden "$lib"
mkdir -p "$npm/bin"
cp "$wasm/npm/kube-harden.cjs" "$wasm/wasi/run-node.mjs" "$npm/bin/"
cp "$dist/kube-harden-wasi.wasm" "$npm/bin/"
cp "$wasm/npm/README.md" "$npm/"
cp "$root/LICENSE" "$npm/" 2>/dev/null || true
sed "s/\"version\": \"0.0.0-from-cargo\"/\"version\": \"$version\"/" "$wasm/npm/package.json" > "$npm/package.json"
grep -q "\"version\": \"$version\"" "$npm/package.json" || { log "package.json version not set"; exit 1; }

log "playground"
play=$dist/playground
mkdir -p "$play"
cp "$wasm/playground/"* "$play/"
cp -r "$npm/web" "$play/pkg"
python3 "$wasm/playground/examples.py" "$root" > "$play/examples.js"
rm -f "$play/examples.py"

ls -l "$dist"/*.wasm "$npm/node/"*.wasm | awk '{print "wasm/build: " $5 " bytes  " $NF}' >&2
log "done: $dist"
