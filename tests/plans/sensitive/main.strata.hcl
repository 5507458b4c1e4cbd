variable "password" {
  type      = string
  default   = "correct-horse-battery-staple"
  sensitive = true
}

resource "strata_data" "db" {
  input = {
    user = "admin"
    dsn  = "postgres://admin:${var.password}@db/app"
  }
}

output "dsn" {
  value     = strata_data.db.input.dsn
  sensitive = true
}
