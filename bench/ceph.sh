#!/usr/bin/env bash
# Ceph provider figures for BENCHMARKS.md, against the cluster that
# scripts/ceph-up.sh starts (CEPH_CONF must point at it):
#   - no-op plan of 200 images across 4 pools, refresh included, and how many
#     rbd calls and monitor commands it makes (from the debug log)
#   - 50 clones of one snapshot created with -parallelism 1 against -parallelism 10
# BIN=path/to/strata skips the release build.
set -euo pipefail
cd "$(dirname "$0")/.."
: "${CEPH_CONF:?point CEPH_CONF at a cluster (eval \"\$(bash scripts/ceph-up.sh target/ceph)\")}"
if [[ -z "${BIN:-}" ]]; then cargo build --release -q; BIN="$PWD/target/release/strata"; fi
secs() { local s e; s=$(date +%s.%N); "$@" >/dev/null 2>&1; e=$(date +%s.%N); echo "$e - $s" | bc; }

# The provider's calls, counted from its debug log (one "ceph call" line each).
log="$(mktemp)"
counted() { : > "$log"; STRATA_LOG=strata::ceph=debug STRATA_LOG_PATH="$log" "$@"; }

tag="bench$$"
many="$(mktemp -d)"
cat > "$many/main.strata.hcl" <<HCL
resource "ceph_pool" "p" {
  count = 4
  name  = "$tag-\${count.index}"
}

resource "ceph_rbd_image" "img" {
  count = 200
  pool  = ceph_pool.p[count.index % 4].name
  name  = "img-\${count.index}"
  size  = 1073741824
}
HCL
echo "200 images in 4 pools, first apply: $(secs "$BIN" --chdir "$many" apply -auto-approve) s"
for run in 1 2 3; do
  s=$(date +%s.%N); "$BIN" --chdir "$many" plan -detailed-exitcode >/dev/null 2>&1 || { echo "the no-op plan found changes or failed" >&2; exit 1; }; e=$(date +%s.%N)
  echo "200 images in 4 pools, no-op plan (refresh included), run $run: $(echo "$e - $s" | bc) s"
done
counted "$BIN" --chdir "$many" plan >/dev/null 2>&1
echo "  calls: $(grep 'ceph call' "$log" | grep -c 'call=rbd') rbd, $(grep 'ceph call' "$log" | grep -c 'call=ceph') monitor commands"

clones="$(mktemp -d)"
cat > "$clones/main.strata.hcl" <<HCL
resource "ceph_pool" "p" {
  name = "$tag-clones"
}

resource "ceph_rbd_image" "golden" {
  pool = ceph_pool.p.name
  name = "golden"
  size = 1073741824
}

resource "ceph_rbd_snapshot" "base" {
  image     = ceph_rbd_image.golden.spec
  name      = "base"
  protected = true
}

resource "ceph_rbd_image" "vm" {
  count    = 50
  pool     = ceph_pool.p.name
  name     = "vm-\${count.index}"
  size     = 1073741824
  clone_of = ceph_rbd_snapshot.base.id
}
HCL
"$BIN" --chdir "$clones" apply -auto-approve -target ceph_rbd_snapshot.base >/dev/null 2>&1
for p in 1 10; do
  echo "50 clones, -parallelism $p: $(secs "$BIN" --chdir "$clones" apply -auto-approve -parallelism "$p") s"
  "$BIN" --chdir "$clones" destroy -auto-approve -target 'ceph_rbd_image.vm' >/dev/null 2>&1
done
"$BIN" --chdir "$clones" destroy -auto-approve >/dev/null 2>&1
"$BIN" --chdir "$many" destroy -auto-approve >/dev/null 2>&1
rm -rf "$log" "$many" "$clones"
