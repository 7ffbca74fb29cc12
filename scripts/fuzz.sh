#!/usr/bin/env bash
# Coverage-guided fuzzing of the core (fuzz/README.md): builds the three cargo-fuzz targets
# (stream, list, resource_list) and runs each for SECONDS (default 60) on one core, seeded from
# testdata/ and tests/corpus/ with fuzz/yaml.dict. Fails on any crash (panic, a property the
# target checks, a run over 2 s); the failing input is in fuzz/artifacts/<target>/.
#   bash scripts/fuzz.sh [SECONDS] [TARGET...]
# Only the stable toolchain exists here: cargo-fuzz's -Z flags pass with RUSTC_BOOTSTRAP=1, and
# no sanitizer is used (-s none; the core has no unsafe code), debug assertions are on (-a).
set -euo pipefail
cd "$(dirname "$0")/.."
log() { echo "fuzz: $*" >&2; }
seconds=${1:-60}
shift || true
targets=("$@")
[ ${#targets[@]} -gt 0 ] || targets=(stream list resource_list)

version=0.13.2
if [ -z "${KUBE_HARDEN_TOOLS:-}" ]; then
  if [ -d /work/tools ] && [ -w /work/tools ]; then KUBE_HARDEN_TOOLS=/work/tools; else KUBE_HARDEN_TOOLS=$HOME/.cache/kube-harden-tools; fi
fi
root=$KUBE_HARDEN_TOOLS/cargo-fuzz-$version
if [ "$("$root/bin/cargo-fuzz" --version 2>/dev/null)" != "cargo-fuzz $version" ]; then
  log "installing cargo-fuzz $version into $root (about a minute, once)"
  CARGO_BUILD_JOBS=${CARGO_BUILD_JOBS:-1} cargo install -q cargo-fuzz --version "$version" --locked --root "$root" >&2
fi
export PATH="$root/bin:$PATH" RUSTC_BOOTSTRAP=1 CARGO_BUILD_JOBS=${CARGO_BUILD_JOBS:-1}
target_dir=${CARGO_TARGET_DIR:-$PWD/target}/fuzz
start=$SECONDS
cargo fuzz build -s none -a --target-dir "$target_dir" >&2
bin=$target_dir/x86_64-unknown-linux-gnu/release
log "built in $((SECONDS - start)) s"

work=$PWD/fuzz/corpus
rm -rf "$work/.seeds"
python3 fuzz/seeds.py "$work/.seeds"
failed=()
for t in "${targets[@]}"; do
  mkdir -p "$work/$t" "fuzz/artifacts/$t"
  # Every saved reproducer first (a crash there is a regression), then the campaign.
  # (Files only: a directory argument would make libFuzzer fuzz it; regressions/open/ is not fixed.)
  if ! find fuzz/regressions -maxdepth 1 -type f -print0 | xargs -0 "$bin/$t" -timeout=2 -rss_limit_mb=2048 \
      > "fuzz/artifacts/$t.regressions.log" 2>&1; then
    log "$t: a reproducer in fuzz/regressions crashes again"; tail -40 "fuzz/artifacts/$t.regressions.log" >&2
    failed+=("$t"); continue
  fi
  log "$t: ${seconds} s"
  if nice -n 19 "$bin/$t" "$work/$t" "$work/.seeds/$t" -dict=fuzz/yaml.dict -timeout=2 -max_len=8192 \
      -rss_limit_mb=2048 -max_total_time="$seconds" -print_final_stats=1 \
      -artifact_prefix="fuzz/artifacts/$t/" > "fuzz/artifacts/$t.log" 2>&1; then
    grep -E '^stat::(number_of_executed_units|average_exec_per_sec|new_units_added)' "fuzz/artifacts/$t.log" | sed "s/^/fuzz: $t: /" >&2
  else
    log "$t: CRASH"; grep -n -m1 -A25 'panicked\|ERROR: libFuzzer' "fuzz/artifacts/$t.log" >&2 || tail -40 "fuzz/artifacts/$t.log" >&2
    ls -l "fuzz/artifacts/$t/" >&2
    failed+=("$t")
  fi
done
[ ${#failed[@]} -eq 0 ] || { log "failed: ${failed[*]}"; exit 1; }
log "${#targets[@]} targets, no crash ($((SECONDS - start)) s)"
