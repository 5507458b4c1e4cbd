provider "testing" {
  dir = "./world"
}

resource "testing_object" "web" {
  count = 3
  name  = "web-${count.index}"
  size  = count.index * 10 + 1

  lifecycle {
    create_before_destroy = true
    ignore_changes        = [size]
  }
}

output "names" {
  value = testing_object.web[*].name
}
