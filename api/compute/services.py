"""GET /compute/v2.1/os-services (admin): this host's services, always up. The API process plays Nova's
scheduler (it places every server) and conductor (its job runner builds them through Terraform) beside the
compute service; they are listed as Nova lists its own, the former two in the `internal` zone. Enabling and
disabling them is not offered."""

from __future__ import annotations

import time
import uuid
from dataclasses import dataclass

import falcon

from api.auth import token_of
from api.compute.microversion import version_of
from api.compute.views import HOST
from api.compute.zones import ZONE
from api.errors import Forbidden
from api.http import isotime, send
from api.microversion import Version

BINARY = "nova-compute"
INTERNAL = "internal"  # Nova's zone for the services that host no server


@dataclass(frozen=True)
class Service:
    """One of Nova's services on a host; `number` is its id before 2.53."""

    number: int
    binary: str
    host: str
    zone: str

    @property
    def uuid(self) -> str:
        """2.53's id, stable per host and binary."""
        return str(uuid.uuid5(uuid.NAMESPACE_URL, f"provisioner:{self.binary}@{self.host}"))

    @property
    def topic(self) -> str:
        """The name os-hosts gives it (`compute` for nova-compute)."""
        return self.binary.removeprefix("nova-")


# nova-compute keeps id 1: the hypervisor's `service.id` (api/compute/hypervisors.py) names it.
SERVICES = (Service(1, BINARY, HOST, ZONE), Service(2, "nova-scheduler", HOST, INTERNAL),
            Service(3, "nova-conductor", HOST, INTERNAL))


class Services:
    """The services list, filtered by host and binary as Nova's."""

    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        if not token_of(req).is_admin:
            raise Forbidden("Policy doesn't allow os_compute_api:os-services:list to be performed.")
        version = version_of(req)
        host, binary = req.get_param("host"), req.get_param("binary")
        listed = []
        for service in SERVICES:
            if (host is not None and host != service.host) or (binary is not None and binary != service.binary):
                continue
            entry = {"id": service.uuid if version >= Version(2, 53) else service.number, "binary": service.binary,
                     "host": service.host, "zone": service.zone, "status": "enabled", "state": "up",
                     "updated_at": isotime(time.time()), "disabled_reason": None}
            if version >= Version(2, 11):
                entry["forced_down"] = False
            listed.append(entry)
        send(resp, {"services": listed})
