#!/usr/bin/env bash
# Assembles the Helm 4 post-renderer plugin: OUT_DIR/kube-harden/{plugin.yaml,bin/<os>-<arch>/kube-harden}
# from helm-plugin/plugin.yaml and a built binary, ready for `helm plugin install OUT_DIR/kube-harden`
# (or HELM_PLUGINS=OUT_DIR). With --tgz, also writes OUT_DIR/kube-harden-<version>.tgz for a release.
#
#   scripts/package-helm-plugin.sh OUT_DIR [--binary PATH] [--platform OS-ARCH]... [--tgz]
#
# --binary/--platform pairs may repeat to bundle several platforms; the default is
# target/release/kube-harden for this machine's platform.
set -euo pipefail
cd "$(dirname "$0")/.."

out=${1:?usage: scripts/package-helm-plugin.sh OUT_DIR [--binary PATH] [--platform OS-ARCH]... [--tgz]}
shift
host_platform() {
  local os arch
  case "$(uname -s)" in Linux) os=linux ;; Darwin) os=darwin ;; MINGW*|MSYS*|CYGWIN*) os=windows ;; *) os=unknown ;; esac
  case "$(uname -m)" in x86_64|amd64) arch=amd64 ;; aarch64|arm64) arch=arm64 ;; *) arch=unknown ;; esac
  echo "$os-$arch"
}
binaries=() platforms=() tgz=false
while [ $# -gt 0 ]; do
  case "$1" in
    --binary) binaries+=("$2"); shift 2 ;;
    --platform) platforms+=("$2"); shift 2 ;;
    --tgz) tgz=true; shift ;;
    *) echo "package-helm-plugin: unknown argument $1" >&2; exit 2 ;;
  esac
done
[ ${#binaries[@]} -gt 0 ] || binaries=(target/release/kube-harden)
[ ${#platforms[@]} -gt 0 ] || platforms=("$(host_platform)")
if [ ${#binaries[@]} -ne ${#platforms[@]} ]; then
  echo "package-helm-plugin: give one --platform per --binary" >&2
  exit 2
fi

dir="$out/kube-harden"
rm -rf "$dir"
mkdir -p "$dir"
cp helm-plugin/plugin.yaml "$dir/plugin.yaml"
for i in "${!binaries[@]}"; do
  platform=${platforms[$i]}
  if ! grep -q "bin/$platform/kube-harden" helm-plugin/plugin.yaml; then
    echo "package-helm-plugin: plugin.yaml has no platformCommand for $platform" >&2
    exit 1
  fi
  name=kube-harden
  case "$platform" in windows-*) name=kube-harden.exe ;; esac
  mkdir -p "$dir/bin/$platform"
  install -m 0755 "${binaries[$i]}" "$dir/bin/$platform/$name"
done
if $tgz; then
  version=$(sed -n 's/^version: *//p' helm-plugin/plugin.yaml)
  tar -C "$out" -czf "$out/kube-harden-$version.tgz" kube-harden
  echo "$out/kube-harden-$version.tgz"
fi
echo "$dir"
