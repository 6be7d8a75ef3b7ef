"""A whole-guest snapshot on a real guest (docs/snapshots.md): a file written in the guest before
`provision snapshot` is back after `provision restore`, though it was deleted in between.

The same libvirtd, bridge and guest image as test_real_guest.py (one more real guest, booted once).
Select with `-m e2e`.
"""

from __future__ import annotations

import json
import secrets
import subprocess
from pathlib import Path
from typing import Iterator

import pytest

import realvirt
import sshvirt
from e2e import realguest

pytestmark = pytest.mark.e2e

NAME, IP = "e2e-s.test", "198.51.100.13"
FILE = "/root/snapshot-marker"


@pytest.fixture(scope="module")
def guest_image() -> realguest.GuestImage:
    return realguest.build_image()


@pytest.fixture
def bridge(real_libvirtd: sshvirt.Hypervisor) -> Iterator[sshvirt.Hypervisor]:
    """The session's hypervisor, its bridge with the guests' gateway address for the duration of the test."""
    ns = ("ip", "netns", "exec", real_libvirtd.netns)
    subprocess.run([*ns, "ip", "address", "add", realguest.BRIDGE_ADDRESS, "dev", real_libvirtd.bridge], check=True)
    yield real_libvirtd
    subprocess.run([*ns, "ip", "address", "del", realguest.BRIDGE_ADDRESS, "dev", real_libvirtd.bridge])


@pytest.fixture
def scratch(bridge: sshvirt.Hypervisor) -> Iterator[Path]:
    """A root and domains dir; on the way out every domain in it is destroyed, even after a failure."""
    path = realvirt.traversable_root()
    yield path
    realguest.destroy_all(bridge, path)


def test_a_file_written_before_the_snapshot_is_back_after_restore(bridge: sshvirt.Hypervisor,
                                                                  guest_image: realguest.GuestImage,
                                                                  scratch: Path) -> None:
    root, domains, hv, netns = scratch / "root", scratch / "domains", bridge, bridge.netns
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "tester@e2e", "-f", str(scratch / "tester")],
                   check=True)
    realguest.provision(hv, root, domains, "-q", "image", "import", "--name", realguest.IMAGE_NAME,
                        str(guest_image.disk))
    realguest.write_domain(domains, NAME, IP, guest_image, bridge, "tester",
                           (scratch / "tester.pub").read_text().strip(), secrets.token_hex(8))
    result = realguest.provision(hv, root, domains, NAME, check=False)
    assert result.returncode == 0, f"provision failed:\n{result.stdout}\n{result.stderr}"
    workspace = root / "domains" / NAME
    as_root = realguest.ssh_argv(workspace, NAME, "root", workspace / "keys" / "id_ed25519", IP)
    token = secrets.token_hex(8)
    # sync: a paused guest's disk is what a power cut would leave; the file must have reached it.
    realguest.in_netns(netns, *as_root, f"echo {token} > {FILE} && sync")

    realguest.provision(hv, root, domains, "-q", "snapshot", NAME, "before")
    assert "running" in realguest.virsh(hv, "domstate", NAME)  # resumed after the copy
    [snapshot] = json.loads(realguest.provision(hv, root, domains, "snapshots", NAME, "--json").stdout)
    vda = next(d for d in snapshot["disks"] if d["target"] == "vda")
    assert vda["size"] > 0 and (workspace / "snapshots" / "before" / vda["file"]).stat().st_size == vda["size"]

    realguest.in_netns(netns, *as_root, f"rm {FILE} && sync")
    assert realguest.in_netns(netns, *as_root, f"test -e {FILE}", check=False).returncode == 1

    realguest.provision(hv, root, domains, "-q", "restore", NAME, "before")
    realguest.wait_ssh(netns, as_root, timeout=600)
    assert realguest.in_netns(netns, *as_root, f"cat {FILE}").stdout == f"{token}\n"
    # The domain is still what Terraform applied.
    assert "unchanged" in realguest.provision(hv, root, domains, NAME).stdout
