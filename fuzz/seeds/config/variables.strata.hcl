variable "env" {
  type        = string
  default     = "dev"
  description = "Deployment environment."
  validation {
    condition     = contains(["dev", "prod"], var.env)
    error_message = "env must be dev or prod."
  }
}

variable "replicas" {
  type     = number
  default  = 2
  nullable = false
}

variable "tags" {
  type      = map(string)
  default   = { team = "infra" }
  sensitive = true
}

locals {
  name   = "app-${var.env}"
  labels = merge(var.tags, { env = var.env })
}

output "name" {
  value = local.name
}
