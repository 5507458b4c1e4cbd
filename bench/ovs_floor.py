#!/usr/bin/env python3
"""The floor under any OVS client: N internal ports (tag i) made on an
existing bridge by one raw OVSDB transaction, then one `wait` until
ovs-vswitchd's cur_cfg has caught up, on one connection (no process start,
no monitor, nothing read first). Prints the seconds of each part.

    python3 bench/ovs_floor.py SOCKET BRIDGE N one|many

`one`: a single mutate adds all ports to Bridge.ports; `many`: one mutate
per port (the shape of Strata's batch). The caller creates and deletes the
bridge (see bench/ovs.sh)."""
import json
import socket
import sys
import time

path, bridge, n, shape = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4]
ops = []
for i in range(1, n + 1):
    name = f"fp{i}"
    ops.append({"op": "insert", "table": "Interface", "row": {"name": name, "type": "internal"}, "uuid-name": f"i{i}"})
    ops.append({"op": "insert", "table": "Port", "row": {"name": name, "interfaces": ["named-uuid", f"i{i}"], "tag": i}, "uuid-name": f"p{i}"})
ports = [["named-uuid", f"p{i}"] for i in range(1, n + 1)]
at_bridge = [["name", "==", bridge]]
if shape == "one":
    ops.append({"op": "mutate", "table": "Bridge", "where": at_bridge, "mutations": [["ports", "insert", ["set", ports]]]})
else:
    ops += [{"op": "mutate", "table": "Bridge", "where": at_bridge, "mutations": [["ports", "insert", p]]} for p in ports]
ops.append({"op": "mutate", "table": "Open_vSwitch", "where": [], "mutations": [["next_cfg", "+=", 1]]})
ops.append({"op": "select", "table": "Open_vSwitch", "where": [], "columns": ["next_cfg"]})

conn = socket.socket(socket.AF_UNIX)
conn.connect(path)
decoder, pending = json.JSONDecoder(), ""


def call(params, id):
    global pending
    conn.sendall(json.dumps({"method": "transact", "params": ["Open_vSwitch"] + params, "id": id}).encode())
    while True:
        try:
            reply, end = decoder.raw_decode(pending)
            pending = pending[end:].lstrip()
            if reply.get("id") == id:
                return reply["result"]
        except ValueError:
            pending += conn.recv(1 << 20).decode()


started = time.perf_counter()
next_cfg = call(ops, 1)[-1]["rows"][0]["next_cfg"]
committed = time.perf_counter()
# Holds until no row has cur_cfg below next_cfg (as Strata's wait does).
wait = {"op": "wait", "table": "Open_vSwitch", "where": [["cur_cfg", "<", next_cfg]], "columns": ["cur_cfg"],
        "until": "==", "rows": [], "timeout": 20000}
read = {"op": "select", "table": "Interface", "where": [], "columns": ["name", "ofport", "error"]}
rows = call([wait, read], 2)[1]["rows"]
realized = time.perf_counter()
failed = [r["name"] for r in rows if r["error"] != ["set", []]]
print(f"{shape} n={n}: transaction {committed - started:.4f} s, realisation {realized - committed:.4f} s, "
      f"total {realized - started:.4f} s, interfaces with an error: {len(failed)}")
sys.exit(1 if failed else 0)
