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
#   --podman-emptydir    keep podman's emptyDir (anonymous volume pre-filled from the image)
#                        instead of an empty hostPath dir like Kubernetes (see below)
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
expect_fail="" timeout=30 keep=0 verbose=0 podman_emptydir=0
while [ $# -gt 0 ]; do
    case $1 in
        --expect-fail) expect_fail=$2; shift 2 ;;
        --timeout) timeout=$2; shift 2 ;;
        --keep) keep=1; shift ;;
        -v) verbose=1; shift ;;
        --podman-emptydir) podman_emptydir=1; shift ;;
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

# emptyDir: podman 4.3 turns an emptyDir into an anonymous volume and COPIES the image's content
# at the mount point into it on first use (and ignores medium: Memory), so an emptyDir over /tmp
# does not hide /tmp/www the way Kubernetes does. Unless --podman-emptydir is given, every
# emptyDir is rewritten to a hostPath on a fresh empty 0777 directory (what a kubelet gives a pod).
if [ $podman_emptydir = 0 ] && grep -q 'emptyDir' "$manifest"; then
    emptydirs=$(mktemp -d "$work/emptydir.XXXXXX")
    emulated=$(mktemp --suffix=.yaml)
    py=python3
    /usr/bin/python3 -c 'import yaml' 2>/dev/null && py=/usr/bin/python3   # Debian python3-yaml
    "$py" - "$manifest" "$emptydirs" >"$emulated" <<'PY' || { echo "play: cannot rewrite emptyDir volumes (python3-yaml?)" >&2; exit 2; }
import os, sys, yaml
src, root = sys.argv[1], sys.argv[2]
def pod_spec(doc):
    kind, spec = doc.get("kind"), doc.get("spec") or {}
    if kind == "Pod":
        return spec
    if kind == "CronJob":
        spec = (spec.get("jobTemplate") or {}).get("spec") or {}
    return (spec.get("template") or {}).get("spec")
docs = [d for d in yaml.safe_load_all(open(src)) if d]
for i, doc in enumerate(docs):
    spec = pod_spec(doc) or {}
    for v in spec.get("volumes") or []:
        if "emptyDir" in v:
            path = os.path.join(root, f"{i}-{v['name']}")
            os.mkdir(path)
            os.chmod(path, 0o777)
            del v["emptyDir"]
            v["hostPath"] = {"path": path, "type": "Directory"}
yaml.safe_dump_all(docs, sys.stdout, sort_keys=False)
PY
    orig=${orig:-$manifest}
    [ -n "${rendered:-}" ] && rm -f "$rendered"
    rendered=$emulated
    manifest=$emulated
fi

checks=("$@")
# A manifest may name its own checks in comment lines: "# kh-check: http:8083/started".
[ ${#checks[@]} -eq 0 ] && mapfile -t checks < <(sed -n 's/^# *kh-check: *//p' "${orig:-$manifest}")
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
    [ $keep = 1 ] && return
    # busybox httpd (PID 1) ignores SIGTERM: stop at once instead of podman's 10 s grace period.
    for p in ${pods:-}; do podman pod stop -t 0 "$p" >/dev/null 2>&1; done
    podman kube down "$manifest" >/dev/null 2>&1
    [ -n "${rendered:-}" ] && rm -f "$rendered"
    [ -n "${emptydirs:-}" ] && rm -rf "$emptydirs"
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
