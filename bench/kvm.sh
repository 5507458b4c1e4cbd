#!/usr/bin/env bash
# KVM provider figures for BENCHMARKS.md, against the local libvirtd
# (start it with scripts/libvirt-up.sh):
#   - time to apply examples/lab (network, pool, volumes, seeds, 2 booting guests)
#   - no-op plan of 50 domains, refresh included
#   - 10 domains created with -parallelism 10 against -parallelism 1
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release -q
bin="$PWD/target/release/strata"
guest="$(bash scripts/tiny-guest.sh)"
secs() { local s e; s=$(date +%s.%N); "$@" >/dev/null 2>&1; e=$(date +%s.%N); echo "$e - $s" | bc; }

lab="$(mktemp -d)"; cp examples/lab/main.strata.hcl "$lab/"
echo "lab apply: $(secs "$bin" --chdir "$lab" apply -auto-approve -var "guest_dir=$guest") s"
echo "lab no-op plan: $(secs "$bin" --chdir "$lab" plan -var "guest_dir=$guest") s"
"$bin" --chdir "$lab" destroy -auto-approve -var "guest_dir=$guest" >/dev/null 2>&1

domains() { # N RUNNING
  local dir; dir="$(mktemp -d)"
  cat > "$dir/main.strata.hcl" <<HCL
resource "kvm_domain" "d" {
  count   = $1
  name    = "strata-bench-\${count.index}"
  type    = "qemu"
  memory  = 64
  running = $2
}
HCL
  echo "$dir"
}

d50="$(domains 50 false)"
echo "50 domains, first apply (defined, not started): $(secs "$bin" --chdir "$d50" apply -auto-approve) s"
echo "50 domains, no-op plan (refresh included): $(secs "$bin" --chdir "$d50" plan) s"
"$bin" --chdir "$d50" destroy -auto-approve >/dev/null 2>&1

d10="$(domains 10 true)"
echo "10 running domains, -parallelism 1: $(secs "$bin" --chdir "$d10" apply -auto-approve -parallelism 1) s"
"$bin" --chdir "$d10" destroy -auto-approve >/dev/null 2>&1
echo "10 running domains, -parallelism 10: $(secs "$bin" --chdir "$d10" apply -auto-approve -parallelism 10) s"
"$bin" --chdir "$d10" destroy -auto-approve >/dev/null 2>&1
rm -rf "$lab" "$d50" "$d10"
