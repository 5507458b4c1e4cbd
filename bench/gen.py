#!/usr/bin/env python3
"""Generate a strata benchmark config.

usage: gen.py DIR N SHAPE    (SHAPE = flat | layered)

Writes DIR/main.strata.hcl with N strata_data instances in 10 resource
blocks of count = N/10 each.
  flat:    10 independent blocks, input = "value-${count.index}"
  layered: 10 layers; layer k>0 instance i depends on layer k-1 instance i
"""
import os
import sys


def main() -> int:
    if len(sys.argv) != 4 or sys.argv[3] not in ("flat", "layered"):
        print(__doc__, file=sys.stderr)
        return 2
    out_dir, n, shape = sys.argv[1], int(sys.argv[2]), sys.argv[3]
    if n % 10:
        print("N must be a multiple of 10", file=sys.stderr)
        return 2
    per = n // 10
    blocks = []
    for k in range(10):
        if shape == "flat":
            blocks.append(
                f'resource "strata_data" "flat_{k}" {{\n'
                f"  count = {per}\n"
                f'  input = "value-${{count.index}}"\n'
                f"}}\n"
            )
        elif k == 0:
            blocks.append(
                f'resource "strata_data" "l0" {{\n'
                f"  count = {per}\n"
                f'  input = "v-${{count.index}}"\n'
                f"}}\n"
            )
        else:
            blocks.append(
                f'resource "strata_data" "l{k}" {{\n'
                f"  count = {per}\n"
                f"  input = strata_data.l{k - 1}[count.index].input\n"
                f"}}\n"
            )
    os.makedirs(out_dir, exist_ok=True)
    with open(os.path.join(out_dir, "main.strata.hcl"), "w") as f:
        f.write("\n".join(blocks))
    return 0


if __name__ == "__main__":
    sys.exit(main())
