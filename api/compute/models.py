"""Nova's records: keypairs (per user) and servers (per project)."""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field, replace
from typing import Any, Iterable

from api.config import Flavor
from api.db import Database, Table
from api.errors import NotFound
from api.identity.tokens import Token

BUILD, ACTIVE, SHUTOFF, PAUSED, ERROR = "BUILD", "ACTIVE", "SHUTOFF", "PAUSED", "ERROR"
DELETING = "deleting"  # a task state: the server is still listed until its domain is destroyed


@dataclass(frozen=True)
class Keypair:
    """An SSH public key of one user; `id` is `<user_id>/<name>`."""

    id: str
    name: str
    user_id: str
    public_key: str
    fingerprint: str
    type: str = "ssh"
    created: float = 0.0


@dataclass(frozen=True)
class Port:
    """A server's NIC on a network (Neutron shows it as a port)."""

    id: str
    network_id: str
    mac: str
    ips: tuple[str, ...] = ()


@dataclass(frozen=True)
class Server:
    """A server and the engine domain (`srv-<uuid>`) that carries it."""

    id: str
    name: str
    project_id: str
    user_id: str
    domain: str
    flavor_id: str
    image_id: str
    ports: tuple[dict[str, Any], ...]
    key_name: str | None = None
    metadata: dict[str, str] = field(default_factory=dict)
    description: str | None = None
    security_groups: tuple[str, ...] = ("default",)  # names, as requested at create
    access_ipv4: str = ""  # accessIPv4/accessIPv6: addresses the user records for the server, not configured
    access_ipv6: str = ""
    disk_config: str = "MANUAL"  # OS-DCF:diskConfig as requested
    locked: bool = False  # Nova's lock: only an admin may act on a locked server
    locked_reason: str | None = None
    status: str = BUILD
    task_state: str | None = "spawning"
    fault: str | None = None
    created: float = 0.0
    updated: float = 0.0

    def nics(self) -> list[Port]:
        """The server's NICs as typed records."""
        return [Port(p["id"], p["network_id"], p["mac"], tuple(p.get("ips") or ())) for p in self.ports]


class ComputeStore:
    """Keypairs and servers in SQLite; read-modify-write of a server is serialised in this process."""

    def __init__(self, db: Database):
        self.db = db
        self.keypairs = Table(db, "keypairs", Keypair, scope="user_id")
        self.servers = Table(db, "servers", Server)
        self._lock = threading.Lock()

    def server(self, token: Token, server_id: str) -> Server:
        """A server of the token's project; another project's is NotFound, like a missing one."""
        found = self.servers.get(server_id)
        if found is None or (found.project_id != token.project_id and not token.is_admin):
            raise NotFound(f"Instance {server_id} could not be found.")
        return found

    def change(self, server_id: str, **changes: Any) -> Server | None:
        """Update fields of the stored server (None if it is gone meanwhile)."""
        with self._lock:
            current = self.servers.get(server_id)
            if current is None:
                return None
            return self.servers.update(replace(current, updated=time.time(), **changes))

    def usage(self, project_id: str, user_id: str | None, flavors: Iterable[Flavor]) -> dict[str, int]:
        """Nova's quota usage: the project's servers (any status until deleted), their flavors' vCPUs and
        RAM (MiB), and the user's key pairs (Nova counts those per user)."""
        by_id = {f.id: f for f in flavors}
        servers = self.servers.list([project_id])
        sized = [by_id[s.flavor_id] for s in servers if s.flavor_id in by_id]
        return {"instances": len(servers), "cores": sum(f.vcpus for f in sized), "ram": sum(f.ram for f in sized),
                "key_pairs": self.keypairs.count(user_id) if user_id else 0}
