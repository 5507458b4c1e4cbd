#!/usr/bin/env python3
"""Generate a benchmark configuration.

usage: gen.py DIR N SHAPE [--terraform [--state]] [--change]

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
--state (realistic shape, with --terraform) also writes terraform.tfstate as
Terraform's first apply of the unchanged configuration would leave it, so
Terraform's plans can be timed at sizes whose apply takes Terraform hours
(check it with `terraform plan -detailed-exitcode`: exit 0, no changes).
"""
import json
import os
import sys
import uuid


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


def tf_type(value):
    """The cty type JSON of a value as Terraform writes it for `dynamic`."""
    if isinstance(value, str):
        return "string"
    if isinstance(value, (int, float)):
        return "number"
    if isinstance(value, list):
        return ["tuple", [tf_type(v) for v in value]]
    return ["object", {k: tf_type(v) for k, v in value.items()}]


def terraform_state(n: int) -> dict:
    """terraform.tfstate of the realistic shape, unchanged, after its apply:
    every terraform_data with its id, input and output (= input), the
    for_each instances by key, the module's blocks per call, and the output."""
    in_module = n // 100
    each = n // 10
    root_blocks = n - 10 * in_module - each
    rng = uuid.UUID(int=0x5712A7A)
    counter = [0]

    def new_id() -> str:
        counter[0] += 1
        return str(uuid.uuid5(rng, str(counter[0])))

    provider = 'provider["terraform.io/builtin/terraform"]'
    tiers = ("web", "app", "db")
    ports = {"web": 443, "app": 8080, "db": 5432}
    resources = []

    def data(name, instances, module=None):
        r = {"mode": "managed", "type": "terraform_data", "name": name, "provider": provider, "instances": instances}
        if module:
            r = {"module": module, **r}
        resources.append(r)

    def instance(value, deps, key=None):
        inst = {"schema_version": 0}
        if key is not None:
            inst["index_key"] = key
        typed = {"value": value, "type": tf_type(value)}
        inst["attributes"] = {"id": new_id(), "input": typed, "output": typed, "triggers_replace": None}
        inst["sensitive_attributes"] = []
        if deps:
            inst["dependencies"] = sorted(deps)
        return inst

    root_ids = []
    for i in range(root_blocks):
        refs = earlier(i)
        value = {"deps": [root_ids[j] for j in refs], "name": f"bench-r{i}", "size": i % 97 + 1, "tier": tiers[i % 3]}
        inst = instance(value, [f"terraform_data.r{j}" for j in refs])
        root_ids.append(inst["attributes"]["id"])
        data(f"r{i}", [inst])
    svc = []
    for k in range(each):
        tier = tiers[k % 3]
        value = {"after": root_ids[0], "name": f"bench-svc{k}", "port": ports[tier], "replicas": k % 5 + 1}
        svc.append(instance(value, ["terraform_data.r0"], key=f"svc{k}"))
    data("svc", sorted(svc, key=lambda x: x["index_key"]))
    last = []
    for m in range(10):
        upstream = root_ids[root_blocks - 1 - m]
        ids = []
        for i in range(in_module):
            refs = earlier(i)
            deps = [ids[j] for j in refs] if i else [upstream]
            value = {"deps": deps, "name": f"unit{m}-m{i}", "size": i % 97 + 1, "tier": tiers[i % 3]}
            inst = instance(value, [f"module.unit{m}.terraform_data.m{j}" for j in refs] or [f"terraform_data.r{root_blocks - 1 - m}"])
            ids.append(inst["attributes"]["id"])
            data(f"m{i}", [inst], module=f"module.unit{m}")
        last.append(ids[-1])
    return {
        "version": 4,
        "terraform_version": "1.11.4",
        "serial": 1,
        "lineage": str(uuid.uuid4()),
        "outputs": {"units": {"value": last, "type": tf_type(last)}},
        "resources": resources,
        "check_results": None,
    }


def main() -> int:
    args = [a for a in sys.argv[1:] if not a.startswith("--")]
    flags = {a for a in sys.argv[1:] if a.startswith("--")}
    if len(args) != 3 or args[2] not in ("flat", "layered", "realistic") or flags - {"--terraform", "--change", "--state"}:
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
    if "--state" in flags:
        if not terraform or shape != "realistic":
            print("--state needs --terraform and the realistic shape", file=sys.stderr)
            return 2
        with open(os.path.join(out_dir, "terraform.tfstate"), "w") as f:
            json.dump(terraform_state(n), f, indent=2)
    return 0


if __name__ == "__main__":
    sys.exit(main())
