variable "size" {
  type    = number
  default = "big"
}

resource "strata_data" "a" {
  input  = var.missing
  colour = "red"
}

resource "nothing_here" "b" {
}

resource "testing_object" "c" {
  value = local.undefined
}
