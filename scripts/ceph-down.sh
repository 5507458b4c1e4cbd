#!/usr/bin/env bash
# Stops the cluster scripts/ceph-up.sh started in DIR, by the daemons' pid
# files: the OSD first (on SIGTERM it tells the mon it is going down and waits
# for it), then the mgr and the mon together. Idempotent; DIR is kept
# (remove it with rm -rf). FAST=1 sends SIGKILL to everything at once.
set -euo pipefail
D=${1:?usage: ceph-down.sh DIR}; SIG=TERM; [ "${FAST:-0}" = 1 ] && SIG=KILL
alive() { local s; s=$(ps -o stat= -p "$1" 2>/dev/null) && [[ $s != Z* ]]; }  # a zombie has exited
stop() {  # stops the daemons whose pid files are given, in parallel
  local pids=() f p i
  for f in "$@"; do
    [ -f "$f" ] || continue; p=$(cat "$f")
    # Only a daemon of this cluster: its command line names a ceph daemon.
    grep -qa 'ceph-' "/proc/$p/cmdline" 2>/dev/null || continue
    kill -"$SIG" "$p" 2>/dev/null && pids+=("$p")
  done
  for p in "${pids[@]}"; do
    for i in $(seq 1 100); do alive "$p" || break; sleep 0.05; done
    if alive "$p"; then echo "ceph-down: pid $p still alive after 5 s, SIGKILL" >&2; kill -KILL "$p" 2>/dev/null || true; fi
  done
  return 0
}
shopt -s nullglob
stop "$D"/run/osd.*.pid
stop "$D"/run/mgr.*.pid "$D"/run/mon.*.pid
