"""End to end on a real guest (#6): libvirtd + qemu (TCG) boot a Debian guest built from
Debian's packages; cloud-init applies our seed; the post-boot job restores data.tar.gz
and make leaves its marker. A second domain is layered onto that guest
(`depends_on`). Then `provision destroy` leaves nothing behind.

The libvirtd is the session's first hypervisor of tests/sshvirt.py (namespaces of its own).
`bin/provision` runs on it (inside its mount and network namespaces), so the post-boot
job's SSH reaches the guest on the bridge there and libvirtd is local (qemu:///system,
its unix socket): the serial console is logged into the workspace. The API's power
actions reach it over qemu+ssh, as the API reaches a hypervisor. Takes a few minutes
(TCG); select with `-m e2e`, leave out with `-m "not e2e"`.
"""

from __future__ import annotations

import json
import secrets
import subprocess
import time
from pathlib import Path
from typing import Iterator

import pytest

import realvirt
import sshvirt
from api.compute.models import ACTIVE, PAUSED, SHUTOFF
from api.compute.power import power
from e2e import realguest

pytestmark = pytest.mark.e2e

NAME, IP = "e2e-a.test", "198.51.100.10"
LAYERED, LAYERED_IP = "e2e-b.test", "198.51.100.11"
RESTORED, RESTORED_IP = "e2e-c.test", "198.51.100.12"


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
    """A root, domains dir and keys; on the way out every domain in it is destroyed, even after a failure."""
    path = realvirt.traversable_root()
    yield path
    realguest.destroy_all(bridge, path)


def test_real_guest_end_to_end(bridge: sshvirt.Hypervisor, guest_image: realguest.GuestImage, scratch: Path) -> None:
    root, domains, hv, netns = scratch / "root", scratch / "domains", bridge, bridge.netns
    for user in ("tester", "layered"):
        subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", f"{user}@e2e", "-f", str(scratch / user)],
                       check=True)
    realguest.provision(hv, root, domains, "-q", "image", "import", "--name", realguest.IMAGE_NAME,
                        str(guest_image.disk))
    tokens = {NAME: secrets.token_hex(8), LAYERED: secrets.token_hex(8)}
    realguest.write_domain(domains, NAME, IP, guest_image, bridge, "tester",
                           (scratch / "tester.pub").read_text().strip(), tokens[NAME])
    realguest.write_domain(domains, LAYERED, LAYERED_IP, guest_image, bridge, "layered",
                           (scratch / "layered.pub").read_text().strip(), tokens[LAYERED],
                           extra=f"depends_on = {NAME}\n")
    workspace = root / "domains" / NAME
    as_root = realguest.ssh_argv(workspace, NAME, "root", workspace / "keys" / "id_ed25519", IP)

    # render -> terraform apply -> boot with the seed -> cloud-init -> post-boot job, in one command.
    started = time.monotonic()
    result = realguest.provision(hv, root, domains, NAME, check=False)
    elapsed = time.monotonic() - started
    print(f"provision {NAME}: {elapsed:.0f} s to post-boot done")
    assert result.returncode == 0, f"provision failed after {elapsed:.0f} s:\n{result.stdout}\n{result.stderr}"
    [job] = realguest.jobs(hv, root, domains)
    check_job(job, NAME, "setup", workspace, tokens[NAME])
    # The marker, read back over SSH with the engine's key and the pinned host key.
    assert realguest.in_netns(netns, *as_root, f"cat {realguest.marker(NAME)}").stdout == f"{tokens[NAME]}\n"
    assert "status: done" in realguest.in_netns(netns, *as_root, "cloud-init status").stdout
    # cloud-init created users.yaml's user: its own key logs in (same pinned host key).
    as_tester = realguest.ssh_argv(workspace, NAME, "tester", scratch / "tester", IP)
    assert realguest.in_netns(netns, *as_tester, "id -un").stdout.strip() == "tester"

    # The layered domain goes onto the same guest: its user, its address, its site; no VM of its own.
    result = realguest.provision(hv, root, domains, LAYERED, check=False)
    assert result.returncode == 0, f"provision {LAYERED} failed:\n{result.stdout}\n{result.stderr}"
    [layer_job] = [j for j in realguest.jobs(hv, root, domains) if j["domain"] == LAYERED]
    check_job(layer_job, LAYERED, "layer", root / "domains" / LAYERED, tokens[LAYERED])
    assert realguest.in_netns(netns, *as_root, f"cat {realguest.marker(LAYERED)}").stdout == f"{tokens[LAYERED]}\n"
    # Its user logs in with its own key at its own address, which the layer job added (same machine, same host key).
    as_layered = realguest.ssh_argv(workspace, NAME, "layered", scratch / "layered", LAYERED_IP)
    assert realguest.in_netns(netns, *as_layered, "id -un").stdout.strip() == "layered"
    assert realguest.virsh(hv, "list", "--all", "--name").split() == [NAME]
    # Defined in the hypervisor's own /etc/libvirt, not the host's.
    assert f"{NAME}.xml" in hv.run("ls", "/etc/libvirt/qemu").stdout.split()
    assert not Path(f"/etc/libvirt/qemu/{NAME}.xml").exists()

    realguest.provision(hv, root, domains, "-q", "destroy", "--yes", LAYERED)
    assert not (root / "domains" / LAYERED).exists()
    assert "running" in realguest.virsh(hv, "domstate", NAME)  # the machine was the other domain's

    # A site backup of the first guest, set up on a new guest (docs/backups.md).
    check_backup_onto_new_guest(bridge, guest_image, scratch, tokens[NAME])

    # The serial console, which the hypervisor logs into the workspace (the API's os-getConsoleOutput reads it).
    assert "Linux version" in (workspace / "logs" / "console.log").read_text(errors="replace")
    # The API's power actions on a real hypervisor (over qemu+ssh): pause, resume, then an ACPI power-off.
    for action, status, state in (("pause", PAUSED, "paused"), ("unpause", ACTIVE, "running"),
                                  ("stop", SHUTOFF, "shut off")):
        assert power(hv.uri, NAME, action, stop_timeout=120) == status
        assert state in realguest.virsh(hv, "domstate", NAME), action

    realguest.provision(hv, root, domains, "-q", "destroy", "--yes", NAME)
    assert NAME not in realguest.virsh(hv, "list", "--all", "--name").split()
    assert f"{NAME}-" not in realguest.virsh(hv, "vol-list", "provisioner")
    assert not workspace.exists()
    assert not [p.name for p in (root / "pool").glob(f"{NAME}-*")]


