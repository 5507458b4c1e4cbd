# The Terraform configuration equivalent to ../main.strata.hcl (strata_data
# is Strata's terraform_data). terraform_plan.json beside this directory is
# Terraform 1.11's `show -json` of the plan `-var gen=2` after an apply with
# gen=1, made once with the real terraform (see tests/tf_json.rs).
variable "gen" {
  type    = number
  default = 1
}

variable "secret" {
  type      = string
  default   = "canary-7f3a9c"
  sensitive = true
}

resource "terraform_data" "keep" {
  input = "same"
}

resource "terraform_data" "changed" {
  input = { size = var.gen, tags = ["a", "b"] }
}

resource "terraform_data" "replaced" {
  input            = "r"
  triggers_replace = var.gen
}

resource "terraform_data" "cbd" {
  input            = "c"
  triggers_replace = var.gen
  lifecycle {
    create_before_destroy = true
  }
}

resource "terraform_data" "gone" {
  count = var.gen == 1 ? 1 : 0
  input = "bye"
}

resource "terraform_data" "fresh" {
  count = var.gen == 1 ? 0 : 1
  input = { name = "new", secret = var.secret }
}

output "keep_out" {
  value = terraform_data.keep.output
}

output "secret_out" {
  value     = var.secret
  sensitive = true
}
