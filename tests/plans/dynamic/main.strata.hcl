variable "disks" {
  type = map(object({
    size = optional(number, 10)
  }))
  default = {
    data = { size = 50 }
    logs = {}
  }
}

provider "testing" {
  dir = "${path.root}/world"
}

resource "testing_object" "vm" {
  name = "vm"

  disk {
    label = "root"
    size  = 20
  }

  dynamic "disk" {
    for_each = var.disks
    iterator = d
    content {
      label = d.key
      size  = d.value.size
    }
  }
}
