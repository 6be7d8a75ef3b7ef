"""Where everything the engine writes lives, under one root (docs/vms-layout.md)."""

from __future__ import annotations

import os
import stat
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

DEFAULT_ROOT = Path("/vms")
POOL_NAME = "provisioner"
# Everything under the root is its owner's: directories 0700, files 0600 (secrets: keys, tokens,
# cloud-init user data, the API's records). Set at every entry point, so children (terraform,
# ssh-keygen, sqlite's -wal/-shm) create their files private too.
PRIVATE_UMASK = 0o077
ROOT_MODE = 0o700
# The one wider root mode kept as the operator set it: traverse for the root's group only, so
# a QEMU running as another user (its group) reaches the pool, and nothing else (docs/vms-layout.md).
GROUP_TRAVERSE_ROOT_MODE = 0o710


def restrict_umask() -> None:
    """Make whatever this process and its children create private to its owner (umask 077)."""
    os.umask(PRIVATE_UMASK)


def is_simulated(uri: str) -> bool:
    """True for libvirt's test driver: nothing really boots there."""
    return uri.startswith("test:")


def is_local(uri: str) -> bool:
    """True when the hypervisor runs on this host (no host in the URI): its files are ours too."""
    return urlsplit(uri).hostname is None


@dataclass(frozen=True)
class Layout:
    """Paths under the engine's root directory."""

    root: Path

    def protect_root(self) -> None:
        """Tighten an existing root to 0700 (or keep it 0710: group traverse only); never create it.

        A root made by an older version, or by hand, may be 0755 with its
        files 0644: closing the root closes everything under it.
        """
        try:
            info = os.stat(self.root)
        except FileNotFoundError:
            return  # created 0700 by whatever writes first, under PRIVATE_UMASK
        # Another user's root (or not a directory) is not ours to change: writing there fails clearly later.
        if not stat.S_ISDIR(info.st_mode) or info.st_uid != os.geteuid():
            return
        if stat.S_IMODE(info.st_mode) not in (ROOT_MODE, GROUP_TRAVERSE_ROOT_MODE):
            os.chmod(self.root, ROOT_MODE)

    @property
    def domains(self) -> Path:
        return self.root / "domains"

    def domain_dir(self, name: str) -> Path:
        """The per-domain workspace; `name` must already be validated."""
        return self.domains / name

    @property
    def images(self) -> Path:
        return self.root / "images"

    @property
    def shared(self) -> Path:
        return self.root / "shared"

    @property
    def pool(self) -> Path:
        return self.root / "pool"

    @property
    def terraform(self) -> Path:
        return self.root / "terraform"

    @property
    def template_cache(self) -> Path:
        """Compiled built-in templates (Jinja2 bytecode), made on first use; removable at any time."""
        return self.root / "cache" / "templates"

    @property
    def hypervisor(self) -> Path:
        return self.root / "hypervisor"

    @property
    def simulator_uri(self) -> str:
        """libvirt URI of the embedded default hypervisor (the test driver, persisted)."""
        return f"test://{self.hypervisor / 'node.xml'}"

    @property
    def simulators(self) -> Path:
        """Where the API's named simulated hypervisors (`simulator:NAME` in config.yaml) keep their node files."""
        return self.root / "hypervisors"

    def named_simulator_uri(self, name: str) -> str:
        """libvirt URI of the simulated hypervisor NAME (a test-driver node file of its own); `name` validated."""
        return f"test://{self.simulators / name / 'node.xml'}"

    @property
    def state_db(self) -> Path:
        return self.root / "state.db"
