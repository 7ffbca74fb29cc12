#!/usr/bin/env bash
# Runs a Kubernetes Pod/Deployment manifest with `podman kube play`, waits until every app
# container is running and answers its own protocol on 127.0.0.1, then tears it down.
# Usage: tests/runtime/play.sh [options] <manifest.yaml> [check...]
#   check:  http:<port>[/path] | redis:<port> | memcached:<port>
#           default: the manifest's "# kh-check: <check>" comment lines, else one per containerPort in the manifest (6379 redis, 11211 memcached,
#           anything else http GET /).
#   --expect-fail REGEX  succeed only if the pod does NOT come up and its logs (or kube play's
#                        output) match REGEX (grep -E)
#   --timeout SECONDS    how long to wait for running+answering (default 30)
#   --keep               leave the pod running (tear down later with: podman kube down <manifest>)
#   -v                   print what podman made of each container (user, caps, read-only, ...)
# Exit: 0 ok (or expected failure seen), 1 app failed/never answered, 2 usage/setup error.
# Needs tests/runtime/setup.sh first (reads ${KH_RUNTIME_WORK:-/tmp/kh-runtime}/env.sh).
# Networking: podman 4.3 puts each kube pod on its own netns (CNI bridge
# podman-default-kube-network) and publishes every containerPort on the host, so the checks
# talk to 127.0.0.1:<containerPort>. `--network host` is not usable: podman 4.3 then fails with
# "PortMappings can only be used with Bridge or slirp4netns networking" whenever a container
# declares ports (even with hostNetwork: true in the manifest).
set -uo pipefail
work=${KH_RUNTIME_WORK:-/tmp/kh-runtime}
expect_fail="" timeout=30 keep=0 verbose=0
while [ $# -gt 0 ]; do
    case $1 in
        --expect-fail) expect_fail=$2; shift 2 ;;
        --timeout) timeout=$2; shift 2 ;;
        --keep) keep=1; shift ;;
        -v) verbose=1; shift ;;
        -*) echo "play: unknown option $1" >&2; exit 2 ;;
        *) break ;;
    esac
done
orig=${1:-}
manifest=${1:?usage: play.sh [--expect-fail REGEX] [--timeout S] [--keep] [-v] <manifest.yaml> [check...]}
shift
[ -f "$work/env.sh" ] || { echo "play: run tests/runtime/setup.sh first ($work/env.sh missing)" >&2; exit 2; }
# shellcheck disable=SC1091
. "$work/env.sh"

# ${KH_IMG_NGINX}-style placeholders are filled in from <workdir>/images.env (build-images.sh).
if grep -q '\${KH_IMG_' "$manifest"; then
    [ -f "$work/images.env" ] || { echo "play: $work/images.env missing; run build-images.sh" >&2; exit 2; }
    rendered=$(mktemp --suffix=.yaml)
    orig=$manifest
    cp "$manifest" "$rendered"
    while IFS='=' read -r k v; do sed -i "s|\\\${$k}|$v|g" "$rendered"; done <"$work/images.env"
    manifest=$rendered
fi

