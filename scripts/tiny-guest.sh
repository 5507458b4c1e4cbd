#!/usr/bin/env bash
# Builds the tiny bootable guest the KVM tests use, from Debian packages only:
# the distribution kernel and a busybox initramfs whose init prints markers on
# the serial console, loads virtio modules, reads its disks, takes a DHCP
# lease (or takes the static address `strata.ip=ADDR/PREFIX` on its kernel
# command line) and powers off on an ACPI power-button press.
# Usage: scripts/tiny-guest.sh [OUT_DIR]   (default: /var/cache/strata/tiny-guest)
# Prints the directory holding vmlinuz and initrd.img. Cached between runs.
# The default lies outside any checkout because QEMU runs as libvirt-qemu and
# must be able to reach the files (a checkout may sit in a private directory).
set -euo pipefail
out="$(realpath -m "${1:-/var/cache/strata/tiny-guest}")"
# Bumped whenever the guest's init changes, so a cached older guest is rebuilt.
version=2
if [[ -s "$out/vmlinuz" && -s "$out/initrd.img" && "$(cat "$out/version" 2>/dev/null)" == "$version" ]]; then echo "$out"; exit 0; fi
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
cd "$work"
kernel_pkg="$(apt-cache depends linux-image-amd64 2>/dev/null | awk '/Depends: linux-image-/ && !found {print $2; found = 1}' || true)"
if [[ -z "$kernel_pkg" ]]; then
  apt-get update -qq
  kernel_pkg="$(apt-cache depends linux-image-amd64 | awk '/Depends: linux-image-/ && !found {print $2; found = 1}')"
fi
apt-get download -qq busybox-static "$kernel_pkg" >/dev/null 2>&1
mkdir x && for d in *.deb; do dpkg-deb -x "$d" x; done
mkdir -p root/bin root/lib/modules root/dev root/proc root/sys root/mnt
cp x/bin/busybox root/bin/busybox
for m in button evdev virtio_ring virtio virtio_pci_modern_dev virtio_pci_legacy_dev virtio_pci failover \
         net_failover virtio_net virtio_blk virtio_balloon cdrom isofs; do
  f="$(find x/lib/modules -name "$m.ko*" -print -quit)"
  [[ -n "$f" ]] && cp "$f" root/lib/modules/
done
cat > root/init <<'INIT'
#!/bin/busybox sh
/bin/busybox --install -s /bin
mount -t proc proc /proc; mount -t sysfs sys /sys; mount -t devtmpfs dev /dev
echo GUEST-UP
for m in button evdev virtio_ring virtio virtio_pci_modern_dev virtio_pci_legacy_dev virtio_pci failover net_failover virtio_net virtio_blk virtio_balloon cdrom isofs; do
  for f in /lib/modules/$m.ko*; do [ -e "$f" ] && insmod "$f" 2>/dev/null; done
done
# ACPI power button -> poweroff, so a graceful shutdown works.
for ev in /sys/class/input/event*; do
  if [ "$(cat $ev/device/name 2>/dev/null)" = "Power Button" ]; then
    ( dd if=/dev/input/$(basename $ev) bs=24 count=1 >/dev/null 2>&1; echo GUEST-POWEROFF; poweroff -f ) &
  fi
done
for d in /dev/vd?; do [ -b "$d" ] && echo "GUEST-DISK $(basename $d) $(cat /sys/block/$(basename $d)/size)"; done
mkdir -p /seed
for d in /dev/vd? /dev/sr?; do
  [ -b "$d" ] && mount -t iso9660 -o ro "$d" /seed 2>/dev/null && { echo "GUEST-SEED $(head -c 200 /seed/meta-data | tr '\n' ' ')"; umount /seed; }
done
cat > /bin/dhcp-script <<'S'
#!/bin/sh
[ "$1" = bound ] && ip addr add $ip/${mask:-24} dev $interface && echo "GUEST-LEASE $ip"
exit 0
S
chmod +x /bin/dhcp-script
ip link set eth0 up 2>/dev/null
static="$(sed -n 's/.*strata\.ip=\([^ ]*\).*/\1/p' /proc/cmdline)"
if [ -n "$static" ]; then
  ip addr add "$static" dev eth0 && echo "GUEST-STATIC $static"
else
  udhcpc -i eth0 -n -q -t 20 -T 1 -s /bin/dhcp-script 2>/dev/null
fi
echo GUEST-READY
while true; do sleep 3600; done
INIT
chmod +x root/init
(cd root && find . | ../root/bin/busybox cpio -o -H newc 2>/dev/null | gzip -1 > ../initrd.img)
mkdir -p "$out"
chmod 755 "$out" "$(dirname "$out")"
# Renamed into place: a guest booting from the old files meanwhile is unharmed.
cp x/boot/vmlinuz-* "$out/.vmlinuz.new"
cp initrd.img "$out/.initrd.img.new"
chmod 644 "$out/.vmlinuz.new" "$out/.initrd.img.new"
mv -f "$out/.vmlinuz.new" "$out/vmlinuz"
mv -f "$out/.initrd.img.new" "$out/initrd.img"
echo "$version" > "$out/version"
echo "$out"
