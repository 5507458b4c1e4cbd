#!/usr/bin/env bash
# Installs the real consumers of Strata's Terraform-format JSON that
# tests/tf_json.rs runs: Checkov (pinned, from PyPI, in a virtual
# environment) and jq (Debian's package, if missing). The tests find Checkov
# at target/checkov; that is a link to a venv kept per version under
# ~/.cache/strata, because installing Checkov downloads ~200 packages (8 to
# 16 minutes here, one minute of it CPU) and a fresh clone on the same
# machine (as CI's is) should not pay that again. Idempotent.
# scripts/test-env-up.sh (which CI's .ci/run runs) calls it.
set -euo pipefail
cd "$(dirname "$0")/.."

CHECKOV_VERSION=3.3.30
VENV="${XDG_CACHE_HOME:-$HOME/.cache}/strata/checkov-$CHECKOV_VERSION"

if ! command -v jq >/dev/null 2>&1; then
    apt-get update -qq >&2
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq jq >&2
fi

# A venv cut short (an interrupted install) fails the version check and is
# made again.
if [ "$("$VENV/bin/checkov" --version 2>/dev/null)" != "$CHECKOV_VERSION" ]; then
    rm -rf "$VENV"
    mkdir -p "$(dirname "$VENV")"
    python3 -m venv "$VENV"
    "$VENV/bin/pip" install --quiet --disable-pip-version-check "checkov==$CHECKOV_VERSION" >&2
fi
mkdir -p target
if [ "$(readlink target/checkov 2>/dev/null)" != "$VENV" ]; then
    rm -rf target/checkov
    ln -s "$VENV" target/checkov
fi
target/checkov/bin/checkov --version >&2
