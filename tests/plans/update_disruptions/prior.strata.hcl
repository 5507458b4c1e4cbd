provider "testing" {
  dir = "${path.root}/world"
}

resource "testing_object" "disk" {
  name = "disk"
  size = 20
}

resource "testing_object" "vm" {
  name          = "vm"
  value         = "memory=1024"
  restart_value = "machine=pc"
}

resource "testing_object" "nic" {
  name = "nic-a"
}
