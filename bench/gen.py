#!/usr/bin/env python3
"""Generate a benchmark configuration.

usage: gen.py DIR N SHAPE [--terraform] [--change]

SHAPE is one of
  flat       10 independent blocks of count = N/10, input = "value-${count.index}"
  layered    10 layers of count = N/10; layer k>0 instance i depends on
             layer k-1 instance i
  realistic  N instances the way people write them: 80 % distinct resource
             blocks each referring to 1-3 earlier blocks (through their `id`,
             attributes of an object and a local), 10 % from one for_each over
             a map of objects in a local, 10 % from a module of N/100
             distinct blocks called 10 times with inputs taken from the root

--terraform writes main.tf with `terraform_data` (and modules/unit/main.tf)
instead of main.strata.hcl with `strata_data`, for side-by-side runs.
--change alters the input of one root block in the middle, so a plan after
an apply of the unchanged configuration has exactly one in-place update.
"""
import os
import sys


def count_shape(n: int, shape: str, rtype: str) -> str:
    per = n // 10
    blocks = []
    for k in range(10):
        if shape == "flat":
            blocks.append(
                f'resource "{rtype}" "flat_{k}" {{\n'
                f"  count = {per}\n"
                f'  input = "value-${{count.index}}"\n'
                f"}}\n"
            )
        elif k == 0:
            blocks.append(
                f'resource "{rtype}" "l0" {{\n'
                f"  count = {per}\n"
                f'  input = "v-${{count.index}}"\n'
                f"}}\n"
            )
        else:
            blocks.append(
                f'resource "{rtype}" "l{k}" {{\n'
                f"  count = {per}\n"
                f"  input = {rtype}.l{k - 1}[count.index].input\n"
                f"}}\n"
            )
    return "\n".join(blocks)


def earlier(i: int) -> list[int]:
    """The 1-3 earlier blocks block i refers to: spread over all earlier
    blocks by a fixed hash, so the graph is as wide as real configurations
    are (depth about ln N) instead of one chain through every block."""
    if i == 0:
        return []
    mix = lambda salt: (((i + salt * 7919) * 2654435761) % 2**32 >> 8) % i
    picks = {mix(1)}
    if i % 3 >= 1:
        picks.add(mix(2))
    if i % 3 == 2:
        picks.add(mix(3))
    return sorted(picks)


def block(rtype: str, name: str, i: int, refs: list[str], extra: str = "") -> str:
    deps = ", ".join(f"{rtype}.{r}.id" for r in refs)
    tier = ("web", "app", "db")[i % 3]
    return (
        f'resource "{rtype}" "{name}" {{\n'
        f"  input = {{\n"
        f'    name = "${{local.prefix}}-{name}"\n'
        f"    tier = local.tiers.{tier}.label\n"
        f"    size = {i % 97 + 1}{extra}\n"
        f"    deps = [{deps}]\n"
        f"  }}\n"
        f"}}\n"
    )


def realistic(n: int, rtype: str, change: bool) -> tuple[str, str]:
    if n % 100:
        raise SystemExit("N must be a multiple of 100 for the realistic shape")
    in_module = n // 100  # distinct blocks in the module, called 10 times
    each = n // 10  # instances of the for_each block
    root_blocks = n - 10 * in_module - each
    changed = root_blocks // 2
    width = len(f"svc{each - 1}")  # fmt aligns the `=` of a group

    root = [
        "locals {\n"
        '  prefix = "bench"\n'
        "  tiers = {\n"
        '    web = { label = "web", port = 443 }\n'
        '    app = { label = "app", port = 8080 }\n'
        '    db  = { label = "db", port = 5432 }\n'
        "  }\n"
        "  services = {\n"
        + "".join(
            f'    {f"svc{k}".ljust(width)} = {{ tier = "{("web", "app", "db")[k % 3]}", replicas = {k % 5 + 1} }}\n'
            for k in range(each)
        )
        + "  }\n"
        "}\n"
    ]
    for i in range(root_blocks):
        extra = " + 1" if change and i == changed else ""
        root.append(block(rtype, f"r{i}", i, [f"r{j}" for j in earlier(i)], extra))
    root.append(
        f'resource "{rtype}" "svc" {{\n'
        f"  for_each = local.services\n"
        f"  input = {{\n"
        f'    name     = "${{local.prefix}}-${{each.key}}"\n'
        f"    port     = local.tiers[each.value.tier].port\n"
        f"    replicas = each.value.replicas\n"
        f"    after    = {rtype}.r0.id\n"
        f"  }}\n"
        f"}}\n"
    )
    for m in range(10):
        src = root_blocks - 1 - m
        root.append(
            f'module "unit{m}" {{\n'
            f'  source   = "./modules/unit"\n'
            f'  name     = "unit{m}"\n'
            f"  upstream = {rtype}.r{src}.id\n"
            f"}}\n"
        )
    root.append('output "units" {\n  value = [' + ", ".join(f"module.unit{m}.last" for m in range(10)) + "]\n}\n")

    module = [
        'variable "name" {\n  type = string\n}\n',
        'variable "upstream" {\n  type = string\n}\n',
        "locals {\n"
        '  prefix = var.name\n'
        "  tiers = {\n"
        '    web = { label = "web" }\n'
        '    app = { label = "app" }\n'
        '    db  = { label = "db" }\n'
        "  }\n"
        "}\n",
    ]
    for i in range(in_module):
        b = block(rtype, f"m{i}", i, [f"m{j}" for j in earlier(i)])
        if i == 0:
            b = b.replace("    deps = []\n", "    deps = [var.upstream]\n")
        module.append(b)
    module.append(f'output "last" {{\n  value = {rtype}.m{in_module - 1}.id\n}}\n')
    return "\n".join(root), "\n".join(module)


def main() -> int:
    args = [a for a in sys.argv[1:] if not a.startswith("--")]
    flags = {a for a in sys.argv[1:] if a.startswith("--")}
    if len(args) != 3 or args[2] not in ("flat", "layered", "realistic") or flags - {"--terraform", "--change"}:
        print(__doc__, file=sys.stderr)
        return 2
    out_dir, n, shape = args[0], int(args[1]), args[2]
    terraform = "--terraform" in flags
    rtype = "terraform_data" if terraform else "strata_data"
    ext = "tf" if terraform else "strata.hcl"
    if n % 10:
        print("N must be a multiple of 10", file=sys.stderr)
        return 2
    os.makedirs(out_dir, exist_ok=True)
    if shape == "realistic":
        root, module = realistic(n, rtype, "--change" in flags)
        os.makedirs(os.path.join(out_dir, "modules", "unit"), exist_ok=True)
        with open(os.path.join(out_dir, "modules", "unit", f"main.{ext}"), "w") as f:
            f.write(module)
    else:
        root = count_shape(n, shape, rtype)
    with open(os.path.join(out_dir, f"main.{ext}"), "w") as f:
        f.write(root)
    return 0


if __name__ == "__main__":
    sys.exit(main())