checks=("$@")
# A manifest may name its own checks in comment lines: "# kh-check: http:8083/started".
[ ${#checks[@]} -eq 0 ] && mapfile -t checks < <(sed -n 's/^# *kh-check: *//p' "$manifest")
if [ ${#checks[@]} -eq 0 ]; then
    for p in $(grep -oE 'containerPort: *[0-9]+' "$manifest" | grep -oE '[0-9]+$' | sort -un); do
        case $p in
            6379) checks+=("redis:$p") ;;
            11211) checks+=("memcached:$p") ;;
            *) checks+=("http:$p") ;;
        esac
    done
fi

# check_app <spec>: does the app on 127.0.0.1 answer its protocol? (bash /dev/tcp, curl for http)
check_app() {
    local proto=${1%%:*} rest=${1#*:} port path line
    port=${rest%%/*}; path=/${rest#"$port"}; path=${path#/}; path=/${path#/}
    case $proto in
        http) curl -sf -m 3 -o /dev/null "http://127.0.0.1:$port$path" ;;
        redis|memcached)
            local req=$'PING\r\n' want='+PONG'
            [ "$proto" = memcached ] && req=$'version\r\n' want='VERSION '
            { exec 3<>"/dev/tcp/127.0.0.1/$port"; } 2>/dev/null || return 1
            printf '%s' "$req" >&3
            IFS= read -r -t 3 line <&3 || { exec 3<&-; return 1; }
            exec 3<&-
            [[ $line == "$want"* ]] ;;
        *) echo "play: unknown check $1" >&2; return 1 ;;
    esac
}

cleanup() {
    [ $keep = 1 ] || podman kube down "$manifest" >/dev/null 2>&1
    [ -n "${rendered:-}" ] && [ $keep = 0 ] && rm -f "$rendered"
}
trap cleanup EXIT

t0=$(date +%s%N)
out=$(podman kube play --tls-verify=false "$manifest" 2>&1); play_rc=$?
pods=$(printf '%s\n' "$out" | awk '/^Pod:$/{getline; print}')
if [ -z "$pods" ]; then
    echo "play: podman kube play failed (rc $play_rc):"; printf '%s\n' "$out" | tail -5
    [ -n "$expect_fail" ] && printf '%s\n' "$out" | grep -qE "$expect_fail" && { echo "play: EXPECTED FAILURE seen"; exit 0; }
    exit 1
fi
ctrs=()
for p in $pods; do
    while read -r name infra; do
        [ "$infra" = true ] || ctrs+=("$name")
    done < <(podman ps -a --filter "pod=$p" --format '{{.Names}} {{.IsInfra}}')
done

failed=0 ok=0
deadline=$(( $(date +%s) + timeout ))
while [ "$(date +%s)" -lt "$deadline" ]; do
    all_running=1
    for c in "${ctrs[@]}"; do
        read -r st restarts code < <(podman inspect --format '{{.State.Status}} {{.RestartCount}} {{.State.ExitCode}}' "$c")
        if [ "$st" != running ]; then all_running=0; fi
        if [ "$st" = exited ] || [ "$st" = stopped ] || [ "${restarts:-0}" -gt 0 ]; then
            failed=1; echo "play: container $c $st (exit $code, restarts $restarts)"
        fi
    done
    [ $failed = 1 ] && break
    if [ $all_running = 1 ]; then
        ok=1
        for ck in "${checks[@]}"; do check_app "$ck" || { ok=0; break; }; done
        [ $ok = 1 ] && break
    fi
    sleep 0.3
done
ms=$(( ($(date +%s%N) - t0) / 1000000 )); elapsed=$((ms / 1000)).$(printf %03d $((ms % 1000)))

if [ $verbose = 1 ] || [ $ok != 1 ]; then
    for c in "${ctrs[@]}"; do
        echo "--- $c: $(podman inspect --format 'user={{.Config.User}} readonly={{.HostConfig.ReadonlyRootfs}} caps={{.EffectiveCaps}} secopt={{.HostConfig.SecurityOpt}} mounts={{range .Mounts}}{{.Destination}}({{.Type}}) {{end}}' "$c" 2>&1)"
        [ $ok != 1 ] && podman logs "$c" 2>&1 | tail -8 | sed 's/^/    | /'
    done
fi
if [ $ok = 1 ]; then
    echo "play: OK $orig: ${#ctrs[@]} container(s) running, answered ${checks[*]} after ${elapsed}s"
    [ -n "$expect_fail" ] && { echo "play: but a failure was expected"; exit 1; }
    exit 0
fi
logs=$(printf '%s\n' "$out"; for c in "${ctrs[@]}"; do podman logs "$c" 2>&1; done)
[ $failed = 1 ] || echo "play: not answering ${checks[*]} within ${timeout}s"
if [ -n "$expect_fail" ]; then
    if printf '%s\n' "$logs" | grep -qE "$expect_fail"; then
        echo "play: EXPECTED FAILURE seen ($expect_fail) after ${elapsed}s"; exit 0
    fi
    echo "play: failed, but logs do not match $expect_fail"
fi
exit 1
