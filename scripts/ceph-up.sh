#!/usr/bin/env bash
# Throwaway single-node Ceph for the ceph provider's tests: 1 mon, 1 mgr and
# 1 OSD (memstore: objects live in the OSD's RAM), all on 127.0.0.1, cephx on,
# no systemd and no cephadm. Installs the Debian packages when missing.
#
# Usage: ceph-up.sh DIR      prints the `export` lines that point the CLIs
#                            (and Strata) at the cluster:
#   export CEPH_CONF=DIR/ceph.conf
#   export CEPH_KEYRING=DIR/ceph.client.admin.keyring
# Idempotent: a cluster already running in DIR is reused; a dead one (after a
# reboot, or killed) is wiped and started afresh (memstore keeps nothing).
# Env: MON_V2_PORT=3300 MON_V1_PORT=6789 MEMSTORE_BYTES=2147483648
# Stop with scripts/ceph-down.sh DIR.
set -euo pipefail
export DEBIAN_FRONTEND=noninteractive
D=$(realpath -m "${1:?usage: ceph-up.sh DIR}")
MON_V2=${MON_V2_PORT:-3300}; MON_V1=${MON_V1_PORT:-6789}

need=(ceph-mon ceph-osd ceph-mgr ceph-common)
missing=()
for p in "${need[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ((${#missing[@]})); then
  apt-get update -qq
  apt-get install -y -qq -o DPkg::Lock::Timeout=600 --no-install-recommends "${missing[@]}" >/dev/null
fi

export CEPH_CONF="$D/ceph.conf"
ADMIN_KEYRING="$D/ceph.client.admin.keyring"
exports() { echo "export CEPH_CONF=$CEPH_CONF"; echo "export CEPH_KEYRING=$ADMIN_KEYRING"; }
alive() { local s; [[ -f "$1" ]] && s=$(ps -o stat= -p "$(cat "$1")" 2>/dev/null) && [[ $s != Z* ]]; }
# Every client call is bounded: a cluster that does not answer must not hang CI.
c() { timeout 20 ceph --connect-timeout 10 "$@"; }

if [[ -e "$D/ceph.conf" ]]; then
  if alive "$D/run/mon.a.pid" && alive "$D/run/osd.0.pid" && c osd stat -f json 2>/dev/null | grep -q '"num_up_osds":1'; then
    exports; exit 0
  fi
  echo "ceph-up: $D holds a cluster that is not running; starting a new one" >&2
  FAST=1 bash "$(dirname "$0")/ceph-down.sh" "$D"
  rm -rf "$D"
fi
for port in "$MON_V2" "$MON_V1"; do   # a second mon on a busy port dies silently after forking
  if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then echo "ceph-up: port $port is busy" >&2; exit 1; fi
done

mkdir -p "$D"/{mon,osd,mgr,run,log,crash}
uuid() { cat /proc/sys/kernel/random/uuid; }
FSID=$(uuid)
cat > "$D/ceph.conf" <<CONF
[global]
fsid = $FSID
mon host = [v2:127.0.0.1:$MON_V2,v1:127.0.0.1:$MON_V1]
public addr = 127.0.0.1
cluster addr = 127.0.0.1
ms bind ipv6 = false
auth cluster required = cephx
auth service required = cephx
auth client required = cephx
auth allow insecure global id reclaim = false
osd pool default size = 1
osd pool default min size = 1
osd pool default pg num = 8
osd pool default pgp num = 8
osd pool default pg autoscale mode = off
osd crush chooseleaf type = 0
mon allow pool size one = true
mon allow pool delete = true
# Clone v2: clones of unprotected snapshots, snapshot trash for parents.
mon osd initial require min compat client = mimic
mon warn on pool no redundancy = false
mon data avail warn = 2
mon data avail crit = 1
mgr initial modules = iostat
paxos propose interval = 0.1
run dir = $D/run
pid file = $D/run/\$name.pid
crash dir = $D/crash
[client]
keyring = $ADMIN_KEYRING
rados osd op timeout = 60
rados mon op timeout = 60
client mount timeout = 30
[mon]
admin socket = $D/run/\$name.asok
log file = $D/log/\$name.log
mon cluster log file = $D/log/\$cluster.log
mon data = $D/mon/\$cluster-\$id
keyring = $D/mon/\$cluster-\$id/keyring
[mgr]
admin socket = $D/run/\$name.asok
log file = $D/log/\$name.log
mgr data = $D/mgr/\$cluster-\$id
keyring = $D/mgr/\$cluster-\$id/keyring
[osd]
admin socket = $D/run/\$name.asok
log file = $D/log/\$name.log
osd data = $D/osd/\$cluster-\$id
keyring = $D/osd/\$cluster-\$id/keyring
osd objectstore = memstore
memstore device bytes = ${MEMSTORE_BYTES:-2147483648}
CONF

