# Bad input that validate accepts must end in diagnostics at the place, not
# in an abort or a panic while planning.

# 1e9 instances would need 64 GB before anything could be reported.
resource "strata_data" "many" {
  count = 1e9
  input = count.index
}

# Widths and precisions are capped as in Go's fmt.
output "wide" {
  value = format("%99999999999999d", 1)
}

output "precise" {
  value = length(format("%.70000f", 1))
}

# for_each takes a map or a set of strings (Terraform refuses a list).
resource "strata_data" "tuple" {
  for_each = ["a", "b"]
  input    = each.key
}

variable "names" {
  type    = list(string)
  default = ["a", "b", "a"]
}

resource "strata_data" "duplicates" {
  for_each = var.names
  input    = each.key
}

# toset is the explicit way to drop duplicates.
resource "strata_data" "set" {
  for_each = toset(var.names)
  input    = each.key
}
