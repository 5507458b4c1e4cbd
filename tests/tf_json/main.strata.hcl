# Strata's side of the comparison with Terraform: terraform/main.tf with
# strata_data for terraform_data. Applied with gen=1, then planned with gen=2.
variable "gen" {
  type    = number
  default = 1
}

variable "secret" {
  type      = string
  default   = "canary-7f3a9c"
  sensitive = true
}

resource "strata_data" "keep" {
  input = "same"
}

resource "strata_data" "changed" {
  input = { size = var.gen, tags = ["a", "b"] }
}

resource "strata_data" "replaced" {
  input            = "r"
  triggers_replace = var.gen
}

resource "strata_data" "cbd" {
  input            = "c"
  triggers_replace = var.gen
  lifecycle {
    create_before_destroy = true
  }
}

resource "strata_data" "gone" {
  count = var.gen == 1 ? 1 : 0
  input = "bye"
}

resource "strata_data" "fresh" {
  count = var.gen == 1 ? 0 : 1
  input = { name = "new", secret = var.secret }
}

output "keep_out" {
  value = strata_data.keep.output
}

output "secret_out" {
  value     = var.secret
  sensitive = true
}
