#!/usr/bin/env bash
# OVS provider figures for BENCHMARKS.md, against a private ovsdb-server and
# ovs-vswitchd (userspace datapath) this script starts in its own run
# directory and network namespace (install with scripts/ovs-up.sh):
#   - 100 internal ports created on one bridge by one `strata apply`, against
#     the same ports made with one `ovs-vsctl add-port` call each, and with
#     one `ovs-vsctl` call that adds all 100 in one transaction, and with one
#     raw OVSDB transaction and wait (bench/ovs_floor.py: the floor)
#   - a no-op plan over 505 rows (5 bridges of 100 ports), refresh included
set -euo pipefail
cd "$(dirname "$0")/.."
# BIN=target/debug/strata skips the release build (figures are then upper bounds).
if [ -z "${BIN:-}" ]; then cargo build --release -q; fi
bin="$(realpath "${BIN:-target/release/strata}")"
# Seconds COMMAND took; a failing command fails the run with its output
# (use as an assignment, `t=$(secs ..)`, so that set -e sees the failure).
secs() {
  local s e out; out="$(mktemp)"; s=$(date +%s.%N)
  if ! "$@" >"$out" 2>&1; then echo "failed: $*" >&2; tail -20 "$out" >&2; rm -f "$out"; return 1; fi
  e=$(date +%s.%N); rm -f "$out"; echo "$e - $s" | bc
}

run="$(mktemp -d)"; ns="strata-bench-$$"
export OVS_RUNDIR="$run" OVS_LOGDIR="$run" OVS_DBDIR="$run" OVS_SYSCONFDIR="$run"
stop() {
  ovs-appctl -t "$run/ovs-vswitchd.ctl" exit --cleanup 2>/dev/null || true
  ovs-appctl -t "$run/ovsdb-server.ctl" exit 2>/dev/null || true
  ip netns del "$ns" 2>/dev/null || true
  rm -rf "$run" "${work:-}"
}
if [ -z "${KEEP:-}" ]; then trap stop EXIT INT TERM; else echo "keeping run=$run"; fi
ip netns add "$ns"
ovsdb-tool create "$run/conf.db" /usr/share/openvswitch/vswitch.ovsschema
ovsdb-server "$run/conf.db" --remote="punix:$run/db.sock" --unixctl="$run/ovsdb-server.ctl" \
  --log-file="$run/ovsdb-server.log" -vconsole:off --detach --pidfile="$run/ovsdb-server.pid" 2>/dev/null
ovs-vsctl --no-wait init
ip netns exec "$ns" ovs-vswitchd "unix:$run/db.sock" --unixctl="$run/ovs-vswitchd.ctl" \
  --log-file="$run/ovs-vswitchd.log" -vconsole:off --detach --pidfile="$run/ovs-vswitchd.pid" 2>/dev/null
ovs-vsctl --timeout=20 set Open_vSwitch . external_ids:ready=true

work="$(mktemp -d)"; echo "work=$work"
config() { # BRIDGES PORTS
  cat > "$work/main.strata.hcl" <<HCL
provider "ovs" {
  db = "unix:$run/db.sock"
}
resource "ovs_bridge" "b" {
  count = $1
  name  = "bb\${count.index}"
}
resource "ovs_port" "p" {
  count  = $1 * $2
  bridge = ovs_bridge.b[floor(count.index / $2)].name
  name   = "bp\${count.index}"
  tag    = count.index % 4000 + 1
}
HCL
}

# ovs-vsctl: one call per port, each waiting for vswitchd (as scripts do).
if [ -z "${SKIP_VSCTL:-}" ]; then
ovs-vsctl add-br vb -- set bridge vb datapath_type=netdev
s=$(date +%s.%N)
for i in $(seq 100); do ovs-vsctl add-port vb "vp$i" tag="$i" -- set interface "vp$i" type=internal; done
e=$(date +%s.%N); vsctl=$(echo "$e - $s" | bc)
ovs-vsctl del-br vb
echo "100 ports, ovs-vsctl loop: $vsctl s"
# The ceiling for any client: the same 100 ports in one ovs-vsctl call (one
# transaction, one vswitchd reconfiguration, one wait).
ovs-vsctl add-br vb -- set bridge vb datapath_type=netdev
args=(); for i in $(seq 100); do args+=(-- add-port vb "vp$i" tag="$i" -- set interface "vp$i" type=internal); done
one=$(secs ovs-vsctl "${args[@]}")
ovs-vsctl del-br vb
echo "100 ports, one ovs-vsctl transaction: $one s (the loop / this = $(echo "scale=1; $vsctl / $one" | bc)x, the most any client can reach)"
# The floor under that: the same ports by one raw transaction and one wait
# for vswitchd on one connection (no process start, no monitor, no read).
ovs-vsctl add-br vb -- set bridge vb datapath_type=netdev
python3 bench/ovs_floor.py "$run/db.sock" vb 100 many
ovs-vsctl del-br vb
else vsctl=1; fi

config 1 100
"$bin" --chdir "$work" apply -auto-approve -target 'ovs_bridge.b' >/dev/null
strata=$(secs /usr/bin/time -f '%U %S' -o "$work/cpu" "$bin" --chdir "$work" apply -auto-approve)
test "$(ovs-vsctl list-ports bb0 | wc -l)" = 100
echo "100 ports, one strata apply: $strata s ($(echo "scale=1; $vsctl / $strata" | bc)x faster; user+sys $(awk '{print $1 + $2}' "$work/cpu") s)"

# 400 more ports on 4 more bridges (the first 100 stay).
config 5 100
more=$(secs "$bin" --chdir "$work" apply -auto-approve)
echo "400 more ports on 4 new bridges, one strata apply: $more s"
test "$(ovs-vsctl --columns=_uuid list Port | grep -c _uuid)" = 505
# -detailed-exitcode: 0 only when the plan has no changes (2 would mean drift).
for run_no in 1 2 3; do
  t=$(secs "$bin" --chdir "$work" plan -detailed-exitcode)
  echo "505 rows, no-op plan (refresh included), run $run_no: $t s"
done
# The private instance goes with its netns (trap): no destroy of 505 rows here.
