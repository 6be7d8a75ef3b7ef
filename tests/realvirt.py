"""Scratch roots and clean-up for tests on a real hypervisor (tests/sshvirt.py starts the hypervisors).

The hypervisors themselves, libvirtd + sshd in namespaces of their own, are tests/sshvirt.py's; what
is here is the part of a test's root that outlives its domains: the shared workspaces (the pool and
the base images) that `provision destroy DOMAIN` keeps by design.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path


def traversable_root() -> Path:
    """A scratch directory qemu can reach under any user it runs as: pytest's tmp dirs are 0700."""
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
