"""Take, restore and delete a domain's snapshots, under the domain's lock.

A snapshot pauses a running guest (libvirt suspend), copies every disk file
with its sha256, and resumes it: this works the same on libvirt's test driver
and on real QEMU, and leaves the domain's XML exactly as Terraform knows it
(an external libvirt snapshot would point the disks at new overlay files,
which the next `terraform plan` would see as drift; block-commit and internal
qcow2 snapshots are not available on the test driver).
"""

from __future__ import annotations

import json
import os
import shutil
import time
from dataclasses import dataclass
from pathlib import Path

from provisioner.errors import ProvisionError
from provisioner.layer_record import read_layer
from provisioner.layout import Layout, is_simulated
from provisioner.locks import exclusive
from provisioner.snapshots import guest
from provisioner.snapshots.store import DiskCopy, Snapshot, SnapshotStore, copy_hashed, file_sha256, validate_name
from provisioner.spec.names import validate_domain_name


@dataclass(frozen=True)
class Domain:
    """A provisioned domain's workspace and the hypervisor it runs on."""

    name: str
    workspace: Path
    libvirt_uri: str

    @property
    def store(self) -> SnapshotStore:
        """Its snapshots."""
        return SnapshotStore(self.workspace, self.name)

    def lock(self, wait: bool = False):  # type: ignore[no-untyped-def]
        """The domain's apply lock: while `provision DOMAIN` runs, its disks are Terraform's."""
        return exclusive(self.workspace / "lock", f"domain {self.name}", wait=wait)


def find_domain(layout: Layout, name: str) -> Domain:
    """The provisioned domain `name`; ProvisionError if there is none or it has no VM of its own."""
    validate_domain_name(name)
    workspace = layout.domain_dir(name)
    if read_layer(workspace) is not None:
        raise ProvisionError(f"domain {name} is layered on another machine: it has no disks of its own to snapshot")
    try:
        spec = json.loads((workspace / "spec.json").read_text())
    except FileNotFoundError:
        raise ProvisionError(f"no domain {name!r} under {layout.domains} (`provision status` lists them)") from None
    except ValueError:
        raise ProvisionError(f"{workspace / 'spec.json'}: not JSON; `provision render {name}` rewrites it") from None
    uri = spec.get("libvirt_uri")
    if not isinstance(uri, str) or not uri:
        raise ProvisionError(f"{workspace / 'spec.json'}: no libvirt_uri; `provision render {name}` rewrites it")
    return Domain(name, workspace, uri)


def take(domain: Domain, name: str | None) -> Snapshot:
    """Snapshot every disk of the guest (paused while copied if it runs); the new snapshot.

    Refused while the domain is being applied, if the name is taken, past the
    count limit, or without room for the copies; a failure leaves nothing.
    """
    from provisioner.snapshots.store import default_name

    name = validate_name(name) if name is not None else default_name()
    store = domain.store
    with domain.lock(), guest.connection(domain.libvirt_uri) as conn:
        dom = guest.lookup(conn, domain.name)
        disks = guest.disks(conn, dom)
        simulated = is_simulated(domain.libvirt_uri)
        for disk in disks:
            if not disk.path.is_file() and not simulated:
                raise ProvisionError(f"disk {disk.target} of {domain.name}: {disk.path} is not a file on this host")
        store.remove_partials()
        store.check_room(name, (d.path.stat().st_size for d in disks if d.path.is_file()))
        partial = store.partial(name)
        try:
            was_running = bool(dom.isActive())
            copies = []
            with guest.paused(dom):
                for disk in disks:
                    copies.append(_copy_out(disk, partial))
            created = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
            snapshot = Snapshot(name, domain.name, created, domain.libvirt_uri, was_running, tuple(copies), partial)
            return store.commit(partial, snapshot)
        except BaseException:
            store.remove_partials()
            raise


def _copy_out(disk: guest.Disk, partial: Path) -> DiskCopy:
    # A simulated disk holds no bytes until something writes its file: recorded as such.
    if not disk.path.is_file():
        return DiskCopy(disk.target, disk.volume, str(disk.path), None, 0, None)
    file = f"{disk.target}.img"
    size, digest = copy_hashed(disk.path, partial / file)
    return DiskCopy(disk.target, disk.volume, str(disk.path), file, size, digest)


def restore(domain: Domain, name: str) -> Snapshot:
    """Stop the guest, put snapshot `name`'s disks back, start it; the snapshot restored.

    Every copy's sha256 is checked and the guest's disks must be the
    snapshot's (same devices, volumes and files) before anything is stopped.
    """
    with domain.lock(), guest.connection(domain.libvirt_uri) as conn:
        snapshot = domain.store.get(name)
        dom = guest.lookup(conn, domain.name)
        current = {(d.target, d.volume, str(d.path)) for d in guest.disks(conn, dom)}
        recorded = {(d.target, d.volume, d.path) for d in snapshot.disks}
        if current != recorded:
            raise ProvisionError(f"snapshot {name} of {domain.name} is of other disks than the guest has now "
                                 "(its image, disks or volumes changed since): it cannot be put back")
        for disk in snapshot.disks:
            if disk.file is not None and file_sha256(snapshot.directory / disk.file) != disk.sha256:
                raise ProvisionError(f"{snapshot.directory / disk.file}: its sha256 is not the manifest's; "
                                     "the snapshot is damaged and was not restored")
        _check_room_to_restore(snapshot)
        guest.power_off(dom)
        for disk in snapshot.disks:
            _copy_in(snapshot, disk)
        guest.start(dom)
    return snapshot


def _check_room_to_restore(snapshot: Snapshot) -> None:
    # Each disk is copied next to its file and renamed over it: the old and the new bytes exist at once.
    for disk in snapshot.disks:
        if disk.file is None:
            continue
        directory = Path(disk.path).parent
        free = shutil.disk_usage(directory).free if directory.is_dir() else 0
        if free < disk.size:
            raise ProvisionError(f"{directory}: restoring disk {disk.target} of {snapshot.domain} needs "
                                 f"{disk.size} bytes, only {free} are free: nothing was changed")


def _copy_in(snapshot: Snapshot, disk: DiskCopy) -> None:
    target = Path(disk.path)
    if disk.file is None:
        target.unlink(missing_ok=True)  # a simulated disk that had no bytes yet
        return
    # Keep the owner and mode libvirt gave the volume (QEMU may run as another user).
    try:
        info = target.stat()
        owner = (info.st_uid, info.st_gid, info.st_mode & 0o7777)
    except FileNotFoundError:
        owner = None
    temporary = target.with_name(f".{target.name}.restore-{os.getpid()}")
    try:
        copy_hashed(snapshot.directory / disk.file, temporary)
        if owner is not None:
            os.chown(temporary, owner[0], owner[1])
            os.chmod(temporary, owner[2])
        os.replace(temporary, target)
    finally:
        temporary.unlink(missing_ok=True)


def delete(domain: Domain, name: str) -> Snapshot:
    """Remove snapshot `name`."""
    with domain.lock(wait=True):
        return domain.store.delete(name)
