"""A real systemd (Debian's /lib/systemd/systemd) booted as PID 1 of new pid, mount and cgroup namespaces.

The host needs no systemd of its own: root, util-linux's unshare and nsenter,
and a cgroup2 hierarchy (pure v2, or the hybrid layout's /sys/fs/cgroup/unified)
are enough. The manager boots into a target of its own that pulls in nothing.

It must not touch the host: a unit's default dependencies pull in
sysinit.target and local-fs.target, whose stock wants (systemd-tmpfiles-setup empties /tmp on
Debian, systemd-sysctl, systemd-sysusers, …) act on the shared filesystems
and kernel. So, inside: /run, /tmp, /var/tmp and /etc/systemd/system are fresh
tmpfs mounts (the host's enabled units are not seen, and what systemctl enables
there goes with the namespace), and every unit a stock target wants, and
every generator (fstab, gpt-auto, sysv, …), is masked there. The network namespace is the host's, so a socket unit's port is
reachable from the test on 127.0.0.1; processes see the host's other
filesystems (the root under test must not be in /tmp). Units' output goes to
the manager's own output, the `log` file.
"""

from __future__ import annotations

import os
import secrets
import shutil
import signal
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

SYSTEMD = Path("/lib/systemd/systemd")
CHECKOUT = Path(__file__).resolve().parents[2]
HIDDEN = (Path("/tmp"), Path("/var/tmp"))  # fresh tmpfs mounts inside (see the module's docstring)
BOOT_TARGET = "provision-test-boot.target"
BOOT_SECONDS = 60
STOP_SECONDS = 60
MASKED = ("systemd-remount-fs.service",)  # also masked: not in a .wants/ directory, pulled in otherwise
HOST_WIDE = ("systemd-tmpfiles-setup.service", "systemd-tmpfiles-clean.timer", "systemd-sysctl.service",
             "systemd-sysusers.service", "systemd-binfmt.service", "systemd-random-seed.service", *MASKED)

# Run by unshare as the namespaces' first process; it becomes systemd (exec).
_BOOT = f"""set -e
umount -R /sys/fs/cgroup
mount -t cgroup2 cgroup2 /sys/fs/cgroup
mount -t tmpfs -o mode=755 tmpfs /run
mount -t tmpfs -o mode=755 tmpfs /etc/systemd
mkdir /etc/systemd/system /etc/systemd/system-generators
mount -t tmpfs -o mode=1777 tmpfs /tmp
mount -t tmpfs -o mode=1777 tmpfs /var/tmp
for unit in /lib/systemd/system/*.wants/* /usr/lib/systemd/system/*.wants/* /lib/systemd/system/{" /lib/systemd/system/".join(MASKED)}; do
    [ -e "$unit" ] || [ -L "$unit" ] || continue
    ln -sf /dev/null "/etc/systemd/system/${{unit##*/}}"
done
for generator in /lib/systemd/system-generators/* /usr/lib/systemd/system-generators/*; do
    [ -e "$generator" ] || continue
    ln -sf /dev/null "/etc/systemd/system-generators/${{generator##*/}}"
done
mkdir -p /run/systemd/system
printf '[Unit]\\nDescription=provisioner test boot (nothing else)\\n' > /run/systemd/system/{BOOT_TARGET}
exec env -i container=provision-test PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \\
    {SYSTEMD} --system --unit={BOOT_TARGET} --show-status=no --log-target=console \\
    --default-standard-output=inherit --default-standard-error=inherit
"""


def unavailable() -> str | None:
    """Why a namespaced systemd cannot run here (None: it can)."""
    if os.geteuid() != 0:
        return "needs root (namespaces, mounts)"
    if not SYSTEMD.exists():
        return f"{SYSTEMD} is not installed (Debian package systemd)"
    if shutil.which("unshare") is None or shutil.which("nsenter") is None:
        return "unshare and nsenter (util-linux) are needed"
    if _cgroup2() is None:
        return "no cgroup2 hierarchy mounted (/sys/fs/cgroup or /sys/fs/cgroup/unified)"
    if any(CHECKOUT.is_relative_to(hidden) for hidden in HIDDEN):
        return (f"this checkout ({CHECKOUT}) is under /tmp or /var/tmp, which the namespace and the units "
                "(PrivateTmp=yes) replace: their bin/provision would not be there")
    return None


def _cgroup2() -> Path | None:
    for path in (Path("/sys/fs/cgroup"), Path("/sys/fs/cgroup/unified")):
        if (path / "cgroup.procs").exists() and (path / "cgroup.subtree_control").exists():
            return path
    return None


