module "left" {
  source = "./"
}

module "right" {
  source = "../loop"
}

resource "strata_data" "here" {
  input = "x"
}
