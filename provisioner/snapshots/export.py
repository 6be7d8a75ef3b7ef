"""A guest's root disk as one standalone qcow2 file (Nova's createImage / createBackup).

The root disk is a qcow2 overlay on an image store version; `qemu-img convert`
flattens the two into a file that needs no backing image, while a running
guest is paused (as a snapshot does). On the simulated hypervisor the disk has
no file until something writes one: it then holds exactly its base image.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

from provisioner.errors import ProvisionError
from provisioner.layout import Layout, is_simulated
from provisioner.snapshots import guest
from provisioner.snapshots.operations import find_domain
from provisioner.snapshots.store import RESERVE_BYTES

# A flattened disk of a few GiB takes seconds; this only bounds a hung qemu-img.
CONVERT_TIMEOUT = 3600


def export_root_disk(layout: Layout, name: str, destination: Path) -> None:
    """Write domain `name`'s root disk, flattened, as the new qcow2 file `destination`; ProvisionError if not."""
    domain = find_domain(layout, name)
    # A guest booted from a volume has no image (null): its first disk is the volume's file.
    base = (json.loads((domain.workspace / "spec.json").read_text()).get("image") or {}).get("source")
    with domain.lock(wait=True), guest.connection(domain.libvirt_uri) as conn:
        dom = guest.lookup(conn, name)
        disks = guest.disks(conn, dom)
        if not disks:
            raise ProvisionError(f"domain {name} has no disk to copy")
        source = disks[0].path
        if not source.is_file():
            if not is_simulated(domain.libvirt_uri) or not isinstance(base, str) or not Path(base).is_file():
                raise ProvisionError(f"disk {disks[0].target} of {name}: {source} is not a file on this host")
            source = Path(base)
        needed = source.stat().st_size + (Path(base).stat().st_size if isinstance(base, str) and
                                          Path(base).is_file() else 0) + RESERVE_BYTES
        free = shutil.disk_usage(destination.parent).free
        if free < needed:
            raise ProvisionError(f"{destination.parent}: copying the disk of {name} needs up to {needed} bytes, "
                                 f"only {free} are free")
        with guest.paused(dom):
            # -U: QEMU holds a write lock on a running guest's disk; it is paused, so reading it is safe.
            done = subprocess.run(["qemu-img", "convert", "-U", "-O", "qcow2", str(source), str(destination)],
                                  capture_output=True, text=True, timeout=CONVERT_TIMEOUT)
    if done.returncode != 0:
        destination.unlink(missing_ok=True)
        raise ProvisionError(f"qemu-img convert of {name}'s disk failed: {done.stderr.strip()[-300:]}")
