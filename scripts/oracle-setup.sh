#!/usr/bin/env bash
# Builds the Go oracle of tests/go_oracle.rs: tests/oracle/main.go, which reads YAML the way
# Kubernetes does (sigs.k8s.io/yaml over go-yaml v2), from Debian's golang-go and
# golang-k8s-sigs-yaml-dev. Installs those with apt when missing (as root, or with sudo).
# The binary goes to $KUBE_HARDEN_GO_ORACLE, default ${XDG_CACHE_HOME:-~/.cache}/kube-harden/oracle;
# it is rebuilt only when main.go is newer. Prints the binary's path on the last line.
set -euo pipefail
cd "$(dirname "$0")/.."

out="${KUBE_HARDEN_GO_ORACLE:-${XDG_CACHE_HOME:-$HOME/.cache}/kube-harden/oracle}"
src="tests/oracle/main.go"
gopath=/usr/share/gocode
packages=(golang-go golang-k8s-sigs-yaml-dev)

if ! command -v go >/dev/null 2>&1 || [ ! -d "$gopath/src/sigs.k8s.io/yaml" ]; then
    echo "oracle-setup: installing ${packages[*]}" >&2
    # shellcheck source=lib/apt.sh
    source scripts/lib/apt.sh
    apt_install oracle-setup "${packages[@]}"
fi
command -v go >/dev/null 2>&1 || { echo "oracle-setup: go still missing" >&2; exit 1; }

if [ ! -x "$out" ] || [ "$src" -nt "$out" ]; then
    mkdir -p "$(dirname "$out")"
    build_dir="$(mktemp -d)"
    trap 'rm -rf "$build_dir"' EXIT
    cp "$src" "$build_dir/main.go"
    # GOPATH mode: the packages Debian installs under /usr/share/gocode, no module download.
    (cd "$build_dir" && GOPATH="$gopath" GO111MODULE=off GOFLAGS= GOCACHE="$build_dir/cache" \
        go build -o "$out.tmp" .)
    mv "$out.tmp" "$out"
    echo "oracle-setup: built $out ($(go version | cut -d' ' -f3), sigs.k8s.io/yaml from $gopath)" >&2
fi
echo "$out"
