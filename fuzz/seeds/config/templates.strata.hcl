strata {
  backend "local" {
    path = "state.json"
  }
}

locals {
  users = ["ana", "bo"]
  motd  = <<-EOT
    Hello %{ for u in local.users }${u} %{ endfor }
    %{ if length(local.users) > 1 }many%{ else }one%{ endif }
  EOT
}

resource "strata_data" "motd" {
  input            = upper(local.motd)
  triggers_replace = [for u in local.users : "${u}!" if u != ""]
}

output "motd" {
  value     = strata_data.motd.output
  sensitive = true
}
