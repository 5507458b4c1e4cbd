#!/usr/bin/env bash
# Ceph provider figures for BENCHMARKS.md, against the cluster that
# scripts/ceph-up.sh starts (CEPH_CONF must point at it):
#   - no-op plan of 200 images across 4 pools, refresh included, and how many
#     cluster calls it makes (from the debug log)
#   - the ways to read those 200 images for a refresh, side by side: one
#     `rbd ls -l` per pool, one `rbd du` per pool, librbd opening each image
#     (one Python process), and the provider's helper (rbd object class
#     calls on the image headers, one process)
#   - 50 clones of one snapshot created with -parallelism 1 against -parallelism 10
# BIN=path/to/strata skips the release build.
set -euo pipefail
cd "$(dirname "$0")/.."
: "${CEPH_CONF:?point CEPH_CONF at a cluster (eval \"\$(bash scripts/ceph-up.sh target/ceph)\")}"
if [[ -z "${BIN:-}" ]]; then cargo build --release -q; BIN="$PWD/target/release/strata"; fi
secs() { local s e; s=$(date +%s.%N); "$@" >/dev/null 2>&1 || { echo "FAILED: $*" >&2; return 1; }; e=$(date +%s.%N); echo "$e - $s" | bc; }

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
echo "  calls: $(grep 'ceph call' "$log" | grep -c 'call=rbd') rbd CLI, $(grep 'ceph call' "$log" | grep -c 'call=list images') image listing (all pools), $(grep 'ceph call' "$log" | grep -c 'call=ceph') monitor commands"

# The same 200 images read four ways, each three times; the first three
# run one process per pool, all four at once, as a refresh would.
pools=("$tag-0" "$tag-1" "$tag-2" "$tag-3")
per_pool() { for p in "${pools[@]}"; do "$@" -p "$p" --format json >/dev/null & done; wait; }
python=$(head -1 "$(command -v ceph)" | sed -n 's/^#! *\([^ ]*python[^ ]*\).*/\1/p'); python=${python:-python3}
open_each='
import sys, rados, rbd
c = rados.Rados(name="client.admin"); c.conf_read_file(None); c.conf_parse_env(); c.connect(timeout=30)
for pool in sys.argv[1:]:
    io = c.open_ioctx(pool)
    for e in rbd.RBD().list2(io):
        with rbd.Image(io, image_id=e["id"], read_only=True) as i:
            i.stat(); i.features(); i.metadata_list(); i.list_snaps()
c.shutdown()'
pools_json="[\"${pools[0]}\",\"${pools[1]}\",\"${pools[2]}\",\"${pools[3]}\"]"
for run in 1 2 3; do
  echo "reading the 200 images, run $run:" \
    "rbd ls -l x4 $(secs per_pool rbd ls -l) s;" \
    "rbd du x4 $(secs per_pool rbd du) s;" \
    "librbd open of each $(secs "$python" -c "$open_each" "${pools[@]}") s;" \
    "helper $(secs bash -c "\"$python\" providers/ceph/src/rados_helper.py images '' '' '' 30 <<< '$pools_json'") s"
done

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
