variable "name" {
  type = string
}

variable "subnet" {
  type = string
}

variable "network" {
  type = string
}

variable "machines" {
  type = map(object({
    memory = number
    vcpus  = number
    disks  = list(number)
  }))
}

resource "strata_data" "machine" {
  for_each = var.machines

  input = {
    name      = "${var.name}-${each.key}"
    network   = var.network
    address   = cidrhost(var.subnet, 10 + index(keys(var.machines), each.key))
    memory    = each.value.memory
    vcpus     = each.value.vcpus
    disks     = [for i, size in each.value.disks : { device = "vd${substr("bcdefgh", i, 1)}", size = size }]
    user_data = templatefile("${path.module}/user-data.tftpl", { hostname = "${var.name}-${each.key}", disks = each.value.disks })
  }
}

output "first_addresses" {
  value = [for m in strata_data.machine : m.input.address]
}
