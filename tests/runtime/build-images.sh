#!/usr/bin/env bash
# Builds the runtime suite's application images from Debian bookworm packages and pushes them
# to a local plain-HTTP registry. Every image is a real app that answers its own protocol.
# Usage: tests/runtime/build-images.sh <registry-host:port> <workdir>
# Needs tests/runtime/setup.sh <workdir> first. Writes <workdir>/images.env
# (KH_IMG_<NAME>=<registry>/kh-<name>:bookworm and KH_IMG_<NAME>_DIGEST=<ref>@sha256:...).
# Root filesystems are cached in <workdir>/rootfs/<sha of package list>.tar and the .debs in
# <workdir>/debcache, so reruns skip mmdebstrap (only import+push, a few seconds per image).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
reg=${1:?usage: build-images.sh <registry-host:port> <workdir>}
work=${2:?usage: build-images.sh <registry-host:port> <workdir>}
[ -f "$work/env.sh" ] || "$here/setup.sh" "$work" >/dev/null
# shellcheck disable=SC1091
. "$work/env.sh"
mkdir -p "$work/rootfs" "$work/debcache" "$work/img"
PATHENV='ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin'
: > "$work/images.env.tmp"
: > "$work/timings.txt"

# rootfs <packages...>: prints the cached minbase tarball with those packages, building it if needed.
rootfs() {
    local key out t0
    key=$(printf 'bookworm minbase v1 %s\n' "$(printf '%s\n' "$@" | sort | tr '\n' ' ')" | sha256sum | cut -c1-16)
    out="$work/rootfs/$key.tar"
    if [ ! -s "$out" ]; then
        t0=$(date +%s)
        # Docs, man pages and translations are left out to keep the images small.
        mmdebstrap --variant=minbase --include="$(IFS=,; echo "$*")" \
            --dpkgopt='path-exclude=/usr/share/doc/*' \
            --dpkgopt='path-exclude=/usr/share/man/*' \
            --dpkgopt='path-exclude=/usr/share/locale/*' \
            --skip=essential/unlink \
            --setup-hook='mkdir -p "$1"/var/cache/apt/archives/' \
            --setup-hook="sync-in $work/debcache /var/cache/apt/archives/" \
            --customize-hook="sync-out /var/cache/apt/archives $work/debcache" \
            bookworm "$out.part.tar" >"$work/rootfs/$key.log" 2>&1 \
            || { tail -20 "$work/rootfs/$key.log" >&2; return 1; }
        mv "$out.part.tar" "$out"
        echo "mmdebstrap $* : $(( $(date +%s) - t0 ))s" >>"$work/timings.txt"
        echo "build-images: mmdebstrap [$*] took $(( $(date +%s) - t0 ))s" >&2
    fi
    echo "$out"
}

# with_files <base.tar> <name> <dir> <path>: copy of base.tar plus <dir>/<path> (recursively) at
# /<path>. Only paths new to the base may be added: podman import rejects a tar with the same
# path twice ("duplicates of file paths not supported"), so "./" or "./tmp" must not be repeated.
with_files() {
    local base=$1 name=$2 dir=$3 path=$4 owner=${5:-0} out="$work/img/$2.tar"
    cp "$base" "$out"
    tar -C "$dir" --numeric-owner --owner="$owner" --group="$owner" -rf "$out" "./$path"
    echo "$out"
}

# push <name> <local-ref> [podman push args...]: push to $reg/kh-<name>:bookworm, record digest.
push() {
    local name=$1 local_ref=$2; shift 2
    local ref="$reg/kh-$name:bookworm" var
    var=$(echo "$name" | tr 'a-z-' 'A-Z_')
    podman push -q --tls-verify=false --digestfile "$work/img/$name.digest" "$@" "$local_ref" "$ref" >/dev/null
    echo "KH_IMG_$var=$ref" >>"$work/images.env.tmp"
    echo "KH_IMG_${var}_DIGEST=$reg/kh-$name@$(cat "$work/img/$name.digest")" >>"$work/images.env.tmp"
    echo "$ref@$(cat "$work/img/$name.digest")"
}

# image <name> <tarball> <--change ...>: podman import + push.
image() {
    local name=$1 tar=$2; shift 2
    local t0; t0=$(date +%s)
    [ -s "$tar" ] || { echo "build-images: no root filesystem for $name" >&2; exit 1; }
    podman import -q "$@" "$tar" "localhost/kh-$name:bookworm" >/dev/null
    push "$name" "localhost/kh-$name:bookworm"
    echo "import+push $name : $(( $(date +%s) - t0 ))s" >>"$work/timings.txt"
}

