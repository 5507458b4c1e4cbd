# Objects and maps of 100,000 entries built by the language's paths that make
# large maps: for-expressions (keys in and out of order, grouping), merge,
# tomap, zipmap, jsondecode, transpose. A map value is one sorted vector
# (providers/contract/src/vec_map.rs), where inserting out of order one at a
# time is O(n): each of these must stay O(n log n). No resources, so
# `strata -chdir bench/large-maps plan` only evaluates (about a second).
locals {
  n    = flatten([for a in range(100) : [for b in range(1000) : a * 1000 + b]])
  obj  = { for i in local.n : "k${i}" => i }
  rev  = { for i in local.n : "k${100000 - i}" => i * 2 }
  grp  = { for i in local.n : "g${i % 50000}" => i...}
  m    = merge(local.obj, local.rev, { extra = 1 })
  t    = tomap(local.obj)
  z    = zipmap([for i in local.n : "z${(i * 7919) % 100000}"], local.n)
  j    = jsondecode(jsonencode(local.rev))
  tr   = transpose({ for k, v in local.grp : k => [for x in v : tostring(x)] })
  back = { for k, v in local.m : v => k...}
}

output "sizes" {
  value = [length(local.obj), length(local.rev), length(local.grp), length(local.m), length(local.t), length(local.z), length(local.j), length(local.tr), length(local.back)]
}
