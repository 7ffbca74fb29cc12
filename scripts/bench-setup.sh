#!/usr/bin/env bash
# Installs the baselines benches/speed.rs compares with, and prints the environment that points
# the bench at them (eval "$(bash scripts/bench-setup.sh)"):
#   rapidyaml (C++, PyPI `rapidyaml`, Python module `ryml`) -> KUBE_HARDEN_BENCH_PYTHON
#   gopkg.in/yaml.v3 (Debian golang-gopkg-yaml.v3-dev, the YAML layer of Go KRM functions), built
#   from benches/baselines/yamlv3.go -> KUBE_HARDEN_BENCH_YAMLV3
# Idempotent. Debian/Ubuntu (apt) and pip.
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=lib/apt.sh
source scripts/lib/apt.sh

cache="${XDG_CACHE_HOME:-$HOME/.cache}/kube-harden/bench"
mkdir -p "$cache"

python=${PYTHON:-python3}
if ! "$python" -c 'import ryml' 2>/dev/null; then
    echo "bench-setup: installing rapidyaml (pip)" >&2
    "$python" -m pip install --quiet --disable-pip-version-check rapidyaml >&2
fi
"$python" -c 'import ryml' || { echo "bench-setup: rapidyaml still missing" >&2; exit 1; }

gopath=/usr/share/gocode
if ! command -v go >/dev/null 2>&1 || [ ! -d "$gopath/src/gopkg.in/yaml.v3" ]; then
    echo "bench-setup: installing golang-go golang-gopkg-yaml.v3-dev" >&2
    apt_install bench-setup golang-go golang-gopkg-yaml.v3-dev >&2
fi
yamlv3="$cache/yamlv3"
src=benches/baselines/yamlv3.go
if [ ! -x "$yamlv3" ] || [ "$src" -nt "$yamlv3" ]; then
    build="$(mktemp -d)"
    trap 'rm -rf "$build"' EXIT
    cp "$src" "$build/main.go"
    (cd "$build" && GOPATH=$gopath GO111MODULE=off go build -o "$yamlv3" main.go) >&2
fi
echo "export KUBE_HARDEN_BENCH_PYTHON=$(command -v "$python") KUBE_HARDEN_BENCH_YAMLV3=$yamlv3"
