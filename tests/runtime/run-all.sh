#!/usr/bin/env bash
# The whole runtime suite end to end: setup, a private registry, image builds, then every
# manifest in tests/runtime/manifests/ through play.sh. Prints "N passed, N failed".
# Usage: tests/runtime/run-all.sh [workdir]   (default ${KH_RUNTIME_WORK:-/tmp/kh-runtime})
# KH_REGISTRY=host:port uses a running registry instead of starting one.
set -uo pipefail
here=$(cd "$(dirname "$0")" && pwd)
work=${1:-${KH_RUNTIME_WORK:-/tmp/kh-runtime}}
"$here/setup.sh" "$work" || exit 1
work=$(cd "$work" && pwd)
export KH_RUNTIME_WORK=$work
# shellcheck disable=SC1091
. "$work/env.sh"
# Pods left by an earlier, interrupted run would clash by name.
podman pod rm -f -a >/dev/null 2>&1 || true

reg=${KH_REGISTRY:-}
if [ -z "$reg" ]; then
    # Same shape as tests/registry.rs start_registry: distribution 2.8 on a free loopback port,
    # filesystem storage in the work dir (kept, so reruns push only what changed).
    port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
    cat >"$work/registry.yml" <<CONF
version: 0.1
log: {level: error}
storage: {filesystem: {rootdirectory: $work/registry}, delete: {enabled: true}}
http: {addr: 127.0.0.1:$port}
CONF
    docker-registry serve "$work/registry.yml" >"$work/registry.log" 2>&1 &
    reg_pid=$!
    trap 'kill $reg_pid 2>/dev/null' EXIT
    reg=127.0.0.1:$port
    for _ in $(seq 100); do curl -sf "http://$reg/v2/" >/dev/null && break; sleep 0.1; done
fi

t0=$(date +%s)
"$here/build-images.sh" "$reg" "$work" || exit 1
echo "run-all: images ready in $(( $(date +%s) - t0 ))s"

# manifest -> expected outcome ("ok" or a regex the failure's logs must match)
declare -A expect=(
    [nginx-readonly]='Read-only file system'
    [redis-dropall]='Permission denied'
    [tmpsite-emptydir]="can't change directory to '/tmp/www'"
)
pass=0 fail=0
for m in "$here"/manifests/*.yaml; do
    name=$(basename "$m" .yaml)
    t1=$(date +%s%N)
    if [ -n "${expect[$name]:-}" ]; then
        "$here/play.sh" --timeout 15 --expect-fail "${expect[$name]}" "$m"
    else
        "$here/play.sh" "$m"
    fi
    rc=$?
    ms=$(( ($(date +%s%N) - t1) / 1000000 ))
    if [ $rc = 0 ]; then pass=$((pass + 1)); echo "run-all: PASS $name (${ms} ms incl. teardown)"
    else fail=$((fail + 1)); echo "run-all: FAIL $name (${ms} ms)"; fi
done
# The hardened phase: plain Deployments of every app, locked (digests and image facts read from
# the registry), hardened offline from that lock, checked against the kubelet's own rules
# (runAsNonRoot, empty emptyDirs), checked for what kube-harden must have decided, then played:
# each app must start, serve its protocol, and pass every probe kube-harden added.
repo=$(cd "$here/../.." && pwd)
kh=${KUBE_HARDEN:-}
if [ -z "$kh" ]; then
    for c in "$repo/target/debug/kube-harden" "$repo/target/release/kube-harden"; do
        [ -x "$c" ] && { kh=$c; break; }
    done
fi
[ -n "$kh" ] || { echo "run-all: no kube-harden binary (set KUBE_HARDEN or cargo build)"; exit 1; }
apps=(nginx redis memcached numeric tmpsite health volume)
mkdir -p "$work/apps" "$work/hardened"
: > "$work/apps/all.yaml"
for a in "${apps[@]}"; do
    cp "$here/manifests/$a.yaml" "$work/apps/$a.yaml"
    while IFS='=' read -r k v; do sed -i "s|\${$k}|$v|g" "$work/apps/$a.yaml"; done <"$work/images.env"
    { echo "---"; cat "$work/apps/$a.yaml"; } >>"$work/apps/all.yaml"
done
rm -f "$work/images.lock"
if ! "$kh" lock "$work/apps/all.yaml" -o "$work/images.lock" --insecure-registry "$reg"; then
    echo "run-all: FAIL kube-harden lock"; exit 1
fi
for a in "${apps[@]}"; do
    out="$work/hardened/$a.yaml"
    if ! "$kh" --offline --lock "$work/images.lock" "$work/apps/$a.yaml" >"$out" 2>"$work/hardened/$a.log"; then
        fail=$((fail + 1)); echo "run-all: FAIL hardened $a: kube-harden failed"; cat "$work/hardened/$a.log"; continue
    fi
    sed 's/^/  kube-harden: /' "$work/hardened/$a.log"
    ok=1
    /usr/bin/python3 "$here/kubelet_checks.py" static "$out" || ok=0
    /usr/bin/python3 "$here/kubelet_checks.py" expect "$out" "$a" || ok=0
    if [ $ok = 1 ] && "$here/play.sh" --keep "$out"; then
        /usr/bin/python3 "$here/kubelet_checks.py" probes "$out" || ok=0
    else
        ok=0
    fi
    podman pod rm -f -t 0 -a >/dev/null 2>&1
    if [ $ok = 1 ]; then pass=$((pass + 1)); echo "run-all: PASS hardened $a"
    else fail=$((fail + 1)); echo "run-all: FAIL hardened $a"; fi
done

echo "$pass passed, $fail failed"
[ $fail = 0 ]
