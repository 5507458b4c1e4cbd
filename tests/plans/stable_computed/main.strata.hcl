# The disk grows in place. `path` is declared stable (it changes only by
# replacement), so what refers to it stays known and unchanged; `generation`
# changes with every update, so what refers to it waits for the apply.
provider "testing" {
  dir = "${path.root}/world"
}

resource "testing_plain" "disk" {
  name = "disk"
  size = 20
}

resource "testing_plain" "by_path" {
  name  = "by-path"
  value = testing_plain.disk.path
}

resource "testing_plain" "by_generation" {
  name  = "by-generation"
  value = testing_plain.disk.generation
}
