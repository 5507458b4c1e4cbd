#!/usr/bin/env bash
# The default build (kvm provider included) must not link libvirt: it opens
# libvirt.so.0 when a kvm provider is configured (vendor/virt-sys), so every
# other command skips mapping libvirt's ~57 shared libraries at start. Checks
# that the binary has no libvirt among its NEEDED libraries, and, in a mount
# namespace where libvirt.so.0 cannot be loaded, that a configuration without
# kvm still plans while one with kvm fails with a provider error that says
# what the dynamic loader said (instead of the process not starting at all).
# That kvm works when libvirt is there is what the kvm suites prove.
set -euo pipefail
cd "$(dirname "$0")/.."

cargo build --locked --bin strata
strata="$PWD/target/debug/strata"
if readelf -d "$strata" | grep NEEDED | grep -i libvirt || ldd "$strata" | grep -i libvirt; then
    echo "FAIL: the default build links libvirt" >&2
    exit 1
fi

# awk reads to the end: exiting at the first match would kill ldconfig with
# SIGPIPE, which pipefail turns into this script's exit status (141).
libvirt=$(ldconfig -p | awk '$1 == "libvirt.so.0" && !found { print $NF; found = 1 }')
if [ -z "$libvirt" ]; then
    echo "FAIL: this check needs libvirt installed (bash scripts/libvirt-up.sh)" >&2
    exit 1
fi
libvirt=$(readlink -f "$libvirt")

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
mkdir "$work/plain" "$work/kvm"
cat > "$work/plain/main.strata.hcl" <<'HCL'
resource "strata_data" "note" {
  input = "no libvirt loaded"
}
HCL
cat > "$work/kvm/main.strata.hcl" <<'HCL'
resource "kvm_network" "lan" {
  name = "strata-lazy-libvirt"
  mode = "isolated"
}
HCL
# /dev/null over the real file: dlopen finds it and refuses it ("file too short").
unshare --mount sh -c '
    set -e
    mount --bind /dev/null "$1"
    cd "$2/plain" && "$3" plan -no-color > "$2/plain.txt"
    cd "$2/kvm"
    "$3" plan -no-color > "$2/kvm.txt" 2>&1 && echo 0 > "$2/kvm.code" || echo $? > "$2/kvm.code"
' sh "$libvirt" "$work" "$strata"
grep -q "strata_data.note will be created" "$work/plain.txt"
cat "$work/kvm.txt"
if [ "$(cat "$work/kvm.code")" != 1 ] || ! grep -q "configuring provider kvm: libvirt is not available: cannot load libvirt.so.0: .*file too short" "$work/kvm.txt"; then
    echo "FAIL: a kvm configuration without a loadable libvirt must fail with the loader's message (exit $(cat "$work/kvm.code"))" >&2
    exit 1
fi
echo "ok: the default build does not link libvirt, runs without it, and names why kvm cannot load it"
