#!/usr/bin/env bash
# Issue 16's rows in one run: installs the baselines (scripts/bench-setup.sh: rapidyaml, yaml.v3),
# then `cargo bench --bench speed` (KRM vs stream, stream vs serde-saphyr/rapidyaml/yaml.v3,
# --results memory) and, when kpt is on PATH, benches/kpt.sh. The WASI row: wasm/bench.sh.
# Arguments go to the speed bench (e.g. --runs 5 --docs 10000 --krm 700 --pods 40000).
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_BUILD_JOBS=${CARGO_BUILD_JOBS:-1}
eval "$(bash scripts/bench-setup.sh)"
cargo bench --locked --bench speed -- "$@"
if command -v kpt >/dev/null 2>&1; then
    echo
    echo "== kpt fn eval --exec (benches/kpt.sh)"
    bash benches/kpt.sh
else
    echo "kpt row: kpt not on PATH, not measured"
fi
