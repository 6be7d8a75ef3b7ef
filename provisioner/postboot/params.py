"""What a queued job needs to run, stored as JSON in its queue row."""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields
from typing import Any

SETUP = "setup"
# depends_on / --existing: set a domain up on a machine it does not own (docs/postboot.md).
LAYER = "layer"
# `provision backup DOMAIN`: the site's `make backup`, brought back into <root>/backups (docs/backups.md).
BACKUP = "backup"
KINDS = (SETUP, LAYER, BACKUP)


@dataclass(frozen=True)
class JobParams:
    """The job's inputs, fixed when it is queued (host paths are absolute).

    `address` is an explicit `HOST[:PORT]`; without it the worker uses the
    first of `static_ips`, else asks libvirt at `libvirt_uri` for the guest's
    address. `alias` is the name the pinned host key is filed under in
    `known_hosts` (ssh's HostKeyAlias).
    """

    workspace: str
    user: str
    alias: str
    identity: str
    known_hosts: str
    address: str | None = None
    static_ips: tuple[str, ...] = ()
    libvirt_uri: str | None = None
    archive: str | None = None
    script: str | None = None
    machine: str | None = None
    layer_config: str | None = None
    layer_packages: bool = False
    layer_ips: tuple[str, ...] = ()
    existing: bool = False
    # A backup job only: the guest directory name of the setup job whose site/ it backs up,
    # where its versions go on the host, and how many of them are kept.
    site_job: str | None = None
    backup_dir: str | None = None
    backup_keep: int | None = None

    def to_json(self) -> dict[str, Any]:
        """A JSON-serialisable mapping."""
        data = asdict(self)
        return {k: list(v) if isinstance(v, tuple) else v for k, v in data.items()}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> JobParams:
        """Rebuild from `to_json()` output; unknown keys (from a newer version) are ignored."""
        known = {f.name for f in fields(cls)}
        values = {k: tuple(v) if isinstance(v, list) else v for k, v in data.items() if k in known}
        return cls(**values)
