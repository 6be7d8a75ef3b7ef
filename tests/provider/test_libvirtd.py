"""The provider against a real libvirtd, started by the tests in namespaces of its own (tests/sshvirt.py) and
reached over qemu+ssh, as on a separate host."""

from __future__ import annotations

import io
import uuid

import sshvirt

from provisioner.provider.content import upload

from .conftest import Site
from .tfrun import pool_block, provider_header


def test_pool_volume_and_stopped_domain_on_qemu_system(site: Site, real_libvirtd: sshvirt.Hypervisor) -> None:
    suffix = uuid.uuid4().hex[:8]
    pool_dir = site.root / "pool"
    main_tf = (provider_header(real_libvirtd.uri) + pool_block(f"provtest-{suffix}", pool_dir)
            + f'''resource "libvirt_volume" "disk" {{
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
''')
    ws = site.workspace("qemu", main_tf)
    try:
        ws.apply()
        code, out = ws.plan_exitcode()
        assert code == 0, out
    finally:
        ws.destroy()


def test_volume_grows_in_place_keeping_its_bytes(site: Site, real_libvirtd: sshvirt.Hypervisor) -> None:
    """A larger capacity is virStorageVolResize on a real libvirtd: the bytes written before are still there."""
    import libvirt

    suffix = uuid.uuid4().hex[:8]
    pool_name = f"provtest-{suffix}"

    def plan(capacity: int) -> str:
        return (provider_header(real_libvirtd.uri) + pool_block(pool_name, site.root / "pool")
            + f'''resource "libvirt_volume" "data" {{
  name     = "data.raw"
  pool     = libvirt_pool.pool.name
  capacity = {capacity}
  target   = {{ format = {{ type = "raw" }} }}
}}
''')
    mib = 1 << 20
    ws = site.workspace("grow", plan(4 * mib))
    try:
        ws.apply()
        written = bytes(range(256)) * 4096  # 1 MiB
        conn = libvirt.open(real_libvirtd.uri)
        try:
            vol = conn.storagePoolLookupByName(pool_name).storageVolLookupByName("data.raw")
            upload(conn, vol, io.BytesIO(written), len(written))
            (ws.dir / "main.tf").write_text(plan(8 * mib))
            out = ws.apply().stdout
            assert "1 changed, 0 destroyed" in out, out
            vol = conn.storagePoolLookupByName(pool_name).storageVolLookupByName("data.raw")
            assert vol.info()[1] == 8 * mib
            stream = conn.newStream(0)
            vol.download(stream, 0, len(written), 0)
            read = bytearray()
            stream.recvAll(lambda _stream, chunk, into: into.extend(chunk), read)
            stream.finish()
            assert bytes(read) == written
        finally:
            conn.close()
        assert ws.plan_exitcode()[0] == 0
        (ws.dir / "main.tf").write_text(plan(2 * mib))
        assert "1 added, 0 changed, 1 destroyed" in ws.apply().stdout, "a smaller capacity replaces it"
    finally:
        ws.destroy()


def test_volume_of_a_running_guest_grows_through_it(site: Site, real_libvirtd: sshvirt.Hypervisor) -> None:
    """While a running guest holds the volume, a larger capacity is virDomainBlockResize: the guest sees the new
    size, the domain keeps running (no replacement of either)."""
    import libvirt

    suffix = uuid.uuid4().hex[:8]
    name = f"provtest-{suffix}"

    def plan(capacity: int) -> str:
        return (provider_header(real_libvirtd.uri) + pool_block(name, site.root / "pool")
            + f'''resource "libvirt_volume" "data" {{
  name     = "data.qcow2"
  pool     = libvirt_pool.pool.name
  capacity = {capacity}
  target   = {{ format = {{ type = "qcow2" }} }}
}}
resource "libvirt_domain" "guest" {{
  name        = "{name}"
  type        = "qemu"
  memory      = 128
  memory_unit = "MiB"
  vcpu        = 1
  running     = true
  os = {{ type = "hvm", type_arch = "x86_64", type_machine = "q35" }}
  devices = {{
    disks = [{{
      source = {{ volume = {{ pool = libvirt_volume.data.pool, volume = libvirt_volume.data.name }} }}
      target = {{ dev = "vda", bus = "virtio" }}
      driver = {{ name = "qemu", type = "qcow2" }}
    }}]
  }}
}}
''')
    mib = 1 << 20
    ws = site.workspace("grow-running", plan(64 * mib))
    try:
        ws.apply()
        (ws.dir / "main.tf").write_text(plan(128 * mib))
        out = ws.apply().stdout
        assert "1 changed, 0 destroyed" in out, out
        conn = libvirt.open(real_libvirtd.uri)
        try:
            dom = conn.lookupByName(name)
            assert dom.isActive()
            assert dom.blockInfo("vda")[0] == 128 * mib, "the running guest's disk has the new size"
        finally:
            conn.close()
        assert ws.plan_exitcode()[0] == 0
    finally:
        ws.destroy()
