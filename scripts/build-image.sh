#!/usr/bin/env bash
# Builds the kube-harden container image without a Docker engine, as an OCI image layout:
# a static musl binary at /usr/local/bin/kube-harden, nothing else (no shell), a numeric non-root
# user, the binary as entrypoint. Push it with skopeo, e.g.
#   skopeo copy oci:OUT_DIR:TAG docker://ghcr.io/kube-harden/kube-harden:TAG
#
#   scripts/build-image.sh OUT_DIR [--tag TAG] [--binary PATH] [--profile release|dev]
#
# Without --binary it builds x86_64-unknown-linux-musl with cargo (target dir .e2e/target-musl,
# or $CARGO_TARGET_DIR). Needs umoci (apt-get install umoci). The Dockerfile builds the same image
# where Docker is available.
set -euo pipefail
cd "$(dirname "$0")/.."

out=${1:?usage: scripts/build-image.sh OUT_DIR [--tag TAG] [--binary PATH] [--profile release|dev]}
shift
version=$(sed -n 's/^version = "\(.*\)"/\1/p' Cargo.toml | head -n 1)
tag="v$version" binary="" profile=release
while [ $# -gt 0 ]; do
  case "$1" in
    --tag) tag=$2; shift 2 ;;
    --binary) binary=$2; shift 2 ;;
    --profile) profile=$2; shift 2 ;;
    *) echo "build-image: unknown argument $1" >&2; exit 2 ;;
  esac
done
target=x86_64-unknown-linux-musl
if [ -z "$binary" ]; then
  export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$PWD/.e2e/target-musl}
  # ring (TLS for the registry client) compiles C: use musl's gcc wrapper (apt: musl-tools).
  if command -v musl-gcc >/dev/null 2>&1; then
    export CC_x86_64_unknown_linux_musl=${CC_x86_64_unknown_linux_musl:-musl-gcc}
  fi
  cargo build --locked --profile "$profile" --target "$target" --bin kube-harden >&2
  dir=$profile; [ "$profile" = dev ] && dir=debug
  binary=$CARGO_TARGET_DIR/$target/$dir/kube-harden
fi
# A static binary: no ELF interpreter, so it runs in an image with no libc.
if readelf -l "$binary" | grep -q 'Requesting program interpreter'; then
  echo "build-image: $binary is dynamically linked; build it for $target" >&2
  exit 1
fi

rootless=()
[ "$(id -u)" -eq 0 ] || rootless=(--rootless)
rm -rf "$out"
umoci init --layout "$out"
umoci new --image "$out:$tag"
bundle=$(mktemp -d)
trap 'rm -rf "$bundle"' EXIT
umoci unpack "${rootless[@]}" --image "$out:$tag" "$bundle/b"
install -d -m 0755 "$bundle/b/rootfs/usr/local/bin"
install -m 0755 "$binary" "$bundle/b/rootfs/usr/local/bin/kube-harden"
umoci repack --image "$out:$tag" "$bundle/b"
umoci config --image "$out:$tag" \
  --os linux --architecture amd64 \
  --config.entrypoint /usr/local/bin/kube-harden \
  --config.user 65532:65532 \
  --config.workingdir / \
  --config.label org.opencontainers.image.source=https://github.com/kube-harden/kube-harden \
  --config.label "org.opencontainers.image.version=$version" \
  --config.label org.opencontainers.image.licenses=Apache-2.0
umoci gc --layout "$out"
echo "$out:$tag"