def check_job(job: dict[str, object], name: str, kind: str, workspace: Path, token: str) -> None:
    """Done with make's exit status 0, and make's output fetched into the domain's logs/."""
    assert (job["domain"], job["kind"], job["state"], job["exit_code"]) == (name, kind, "done", 0), job
    log = Path(str(job["log_path"]))
    assert log.parent == workspace / "logs"
    assert f"e2e make done: {token}" in log.read_text()


def check_backup_onto_new_guest(bridge: sshvirt.Hypervisor, guest_image: realguest.GuestImage, scratch: Path,
                                token: str) -> None:
    """NAME's site saves data on its guest; `provision backup` brings it back; a new domain restored from that
    version gets NAME's marker and data on its own, fresh guest; then it is destroyed."""
    root, domains, hv, netns = scratch / "root", scratch / "domains", bridge, bridge.netns
    workspace = root / "domains" / NAME
    as_root = realguest.ssh_argv(workspace, NAME, "root", workspace / "keys" / "id_ed25519", IP)
    data = f"{realguest.data_dir(NAME)}/upload.txt"
    content = secrets.token_hex(8)
    realguest.in_netns(netns, *as_root, f"mkdir -p {realguest.data_dir(NAME)} && echo {content} > {data}")
    result = realguest.provision(hv, root, domains, "-q", "backup", NAME, check=False)
    assert result.returncode == 0, f"backup failed:\n{result.stdout}\n{result.stderr}"
    [backup_job] = [j for j in realguest.jobs(hv, root, domains) if j["kind"] == "backup"]
    assert (backup_job["domain"], backup_job["state"], backup_job["exit_code"]) == (NAME, "done", 0), backup_job
    listed = json.loads(realguest.provision(hv, root, domains, "backups", NAME, "--json").stdout)
    assert [v["job_id"] for v in listed] == [backup_job["id"]]

    realguest.write_domain(domains, RESTORED, RESTORED_IP, guest_image, bridge, "tester",
                           (scratch / "tester.pub").read_text().strip(), secrets.token_hex(8))
    realguest.provision(hv, root, domains, "-q", "backup", NAME, "--restore", "latest", "--into", RESTORED)
    started = time.monotonic()
    result = realguest.provision(hv, root, domains, RESTORED, check=False)
    print(f"provision {RESTORED} from {NAME}'s backup: {time.monotonic() - started:.0f} s to post-boot done")
    assert result.returncode == 0, f"provision {RESTORED} failed:\n{result.stdout}\n{result.stderr}"
    [job] = [j for j in realguest.jobs(hv, root, domains) if j["domain"] == RESTORED]
    check_job(job, RESTORED, "setup", root / "domains" / RESTORED, token)
    restored = root / "domains" / RESTORED
    on_new = realguest.ssh_argv(restored, RESTORED, "root", restored / "keys" / "id_ed25519", RESTORED_IP)
    assert realguest.in_netns(netns, *on_new, f"cat {realguest.marker(NAME)} {data}").stdout == f"{token}\n{content}\n"
    assert realguest.in_netns(netns, *on_new, "hostname").stdout.strip() != \
        realguest.in_netns(netns, *as_root, "hostname").stdout.strip()
    realguest.provision(hv, root, domains, "-q", "destroy", "--yes", RESTORED)
    assert realguest.virsh(hv, "list", "--all", "--name").split() == [NAME]
