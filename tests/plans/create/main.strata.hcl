variable "names" {
  type    = list(string)
  default = ["web", "db"]
}

resource "strata_data" "net" {
  input = "10.0.0.0/24"
}

resource "strata_data" "vm" {
  for_each = toset(var.names)
  input = {
    name    = each.key
    network = strata_data.net.output
  }
}

output "vms" {
  value = [for k, v in strata_data.vm : k]
}
