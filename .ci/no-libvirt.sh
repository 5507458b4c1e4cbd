#!/usr/bin/env bash
# A Strata built without the kvm provider (`--no-default-features --features
# ovs,ceph`, as `cargo install` without libvirt's development files would be)
# must not depend on the virt crate, must not link libvirt, must format,
# validate and plan configurations that do not use kvm, and must refuse one
# that does with a clear message. Runs the binary from a copy, so the default
# build in target/debug is what the test suite uses afterwards.
set -euo pipefail
cd "$(dirname "$0")/.."

features=(--no-default-features --features ovs,ceph)
if cargo tree --locked -p strata "${features[@]}" -e normal,build --prefix none | grep -E '^virt(-sys)? '; then
    echo "FAIL: the build without kvm still depends on the virt crate" >&2
    exit 1
fi
cargo build --locked --bin strata "${features[@]}"
bin_dir=target/no-libvirt
mkdir -p "$bin_dir"
cp target/debug/strata "$bin_dir/strata"
strata="$PWD/$bin_dir/strata"
if ldd "$strata" | grep -i libvirt; then
    echo "FAIL: the binary built without kvm links libvirt" >&2
    exit 1
fi

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
mkdir "$work/ovs" "$work/kvm"
cat > "$work/ovs/main.strata.hcl" <<'HCL'
resource "ovs_bridge" "lab" {
  name          = "strata-nolibvirt"
  datapath_type = "netdev"
}
HCL
cat > "$work/ovs/data.strata.hcl" <<'HCL'
resource "strata_data" "note" {
  input = "no libvirt needed"
}
HCL
cat > "$work/kvm/main.strata.hcl" <<'HCL'
resource "kvm_network" "lan" {
  name = "lan"
}
HCL
(cd "$work/ovs" && "$strata" fmt -check && "$strata" validate)
# plan needs only the providers a configuration uses: this one, only strata_data.
mkdir "$work/plain" && cp "$work/ovs/data.strata.hcl" "$work/plain/"
(cd "$work/plain" && "$strata" plan -no-color | tee "$work/plan.txt")
grep -q "strata_data.note will be created" "$work/plan.txt"
(cd "$work/kvm" && "$strata" fmt -check)
set +e
(cd "$work/kvm" && "$strata" validate -no-color) > "$work/kvm.txt" 2>&1
code=$?
set -e
cat "$work/kvm.txt"
if [ "$code" -ne 1 ] || ! grep -q "this strata was built without the kvm provider" "$work/kvm.txt"; then
    echo "FAIL: a kvm configuration must be refused with a clear message (exit $code)" >&2
    exit 1
fi
echo "ok: built without kvm, not linked to libvirt, and kvm configurations are refused clearly"
