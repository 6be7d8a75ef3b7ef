"""Plan shapes beyond the example: kernel boot, file disks, networks, VNC; libvirt_network."""

from __future__ import annotations

import xml.etree.ElementTree as ET

from provisioner.provider import simulator

from .conftest import Site

HEADER = '''terraform {
  required_providers {
    libvirt = {
      source  = "dmacvicar/libvirt"
      version = "0.9.7"
    }
  }
}
provider "libvirt" {
  uri = "URI"
}
'''


def test_kernel_boot_file_disk_network_nic_vnc_and_network(site: Site) -> None:
    main_tf = HEADER.replace("URI", site.uri) + '''
resource "libvirt_network" "lan" {
  name      = "lan"
  autostart = true
  bridge    = { name = "virbr9" }
  forward   = { mode = "nat" }
  ips       = [{ address = "192.168.90.1", prefix = 24 }]
}
resource "libvirt_domain" "k" {
  name      = "kernel.test"
  type      = "kvm"
  memory    = 524288
  vcpu      = 1
  running   = true
  autostart = true
  os = {
    type    = "hvm"
    kernel  = "/boot/vmlinuz"
    initrd  = "/boot/initrd.img"
    cmdline = "console=ttyS0 root=/dev/vda"
  }
  devices = {
    disks = [
      { source = { file = { file = "/var/lib/extra.img" } }, target = { dev = "vdb", bus = "virtio" } },
    ]
    interfaces = [
      { mac = { address = "52:54:00:00:00:01" }, source = { network = { network = libvirt_network.lan.name } } },
    ]
    graphics = [{ vnc = { auto_port = true, listen = "127.0.0.1" } }]
  }
}
'''
    ws = site.workspace("features", main_tf)
    ws.apply()
    code, out = ws.plan_exitcode()
    assert code == 0, out

    with simulator.snapshot(site.uri) as conn:
        dom = conn.lookupByName("kernel.test")
        assert dom.autostart() == 1
        root = ET.fromstring(dom.XMLDesc(0))
        assert root.findtext("os/kernel") == "/boot/vmlinuz"
        assert root.findtext("os/cmdline") == "console=ttyS0 root=/dev/vda"
        assert root.find("devices/disk/source").get("file") == "/var/lib/extra.img"
        nic = root.find("devices/interface")
        assert nic.get("type") == "network" and nic.find("source").get("network") == "lan"
        assert root.find("devices/graphics").get("autoport") == "yes"
        net = conn.networkLookupByName("lan")
        assert net.autostart() == 1 and "virbr9" in net.XMLDesc(0)

    # In-place network change, then destroy.
    ws.dir.joinpath("main.tf").write_text(main_tf.replace('"192.168.90.1"', '"192.168.91.1"'))
    out = ws.apply().stdout
    assert "1 changed" in out, out
    assert ws.plan_exitcode()[0] == 0
    ws.destroy()
    with simulator.snapshot(site.uri) as conn:
        assert conn.listAllDomains() == [] and conn.listAllNetworks() == []


def test_interface_filter_ref(site: Site) -> None:
    main_tf = HEADER.replace("URI", site.uri) + '''
resource "libvirt_domain" "f" {
  name    = "filtered.test"
  type    = "kvm"
  memory  = 524288
  vcpu    = 1
  running = true
  devices = {
    interfaces = [
      { mac = { address = "52:54:00:00:00:02" }, source = { bridge = { bridge = "br9" } },
        filter_ref = { filter = "web", parameters = [{ name = "IP", value = "10.0.0.5" }] } },
      { mac = { address = "52:54:00:00:00:03" }, source = { bridge = { bridge = "br9" } } },
    ]
  }
}
'''
    ws = site.workspace("filtered", main_tf)
    ws.apply()
    assert ws.plan_exitcode()[0] == 0, "read back as planned"

    def refs() -> list[tuple[str | None, list[tuple[str | None, str | None]]]]:
        with simulator.snapshot(site.uri) as conn:
            root = ET.fromstring(conn.lookupByName("filtered.test").XMLDesc(0))
        return [(r.get("filter"), [(p.get("name"), p.get("value")) for p in r.findall("parameter")])
                for nic in root.findall("devices/interface") for r in nic.findall("filterref")]

    assert refs() == [("web", [("IP", "10.0.0.5")])], "the second NIC has none"
    ws.dir.joinpath("main.tf").write_text(main_tf.replace('filter = "web"', 'filter = "db"'))
    out = ws.apply().stdout
    assert "1 changed" in out, out
    assert refs() == [("db", [("IP", "10.0.0.5")])]
    assert ws.plan_exitcode()[0] == 0
    ws.destroy()


def test_validation_errors_are_actionable(site: Site) -> None:
    main_tf = HEADER.replace("URI", site.uri) + '''
resource "libvirt_volume" "v" {
  name = "v.qcow2"
  pool = "provisioner"
}
'''
    ws = site.workspace("invalid", main_tf)
    proc = ws.run("plan", check=False)
    assert proc.returncode == 1
    assert "Volume size is not known" in proc.stderr and "create.content.url" in proc.stderr


def test_missing_pool_is_reported(site: Site) -> None:
    main_tf = HEADER.replace("URI", site.uri) + '''
resource "libvirt_volume" "v" {
  name     = "v.qcow2"
  pool     = "nowhere"
  capacity = 1024
}
'''
    ws = site.workspace("nopool", main_tf)
    proc = ws.run("apply", "-auto-approve", check=False)
    assert proc.returncode == 1
    assert "Storage pool 'nowhere' not found" in proc.stderr


def test_network_with_an_ipv6_address(site: Site) -> None:
    """An IPv6 address is an `<ip family='ipv6'>` next to the IPv4 one, and reads back without a diff."""
    main_tf = HEADER.replace("URI", site.uri) + '''
resource "libvirt_network" "dual" {
  name   = "dual"
  bridge = { name = "virbr8" }
  ips    = [
    { address = "192.168.80.1", prefix = 24 },
    { address = "fd00:80::1", prefix = 64, family = "ipv6" },
  ]
}
'''
    ws = site.workspace("dual", main_tf)
    ws.apply()
    code, out = ws.plan_exitcode()
    assert code == 0, out
    with simulator.snapshot(site.uri) as conn:
        ips = ET.fromstring(conn.networkLookupByName("dual").XMLDesc(0)).findall("ip")
        assert [(ip.get("family"), ip.get("address"), ip.get("prefix")) for ip in ips] == [
            (None, "192.168.80.1", "24"), ("ipv6", "fd00:80::1", "64")]
    ws.destroy()
