#!/usr/bin/env bash
# Ceph provider figures for BENCHMARKS.md, against the cluster that
# scripts/ceph-up.sh starts (CEPH_CONF must point at it):
#   - no-op plan of 200 images across 4 pools, refresh included, and how many
#     rbd/ceph calls it makes
#   - 50 clones of one snapshot created with -parallelism 1 against -parallelism 10
# BIN=path/to/strata skips the release build.
set -euo pipefail
cd "$(dirname "$0")/.."
: "${CEPH_CONF:?point CEPH_CONF at a cluster (eval \"\$(bash scripts/ceph-up.sh target/ceph)\")}"
if [[ -z "${BIN:-}" ]]; then cargo build --release -q; BIN="$PWD/target/release/strata"; fi
secs() { local s e; s=$(date +%s.%N); "$@" >/dev/null 2>&1; e=$(date +%s.%N); echo "$e - $s" | bc; }

# Shims that count the provider's calls to the CLIs.
shims="$(mktemp -d)"; calls="$shims/calls"
for tool in rbd ceph; do
  real="$(command -v "$tool")"
  printf '#!/bin/sh\necho %s >> %s\nexec %s "$@"\n' "$tool" "$calls" "$real" > "$shims/$tool"
  chmod +x "$shims/$tool"
done
counted() { : > "$calls"; PATH="$shims:$PATH" "$@"; }

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
counted true
s=$(date +%s.%N); counted "$BIN" --chdir "$many" plan -detailed-exitcode >/dev/null 2>&1 || true; e=$(date +%s.%N)
echo "200 images in 4 pools, no-op plan (refresh included): $(echo "$e - $s" | bc) s, $(grep -c rbd "$calls") rbd + $(grep -c ceph "$calls") ceph calls"

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
rm -rf "$shims" "$many" "$clones"