# Keys: the mon's own, and client.admin's (imported into the mon's keyring so
# the mon knows it from the start). Keyrings are 0600.
umask 077
ceph-authtool --create-keyring "$D/mon.keyring" --gen-key -n mon. --cap mon 'allow *' >/dev/null
ceph-authtool --create-keyring "$ADMIN_KEYRING" --gen-key -n client.admin \
  --cap mon 'allow *' --cap osd 'allow *' --cap mds 'allow *' --cap mgr 'allow *' >/dev/null
ceph-authtool "$D/mon.keyring" --import-keyring "$ADMIN_KEYRING" >/dev/null
# The mgr's key, known to the mon from the start too (no client call needed).
mkdir -p "$D/mgr/ceph-x"
ceph-authtool --create-keyring "$D/mgr/ceph-x/keyring" --gen-key -n mgr.x \
  --cap mon 'allow profile mgr' --cap osd 'allow *' --cap mds 'allow *' >/dev/null
ceph-authtool "$D/mon.keyring" --import-keyring "$D/mgr/ceph-x/keyring" >/dev/null
umask 022

# monitor
monmaptool --create --fsid "$FSID" --addv a "[v2:127.0.0.1:$MON_V2,v1:127.0.0.1:$MON_V1]" "$D/monmap" >/dev/null
ceph-mon --mkfs -i a --monmap "$D/monmap" --keyring "$D/mon.keyring"
ceph-mon -i a                                        # forks; pid in run/mon.a.pid

# manager: PG stats (ceph -s/df), pool quota enforcement, rbd_support commands
ceph-mgr -i x

# OSD: its key is made here and registered with `osd new`, so it never
# appears in a process argument list.
OSD_UUID=$(uuid)
OSD_KEY=$(ceph-authtool --gen-print-key)
ID=$(printf '{"cephx_secret": "%s"}' "$OSD_KEY" | c osd new "$OSD_UUID" -i -)
mkdir -p "$D/osd/ceph-$ID"
(umask 077; printf '[osd.%s]\n\tkey = %s\n' "$ID" "$OSD_KEY" > "$D/osd/ceph-$ID/keyring")
unset OSD_KEY
ceph-osd -i "$ID" --mkfs --osd-uuid "$OSD_UUID" >>"$D/log/osd-mkfs.log" 2>&1
ceph-osd -i "$ID" >>"$D/log/osd-start.log" 2>&1
for i in $(seq 1 240); do                            # wait until the OSD is up
  c osd stat -f json 2>/dev/null | grep -q '"num_up_osds":1' && break
  [ "$i" = 240 ] && { echo "ceph-up: the OSD did not come up; see $D/log" >&2; exit 1; }; sleep 0.25
done
for i in $(seq 1 240); do                            # quotas and get-quota need an active mgr
  c mgr stat -f json 2>/dev/null | grep -q '"available": *true' && break
  [ "$i" = 240 ] && { echo "ceph-up: the mgr did not become active; see $D/log" >&2; exit 1; }; sleep 0.25
done
exports
