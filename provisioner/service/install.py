"""Installing the units: written atomically (0644), the manager reloaded, the socket, worker and timer enabled.

Running it again with the same settings changes nothing and reloads nothing.
"""

from __future__ import annotations

import errno
import socket
import subprocess
from dataclasses import dataclass
from pathlib import Path

from provisioner.errors import ProvisionError
from provisioner.service.units import API, SOCKET, STARTED, UNIT_NAMES, ServiceSettings, render_units
from provisioner.workspace import write_atomic

DEFAULT_UNIT_DIR = Path("/etc/systemd/system")
UNIT_MODE = 0o644
# PrivateTmp= gives the services their own /tmp and /var/tmp: a root there would be another, empty directory.
PRIVATE_TMP_DIRS = (Path("/tmp"), Path("/var/tmp"))
SYSTEMCTL_TIMEOUT = 120


@dataclass(frozen=True)
class InstallResult:
    """Which unit files were written (empty: all were already current)."""

    changed: list[str]
    unit_dir: Path


def systemctl(*args: str) -> str:
    """Run systemctl; its output, or a ProvisionError with its message."""
    try:
        done = subprocess.run(["systemctl", *args], capture_output=True, text=True, timeout=SYSTEMCTL_TIMEOUT,
                              check=False)
    except FileNotFoundError:
        raise ProvisionError("systemctl not found: install-service needs systemd") from None
    except subprocess.TimeoutExpired:
        raise ProvisionError(f"systemctl {' '.join(args)} did not answer in {SYSTEMCTL_TIMEOUT}s") from None
    if done.returncode != 0:
        detail = done.stderr.strip().splitlines()[-1:] or [f"exit status {done.returncode}"]
        raise ProvisionError(f"systemctl {' '.join(args)} failed: {detail[0][:200]}")
    return done.stdout


def check_root(root: Path) -> None:
    """ProvisionError if the services could not use `root` (it may be missing: install creates it)."""
    for private in PRIVATE_TMP_DIRS:
        if root == private or private in root.parents:
            raise ProvisionError(f"--root {str(root)[:60]}: under {private}, which the services see as a private, "
                                 "empty directory (PrivateTmp=yes): choose a root elsewhere, e.g. /var/lib/provisioner")
    if root.exists() and not root.is_dir():
        raise ProvisionError(f"--root {str(root)[:60]}: exists and is not a directory")
    if not root.parent.is_dir():
        raise ProvisionError(f"--root {str(root)[:60]}: its parent directory {str(root.parent)[:60]} does not exist")


def _ours(settings: ServiceSettings) -> bool:
    """Whether provision-api.socket already listens on the address (a re-run)."""
    try:
        listen = systemctl("show", "--property=Listen", "--value", SOCKET)
        state = systemctl("show", "--property=ActiveState", "--value", SOCKET).strip()
    except ProvisionError:
        return False
    return state == "active" and f"{settings.listen} (Stream)" in listen


def check_port(settings: ServiceSettings) -> None:
    """ProvisionError if something other than our socket unit listens on the address."""
    family = socket.AF_INET6 if ":" in settings.host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((settings.host, settings.port))
            return
        except OSError as exc:
            if exc.errno != errno.EADDRINUSE:
                raise ProvisionError(f"--port {settings.port}: cannot listen on {settings.listen}: "
                                     f"{exc.strerror}") from None
    if not _ours(settings):
        raise ProvisionError(f"--port {settings.port}: {settings.listen} is already in use by another program: "
                             "stop it or choose another --port")


def install(settings: ServiceSettings, unit_dir: Path = DEFAULT_UNIT_DIR, enable: bool = True) -> InstallResult:
    """Write the units into `unit_dir`, reload systemd if any changed, enable and start the socket, worker, timer."""
    units = render_units(settings)
    if not unit_dir.is_dir():
        raise ProvisionError(f"--unit-dir {str(unit_dir)[:60]}: not a directory")
    check_root(settings.root)
    if enable:
        check_port(settings)
    settings.root.mkdir(mode=0o700, exist_ok=True)  # ReadWritePaths= and the units' --root need it to exist
    changed = [name for name, text in units.items() if write_atomic(unit_dir / name, text.encode(), UNIT_MODE)]
    if changed:
        systemctl("daemon-reload")
    if enable:
        if SOCKET in changed:
            # A new address: the old socket (and the API serving it) must let go first; builds resume on start.
            systemctl("stop", API, SOCKET)
        systemctl("enable", "--now", *STARTED)
        running = [name for name in changed if name != SOCKET]
        if running:
            # A running unit keeps its old settings until restarted (try-restart leaves stopped ones stopped).
            systemctl("try-restart", *running)
    return InstallResult(changed, unit_dir)


def uninstall(unit_dir: Path = DEFAULT_UNIT_DIR) -> list[str]:
    """Stop and disable the units, remove their files, reload systemd; the names removed."""
    present = [name for name in UNIT_NAMES if (unit_dir / name).exists()]
    if not present:
        return []
    systemctl("disable", "--now", *(name for name in STARTED if name in present))
    systemctl("stop", *present)
    for name in present:
        (unit_dir / name).unlink()
    systemctl("daemon-reload")
    return present
