"""Helpers for the e2e tier: the guest image, a real domain directory, commands on the hypervisor.

Shared by tests/e2e/test_real_guest.py and bench/e2e.py. Nothing here is a
stand-in: the guest is a Debian system booted by qemu (TCG) under a hypervisor of
tests/sshvirt.py, reached over the bridge inside that hypervisor's network namespace.

The engine runs *on* the hypervisor (inside its mount and network namespaces, with the local
URI qemu:///system): snapshots copy the guest's disk files and the serial console is logged
into the workspace only where libvirtd is local, and the post-boot job's SSH needs the bridge.
"""

from __future__ import annotations

import io
import json
import os
import shutil
import subprocess
import sys
import tarfile
import time
from dataclasses import dataclass
from pathlib import Path

import pytest

import sshvirt

REPO = Path(__file__).resolve().parents[2]
BUILD_SCRIPT = REPO / "tests" / "e2e" / "build-guest-image"
PROVISION = REPO / "bin" / "provision"
IMAGE_NAME = "e2e-debian"
# TEST-NET-2, only ever configured inside the test's namespace.
BRIDGE_ADDRESS = "198.51.100.1/24"
GATEWAY = "198.51.100.1"
MARKER_DIR = "/var/lib/e2e"
# Same shape as the measured probe guest: 2 vCPUs under TCG.
CPUS = 2
MEMORY = 1024
CMDLINE = "root=/dev/vda console=ttyS0"
# Where build-guest-image keeps the guest's disk, kernel and initrd.
IMAGE_CACHE = Path("/var/cache/provisioner-e2e")
# Bounds for every wait, well inside CI's budget (the probe guest reached SSH in ~143 s and
# cloud-init done in ~179 s); and the image cache allowed, as an operator would, since the
# domains name their kernel and initrd there.
ENGINE_ENV = {"PROVISION_POSTBOOT_SSH_TIMEOUT": "600", "PROVISION_POSTBOOT_CLOUD_INIT_TIMEOUT": "600",
              "PROVISION_POSTBOOT_MAKE_TIMEOUT": "300", "PROVISION_IMAGE_DIRS": str(IMAGE_CACHE)}


@dataclass(frozen=True)
class GuestImage:
    directory: Path

    @property
    def disk(self) -> Path:
        return self.directory / "disk.qcow2"

    @property
    def kernel(self) -> Path:
        return self.directory / "vmlinuz"

    @property
    def initrd(self) -> Path:
        return self.directory / "initrd.img"


def skip_reason() -> str | None:
    """Why this machine cannot run the e2e tier, in one line, or None."""
    reason = sshvirt.skip_reason()
    if reason:
        return f"e2e: {reason}"
    if not shutil.which("debootstrap"):
        return "e2e: debootstrap is missing: run bin/install-deps --test"
    return None


def build_image() -> GuestImage:
    """The cached guest image, built first if needed; skips (never passes) when no mirror is reachable."""
    reason = skip_reason()
    if reason:
        pytest.skip(reason)
    result = subprocess.run([str(BUILD_SCRIPT), str(IMAGE_CACHE)], capture_output=True, text=True, timeout=1800)
    if result.returncode != 0:
        last = (result.stderr.strip().splitlines() or ["(no output)"])[-1]
        if "could not fetch" in last or "has no source" in last:
            pytest.skip(f"e2e: cannot build the guest image here: {last}")
        raise RuntimeError(f"build-guest-image failed:\n{result.stderr}")
    return GuestImage(Path(result.stdout.strip().splitlines()[-1]))


def marker(name: str) -> str:
    """Where `name`'s site archive leaves its token on the guest."""
    return f"{MARKER_DIR}/{name}"


def data_dir(name: str) -> str:
    """Where `name`'s site keeps its data on the guest (what its `backup` target saves)."""
    return f"{MARKER_DIR}/{name}.data"


def site_archive(name: str, token: str) -> bytes:
    """data.tar.gz whose Makefile leaves `token` in marker(name) and says so in make's log.

    Its `backup` target (docs/backups.md) saves the Makefile and data_dir(name)
    as ./data into $BACKUP_ARCHIVE; the default target puts a ./data back.
    """
    makefile = (
        "# e2e: leaves a marker the test reads back over SSH.\n"
        "all:\n"
        f"\tinstall -d -m 0755 {MARKER_DIR}\n"
        f"\tprintf '%s\\n' '{token}' > {marker(name)}\n"
        f"\tif [ -d data ]; then install -d -m 0755 {data_dir(name)} && cp -R data/. {data_dir(name)}/; fi\n"
        f"\t@echo 'e2e make done: {token}'\n"
        "backup:\n"
        "\trm -rf .stage && mkdir .stage && cp Makefile .stage/\n"
        f"\tif [ -d {data_dir(name)} ]; then cp -R {data_dir(name)} .stage/data; fi\n"
        "\ttar -czf \"$$BACKUP_ARCHIVE\" -C .stage .\n"
        "\trm -rf .stage\n"
        ".PHONY: all backup\n"
    ).encode()
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as tar:
        info = tarfile.TarInfo("./Makefile")
        info.size, info.mode, info.mtime = len(makefile), 0o644, 946684800
        tar.addfile(info, io.BytesIO(makefile))
    return buffer.getvalue()


