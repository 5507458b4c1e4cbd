# A small lab on the local libvirt: an isolated network with DHCP, a storage
# pool, a base volume with a thin clone per machine, cloud-init seeds, and
# two guests that boot the tiny test kernel (scripts/tiny-guest.sh builds it).
#
# Run it (README's main job):
#   bash scripts/libvirt-up.sh && cargo run -q -- --chdir examples/lab apply -auto-approve \
#     -var guest_dir=$(bash scripts/tiny-guest.sh)

variable "guest_dir" {
  type        = string
  description = "Directory holding vmlinuz and initrd.img (from scripts/tiny-guest.sh)."
}

variable "machines" {
  type = map(object({
    memory = optional(number, 128)
    vcpus  = optional(number, 1)
  }))
  default = {
    web = {}
    db  = { memory = 160 }
  }
}

variable "pool_path" {
  type    = string
  default = "/var/lib/libvirt/strata-lab"
}

data "kvm_host" "this" {}

resource "kvm_network" "lab" {
  name      = "strata-lab"
  addresses = ["198.18.42.0/24"]
  dhcp      = true
  dhcp_hosts = [
    for i, name in keys(var.machines) : { mac = format("52:54:00:42:00:%02x", i + 10), ip = cidrhost("198.18.42.0/24", i + 10), name = name }
  ]
}

resource "kvm_pool" "lab" {
  name = "strata-lab"
  path = var.pool_path
}

resource "kvm_volume" "base" {
  pool   = kvm_pool.lab.name
  name   = "base.qcow2"
  format = "qcow2"
  size   = 67108864
}

resource "kvm_volume" "disk" {
  for_each    = var.machines
  pool        = kvm_pool.lab.name
  name        = "${each.key}.qcow2"
  base_volume = kvm_volume.base.name
}

resource "kvm_cloudinit_disk" "seed" {
  for_each  = var.machines
  pool      = kvm_pool.lab.name
  name      = "${each.key}-seed.iso"
  user_data = <<-EOT
    #cloud-config
    hostname: ${each.key}
  EOT
}

resource "kvm_domain" "vm" {
  for_each   = var.machines
  name       = "strata-lab-${each.key}"
  type       = data.kvm_host.this.domain_type
  memory     = each.value.memory
  max_memory = 256
  vcpus      = each.value.vcpus
  max_vcpus  = 2
  kernel     = "${var.guest_dir}/vmlinuz"
  initrd     = "${var.guest_dir}/initrd.img"
  cmdline    = "console=ttyS0 panic=-1"
  disks = [
    { pool = kvm_pool.lab.name, volume = kvm_volume.disk[each.key].name },
    { pool = kvm_pool.lab.name, volume = kvm_cloudinit_disk.seed[each.key].name, readonly = true },
  ]
  interfaces = [{
    network = kvm_network.lab.name
    mac     = format("52:54:00:42:00:%02x", index(keys(var.machines), each.key) + 10)
  }]
  serial_log  = "/var/log/libvirt/qemu/strata-lab-${each.key}-console.log"
  wait_for_ip = 120
}

output "ip_addresses" {
  value = { for name, vm in kvm_domain.vm : name => vm.ip_addresses }
}

output "domain_type" {
  value = data.kvm_host.this.domain_type
}
