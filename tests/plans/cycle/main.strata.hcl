resource "strata_data" "a" {
  input = strata_data.c.output
}

resource "strata_data" "b" {
  input = strata_data.a.output
}

resource "strata_data" "c" {
  input = local.via_b
}

locals {
  via_b = strata_data.b.output
}
