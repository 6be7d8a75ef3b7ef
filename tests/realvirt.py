"""A real libvirtd for tests, started without systemd inside a network namespace.

Everything it creates (the namespace, the bridge inside it, the daemons) is
removed at the end; nothing is added to the host's own network namespace and
libvirt's `default` network is never started (this host has no network config
package; the fixture refuses to run if an autostart link for it exists).
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import time
import uuid
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

import pytest

URI = "qemu:///system"
BINARIES = ("/usr/sbin/libvirtd", "/usr/sbin/virtlogd", "/usr/sbin/virtlockd", "/usr/bin/qemu-system-x86_64", "/usr/sbin/ip")
SOCKET = Path("/run/libvirt/libvirt-sock")
DEFAULT_NET_AUTOSTART = Path("/etc/libvirt/qemu/networks/autostart/default.xml")
# libvirtd keeps definitions here (persistent) and in /run/libvirt (running
# objects, restored when it restarts): what a session adds is removed after it.
STATE_DIRS = (Path("/etc/libvirt"), Path("/var/lib/libvirt"))
RUN_DIR = Path("/run/libvirt")
# Run qemu as root in the test daemon: as libvirt-qemu, which cannot open this
# host's root-only /dev/kvm, libvirt re-probes QEMU's capabilities on every
# call (about 80 s per domain start). Only written when the host has none.
QEMU_CONF = Path("/etc/libvirt/qemu.conf")


@dataclass(frozen=True)
class Libvirtd:
    """A running libvirtd: its URI and the namespace its guests' bridges live in."""

    uri: str
    netns: str
    bridge: str


def skip_reason() -> str | None:
    """Why the real-libvirt tier cannot run here, or None."""
    if os.geteuid() != 0:
        return "needs root (starts libvirtd and a network namespace)"
    missing = [b for b in BINARIES if not Path(b).exists()]
    if missing:
        return f"missing {', '.join(missing)}: run `make test` (bin/install-deps --test)"
    if DEFAULT_NET_AUTOSTART.exists():
        return f"{DEFAULT_NET_AUTOSTART} exists: libvirt's default network would start on the host"
    return None


def _sh(*argv: str) -> None:
    subprocess.run(argv, check=True, capture_output=True)


@contextmanager
def libvirtd(bridge: str = "br0", bridge_address: str | None = None) -> Iterator[Libvirtd]:
    """Start virtlogd + libvirtd inside a fresh namespace holding `bridge`; stop and remove all after."""
    reason = skip_reason()
    if reason:
        pytest.skip(reason)
    if SOCKET.exists():
        if _answers(SOCKET):
            pytest.skip(f"a libvirtd is already running ({SOCKET}); the test starts its own")
        _remove_leftovers()
    netns = f"provtest-{uuid.uuid4().hex[:8]}"
    before = _state_files()
    wrote_conf = not QEMU_CONF.exists()
    if wrote_conf:
        QEMU_CONF.write_text('# written by provisioner\'s tests for their own libvirtd\nuser = "root"\ngroup = "root"\n')
    for directory in ("/var/log/libvirt", "/var/lib/libvirt", "/run/libvirt"):
        os.makedirs(directory, exist_ok=True)
    _sh("ip", "netns", "add", netns)
    pids: list[int] = []
    try:
        ns = ("ip", "netns", "exec", netns)
        _sh(*ns, "ip", "link", "set", "lo", "up")
        _sh(*ns, "ip", "link", "add", bridge, "type", "bridge")
        if bridge_address:
            _sh(*ns, "ip", "address", "add", bridge_address, "dev", bridge)
        _sh(*ns, "ip", "link", "set", bridge, "up")
        for daemon in ("virtlogd", "virtlockd", "libvirtd"):
            pids.append(subprocess.Popen([*ns, f"/usr/sbin/{daemon}"], stdout=subprocess.DEVNULL,
                                         stderr=subprocess.DEVNULL, start_new_session=True).pid)
        deadline = time.monotonic() + 30
        while subprocess.run(["virsh", "-c", URI, "version"], capture_output=True).returncode != 0:
            if time.monotonic() > deadline:
                raise RuntimeError("libvirtd did not come up in 30 s (see /var/log/libvirt/libvirtd.log)")
            time.sleep(0.2)
        yield Libvirtd(URI, netns, bridge)
    finally:
        # Guests outlive libvirtd by design: stop whatever still runs in the namespace.
        leftover = subprocess.run(["ip", "netns", "pids", netns], capture_output=True, text=True).stdout.split()
        for pid in reversed(pids):
            try:
                os.killpg(pid, signal.SIGTERM)
            except ProcessLookupError:
                pass
        for pid in leftover:
            try:
                os.kill(int(pid), signal.SIGKILL)
            except ProcessLookupError:
                pass
        time.sleep(0.5)
        for pid in pids:
            try:
                os.killpg(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        subprocess.run(["ip", "netns", "del", netns], capture_output=True)
        shutil.rmtree(RUN_DIR, ignore_errors=True)
        if wrote_conf:
            QEMU_CONF.unlink(missing_ok=True)
        for path in sorted(_state_files() - before, reverse=True):
            if path.is_file() or path.is_symlink():
                path.unlink()


def _answers(socket_path: Path) -> bool:
    """Whether a daemon listens on the unix socket (a socket file alone may be left by a killed run)."""
    with socket.socket(socket.AF_UNIX) as probe:
        try:
            probe.connect(str(socket_path))
        except (ConnectionRefusedError, FileNotFoundError):
            return False
    return True


def _remove_leftovers() -> None:
    """What a test run killed before its clean-up left: libvirtd's run directory (no daemon answers on its
    socket) and this fixture's own namespaces (provtest-*) with no process left in them."""
    shutil.rmtree(RUN_DIR, ignore_errors=True)
    listed = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True).stdout.split("\n")
    for netns in (line.split()[0] for line in listed if line.startswith("provtest-")):
        if not subprocess.run(["ip", "netns", "pids", netns], capture_output=True, text=True).stdout.strip():
            subprocess.run(["ip", "netns", "del", netns], capture_output=True)


def _state_files() -> set[Path]:
    return {p for d in STATE_DIRS if d.exists() for p in d.rglob("*") if p.is_file() or p.is_symlink()}


def traversable_root() -> Path:
    """A root qemu (running as libvirt-qemu) can traverse: pytest's tmp dirs are 0700."""
    path = Path(subprocess.run(["mktemp", "-d", "/var/tmp/provisioner-test.XXXXXX"], check=True,
                               capture_output=True, text=True).stdout.strip())
    path.chmod(0o755)
    return path


def remove(path: Path) -> None:
    """Remove a traversable_root()."""
    shutil.rmtree(path, ignore_errors=True)


def destroy_shared(root: Path) -> None:
    """Destroy the shared workspaces (pool, base images): libvirtd keeps them across restarts."""
    from provisioner.terraform.workspace import Workspace

    for directory in root.glob("shared/*/terraform"):
        Workspace(directory, root / "terraform" / "terraformrc", directory.parent / "logs" / "terraform.log").destroy()
