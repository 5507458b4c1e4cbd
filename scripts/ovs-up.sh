#!/usr/bin/env bash
# Installs Open vSwitch and what the OVS provider's tests need, then starts
# ovsdb-server and ovs-vswitchd (userspace datapath; this kind of machine has
# no kernel OVS module) without systemd at the default socket
# /var/run/openvswitch/db.sock, and waits until both answer.
# Idempotent: CI, the README quick start and developers all run it.
# Tests that need isolation start private instances instead (tests/common/ovs.rs).
set -euo pipefail
export DEBIAN_FRONTEND=noninteractive

need=(openvswitch-switch openvswitch-common iproute2 iputils-ping ethtool)
missing=()
for p in "${need[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ((${#missing[@]})); then
  apt-get update -qq
  apt-get install -y -qq -o DPkg::Lock::Timeout=600 "${missing[@]}" >/dev/null
fi

RUN=/var/run/openvswitch
DBDIR=/etc/openvswitch
mkdir -p "$RUN" "$DBDIR" /var/log/openvswitch
running() { [[ -f "$1" ]] && kill -0 "$(cat "$1")" 2>/dev/null && ! grep -q zombie "/proc/$(cat "$1")/status" 2>/dev/null; }

if ! running "$RUN/ovsdb-server.pid"; then
  [[ -f "$DBDIR/conf.db" ]] || ovsdb-tool create "$DBDIR/conf.db" /usr/share/openvswitch/vswitch.ovsschema
  # An older database from a previous package version is converted in place.
  if [[ "$(ovsdb-tool needs-conversion "$DBDIR/conf.db" /usr/share/openvswitch/vswitch.ovsschema)" == yes ]]; then
    ovsdb-tool convert "$DBDIR/conf.db" /usr/share/openvswitch/vswitch.ovsschema
  fi
  ovsdb-server "$DBDIR/conf.db" --remote="punix:$RUN/db.sock" \
    --remote=db:Open_vSwitch,Open_vSwitch,manager_options \
    --pidfile="$RUN/ovsdb-server.pid" \
    --log-file=/var/log/openvswitch/ovsdb-server.log -vconsole:off --detach 2>/dev/null
fi
for _ in $(seq 100); do [[ -S "$RUN/db.sock" ]] && break; sleep 0.05; done
version=$(ovs-vswitchd --version | sed -n '1s/.* //p')
ovs-vsctl --no-wait --timeout=10 -- init -- set Open_vSwitch . external_ids:system-id=strata-ci \
  ovs_version="$version" db_version="$(ovsdb-tool schema-version /usr/share/openvswitch/vswitch.ovsschema)" >/dev/null

if ! running "$RUN/ovs-vswitchd.pid"; then
  ovs-vswitchd "unix:$RUN/db.sock" --pidfile="$RUN/ovs-vswitchd.pid" \
    --log-file=/var/log/openvswitch/ovs-vswitchd.log -vconsole:off --detach 2>/dev/null
fi
# Without --no-wait this returns once vswitchd applied it (cur_cfg == next_cfg).
if ! ovs-vsctl --timeout=20 set Open_vSwitch . external_ids:strata-ready=true; then
  echo "ovs-vswitchd did not answer in 20 s" >&2
  tail -20 /var/log/openvswitch/ovs-vswitchd.log >&2 || true
  exit 1
fi
echo "Open vSwitch $(ovs-vsctl --timeout=5 get Open_vSwitch . ovs_version | tr -d '"') at unix:$RUN/db.sock"
