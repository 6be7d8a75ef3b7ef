"""The persistent test:/// hypervisor, without terraform."""

from __future__ import annotations

from pathlib import Path

import libvirt
import pytest

from provisioner.provider import simulator

DOMAIN = """<domain type='qemu'><name>{name}</name><memory unit='MiB'>256</memory>
<os><type arch='x86_64' machine='q35'>hvm</type></os></domain>"""


def test_missing_node_file_reads_as_empty_and_is_not_created(tmp_path: Path) -> None:
    uri = f"test://{tmp_path}/hv/node.xml"
    conn = simulator.open_readonly(uri)
    try:
        assert conn.listAllDomains() == [] and conn.listAllStoragePools() == []
    finally:
        conn.close()
    assert not (tmp_path / "hv").exists()


def test_state_run_state_and_autostart_survive_reopening(tmp_path: Path) -> None:
    uri = f"test://{tmp_path}/node.xml"
    with simulator.transaction(uri) as s:
        up = s.conn.defineXML(DOMAIN.format(name="up"))
        up.create()
        up.setAutostart(1)
        s.conn.defineXML(DOMAIN.format(name="down"))
        pool = s.conn.storagePoolDefineXML(
            f"<pool type='dir'><name>p</name><target><path>{tmp_path}/pool</path></target></pool>")
        pool.create()
        pool.createXML("<volume><name>v.qcow2</name><capacity>42</capacity>"
                       "<target><format type='qcow2'/></target></volume>")
        s.record_content("p", "v.qcow2", simulator.ContentRecord("https://example.invalid/v.qcow2"))
    with simulator.snapshot(uri) as conn:
        assert conn.lookupByName("up").state()[0] == libvirt.VIR_DOMAIN_RUNNING
        assert conn.lookupByName("up").autostart() == 1
        assert conn.lookupByName("down").state()[0] == libvirt.VIR_DOMAIN_SHUTOFF
        vol = conn.storagePoolLookupByName("p").storageVolLookupByName("v.qcow2")
        assert vol.info()[1] == 42
    assert simulator.content_record(uri, "p", "v.qcow2").url == "https://example.invalid/v.qcow2"

    # Deleting the volume prunes its sidecar record.
    with simulator.transaction(uri) as s:
        s.conn.storagePoolLookupByName("p").storageVolLookupByName("v.qcow2").delete(0)
    assert simulator.content_record(uri, "p", "v.qcow2") is None


def test_failed_transaction_leaves_the_file_untouched(tmp_path: Path) -> None:
    uri = f"test://{tmp_path}/node.xml"
    with simulator.transaction(uri) as s:
        s.conn.defineXML(DOMAIN.format(name="keep"))
    before = (tmp_path / "node.xml").read_bytes()
    with pytest.raises(RuntimeError), simulator.transaction(uri) as s:
        s.conn.defineXML(DOMAIN.format(name="lost"))
        raise RuntimeError("operation failed half-way")
    assert (tmp_path / "node.xml").read_bytes() == before


def test_unmanaged_node_elements_are_kept(tmp_path: Path) -> None:
    node = tmp_path / "node.xml"
    node.write_text("<node><cpu><nodes>1</nodes><sockets>1</sockets><cores>4</cores><threads>1</threads>"
                    "<active>4</active><mhz>2000</mhz><model>i686</model></cpu>"
                    "<memory>8388608</memory></node>")
    with simulator.transaction(f"test://{node}") as s:
        s.conn.defineXML(DOMAIN.format(name="x"))
    text = node.read_text()
    assert "<cores>4</cores>" in text and "<memory>8388608</memory>" in text


def test_each_change_reaches_the_file_though_unchanged_objects_are_reused(tmp_path: Path) -> None:
    # dump_node reuses an object's serialised text while its XML description is the same: a changed
    # description (memory, run state) must still be written, and a file written by another process
    # (its kept elements) read again.
    node = tmp_path / "node.xml"
    uri = f"test://{node}"
    with simulator.transaction(uri) as s:
        for name in ("a", "b"):
            s.conn.defineXML(DOMAIN.format(name=name))
    with simulator.transaction(uri) as s:
        s.conn.lookupByName("a").setMaxMemory(512 * 1024)
        s.conn.lookupByName("b").create()
    with simulator.snapshot(uri) as conn:
        assert conn.lookupByName("a").maxMemory() == 512 * 1024
        assert conn.lookupByName("a").state()[0] == libvirt.VIR_DOMAIN_SHUTOFF
        assert conn.lookupByName("b").state()[0] == libvirt.VIR_DOMAIN_RUNNING
    node.write_text(node.read_text().replace("\n  <domain", "\n  <memory>8388608</memory>\n  <domain", 1))
    with simulator.transaction(uri) as s:
        s.conn.lookupByName("b").destroy()
    text = node.read_text()
    assert "<memory>8388608</memory>" in text and text.count("<domain") == 2
    with simulator.snapshot(uri) as conn:
        assert conn.lookupByName("b").state()[0] == libvirt.VIR_DOMAIN_SHUTOFF


def test_a_read_sees_another_writers_file_not_the_last_transactions_connection(tmp_path: Path) -> None:
    # A read borrows this process's last transaction's connection only while the file is the one it wrote.
    node = tmp_path / "node.xml"
    uri = f"test://{node}"
    with simulator.transaction(uri) as s:
        s.conn.defineXML(DOMAIN.format(name="mine"))
    with simulator.snapshot(uri) as conn:
        assert [d.name() for d in conn.listAllDomains()] == ["mine"]
    other = DOMAIN.format(name="theirs").replace("<domain", "\n  <domain", 1)
    node.write_text(node.read_text().replace("\n</node>", other + "\n</node>", 1))  # another process's write
    with simulator.snapshot(uri) as conn:
        assert sorted(d.name() for d in conn.listAllDomains()) == ["mine", "theirs"]
    with simulator.transaction(uri) as s:
        assert sorted(d.name() for d in s.conn.listAllDomains()) == ["mine", "theirs"]


def test_only_file_backed_test_uris_are_simulated() -> None:
    assert simulator.is_simulated("test:///tmp/node.xml")
    for uri in ("test:///default", "qemu:///system", "qemu+ssh://root@host/system", "test+unix:///default"):
        assert not simulator.is_simulated(uri)
