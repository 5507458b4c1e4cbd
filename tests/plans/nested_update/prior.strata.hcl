provider "testing" {
  dir = "${path.root}/world"
}

# The equivalent of a terraform_data whose input is an object holding a
# list of objects: its rendering follows Terraform's for the same change.
resource "testing_object" "vm" {
  name          = "vm"
  restart_value = "machine=pc"
  value = {
    name = "web"
    disks = [
      { name = "root", size = 8, pool = "default" },
      { name = "data", size = 16, pool = "default" },
      { name = "logs", size = 4, pool = "default" },
    ]
    nic    = { vlan = 10, mac = "aa", model = "virtio" }
    script = "line1\nline2\nline3\n"
    tags   = ["a", "b", "c", "d", "e", "f"]
  }
}

# Nested blocks: one disk of three changes size.
resource "testing_object" "blocks" {
  name = "blocks"
  size = 20
  disk {
    label = "root"
    size  = 8
  }
  disk {
    label = "data"
    size  = 16
  }
  disk {
    label = "logs"
    size  = 4
  }
}

# A list whose middle element goes away, and one added at the end: matched
# elements stay unchanged.
resource "testing_object" "list" {
  name  = "list"
  value = [{ name = "a", n = 1 }, { name = "b", n = 2 }, { name = "c", n = 3 }]
}
