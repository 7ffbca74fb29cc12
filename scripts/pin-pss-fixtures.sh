#!/bin/sh
# Pins the Pod Security Admission conformance fixtures (k8s.io/pod-security-admission/test/testdata,
# `<level>/<version>/{pass,fail}/*.yaml`) into tests/pss-fixtures/, deduplicated: 4,537 files hold
# about 380 distinct pods, so each distinct pod is stored once under pods/<sha256 prefix>.yaml and
# index.tsv lists every fixture as `level version verdict name pod`.
# Usage: scripts/pin-pss-fixtures.sh [SOURCE_DIR]   (default ../shared/conformance/pod-security-admission)
set -eu
src=${1:-../shared/conformance/pod-security-admission}
dst=tests/pss-fixtures
rm -rf "$dst/pods" "$dst/index.tsv"
mkdir -p "$dst/pods"
cp "$src/LICENSE" "$dst/LICENSE"
(cd "$src" && find baseline restricted -name '*.yaml' | LC_ALL=C sort) | while read -r f; do
    sum=$(sha256sum "$src/$f" | cut -c1-16)
    [ -e "$dst/pods/$sum.yaml" ] || cp "$src/$f" "$dst/pods/$sum.yaml"
    # baseline/v1.24/fail/privileged1.yaml -> baseline v1.24 fail privileged1.yaml <sum>
    printf '%s\t%s\n' "$(echo "$f" | tr / '\t')" "$sum"
done > "$dst/index.tsv"
echo "$(wc -l < "$dst/index.tsv") fixtures, $(ls "$dst/pods" | wc -l) distinct pods"
