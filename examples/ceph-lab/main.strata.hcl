# A Ceph lab: a pool with a quota, a golden image, a protected snapshot of it,
# thin clones for the guests, a cephx client that may use this pool only, and
# one KVM guest per clone, its root disk the clone (QEMU reaches the cluster
# with the client's key, kept in a libvirt secret).
#
#   bash scripts/libvirt-up.sh
#   eval "$(bash scripts/ceph-up.sh target/ceph)"
#   bash scripts/tiny-guest.sh        # the kernel and initramfs the guests boot
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

variable "guest_kernel_dir" {
  type    = string
  default = "/var/cache/strata/tiny-guest"
}

# The client's key, where libvirt hands it to QEMU (never on a command line).
resource "kvm_secret" "guests" {
  usage_name = "${ceph_client.guests.entity} secret"
  value      = ceph_client.guests.key
}

resource "kvm_domain" "guest" {
  for_each = var.guests
  name     = "${var.pool}-${each.key}"
  memory   = 128
  kernel   = "${var.guest_kernel_dir}/vmlinuz"
  initrd   = "${var.guest_kernel_dir}/initrd.img"
  cmdline  = "console=ttyS0 panic=-1"
  disks = [{
    # The image's spec stays known while the image is updated in place.
    rbd       = ceph_rbd_image.guest[each.key].spec
    monitors  = data.ceph_cluster.this.monitors
    auth_user = ceph_client.guests.entity
    secret    = kvm_secret.guests.id
    # Growing the clone is live, and the running guest sees the new size.
    size = ceph_rbd_image.guest[each.key].size
  }]
  shutdown_timeout = 10
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
