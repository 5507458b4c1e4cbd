variable "buckets" {
  type    = set(string)
  default = ["logs", "assets"]
}

resource "strata_data" "bucket" {
  for_each = var.buckets
  input = {
    name = each.key
    path = "/srv/${each.value}"
  }
}

resource "strata_data" "index" {
  for_each   = { for k, v in strata_data.bucket : k => v.id }
  input      = "${each.key}=${each.value}"
  depends_on = [strata_data.bucket]
}
