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

# shellcheck source=lib/apt.sh
source "$(dirname "$0")/lib/apt.sh"
apt_install registry-setup "${packages[@]}"

for t in "${tools[@]}"; do
    command -v "$t" >/dev/null 2>&1 || { echo "registry-setup: $t still missing" >&2; exit 1; }
done
echo "registry-setup: installed ${packages[*]}"
