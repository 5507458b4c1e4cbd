# A multi-tier lab: networks computed with cidrsubnets, machines from a map of
# objects with optional attributes, a module per tier, dynamic disks and
# templated cloud-init user-data.

variable "environment" {
  type    = string
  default = "lab"
}

variable "tiers" {
  type = map(object({
    machines = map(object({
      memory = optional(number, 1024)
      vcpus  = optional(number, 1)
      disks  = optional(list(number), [])
    }))
  }))
  default = {
    web = {
      machines = {
        web1 = {}
        web2 = { memory = 2048 }
      }
    }
    db = {
      machines = {
        db1 = { memory = 8192, vcpus = 4, disks = [100, 200] }
      }
    }
  }
}

locals {
  subnets = zipmap(keys(var.tiers), cidrsubnets("10.20.0.0/16", [for t in keys(var.tiers) : 8]...))
}

module "network" {
  source  = "./modules/network"
  name    = "${var.environment}-net"
  subnets = local.subnets
}

module "tier" {
  source   = "./modules/tier"
  for_each = var.tiers

  name     = each.key
  subnet   = module.network.subnets[each.key]
  network  = module.network.name
  machines = each.value.machines
}

output "addresses" {
  value = { for tier, m in module.tier : tier => m.first_addresses }
}
