provider "testing" {
  dir = "${path.root}/world"
}

resource "testing_object" "disk" {
  name = "disk"
  size = 10
}

resource "testing_object" "vm" {
  name          = "vm"
  value         = "memory=2048"
  restart_value = "machine=q35"
}

resource "testing_object" "nic" {
  name = "nic-b"
}
