#include <libvirt/libvirt.h>
#include <libvirt/virterror.h>

#include <libvirt/libvirt-qemu.h>
