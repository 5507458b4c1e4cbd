# A Ceph lab: a pool with a quota, a golden image, a protected snapshot of it,
# thin clones for the guests, and a cephx client that may use this pool only.
#
#   eval "$(bash scripts/ceph-up.sh target/ceph)"
#   cargo run -q -- --chdir examples/ceph-lab apply -auto-approve
#
# The provider reads CEPH_CONF and CEPH_KEYRING; set `conf`, `user` and
# `keyring` in a provider "ceph" block to reach another cluster.

variable "pool" {
  type    = string
  default = "strata-lab"
}

variable "guests" {
  type    = set(string)
  default = ["web", "db", "cache"]
}

data "ceph_cluster" "this" {}

resource "ceph_pool" "lab" {
  name            = var.pool
  quota_max_bytes = 8 * 1024 * 1024 * 1024
}

resource "ceph_rbd_image" "golden" {
  pool = ceph_pool.lab.name
  name = "golden"
  size = 1024 * 1024 * 1024
}

resource "ceph_rbd_snapshot" "golden" {
  image     = ceph_rbd_image.golden.spec
  name      = "v1"
  protected = true
}

resource "ceph_rbd_image" "guest" {
  for_each       = var.guests
  pool           = ceph_pool.lab.name
  name           = "${each.key}-root"
  size           = 2 * 1024 * 1024 * 1024
  clone_of       = ceph_rbd_snapshot.golden.id
  qos_iops_limit = 500
}

resource "ceph_client" "guests" {
  name = "${var.pool}-guests"
  pool = ceph_pool.lab.name
}

output "monitors" {
  value = data.ceph_cluster.this.monitors
}

output "disks" {
  value = { for name, image in ceph_rbd_image.guest : name => image.spec }
}

output "client" {
  value = ceph_client.guests.entity
}
