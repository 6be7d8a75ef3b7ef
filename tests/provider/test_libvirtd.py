"""The provider against a real libvirtd, started by the tests in namespaces of its own (tests/sshvirt.py) and
reached over qemu+ssh, as on a separate host."""

from __future__ import annotations

import uuid

import sshvirt

from .conftest import Site


def test_pool_volume_and_stopped_domain_on_qemu_system(site: Site, real_libvirtd: sshvirt.Hypervisor) -> None:
    suffix = uuid.uuid4().hex[:8]
    pool_dir = site.root / "pool"
    main_tf = f'''terraform {{
  required_providers {{
    libvirt = {{
      source  = "dmacvicar/libvirt"
      version = "0.9.7"
    }}
  }}
}}
provider "libvirt" {{
  uri = "{real_libvirtd.uri}"
}}
resource "libvirt_pool" "pool" {{
  name   = "provtest-{suffix}"
  type   = "dir"
  target = {{ path = "{pool_dir}" }}
}}
resource "libvirt_volume" "disk" {{
  name     = "disk.qcow2"
  pool     = libvirt_pool.pool.name
  capacity = 1073741824
  target   = {{ format = {{ type = "qcow2" }} }}
}}
resource "libvirt_domain" "guest" {{
  name        = "provtest-{suffix}"
  type        = "qemu"
  memory      = 256
  memory_unit = "MiB"
  vcpu        = 1
  running     = false
  os = {{ type = "hvm", type_arch = "x86_64", type_machine = "q35" }}
  devices = {{
    disks = [{{
      source = {{ volume = {{ pool = libvirt_volume.disk.pool, volume = libvirt_volume.disk.name }} }}
      target = {{ dev = "vda", bus = "virtio" }}
      driver = {{ name = "qemu", type = "qcow2" }}
    }}]
  }}
}}
'''
    ws = site.workspace("qemu", main_tf)
    try:
        ws.apply()
        code, out = ws.plan_exitcode()
        assert code == 0, out
    finally:
        ws.destroy()
