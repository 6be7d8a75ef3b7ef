"""Several real libvirtd, each reached over qemu+ssh, each in namespaces of its own.

Every hypervisor gets a network namespace (loopback, a guest bridge) and a private mount
namespace in which a tmpfs covers /run and temporary directories are bound over /etc/libvirt,
/var/lib/libvirt, /var/cache/libvirt and /var/log/libvirt: its libvirtd shares no state with
the others nor with a libvirtd the host runs, and reads or writes none of the host's libvirt
state. In the same namespaces runs a real sshd (Debian's /usr/sbin/sshd, its own host key and
configuration, root login by one generated key only) on 127.0.0.1:22.

The caller reaches it as
``qemu+ssh://root@<name>/system?keyfile=<key>&command=<wrapper>&no_tty=1``: libvirt runs
`command` instead of `ssh`, and the wrapper runs ssh with `-F <our ssh_config>`, so no user or
system ssh configuration applies. There each host `<name>` has a known_hosts file holding
exactly its sshd's host key, StrictHostKeyChecking yes, and a ProxyCommand that enters the
hypervisor's network namespace and connects to its sshd there (fdpass_connect.py, handing the
socket to ssh). Why a ProxyCommand rather than a third "control" namespace joined by veth
pairs: the URI then works from any process, in-process `provisioner.cli.main`, Terraform's
provider, an API server, without moving the caller into a namespace; and the TCP traffic
never leaves the hypervisor's own namespace (its loopback), so nothing is routed anywhere.

A test that needs a hypervisor on *this* host (a local URI: snapshots copy the guest's disk files, the
serial console is logged into the engine's workspace) runs its command inside the hypervisor's
namespaces instead (`Hypervisor.enter` + argv, `LOCAL_URI`): libvirtd's unix socket is on the private
/run there, and everything but libvirt's own directories (/run, /etc/libvirt, /var/lib/libvirt,
/var/cache/libvirt, /var/log/libvirt) is the host's file system, so the engine's root, the images and
the workspace are the same paths on both sides; its guests' bridge is in the same network namespace.

`Hypervisor.private(path)` makes `path` an empty directory in the hypervisor's view, as on a
remote host that has none of the caller's files: a test hides its scratch directory so that
whatever the engine needs on the hypervisor has to travel over the connection.

Everything (daemons, guests, namespaces, mounts, temporary directories) is removed at the end,
also when the test fails: the mounts live only in the hypervisor's mount namespace, which
disappears with its last process.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterator

import pytest

BINARIES = ("/usr/sbin/libvirtd", "/usr/sbin/virtlogd", "/usr/sbin/virtlockd", "/usr/bin/qemu-system-x86_64",
            "/usr/sbin/ip", "/usr/sbin/sshd", "/usr/bin/ssh", "/usr/bin/ssh-keygen", "/usr/bin/nsenter",
            "/usr/bin/unshare", "/usr/bin/virt-ssh-helper", "/usr/bin/virsh")
FDPASS = Path(__file__).with_name("fdpass_connect.py")
# Host directories the hypervisor sees replaced by its own (mount points: they must exist).
PRIVATE_DIRS = {"etc": "/etc/libvirt", "lib": "/var/lib/libvirt", "cache": "/var/cache/libvirt",
                "log": "/var/log/libvirt"}
# Where the hypervisor's temporary directory appears inside its mount namespace: on the private
# /run tmpfs, so sshd's StrictModes accepts authorized_keys (the real path is below world-writable /tmp).
INNER = "/run/sshvirt"
START_TIMEOUT = 60  # libvirtd probes QEMU's capabilities at its first start (a fresh cache each time)
# Run qemu as root: as libvirt-qemu, which cannot open this host's root-only /dev/kvm, libvirt re-probes
# QEMU's capabilities on every call (about 80 s per domain start).
QEMU_CONF = 'user = "root"\ngroup = "root"\n'
# The hypervisor's own libvirtd, for a command run inside its namespaces (`Hypervisor.enter`).
LOCAL_URI = "qemu:///system"
LIBVIRTD_CONF = 'log_outputs = "3:file:/var/log/libvirt/libvirtd.log"\n'
# A holder process keeps the namespaces alive; it sets the mounts up first, then sleeps.
# /run/sshd is sshd's privilege separation directory.
HOLDER_SCRIPT = "\n".join((
    "set -e",
    "mount -t tmpfs -o mode=0755 sshvirt-run /run",
    f"mkdir -p /run/libvirt /run/lock /run/sshd {INNER}",
    f'mount --bind "$1" {INNER}',
    *(f'mount --bind "$1/{sub}" {target}' for sub, target in PRIVATE_DIRS.items()),
    "exec sleep infinity",
))


@dataclass
class Hypervisor:
    """One libvirtd + sshd pair: its qemu+ssh URI and the namespaces it lives in."""

    name: str  # the ssh host name in the URI (a label our ssh_config resolves)
    uri: str
    netns: str
    bridge: str
    directory: Path  # its state: libvirt's directories, sshd's keys and config, logs
    known_hosts: Path  # exactly its sshd's host key: tests may swap it to check pinning
    keyfile: Path  # the client key root logs in with (the URI's keyfile=)
    holder: int = 0  # pid of a process in its mount and network namespaces
    pids: list[int] = field(default_factory=list)

    @property
    def enter(self) -> list[str]:
        """The argv prefix that runs a command inside the hypervisor's mount and network namespaces."""
        return ["nsenter", "--target", str(self.holder), "--mount", "--net", "--"]

    def run(self, *argv: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        """Run argv inside the hypervisor's namespaces (as if on that host)."""
        return subprocess.run([*self.enter, *argv], check=check, capture_output=True, text=True)

    @contextmanager
    def private(self, path: Path) -> Iterator[None]:
        """Within the block, `path` (an existing directory) is empty in this hypervisor's view."""
        inner = self.directory / "private" / uuid.uuid4().hex[:8]
        inner.mkdir(parents=True)
        self.run("mount", "--bind", f"{INNER}/private/{inner.name}", str(path))
        try:
            yield
        finally:
            # Lazily: a guest the test failed to destroy may still hold a file open there.
            self.run("umount", "--lazy", str(path), check=False)
            shutil.rmtree(inner, ignore_errors=True)

    @contextmanager
    def unreachable(self) -> Iterator[None]:
        """Within the block the host is gone from the network: its namespace's loopback is down."""
        _sh("ip", "netns", "exec", self.netns, "ip", "link", "set", "lo", "down")
        try:
            yield
        finally:
            _sh("ip", "netns", "exec", self.netns, "ip", "link", "set", "lo", "up")

    def log(self) -> str:
        """The tail of its daemons' logs, for assertion messages."""
        parts = []
        for path in sorted((self.directory / "log").glob("*.log")):
            parts.append(f"--- {path.name}\n" + "\n".join(path.read_text(errors="replace").splitlines()[-20:]))
        return "\n".join(parts)


def skip_reason() -> str | None:
    """Why these hypervisors cannot run here, or None."""
    if os.geteuid() != 0:
        return "needs root (starts libvirtd, sshd and namespaces)"
    missing = [b for b in BINARIES if not Path(b).exists()]
    if missing:
        return f"missing {', '.join(missing)}: run `make test` (bin/install-deps --test)"
    return None


def _sh(*argv: str) -> str:
    return subprocess.run(argv, check=True, capture_output=True, text=True).stdout


def keypair(path: Path, comment: str) -> str:
    """Generate an ed25519 key at `path` (no passphrase); return the public key line."""
    _sh("ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", comment, "-f", str(path))
    return path.with_name(path.name + ".pub").read_text().strip()


def _sshd_config(inner: str) -> str:
    return "\n".join((
        "ListenAddress 127.0.0.1:22",
        f"HostKey {inner}/ssh/host_ed25519_key",
        f"AuthorizedKeysFile {inner}/ssh/authorized_keys",
        f"PidFile {inner}/ssh/sshd.pid",
        "AllowUsers root",
        "PermitRootLogin prohibit-password",
        "AuthenticationMethods publickey",
        "PubkeyAuthentication yes",
        "PasswordAuthentication no",
        "KbdInteractiveAuthentication no",
        "UsePAM no",
        "StrictModes yes",
        "X11Forwarding no",
        "AllowTcpForwarding no",
        "AllowAgentForwarding no",
        "PermitTunnel no",
        "",
    ))


def _ssh_config_block(hv: Hypervisor, python: str) -> str:
    return "\n".join((
        f"Host {hv.name}",
        f"  ProxyCommand /usr/sbin/ip netns exec {hv.netns} {python} {FDPASS} 127.0.0.1 22",
        "  ProxyUseFdpass yes",
        f"  UserKnownHostsFile {hv.known_hosts}",
        "  GlobalKnownHostsFile /dev/null",
        "  StrictHostKeyChecking yes",
        "  CheckHostIP no",
        "  UpdateHostKeys no",
        "  IdentitiesOnly yes",
        "  BatchMode yes",
        "  ConnectTimeout 20",
        # A host gone mid-connection: ssh exits after ~15 s without answers, so libvirt's call fails instead of
        # waiting for TCP to give up (libvirt's own keepalive needs an event loop the provider does not run).
        "  ServerAliveInterval 5",
        "  ServerAliveCountMax 3",
        "",
    ))


def _prepare(hv: Hypervisor, client_public: str) -> None:
    """Write the hypervisor's libvirt configuration and sshd's keys and configuration."""
    for sub in (*PRIVATE_DIRS, "ssh", "private"):
        (hv.directory / sub).mkdir(mode=0o700, parents=True)
    (hv.directory / "etc" / "qemu.conf").write_text(QEMU_CONF)
    (hv.directory / "etc" / "libvirtd.conf").write_text(LIBVIRTD_CONF)
    ssh = hv.directory / "ssh"
    host_public = keypair(ssh / "host_ed25519_key", f"sshvirt host {hv.name}")
    (ssh / "authorized_keys").write_text(client_public + "\n")
    (ssh / "sshd_config").write_text(_sshd_config(INNER))
    # Exactly this sshd's key, for exactly the name the URI uses.
    hv.known_hosts.write_text(f"{hv.name} {host_public}\n")


def _start(hv: Hypervisor) -> None:
    """Create its namespaces and start virtlogd, virtlockd, libvirtd and sshd in them."""
    ns = ("ip", "netns", "exec", hv.netns)
    _sh("ip", "netns", "add", hv.netns)
    _sh(*ns, "ip", "link", "set", "lo", "up")
    _sh(*ns, "ip", "link", "add", hv.bridge, "type", "bridge")
    _sh(*ns, "ip", "link", "set", hv.bridge, "up")
    holder_err = hv.directory / "log" / "holder.err"
    with holder_err.open("wb") as err:
        holder = subprocess.Popen([*ns, "unshare", "--mount", "--propagation", "private", "--",
                                   "sh", "-c", HOLDER_SCRIPT, "holder", str(hv.directory)],
                                  stdout=subprocess.DEVNULL, stderr=err, start_new_session=True)
    hv.pids.append(holder.pid)
    hv.holder = holder.pid
    deadline = time.monotonic() + 10
    # Ready once the script has exec'd sleep (its mounts done).
    while not _exe(holder.pid).endswith("/sleep"):
        if holder.poll() is not None or time.monotonic() > deadline:
            raise RuntimeError(f"{hv.name}: mount namespace set-up failed: {holder_err.read_text()}")
        time.sleep(0.05)
    daemons = (("virtlogd", ("/usr/sbin/virtlogd",)), ("virtlockd", ("/usr/sbin/virtlockd",)),
               ("libvirtd", ("/usr/sbin/libvirtd",)),
               ("sshd", ("/usr/sbin/sshd", "-D", "-e", "-f", f"{INNER}/ssh/sshd_config")))
    for name, argv in daemons:
        with (hv.directory / "log" / f"{name}.out.log").open("wb") as out:
            hv.pids.append(subprocess.Popen([*hv.enter, *argv], stdout=out, stderr=subprocess.STDOUT,
                                            start_new_session=True).pid)
    deadline = time.monotonic() + START_TIMEOUT
    while hv.run("virsh", "-c", LOCAL_URI, "version", check=False).returncode != 0:
        if time.monotonic() > deadline:
            raise RuntimeError(f"{hv.name}: libvirtd did not come up in {START_TIMEOUT} s\n{hv.log()}")
        time.sleep(0.2)


def _exe(pid: int) -> str:
    try:
        return os.readlink(f"/proc/{pid}/exe")
    except OSError:
        return ""


def _stop(hv: Hypervisor) -> None:
    """Stop everything in its namespaces and delete the network namespace."""
    for pid in reversed(hv.pids):
        try:
            os.killpg(pid, signal.SIGTERM)
        except ProcessLookupError:
            pass
    # Guests (and ssh sessions) outlive libvirtd by design: whatever still runs in the namespace.
    leftover = subprocess.run(["ip", "netns", "pids", hv.netns], capture_output=True, text=True).stdout.split()
    for pid in leftover:
        try:
            os.kill(int(pid), signal.SIGKILL)
        except ProcessLookupError:
            pass
    deadline = time.monotonic() + 5
    while any(Path(f"/proc/{pid}").exists() and _exe(pid) for pid in hv.pids) and time.monotonic() < deadline:
        time.sleep(0.1)
    for pid in hv.pids:
        try:
            os.killpg(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    subprocess.run(["ip", "netns", "del", hv.netns], capture_output=True)


@contextmanager
def hypervisors(count: int = 2, bridge: str = "br0") -> Iterator[list[Hypervisor]]:
    """Start `count` independent libvirtd, each reached by qemu+ssh; remove everything after."""
    reason = skip_reason()
    if reason:
        pytest.skip(reason)
    for target in PRIVATE_DIRS.values():
        os.makedirs(target, exist_ok=True)  # mount points; left empty on the host
    top = Path(tempfile.mkdtemp(prefix="sshvirt-"))
    tag = uuid.uuid4().hex[:8]
    hvs: list[Hypervisor] = []
    try:
        key = top / "id_ed25519"
        client_public = keypair(key, "sshvirt client")
        wrapper = top / "ssh"
        for i in range(count):
            name = f"hv{i}"
            hvs.append(Hypervisor(
                name=name, uri=f"qemu+ssh://root@{name}/system?keyfile={key}&command={wrapper}&no_tty=1",
                netns=f"sshvirt-{tag}-{i}", bridge=bridge, directory=top / name,
                known_hosts=top / f"{name}.known_hosts", keyfile=key))
        (top / "ssh_config").write_text("".join(_ssh_config_block(hv, sys.executable) for hv in hvs))
        # libvirt passes -p/-l/-i/-T/-e/-o; ours comes first and names the only configuration ssh reads.
        wrapper.write_text(f'#!/bin/sh\nexec /usr/bin/ssh -F {top / "ssh_config"} "$@"\n')
        wrapper.chmod(0o700)
        for hv in hvs:
            _prepare(hv, client_public)
            _start(hv)
        yield hvs
    finally:
        for hv in hvs:
            _stop(hv)
        shutil.rmtree(top, ignore_errors=True)