stage=$(mktemp -d); trap 'rm -rf "$stage"' EXIT

# a. nginx: root image (no USER), writes /var/lib/nginx, /var/log/nginx, /run/nginx.pid; port 80.
image nginx "$(rootfs nginx)" --change "$PATHENV" --change 'EXPOSE 80' \
    --change 'CMD ["nginx","-g","daemon off;"]'

# b. redis: root image; /var/lib/redis is redis:redis 0750, so root needs CAP_DAC_OVERRIDE
#    (or DAC_READ_SEARCH) to chdir there. --protected-mode no: clients arrive through the
#    pod's port forwarding from a non-loopback address and would get -DENIED otherwise.
image redis "$(rootfs redis-server)" --change "$PATHENV" --change 'EXPOSE 6379' --change 'USER root' \
    --change 'CMD ["redis-server","--dir","/var/lib/redis","--protected-mode","no"]'

# c. named user: memcached as USER memcache (created by the Debian package, uid 100-ish).
image memcached "$(rootfs memcached)" --change "$PATHENV" --change 'EXPOSE 11211' \
    --change 'USER memcache' --change 'CMD ["memcached","-p","11211"]'

bb=$(rootfs busybox)
[ -s "$bb" ] || exit 1
# d. numeric user: busybox httpd as USER 10001 (no passwd entry) on 8080, content root-owned.
mkdir -p "$stage/numeric/srv/www"; echo "numeric user image" >"$stage/numeric/srv/www/index.html"
image numeric "$(with_files "$bb" numeric "$stage/numeric" srv/www)" --change "$PATHENV" --change 'EXPOSE 8080' \
    --change 'USER 10001' --change 'CMD ["busybox","httpd","-f","-p","8080","-h","/srv/www"]'

# e. ships its site in /tmp/www and serves it on 8081 as USER 10001: an emptyDir over /tmp
#    hides the site (httpd cannot chdir there), so /tmp must stay as the image has it.
mkdir -p "$stage/tmpsite/tmp/www"; echo "served from /tmp" >"$stage/tmpsite/tmp/www/index.html"
image tmpsite "$(with_files "$bb" tmpsite "$stage/tmpsite" tmp/www)" --change "$PATHENV" --change 'EXPOSE 8081' \
    --change 'USER 10001' --change 'CMD ["busybox","httpd","-f","-p","8081","-h","/tmp/www"]'

# f. HEALTHCHECK: `podman import --change HEALTHCHECK` is rejected ("invalid instruction
#    HEALTHCHECK"), so add it with a FROM-only Containerfile via `podman build --format docker`
#    (no RUN step, so no container is run), and push as Docker v2s2: the OCI image config has no
#    Healthcheck field and an OCI push would drop it.
mkdir -p "$stage/health/srv/www"; echo "healthy" >"$stage/health/srv/www/index.html"
podman import -q --change "$PATHENV" --change 'EXPOSE 8082' --change 'USER 10001' \
    --change 'CMD ["busybox","httpd","-f","-p","8082","-h","/srv/www"]' \
    "$(with_files "$bb" health "$stage/health" srv/www)" localhost/kh-health-base:bookworm >/dev/null
t0=$(date +%s)
cat >"$stage/Containerfile.health" <<'CF'
FROM localhost/kh-health-base:bookworm
HEALTHCHECK --interval=10s --timeout=3s --start-period=5s --retries=3 CMD ["busybox","wget","-q","-O","/dev/null","http://127.0.0.1:8082/"]
CF
podman build -q --format docker -f "$stage/Containerfile.health" -t localhost/kh-health:bookworm "$stage" >/dev/null
push health localhost/kh-health:bookworm --format v2s2
echo "build+push health : $(( $(date +%s) - t0 ))s" >>"$work/timings.txt"

# g. VOLUME /data, owned by its user 10002; the app writes /data/started at start and serves
#    /data on 8083 (with a read-only root it needs a writable volume there).
mkdir -p "$stage/volume/data"
image volume "$(with_files "$bb" volume "$stage/volume" data 10002)" --change "$PATHENV" --change 'EXPOSE 8083' \
    --change 'VOLUME /data' --change 'USER 10002' \
    --change 'CMD ["/bin/sh","-c","date > /data/started && exec busybox httpd -f -p 8083 -h /data"]'

mv "$work/images.env.tmp" "$work/images.env"
echo "build-images: wrote $work/images.env" >&2
