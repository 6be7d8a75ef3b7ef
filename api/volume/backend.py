"""The one Cinder backend this API serves: the hypervisor's storage pool, its services and capabilities, and the
scheduling of a new volume onto it.

Cinder runs a cinder-scheduler and a cinder-volume per backend; here both are
the API itself, on this host, and the backend is the libvirt pool every
volume lives in. Admins see them as Cinder shows them (os-services, os-hosts,
scheduler-stats/get_pools, capabilities), may disable the volume service (new
volumes then fail to schedule, as in Cinder) and freeze it. A volume type's
extra specs that name a capability must match it, as Cinder's
CapabilitiesFilter checks; the others are kept for the owner and ignored.
"""

from __future__ import annotations

import shutil
import socket
import threading
import time
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from api.db import Database, Table
from api.errors import BadRequest, NotFound
from api.http import isotime
from provisioner.excerpt import describe
from provisioner.layout import POOL_NAME

HOST = socket.gethostname().split(".")[0] or "localhost"
BACKEND = "libvirt"
VOLUME_HOST = f"{HOST}@{BACKEND}"  # cinder-volume's host: host@backend
POOL_HOST = f"{VOLUME_HOST}#{POOL_NAME}"  # a volume's os-vol-host-attr:host: host@backend#pool
SCHEDULER, VOLUME = "cinder-scheduler", "cinder-volume"
GIB = 1 << 30
# What the backend reports to the scheduler (Cinder's driver stats): the names extra specs may match.
CAPABILITIES: dict[str, Any] = {
    "volume_backend_name": BACKEND, "vendor_name": "Open Source", "driver_version": "1.0",
    "storage_protocol": "file",  # qcow2 files in a libvirt pool, handed to the guest as disks
    "QoS_support": False, "reserved_percentage": 0, "thin_provisioning_support": True,
    "thick_provisioning_support": False, "multiattach": False,
}


@dataclass(frozen=True)
class ServiceState:
    """An admin's settings of one service (id `binary:host`); a service without one is enabled."""

    id: str
    name: str  # the binary
    host: str
    disabled: bool = False
    disabled_reason: str | None = None
    frozen: bool = False
    updated: float = 0.0
    project_id: str = ""  # the Table's scope column: services belong to no project


SERVICES = ((SCHEDULER, HOST), (VOLUME, VOLUME_HOST))


def host_matches(wanted: str, host: str) -> bool:
    """Cinder's host filter: `wanted` is the host itself or its prefix before @backend or #pool."""
    return host == wanted or host.startswith(f"{wanted}@") or host.startswith(f"{wanted}#")


class Backend:
    """The services' states (table api_volume_services) and the pool's capacity."""

    def __init__(self, db: Database, pool: Path):
        self.states = Table(db, "volume_services", ServiceState)
        self.pool = pool
        self.started = time.time()
        self._lock = threading.Lock()

    def services(self) -> list[ServiceState]:
        """Both services, with their recorded states."""
        return [self.states.get(f"{binary}:{host}") or ServiceState(f"{binary}:{host}", binary, host,
                                                                      updated=self.started)
                for binary, host in SERVICES]

    def service(self, host: str | None, binary: str | None) -> ServiceState:
        """The service `binary` on `host` (400 if either is missing, 404 if there is none such)."""
        if not host:
            raise BadRequest("host", "is required")
        if not binary:
            raise BadRequest("binary", "is required")
        found = next((s for s in self.services() if s.host == host and s.name == binary), None)
        if found is None:
            raise NotFound(f"Service {describe(binary)} on host {describe(host)} could not be found.")
        return found

    def change(self, state: ServiceState, **changes: Any) -> ServiceState:
        """Record new settings of a service."""
        with self._lock:
            updated = replace(state, updated=time.time(), **changes)
            if self.states.get(state.id) is None:
                return self.states.insert(updated)
            return self.states.update(updated)

    def volume_service(self, host: str) -> ServiceState:
        """The cinder-volume service of `host` (host, host@backend or host@backend#pool); 400 otherwise, as
        Cinder's freeze and thaw."""
        found = next((s for s in self.services() if s.name == VOLUME and host_matches(host, s.host)
                      or s.name == VOLUME and host == POOL_HOST), None)
        if found is None:
            raise BadRequest("host", f"{describe(host)} is not a cinder-volume host (this API's is {VOLUME_HOST})")
        return found

    def capacity(self, allocated_gb: int) -> dict[str, Any]:
        """The pool's stats as Cinder's get_pools details them: its file system's size and free space."""
        where = self.pool if self.pool.exists() else self.pool.parent
        usage = shutil.disk_usage(where)
        return {**CAPABILITIES, "total_capacity_gb": round(usage.total / GIB, 2),
                "free_capacity_gb": round(usage.free / GIB, 2), "allocated_capacity_gb": allocated_gb,
                "pool_name": POOL_NAME, "timestamp": isotime(time.time(), micro=True)}

    def unplaceable(self, extra_specs: dict[str, str]) -> str | None:
        """Why a volume of a type with these extra specs cannot be scheduled (None: it can): the volume
        service is disabled, or a spec naming a capability does not match it."""
        volume = next(s for s in self.services() if s.name == VOLUME)
        if volume.disabled:
            return f"No valid backend was found: the cinder-volume service on {VOLUME_HOST} is disabled"
        for key, wanted in extra_specs.items():
            scope, _, name = key.rpartition(":")
            if scope and scope != "capabilities":
                continue  # another consumer's spec (qos:, hw:, …), as Cinder's CapabilitiesFilter skips
            if name not in CAPABILITIES or not spec_matches(CAPABILITIES[name], wanted):
                return (f"No valid backend was found: the backend {BACKEND} does not satisfy the volume type's "
                        f"extra spec {describe(key)}={describe(wanted)}")
        return None


def _number(text: str) -> float | None:
    try:
        return float(text)
    except ValueError:
        return None


def spec_matches(have: Any, wanted: str) -> bool:
    """Cinder's extra_specs_ops.match, for the operators it documents: `<is> True`, `<in> x`, `<or> a <or> b`,
    `s==` and the other string comparisons, `==`/`!=`/`>=`/`<=` on numbers, or else equal text."""
    words = wanted.split()
    text = str(have)
    if not words:
        return text == wanted
    op, args = words[0], words[1:]
    if op == "<is>" and len(args) == 1:
        return str(have).lower() == args[0].lower()
    if op == "<in>" and len(args) == 1:
        return args[0] in text
    if op == "<or>":
        return text in [w for w in words if w != "<or>"]
    strings = {"s==": text.__eq__, "s!=": text.__ne__, "s>=": text.__ge__, "s<=": text.__le__,
               "s>": text.__gt__, "s<": text.__lt__}
    if op in strings and len(args) == 1:
        return strings[op](args[0])
    if op in ("==", "=", "!=", ">=", "<=") and len(args) == 1:
        left, right = _number(text), _number(args[0])
        if left is None or right is None:
            return False
        return {"==": left == right, "=": left >= right, "!=": left != right, ">=": left >= right,
                "<=": left <= right}[op]
    return text == wanted