def write_domain(domains: Path, name: str, ip: str, image: GuestImage, hv: sshvirt.Hypervisor,
                 user: str, user_key: str, token: str, extra: str = "") -> Path:
    """A real domain directory: static IP on the hypervisor's bridge, TCG, no apt, a test user."""
    directory = domains / name
    directory.mkdir(parents=True)
    (directory / "provision.conf").write_text(
        f"# e2e domain: the image already has at and make; the guest is offline.\n"
        f"image = {IMAGE_NAME}\n"
        f"ips = {ip}/24\ngateway = {GATEWAY}\n"
        # The image's own size: cloud-init's resize_rootfs then has nothing to do.
        f"size = {2 * 1024**3}\n"
        f"memory = {MEMORY}\ncpus = {CPUS}\n"
        f"domain_type = qemu\nlibvirt_uri = {sshvirt.LOCAL_URI}\nbridge = {hv.bridge}\n"
        f"install_packages = no\nautostart = no\n"
        f"kernel = {image.kernel}\ninitrd = {image.initrd}\ncmdline = {CMDLINE}\n"
        f"{extra}")
    (directory / "users.yaml").write_text(
        "users:\n"
        f"  - name: {user}\n"
        "    shell: /bin/bash\n"
        "    lock_passwd: true\n"
        f"    ssh_authorized_keys: ['{user_key}']\n")
    (directory / "data.tar.gz").write_bytes(site_archive(name, token))
    return directory


def in_netns(netns: str, *argv: str, timeout: float = 120, env: dict[str, str] | None = None,
             check: bool = True) -> subprocess.CompletedProcess[str]:
    """Run argv inside a network namespace only (SSH into a guest on the bridge there)."""
    return subprocess.run(["ip", "netns", "exec", netns, *argv], capture_output=True, text=True,
                          timeout=timeout, env=env, check=check)


def on_hypervisor(hv: sshvirt.Hypervisor, *argv: str, timeout: float = 120, env: dict[str, str] | None = None,
                  check: bool = True) -> subprocess.CompletedProcess[str]:
    """Run argv on the hypervisor: inside its mount namespace (its libvirtd's socket) and network namespace."""
    return subprocess.run([*hv.enter, *argv], capture_output=True, text=True, timeout=timeout, env=env,
                          check=check)


def provision(hv: sshvirt.Hypervisor, root: Path, domains: Path, *args: str, timeout: float = 1200,
              check: bool = True) -> subprocess.CompletedProcess[str]:
    """bin/provision on the hypervisor: qemu:///system is its libvirtd, and the post-boot job's SSH reaches
    the guest on its bridge."""
    env = {**os.environ, **ENGINE_ENV}
    return on_hypervisor(hv, str(PROVISION), "--root", str(root), "--domains", str(domains), *args,
                         timeout=timeout, env=env, check=check)


def ssh_argv(workspace: Path, name: str, user: str, key: Path, address: str) -> list[str]:
    """ssh with the engine's pinned known_hosts for `name`: any other host key is refused."""
    return ["ssh", "-F", "none", "-i", str(key), "-o", "IdentitiesOnly=yes",
            "-o", f"UserKnownHostsFile={workspace / 'ssh' / 'known_hosts'}", "-o", f"HostKeyAlias={name}",
            "-o", "StrictHostKeyChecking=yes", "-o", "BatchMode=yes", "-o", "ConnectTimeout=10",
            f"{user}@{address}"]


def wait_ssh(netns: str, argv: list[str], timeout: float) -> float:
    """Poll until `argv true` logs in; the seconds it took."""
    start = time.monotonic()
    while in_netns(netns, *argv, "true", timeout=30, check=False).returncode != 0:
        if time.monotonic() - start > timeout:
            raise TimeoutError(f"no SSH login within {timeout:.0f} s")
        time.sleep(1)
    return time.monotonic() - start


def virsh(hv: sshvirt.Hypervisor, *args: str) -> str:
    """virsh against the hypervisor's libvirtd, on the hypervisor."""
    return hv.run("virsh", "-c", sshvirt.LOCAL_URI, *args).stdout


# realvirt.destroy_shared, run on the hypervisor: the shared workspaces' provider names its local URI.
DESTROY_SHARED = "import sys, pathlib, realvirt; realvirt.destroy_shared(pathlib.Path(sys.argv[1]))"


def destroy_all(hv: sshvirt.Hypervisor, scratch: Path) -> None:
    """Destroy every domain of scratch/domains, then the shared pool and base image, then remove scratch.

    Runs after failures too: a domain that was never applied has no workspace,
    a shared workspace that was never applied has no state, and either is skipped.
    """
    domains, root = scratch / "domains", scratch / "root"
    try:
        for directory in sorted(domains.glob("*"), reverse=True):  # dependants first (a-, b- names)
            if (root / "domains" / directory.name).exists():
                provision(hv, root, domains, "-q", "destroy", "--yes", directory.name, check=False)
        if any(root.glob("shared/*/terraform/terraform.tfstate")):
            on_hypervisor(hv, sys.executable, "-c", DESTROY_SHARED, str(root), timeout=600,
                          env={**os.environ, "PYTHONPATH": str(REPO / "tests")})
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


def jobs(hv: sshvirt.Hypervisor, root: Path, domains: Path) -> list[dict[str, object]]:
    """`provision jobs --json`, parsed."""
    return json.loads(provision(hv, root, domains, "jobs", "--json").stdout)
