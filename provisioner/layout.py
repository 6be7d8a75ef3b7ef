"""Where everything the engine writes lives, under one root (docs/vms-layout.md)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

DEFAULT_ROOT = Path("/vms")
POOL_NAME = "provisioner"


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
    def hypervisor(self) -> Path:
        return self.root / "hypervisor"

    @property
    def simulator_uri(self) -> str:
        """libvirt URI of the embedded default hypervisor (the test driver, persisted)."""
        return f"test://{self.hypervisor / 'node.xml'}"

    @property
    def state_db(self) -> Path:
        return self.root / "state.db"
