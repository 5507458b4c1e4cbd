# A small lab described with the built-in strata_data resource: a network
# plan, a set of machines from a map, and values that flow between them.
# Run it with:  cargo run -q -- --chdir examples/basic apply -auto-approve

variable "environment" {
  type        = string
  default     = "dev"
  description = "Name prefix of everything."

  validation {
    condition     = length(var.environment) <= 8
    error_message = "Keep the environment name to 8 characters or fewer."
  }
}

variable "machines" {
  type = map(object({
    memory = number
    role   = string
  }))
  default = {
    web = { memory = 1024, role = "frontend" }
    db  = { memory = 4096, role = "database" }
  }
}

variable "admin_password" {
  type      = string
  default   = "change-me"
  sensitive = true
}

locals {
  prefix = "${var.environment}-lab"
}

resource "strata_data" "network" {
  input = {
    name = "${local.prefix}-net"
    cidr = "10.10.0.0/24"
  }
}

resource "strata_data" "machine" {
  for_each = var.machines

  input = {
    name     = "${local.prefix}-${each.key}"
    memory   = each.value.memory
    role     = each.value.role
    network  = strata_data.network.output.name
    password = var.admin_password
  }

  lifecycle {
    create_before_destroy = true
  }
}

resource "strata_data" "inventory" {
  input = join("\n", [for k, m in strata_data.machine : "${k} ${m.output.name} ${m.output.memory}MiB"])
}

output "network" {
  value = strata_data.network.output.name
}

output "inventory" {
  value = strata_data.inventory.output
}
