# A lab on Open vSwitch: one bridge (userspace datapath, so no kernel module
# is needed) with two VLANs, a VXLAN uplink that carries both, and two guests
# that boot the tiny test kernel, each on its VLAN with a static address from
# its kernel command line. The web guest's firewall, a security group that
# names its NIC by MAC, lives in the same configuration as the guest.
#
# Run it (libvirt calls ovs-vsctl itself, so the default Open vSwitch must run):
#   bash scripts/libvirt-up.sh && bash scripts/ovs-up.sh && cargo run -q -- --chdir examples/ovs-lab \
#     apply -auto-approve -var guest_dir=$(bash scripts/tiny-guest.sh)
# and see the guests' ports, tagged: ovs-vsctl show

variable "guest_dir" {
  type        = string
  description = "Directory holding vmlinuz and initrd.img (from scripts/tiny-guest.sh)."
}

variable "machines" {
  type = map(object({
    vlan    = number
    address = string
  }))
  default = {
    web = { vlan = 10, address = "198.18.44.10/24" }
    db  = { vlan = 20, address = "198.18.45.10/24" }
  }
}

variable "uplink_remote" {
  type        = string
  description = "The VXLAN peer (the other site's VTEP)."
  default     = "198.18.46.2"
}

resource "ovs_bridge" "lab" {
  name          = "strata-ovslab"
  datapath_type = "netdev"
}

# Both VLANs, tagged, inside VXLAN network 4242 to the other site.
resource "ovs_port" "uplink" {
  bridge    = ovs_bridge.lab.name
  name      = "strata-ovslabvx"
  type      = "vxlan"
  remote_ip = var.uplink_remote
  key       = "4242"
  trunks    = [10, 20]
}

resource "kvm_domain" "vm" {
  for_each         = var.machines
  name             = "strata-ovs-lab-${each.key}"
  memory           = 128
  kernel           = "${var.guest_dir}/vmlinuz"
  initrd           = "${var.guest_dir}/initrd.img"
  cmdline          = "console=ttyS0 panic=-1 strata.ip=${each.value.address}"
  interfaces       = [{ ovs_bridge = ovs_bridge.lab.name, vlan = each.value.vlan }]
  serial_log       = "/var/log/libvirt/qemu/strata-ovs-lab-${each.key}-console.log"
  shutdown_timeout = 10
}

# The web guest answers ping and HTTP from its VLAN's subnet; it may open
# any connection itself. Everything else to it is dropped.
resource "ovs_security_group" "web" {
  bridge      = ovs_bridge.lab.name
  attachments = [kvm_domain.vm["web"].macs[0]]
  rules = [
    { direction = "ingress", protocol = "icmp", remote_cidr = "198.18.44.0/24" },
    { direction = "ingress", protocol = "tcp", port_min = 80, port_max = 80, remote_cidr = "198.18.44.0/24" },
    { direction = "egress" },
  ]
}

output "macs" {
  value = { for name, vm in kvm_domain.vm : name => vm.macs[0] }
}
