variable "name" {
  type = string
}

variable "subnets" {
  type = map(string)
}

resource "strata_data" "network" {
  input = {
    name    = var.name
    subnets = var.subnets
    gateway = { for tier, cidr in var.subnets : tier => cidrhost(cidr, 1) }
  }
}

output "name" {
  value = strata_data.network.output.name
}

output "subnets" {
  value = var.subnets
}