def _here_cgroup(base: Path) -> Path:
    """This process's cgroup2 directory under `base` (the `0::` line of /proc/self/cgroup)."""
    for line in Path("/proc/self/cgroup").read_text().splitlines():
        if line.startswith("0::"):
            return base / line[3:].lstrip("/")
    return base


@dataclass(frozen=True)
class Systemd:
    """The running manager: its PID on the host, and where its output goes."""

    pid: int
    log: Path

    def run(self, *command: str, check: bool = True, timeout: float = 300,
            env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
        """`command` inside the namespaces (systemctl there talks to this manager)."""
        done = subprocess.run(["nsenter", "-t", str(self.pid), "-m", "-p", "-u", "-i", "--", *command], capture_output=True,
                              text=True, timeout=timeout, check=False, env=env, cwd="/")
        if check and done.returncode != 0:
            raise AssertionError(f"{' '.join(command)} failed ({done.returncode}):\n{done.stdout}\n{done.stderr}")
        return done

    def path(self, inside: Path) -> Path:
        """Where a path of the namespace's filesystem (its own tmpfs mounts included) is, seen from the host."""
        return Path(f"/proc/{self.pid}/root") / inside.relative_to("/")

    def systemctl(self, *args: str, check: bool = True) -> subprocess.CompletedProcess:
        """`systemctl ARGS` against this manager."""
        return self.run("systemctl", "--no-pager", *args, check=check)

    def show(self, unit: str, prop: str) -> str:
        """One property of a unit (`systemctl show -p PROP --value`)."""
        return self.systemctl("show", f"--property={prop}", "--value", unit).stdout.strip()


def _child_of(pid: int) -> int | None:
    try:
        children = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
    except FileNotFoundError:
        return None
    return int(children[0]) if children else None


def _remove_cgroup(path: Path) -> None:
    """Remove a cgroup directory tree bottom-up (the namespace's processes are gone)."""
    if not path.is_dir():
        return
    for sub in sorted((p for p in path.rglob("*") if p.is_dir()), key=lambda p: len(p.parts), reverse=True):
        sub.rmdir()
    path.rmdir()


@contextmanager
def booted(log: Path) -> Iterator[Systemd]:
    """A namespaced systemd until the block ends; then powered off (killed if it does not stop), nothing left."""
    base = _cgroup2()
    assert base is not None, unavailable()
    cgroup = _here_cgroup(base) / f"provision-test-{secrets.token_hex(4)}"
    cgroup.mkdir()

    def enter_cgroup() -> None:  # in the child, before exec: the namespace's cgroup root is this directory
        (cgroup / "cgroup.procs").write_text(str(os.getpid()))

    with log.open("w") as out:
        unshare = subprocess.Popen(["unshare", "--pid", "--fork", "--mount", "--cgroup", "--uts", "--ipc", "--mount-proc",
                                    "--propagation", "private", "sh", "-c", _BOOT],
                                   stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT,
                                   preexec_fn=enter_cgroup)
    manager: Systemd | None = None
    try:
        deadline = time.monotonic() + BOOT_SECONDS
        while True:
            assert unshare.poll() is None, f"systemd exited ({unshare.returncode}): {log.read_text()[-2000:]}"
            pid = _child_of(unshare.pid)
            if pid is not None and Path(f"/proc/{pid}/exe").resolve() == SYSTEMD.resolve():
                manager = Systemd(pid, log)
                state = manager.systemctl("is-system-running", check=False).stdout.strip()
                if state == "running":
                    break
                if state == "degraded":
                    raise AssertionError(f"systemd booted degraded: {manager.systemctl('--failed').stdout}")
            assert time.monotonic() < deadline, f"systemd did not come up in {BOOT_SECONDS}s: {log.read_text()[-2000:]}"
            time.sleep(0.1)
        # The guard above all: what acts on the host's /tmp, kernel and users must be masked here.
        for unit in HOST_WIDE:
            assert manager.systemctl("is-enabled", unit, check=False).stdout.strip() == "masked", unit
        yield manager
    finally:
        if manager is not None:
            manager.systemctl("poweroff", check=False)
        try:
            unshare.wait(STOP_SECONDS)
        except subprocess.TimeoutExpired:
            # Killing the namespace's PID 1 kills every process in it.
            if manager is not None:
                os.kill(manager.pid, signal.SIGKILL)
            unshare.kill()
            unshare.wait()
        _remove_cgroup(cgroup)
