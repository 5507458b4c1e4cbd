#!/usr/bin/env bash
# Installs and starts everything the test suite needs, without systemd:
# libvirtd with QEMU (scripts/libvirt-up.sh), Open vSwitch with the userspace
# datapath at the default socket (scripts/ovs-up.sh), a single-node Ceph
# cluster with cephx in target/ceph (scripts/ceph-up.sh), Checkov and jq
# for the Terraform-format JSON tests (scripts/checkov-up.sh), and PostgreSQL
# in target/pg (scripts/postgres-up.sh). Idempotent.
# Prints the `export` lines that point the Ceph tools and Strata at the
# cluster; use it as: eval "$(bash scripts/test-env-up.sh)"
# CI (.ci/run) and the README's test command both run it.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/libvirt-up.sh >&2
bash scripts/ovs-up.sh >&2
# Checkov (pinned, in a venv under target/) and jq, for tests/tf_json.rs.
# CI starts it in the background itself (it is mostly download time) and
# says so with STRATA_CHECKOV_STARTED=1.
if [ "${STRATA_CHECKOV_STARTED:-}" != 1 ]; then
    bash scripts/checkov-up.sh >&2
fi
bash scripts/ceph-up.sh target/ceph
# PostgreSQL for the pg state backend (tests/pg.rs), in target/pg.
bash scripts/postgres-up.sh target/pg
