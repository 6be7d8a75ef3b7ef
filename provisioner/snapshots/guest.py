"""The guest side of a snapshot: its disks' files, and pausing, stopping and starting it through libvirt.

Terraform does not model any of this, so it goes through libvirt-python; on the
simulated hypervisor every change runs in the simulator's transaction so it is
written back to its node file (as api/compute/power.py does).
"""

from __future__ import annotations

import contextlib
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator

from provisioner.errors import ProvisionError
from provisioner.layout import is_local
from provisioner.provider import simulator


@dataclass(frozen=True)
class Disk:
    """One disk of the guest: its target device (vda), its volume name if any, and its file on the host."""

    target: str
    volume: str | None
    path: Path


@contextlib.contextmanager
def connection(uri: str) -> Iterator[Any]:
    """A libvirt connection to change the guest through (a persisted transaction on the simulator)."""
    import libvirt

    if simulator.node_file(uri) is not None:
        with simulator.transaction(uri) as session:
            yield session.conn
        return
    if not is_local(uri):
        raise ProvisionError(f"snapshots copy the guest's disk files, so they need a hypervisor on this host; "
                             f"{uri[:60]!r} is remote")
    conn = libvirt.open(uri)
    try:
        yield conn
    finally:
        conn.close()


def lookup(conn: Any, domain: str) -> Any:
    """The libvirt domain `domain`, or a ProvisionError saying it is not on the hypervisor."""
    import libvirt

    try:
        return conn.lookupByName(domain)
    except libvirt.libvirtError:
        raise ProvisionError(f"domain {domain}: no such guest on the hypervisor (`provision {domain}` creates "
                             "it)") from None


def disks(conn: Any, dom: Any) -> list[Disk]:
    """Every `device="disk"` disk of the guest (the seed CD-ROM is rebuilt from the spec, never copied)."""
    import libvirt

    found = []
    for element in ET.fromstring(dom.XMLDesc(libvirt.VIR_DOMAIN_XML_INACTIVE)).iterfind("devices/disk"):
        if element.get("device", "disk") != "disk":
            continue
        source, target = element.find("source"), element.find("target")
        if source is None or target is None:
            continue
        volume = source.get("volume")
        if volume is not None:
            path = conn.storagePoolLookupByName(source.get("pool")).storageVolLookupByName(volume).path()
        elif source.get("file"):
            path = source.get("file")
        else:
            raise ProvisionError(f"disk {target.get('dev')}: neither a pool volume nor a file; "
                                 "only those can be snapshotted")
        found.append(Disk(target.get("dev"), volume, Path(path)))
    return found


@contextlib.contextmanager
def paused(dom: Any) -> Iterator[None]:
    """Keep a running guest paused for the block (so its disks do not change while they are copied).

    A paused guest's disks are crash-consistent: what a power cut would leave.
    """
    running = dom.isActive() and dom.state()[0] == 1  # VIR_DOMAIN_RUNNING
    if running:
        dom.suspend()
    try:
        yield
    finally:
        if running:
            dom.resume()


def power_off(dom: Any) -> None:
    """Stop the guest at once: its disks are about to be replaced, so nothing it would flush matters."""
    if dom.isActive():
        dom.destroy()


def start(dom: Any) -> None:
    """Start the guest if it is not running."""
    if not dom.isActive():
        dom.create()
