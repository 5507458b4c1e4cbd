provider "testing" {
  dir = "${path.root}/world"
}

resource "testing_plain" "disk" {
  name = "disk"
  size = 10
}

resource "testing_plain" "by_path" {
  name  = "by-path"
  value = testing_plain.disk.path
}

resource "testing_plain" "by_generation" {
  name  = "by-generation"
  value = testing_plain.disk.generation
}
