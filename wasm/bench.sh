#!/usr/bin/env bash
# WASM numbers: .wasm sizes and the WASI build's time under wasmtime and node vs native on the
# ~30 MB stream that benches/throughput.rs generates (saved with BENCH_SAVE, and the lock its images
# are pinned from with BENCH_SAVE_LOCK: every run is `--offline --lock`). Builds the native
# release binary (through `cargo bench`, which also prints the native benchmark) and, unless
# wasm/dist exists, the wasm artifacts.
set -euo pipefail
wasm=$(cd "$(dirname "$0")" && pwd)
root=$(dirname "$wasm")
cd "$root"
export CARGO_BUILD_JOBS=${CARGO_BUILD_JOBS:-1}
[ -f "$wasm/dist/kube-harden-wasi.wasm" ] || bash "$wasm/build.sh"
target_dir=$(cargo metadata --locked --format-version 1 --no-deps | python3 -c 'import json,sys; print(json.load(sys.stdin)["target_directory"])')
stream=$target_dir/bench-stream.yaml
lock=$target_dir/bench-stream.lock
echo "=== cargo bench --bench throughput (native; saves the stream and its image lock)"
BENCH_SAVE=$stream BENCH_SAVE_LOCK=$lock cargo bench --locked --bench throughput
echo "=== WASI vs native"
python3 "$wasm/bench.py" "$stream" "$target_dir/release/kube-harden" "$wasm/dist" "${RUNS:-3}" "$lock"
