"""Nova's records: keypairs (per user) and servers (per project)."""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field, replace
from typing import Any, Iterable

from api.change_counter import ChangeCounters, Slot
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
    tags: tuple[str, ...] = ()  # Nova's server tags (2.26)
    user_data: str | None = None  # as given at create (base64), which a rebuild shows from 2.57
    status: str = BUILD
    task_state: str | None = "spawning"
    fault: str | None = None
    # The configured hypervisor it was placed on (api/compute/placement.py): None on a record from before
    # placement (it is on the first hypervisor), "" when no hypervisor could take it (No valid host).
    hypervisor: str | None = None
    availability_zone: str = "nova"  # its hypervisor's zone when it was placed (Nova keeps it on the instance too)
    # Booted from a volume: that volume's id (its image_id is then ""), and the volumes its block device
    # mapping gave it, each {"volume_id", "device", "delete_on_termination"} (api.compute.block_devices).
    root_volume: str | None = None
    block_devices: tuple[dict[str, Any], ...] = ()
    created: float = 0.0
    updated: float = 0.0

    def nics(self) -> list[Port]:
        """The server's NICs as typed records."""
        return [Port(p["id"], p["network_id"], p["mac"], tuple(p.get("ips") or ())) for p in self.ports]


class ServerTable(Table[Server]):
    """api_servers: every write bumps the shared SERVERS counter once its statement is done.

    Outside a transaction a statement is durable when it returns (autocommit). A
    write inside an open transaction is bumped too, but before its commit: whoever
    opened the transaction calls ComputeStore.changed() again after the commit, or a
    reader in between could cache the rows as they were, under the new value.
    """

    def __init__(self, db: Database, counters: ChangeCounters):
        super().__init__(db, "servers", Server)
        self.counters = counters

    def insert(self, record: Server) -> Server:
        """Add `record` (the driver's IntegrityError if its id exists) and bump."""
        inserted = super().insert(record)
        self.counters.bump(Slot.SERVERS)
        return inserted

    def update(self, record: Server) -> Server:
        """Replace the stored server with the same id and bump."""
        updated = super().update(record)
        self.counters.bump(Slot.SERVERS)
        return updated

    def delete(self, record_id: str) -> bool:
        """Remove the server and bump; False if there was none."""
        deleted = super().delete(record_id)
        self.counters.bump(Slot.SERVERS)
        return deleted


class ComputeStore:
    """Keypairs and servers in the API's database; read-modify-write of a server is serialised in this process.

    The server rows are kept per process while the shared SERVERS counter
    (api/change_counter.py) keeps its value; every write through `servers`, in any
    worker process of the root, bumps it. A database other roots share (Database.shared)
    is read again instead: their writes bump no counter of this root.
    """

    def __init__(self, db: Database, counters: ChangeCounters | None = None):
        self.db = db
        self.counters = counters or ChangeCounters.of_state_db(db.path)
        self.keypairs = Table(db, "keypairs", Keypair, scope="user_id")
        self.servers = ServerTable(db, self.counters)
        self._lock = threading.Lock()
        self._rows: tuple[int, tuple[Server, ...]] | None = None  # (counter value when loaded, every server)

    def listed(self, projects: Iterable[str] | None = None) -> list[Server]:
        """The servers of `projects` (every project's for None) in creation order, as `servers.list` gives
        them, from this process's copy of the rows while no server was written since it was loaded."""
        changes = self.counters.value(Slot.SERVERS)  # before the SELECT: a bump after it is seen next time
        rows = self._rows  # one read: another thread may replace it meanwhile
        if rows is None or rows[0] != changes or self.db.shared:
            rows = (changes, tuple(self.servers.list()))
            self._rows = rows
        if projects is None:
            return list(rows[1])
        wanted = set(projects)
        return [s for s in rows[1] if s.project_id in wanted]

    def changed(self) -> None:
        """Mark the servers changed after a transaction that wrote some committed: every process reloads."""
        self.counters.bump(Slot.SERVERS)

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

    def rename_group(self, project_id: str, old: str, new: str) -> None:
        """A security group of the project was renamed from `old` to `new`: the servers naming it name it anew,
        so they stay in it (as a Neutron port keeps its groups by id). With two groups of one name in a project
        a server naming that name is in both; renaming one keeps it in the renamed one only."""
        for server in self.servers.list([project_id]):
            if old in server.security_groups:
                names = dict.fromkeys(new if name == old else name for name in server.security_groups)
                self.change(server.id, security_groups=tuple(names))

    def usage(self, project_id: str, user_id: str | None, flavors: Iterable[Flavor]) -> dict[str, int]:
        """Nova's quota usage: the project's servers (any status until deleted), their flavors' vCPUs and
        RAM (MiB), and the user's key pairs (Nova counts those per user)."""
        by_id = {f.id: f for f in flavors}
        servers = self.servers.list([project_id])
        sized = [by_id[s.flavor_id] for s in servers if s.flavor_id in by_id]
        return {"instances": len(servers), "cores": sum(f.vcpus for f in sized), "ram": sum(f.ram for f in sized),
                "key_pairs": self.keypairs.count(user_id) if user_id else 0}
