"""The libvirt_domain schema: the subset of upstream 0.9.7 our plans use.

Names, types and nesting follow the reference docs exactly; note that
`devices.interfaces[]` has no `type` (the kind follows from which `source.*`
is set) and that `id` is a Number.
"""

from __future__ import annotations

from ..schema import ResourceSchema, computed, many, optional, required, single

_DISK = (
    optional("device", "string", "Device kind: disk, cdrom, floppy, lun."),
    single("driver",
           optional("name", "string", "Sets the name of the driver used for the disk device."),
           optional("type", "string", "Driver (image format) type, e.g. qcow2 or raw.")),
    optional("read_only", "bool", "Configures the read-only state for the disk."),
    single("source",
           single("file", optional("file", "string", "Path of the file backing the disk.")),
           single("volume",
                  optional("pool", "string", "Storage pool of the volume."),
                  optional("volume", "string", "Name of the volume."))),
    single("target",
           optional("bus", "string", "Bus type: virtio, sata, scsi, ide, usb."),
           optional("dev", "string", "Target device name in the guest, e.g. vda.")),
)

_INTERFACE = (
    single("mac", required("address", "string", "MAC address of the interface.")),
    single("model", required("type", "string", "Model of the interface, e.g. virtio.")),
    single("source",
           single("bridge", required("bridge", "string", "Name of the host bridge.")),
           single("network", optional("network", "string", "Name of the libvirt network."))),
    single("filter_ref",
           required("filter", "string", "Defines the specific filter to apply to the network interface."),
           many("parameters",
                required("name", "string", "Sets the name of the filter parameter."),
                required("value", "string", "Specifies the value associated with the filter parameter."),
                doc="Configures parameters for the referenced filter."),
           doc="Specifies a reference to a filter associated with the network interface."),
)

SCHEMA = ResourceSchema("libvirt_domain", (
    required("name", "string", "Name of the domain, unique on the host.", replace=True),
    required("type", "string", "Hypervisor type: kvm, qemu, … .", replace=True),
    optional("autostart", "bool", "Whether the domain should be started automatically when the host boots."),
    single("cpu", optional("mode", "string", "CPU mode: host-model, host-passthrough, custom."),
           doc="CPU allocation and topology configuration"),
    optional("description", "string", "Human-readable description of the domain."),
    single("features",
           optional("acpi", "bool", "ACPI (lets the guest power off on request)."),
           single("apic", optional("eoi", "string", "APIC end-of-interrupt mode: on or off.")),
           doc="Hypervisor features that can be toggled on/off"),
    single("devices",
           many("consoles",
                single("target",
                       optional("port", "number", "Port number of the console target."),
                       optional("type", "string", "Console target type, e.g. serial or virtio.")),
                doc="Interactive serial console devices"),
           many("disks", *_DISK, doc="Disk devices (floppy, hard disk, CD-ROM, paravirtualized)"),
           many("graphics",
                single("vnc",
                       optional("auto_port", "bool", "Pick a free VNC port automatically."),
                       optional("listen", "string", "Address the VNC server listens on."),
                       optional("port", "number", "VNC port.")),
                doc="Graphical framebuffer devices for guest interaction"),
           many("interfaces", *_INTERFACE, doc="Network interface configuration"),
           many("serials",
                single("log",
                       required("file", "string", "Defines the file path where channel logs will be written."),
                       optional("append", "string", "Indicates whether to append log data to the existing log file.")),
                single("source",
                       single("file",
                              required("path", "string", "Sets the file path for the RNG source in the EGD backend."),
                              optional("append", "string",
                                       "Specifies if data should be appended to the file used as a source."))),
                single("target",
                       optional("port", "number", "Port number of the serial device."),
                       optional("type", "string", "Target type of the serial device.")),
                doc="Serial port devices"),
           doc="Devices provided to the guest domain"),
    optional("memory", "number", "Maximum memory allocation for the guest at boot time"),
    optional("memory_unit", "string", "Unit of `memory` (KiB when unset)."),
    single("os",
           many("boot_devices", required("dev", "string", "Boot device: hd, cdrom, network, fd.")),
           optional("cmdline", "string", "Kernel command line (direct kernel boot)."),
           optional("initrd", "string", "Initial ramdisk (direct kernel boot)."),
           optional("kernel", "string", "Kernel image (direct kernel boot)."),
           optional("type", "string", "OS type, e.g. hvm."),
           optional("type_arch", "string", "Architecture, e.g. x86_64."),
           optional("type_machine", "string", "Machine type, e.g. q35."),
           doc="Operating system boot configuration"),
    optional("running", "bool", "Whether the domain should be started after creation."),
    optional("vcpu", "number", "Number of virtual CPUs."),
    computed("id", "number", "The domain's libvirt ID (-1 while shut off).", volatile=True),
    computed("uuid", "string", "UUID of the domain."),
), description="Virtual machine (libvirt domain)")
