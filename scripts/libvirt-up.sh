#!/usr/bin/env bash
# Installs libvirt, QEMU and what the KVM provider's tests need, then starts
# virtlogd and libvirtd without systemd and waits until the API answers.
# Idempotent: CI, the README quick start and developers all run it.
# Prints STRATA_KVM_DOMAIN_TYPE=qemu|kvm: the domain type guests boot with.
set -euo pipefail
export DEBIAN_FRONTEND=noninteractive

need=(libvirt-daemon-system libvirt-clients libvirt-dev pkg-config qemu-system-x86
      dnsmasq-base iptables genisoimage ovmf)
missing=()
for p in "${need[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ((${#missing[@]})); then
  apt-get update -qq
  # qemu-utils comes from backports on this image; the system emulator wants
  # bookworm's block modules, so allow the downgrade to matching versions.
  apt-get install -y -qq -o DPkg::Lock::Timeout=600 --allow-downgrades \
    "${missing[@]}" qemu-utils/bookworm qemu-block-extra/bookworm >/dev/null
fi

# QEMU runs as libvirt-qemu (group kvm); /dev/kvm is root-only on this machine kind.
if [[ -c /dev/kvm ]]; then chgrp kvm /dev/kvm && chmod 660 /dev/kvm; fi
# Never bring up libvirt's default NAT network (192.168.122.0/24).
rm -f /etc/libvirt/qemu/networks/autostart/default.xml

running() { [[ -f "$1" ]] && kill -0 "$(cat "$1")" 2>/dev/null; }
running /run/virtlogd.pid || virtlogd -d
running /run/libvirtd.pid || libvirtd -d

# The socket appears at once; the API answers after QEMU capability probing.
for _ in $(seq 600); do
  virsh -c qemu:///system version >/dev/null 2>&1 && break
  sleep 0.1
done
if ! virsh -c qemu:///system version >/dev/null 2>&1; then
  echo "libvirtd did not answer in 60 s" >&2
  tail -20 /var/log/libvirt/libvirtd.log >&2 || true
  exit 1
fi

# Real guests boot only under TCG where KVM is the paravirtual kvm_pvm.
if [[ -d /sys/module/kvm_pvm || ! -c /dev/kvm ]]; then
  echo "STRATA_KVM_DOMAIN_TYPE=qemu"
else
  echo "STRATA_KVM_DOMAIN_TYPE=kvm"
fi
