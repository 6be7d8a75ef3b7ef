"""DomainSpec: the one typed description of a guest, whichever door it came through."""

from __future__ import annotations

import ipaddress
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any


@dataclass(frozen=True)
class Address:
    """A static IPv4 address with its prefix length."""

    ip: ipaddress.IPv4Address
    prefix: int

    def __str__(self) -> str:
        return f"{self.ip}/{self.prefix}"


@dataclass(frozen=True)
class Nic:
    """One network interface: where it plugs in and how it is addressed."""

    mac: str
    bridge: str | None = None
    network: str | None = None
    model: str = "virtio"
    addresses: tuple[Address, ...] = ()
    gateway: ipaddress.IPv4Address | None = None
    resolvers: tuple[ipaddress.IPv4Address, ...] = ()
    # The libvirt network filter the interface is filtered by (the API's security groups); None: unfiltered.
    nwfilter: str | None = None

    @property
    def dhcp(self) -> bool:
        return not self.addresses


@dataclass(frozen=True)
class ImageRef:
    """The base image a guest's disk is backed by.

    `source` is an absolute local path or an http(s) URL; `digest` identifies
    its content (for a URL not yet imported: the digest of the URL), so a new
    image is a new backing volume, never an overwrite.
    """

    source: str
    format: str
    digest: str
    slug: str

    @property
    def volume_name(self) -> str:
        return f"base-{self.slug}-{self.digest[:12]}.{self.format}"


@dataclass(frozen=True)
class ExtraDisk:
    """A blank data disk attached after the system disk."""

    size: int


@dataclass(frozen=True)
class AttachedVolume:
    """A volume managed by its own workspace (provisioner.volumes), attached as a disk.

    The domain plan refers to it by pool and name and never manages it, so it
    outlives the domain; `target` (vdb, vdc, …) is chosen at attach time and kept.
    """

    pool: str
    name: str
    format: str
    target: str


@dataclass(frozen=True)
class UserPart:
    """Tenant user data that is not cloud-config (a `#!` script, plain text): a part of the seed's MIME multipart."""

    content_type: str
    content: str


@dataclass(frozen=True)
class DomainSpec:
    """Everything needed to render and run one guest.

    `image` backs the system disk; a guest booted from a volume has `root_volume` (its own workspace's, never
    managed by this plan) as system disk instead, and needs no image (None).
    """

    name: str
    image: ImageRef | None
    size: int
    memory: int
    cpus: int
    cpu_mode: str
    domain_type: str
    libvirt_uri: str
    nics: tuple[Nic, ...]
    users: tuple[dict[str, Any] | str, ...]
    admin_user: str = "root"
    packages: tuple[str, ...] = ()
    install_packages: bool = True
    contact_email: str | None = None
    depends_on: str | None = None
    extra_disks: tuple[ExtraDisk, ...] = ()
    volumes: tuple[AttachedVolume, ...] = ()
    root_volume: AttachedVolume | None = None
    autostart: bool = True
    graphics: bool = False
    machine: str = "q35"
    arch: str = "x86_64"
    kernel: str | None = None
    initrd: str | None = None
    cmdline: str | None = None
    locale: str = "C.UTF-8"
    ssh_address: str | None = None
    image_digests: tuple[tuple[str, str], ...] = ()
    data_archive: Path | None = None
    # A tenant's validated #cloud-config keys beyond users/packages (merged into the engine's at render,
    # provisioner.spec.cloudconfig) and its other user data, each a part of a MIME multipart user-data.
    cloud_config: dict[str, Any] | None = None
    user_parts: tuple[UserPart, ...] = ()
    input_dir: Path | None = None

    @property
    def hostname(self) -> str:
        return self.name.split(".", 1)[0]

    def to_json(self) -> dict[str, Any]:
        """A JSON-serialisable view, written as spec.json in the workspace."""

        def plain(value: Any) -> Any:
            if isinstance(value, dict):
                return {k: plain(v) for k, v in value.items()}
            if isinstance(value, (list, tuple)):
                return [plain(v) for v in value]
            if isinstance(value, (ipaddress.IPv4Address, Path)):
                return str(value)
            return value

        data = plain(asdict(self))
        data["nics"] = [
            {**nic, "addresses": [str(a) for a in n.addresses]}
            for nic, n in zip(data["nics"], self.nics)
        ]
        return data

