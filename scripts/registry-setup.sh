#!/usr/bin/env bash
# Installs what tests/registry.rs needs to run a real OCI registry on 127.0.0.1:
#   docker-registry (distribution 2.8), skopeo (push/inspect), umoci (build images), htpasswd.
# Idempotent: does nothing when every tool is already on PATH. Debian/Ubuntu (apt) only.
set -euo pipefail
# (The package may also start a system registry on :5000; the tests use their own free ports.)

tools=(docker-registry skopeo umoci htpasswd)
packages=(docker-registry skopeo umoci apache2-utils)

missing=()
for t in "${tools[@]}"; do
    command -v "$t" >/dev/null 2>&1 || missing+=("$t")
done
if [ ${#missing[@]} -eq 0 ]; then
    echo "registry-setup: all tools present (${tools[*]})"
    exit 0
fi
echo "registry-setup: missing ${missing[*]}; installing ${packages[*]}"

if ! command -v apt-get >/dev/null 2>&1; then
    echo "registry-setup: apt-get not found; install ${packages[*]} by other means" >&2
    exit 1
fi
sudo=""
if [ "$(id -u)" -ne 0 ]; then
    if command -v sudo >/dev/null 2>&1; then
        sudo="sudo"
    else
        echo "registry-setup: not root and no sudo; cannot install ${packages[*]}" >&2
        exit 1
    fi
fi
export DEBIAN_FRONTEND=noninteractive
$sudo apt-get update -qq
$sudo apt-get install -y -qq --no-install-recommends "${packages[@]}" >/dev/null

for t in "${tools[@]}"; do
    command -v "$t" >/dev/null 2>&1 || { echo "registry-setup: $t still missing" >&2; exit 1; }
done
echo "registry-setup: installed ${packages[*]}"
