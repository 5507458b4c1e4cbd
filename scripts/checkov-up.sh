#!/usr/bin/env bash
# Installs the real consumers of Strata's Terraform-format JSON that
# tests/tf_json.rs runs: Checkov (pinned, from PyPI, in a virtual environment
# at target/checkov) and jq (Debian's package, if missing). Idempotent: a
# venv that already has the pinned version is kept. scripts/test-env-up.sh
# (which CI's .ci/run runs) calls it.
set -euo pipefail
cd "$(dirname "$0")/.."

CHECKOV_VERSION=3.3.30
VENV=target/checkov

if ! command -v jq >/dev/null 2>&1; then
    apt-get update -qq >&2
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq jq >&2
fi

if [ "$("$VENV/bin/checkov" --version 2>/dev/null)" != "$CHECKOV_VERSION" ]; then
    rm -rf "$VENV"
    python3 -m venv "$VENV"
    "$VENV/bin/pip" install --quiet --disable-pip-version-check "checkov==$CHECKOV_VERSION" >&2
fi
"$VENV/bin/checkov" --version >&2
