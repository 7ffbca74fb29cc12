#!/usr/bin/env bash
# Installs what wasm/build.sh and wasm/test.sh need, skipping what is already there:
# the two Rust wasm targets, wasm-bindgen-cli at exactly the version of the `wasm-bindgen` crate in
# wasm/Cargo.toml, the `wasmtime` Python package (the WASI runtime), the test's npm packages
# (playwright-core, typescript; wasm/tests/package-lock.json) and Debian's chromium.
# Prints the tools' directory on the last line of stdout; the other scripts put it on PATH.
#
#   KUBE_HARDEN_TOOLS   where wasm-bindgen-cli is installed (default /work/tools if it exists,
#                       else ~/.cache/kube-harden-tools); an empty or missing directory is fine
#   KUBE_HARDEN_E2E_REQUIRED  set (not empty, not 0; .ci/run sets it): whatever cannot be installed
#                       fails setup, instead of the part of wasm/test.sh that needs it being skipped
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
log() { echo "wasm/setup: $*" >&2; }
strict=
case ${KUBE_HARDEN_E2E_REQUIRED:-0} in 0 | '') ;; *) strict=1 ;; esac
# missing WHAT CONSEQUENCE: fatal under KUBE_HARDEN_E2E_REQUIRED, else a warning.
missing() {
  if [ -n "$strict" ]; then
    log "FAILED: $1 (KUBE_HARDEN_E2E_REQUIRED is set, so the tests that need it may not be skipped)"
    exit 1
  fi
  log "$1; $2"
}
sudo=()
[ "$(id -u)" = 0 ] || ! command -v sudo >/dev/null 2>&1 || sudo=(sudo -n)

for tool in node npm python3; do
  command -v "$tool" >/dev/null 2>&1 || { log "$tool is not on PATH; wasm/build.sh and wasm/test.sh need it"; exit 1; }
done
command -v kpt >/dev/null 2>&1 || missing "kpt is not on PATH (install kpt 1.0.0-beta.x)" "the kpt test will be skipped"

if command -v rustup >/dev/null 2>&1; then
  installed=$(rustup target list --installed)
  for t in wasm32-wasip1 wasm32-wasip1-threads wasm32-unknown-unknown; do
    grep -qx "$t" <<<"$installed" || { log "rustup target add $t"; rustup target add "$t" >&2; }
  done
  cargo clippy --version >/dev/null 2>&1 || { log "rustup component add clippy"; rustup component add clippy >&2; }
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
  python3 -m pip install --quiet 'wasmtime==50.0.1' >&2 && python3 -c 'import wasmtime' >/dev/null 2>&1 ||
    missing "could not install the wasmtime Python package" "WASI tests will use node only"
fi

# npm ci when a package is missing or is not the version package.json pins (a stale node_modules).
npm_current() {
  (cd "$here/tests" && node -e '
    const want = require("./package.json").devDependencies;
    for (const [name, version] of Object.entries(want)) {
      if (require(`./node_modules/${name}/package.json`).version !== version) process.exit(1);
    }' 2>/dev/null)
}
if ! npm_current || [ ! -x "$here/tests/node_modules/.bin/tsc" ]; then
  log "npm ci (wasm/tests: playwright-core, typescript)"
  (cd "$here/tests" && npm ci --no-audit --no-fund --loglevel=error >&2) && npm_current ||
    missing "npm ci in wasm/tests failed" "the TypeScript and playground tests will be skipped"
fi

has_chromium() { [ -n "${CHROMIUM:-}" ] || command -v chromium >/dev/null 2>&1 || command -v chromium-browser >/dev/null 2>&1; }
if ! has_chromium; then
  if command -v apt-get >/dev/null 2>&1 && { [ "$(id -u)" = 0 ] || [ ${#sudo[@]} -gt 0 ]; }; then
    log "apt-get install chromium"
    export DEBIAN_FRONTEND=noninteractive
    # Without `update` first when the package lists are current; with it when they are stale or absent.
    "${sudo[@]}" apt-get install -y -qq chromium >&2 2>/dev/null ||
      { "${sudo[@]}" apt-get update -qq >&2 && "${sudo[@]}" apt-get install -y -qq chromium >&2; } || true
  fi
  has_chromium || missing "no chromium, and it could not be installed (Debian: apt-get install chromium)" "the playground test will be skipped"
fi

echo "$bindgen_dir"
