#!/usr/bin/env bash
# Installs what wasm/build.sh and wasm/test.sh need, skipping what is already there:
# the two Rust wasm targets, wasm-bindgen-cli at exactly the version of the `wasm-bindgen` crate in
# wasm/Cargo.toml, the `wasmtime` Python package (the WASI runtime), the test's npm packages
# (playwright-core, typescript; wasm/tests/package-lock.json) and Debian's chromium.
# Prints the tools' directory on the last line of stdout; the other scripts put it on PATH.
#
#   KUBE_HARDEN_TOOLS   where wasm-bindgen-cli is installed (default /work/tools if it exists,
#                       else ~/.cache/kube-harden-tools)
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
log() { echo "wasm/setup: $*" >&2; }

if command -v rustup >/dev/null 2>&1; then
  installed=$(rustup target list --installed)
  for t in wasm32-wasip1 wasm32-unknown-unknown; do
    grep -qx "$t" <<<"$installed" || { log "rustup target add $t"; rustup target add "$t" >&2; }
  done
fi

version=$(sed -n 's/^wasm-bindgen = "=\(.*\)"$/\1/p' "$here/Cargo.toml")
[ -n "$version" ] || { log "cannot read the wasm-bindgen version from wasm/Cargo.toml"; exit 1; }
if [ -z "${KUBE_HARDEN_TOOLS:-}" ]; then
  if [ -d /work/tools ] && [ -w /work/tools ]; then KUBE_HARDEN_TOOLS=/work/tools; else KUBE_HARDEN_TOOLS=$HOME/.cache/kube-harden-tools; fi
fi
bindgen_root=$KUBE_HARDEN_TOOLS/wasm-bindgen-$version
has_bindgen() { [ -x "$1/wasm-bindgen" ] && [ "$("$1/wasm-bindgen" --version)" = "wasm-bindgen $version" ]; }
bindgen_dir=
for dir in "$bindgen_root/bin" "$HOME/.cargo/bin" $(command -v wasm-bindgen >/dev/null 2>&1 && dirname "$(command -v wasm-bindgen)"); do
  if has_bindgen "$dir"; then bindgen_dir=$dir; break; fi
done
if [ -z "$bindgen_dir" ]; then
  log "installing wasm-bindgen-cli $version into $bindgen_root (a few minutes, once)"
  mkdir -p "$bindgen_root"
  # --locked first; some registry mirrors lack a version its lock file pins, so retry without.
  CARGO_BUILD_JOBS=${CARGO_BUILD_JOBS:-1} cargo install -q wasm-bindgen-cli --version "$version" --locked --root "$bindgen_root" >&2 ||
    CARGO_BUILD_JOBS=${CARGO_BUILD_JOBS:-1} cargo install -q wasm-bindgen-cli --version "$version" --root "$bindgen_root" >&2
  bindgen_dir=$bindgen_root/bin
  has_bindgen "$bindgen_dir" || { log "wasm-bindgen $version not usable after install"; exit 1; }
fi

if ! python3 -c 'import wasmtime' >/dev/null 2>&1; then
  log "pip install wasmtime"
  python3 -m pip install --quiet 'wasmtime==50.0.1' >&2 || log "could not install the wasmtime Python package; WASI tests will use node only"
fi

if [ ! -d "$here/tests/node_modules/playwright-core" ] || [ ! -d "$here/tests/node_modules/typescript" ]; then
  log "npm ci (wasm/tests: playwright-core, typescript)"
  (cd "$here/tests" && npm ci --no-audit --no-fund --silent >&2) || log "npm ci failed; the TypeScript and playground tests will be skipped"
fi

if ! command -v chromium >/dev/null 2>&1 && ! command -v chromium-browser >/dev/null 2>&1; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    log "apt-get install chromium"
    (apt-get install -y -qq chromium >&2 || { apt-get update -qq >&2 && apt-get install -y -qq chromium >&2; }) ||
      log "could not install chromium; the playground test will be skipped"
  else
    log "no chromium and no way to install it; the playground test will be skipped"
  fi
fi

echo "$bindgen_dir"
