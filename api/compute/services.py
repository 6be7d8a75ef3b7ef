"""GET /compute/v2.1/os-services (admin): one nova-compute service per configured hypervisor (its name is the
host, its zone the service's; state up or down as os-hypervisors finds it), and the API host's nova-scheduler and
nova-conductor: the API process plays Nova's scheduler (it places every server) and conductor (its job runner builds
them through Terraform); Nova lists those in the `internal` zone. From 2.53 an admin disables, enables or forces
down a nova-compute service with PUT /os-services/{id} (kept in the API's database); the scheduler then places
nothing on its hypervisor (Nova's ComputeFilter, api/compute/placement.py). The older PUT actions (enable,
disable, force-down by host and binary) are not served."""

from __future__ import annotations

import time
import uuid
from dataclasses import dataclass, replace
from typing import Any

import falcon

from api.auth import token_of
from api.compute.block_devices import TRUE
from api.compute.microversion import version_of
from api.compute.placement import Hosts
from api.compute.views import HOST
from api.config import ApiConfig
from api.db import Database, Table
from api.errors import BadRequest, Forbidden, NotFound
from api.http import isotime, read_json, send
from api.microversion import Version
from provisioner.excerpt import cut

BINARY = "nova-compute"
INTERNAL = "internal"  # Nova's zone for the services that host no server
UUID_IDS = Version(2, 53)  # ids are UUIDs, and PUT /os-services/{id} updates one
FORCED_DOWN = Version(2, 11)  # forced_down shown


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


def compute_services(hosts: Hosts) -> list[Service]:
    """Nova's services here, as os-services, os-hosts, os-aggregates and the usage audit know them: a
    nova-compute per hypervisor (ids 1.. in config.yaml's order), then the API host's scheduler and conductor."""
    computes = [Service(number, BINARY, host.name, host.zone) for number, host in enumerate(hosts.hosts, 1)]
    return [*computes, Service(len(computes) + 1, "nova-scheduler", HOST, INTERNAL),
            Service(len(computes) + 2, "nova-conductor", HOST, INTERNAL)]


@dataclass(frozen=True)
class ServiceState:
    """What an admin set on a nova-compute service (by its uuid); a service without one is enabled and up."""

    id: str
    name: str  # its host, the hypervisor's name
    disabled: bool = False
    disabled_reason: str | None = None
    forced_down: bool = False
    updated: float | None = None


class ServiceStates:
    """The api_compute_services table: the services an admin updated."""

    def __init__(self, db: Database):
        self.table = Table(db, "compute_services", ServiceState)

    def get(self, service: Service) -> ServiceState:
        """`service`'s state (the default one if never updated)."""
        return self.table.get(service.uuid) or ServiceState(service.uuid, service.host)

    def of_compute(self, host: str) -> ServiceState:
        """The state of hypervisor `host`'s nova-compute (os-hypervisors shows it too)."""
        return self.get(Service(0, BINARY, host, ""))  # its uuid is of its binary and host only

    def save(self, state: ServiceState) -> ServiceState:
        """Store `state`, inserted or replaced."""
        if self.table.get(state.id) is None:
            return self.table.insert(state)
        return self.table.update(state)

    def unavailable_hosts(self) -> frozenset[str]:
        """The hypervisors whose nova-compute is disabled or forced down: the scheduler places nothing there."""
        return frozenset(s.name for s in self.table.list() if s.disabled or s.forced_down)


def _admin(req: falcon.Request, rule: str) -> None:
    if not token_of(req).is_admin:
        raise Forbidden(f"Policy doesn't allow os_compute_api:os-services:{rule} to be performed.")


class Services:
    """GET /os-services, filtered by host and binary as Nova's; PUT /os-services/{id} from 2.53."""

    def __init__(self, config: ApiConfig, hosts: Hosts, states: ServiceStates):
        self.config = config
        self.hosts = hosts
        self.states = states

    def _view(self, service: Service, version: Version) -> dict[str, Any]:
        state = self.states.get(service)
        up = not state.forced_down
        if up and service.binary == BINARY:
            host = self.hosts.named(service.host)
            up = host is not None and self.hosts.is_up(host)
        entry: dict[str, Any] = {
            "id": service.uuid if version >= UUID_IDS else service.number, "binary": service.binary,
            "host": service.host, "zone": service.zone, "status": "disabled" if state.disabled else "enabled",
            "state": "up" if up else "down", "updated_at": isotime(state.updated or time.time()),
            "disabled_reason": state.disabled_reason}
        if version >= FORCED_DOWN:
            entry["forced_down"] = state.forced_down
        return entry

    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        _admin(req, "list")
        version = version_of(req)
        host, binary = req.get_param("host"), req.get_param("binary")
        listed = [s for s in compute_services(self.hosts)
                  if (host is None or host == s.host) and (binary is None or binary == s.binary)]
        self.hosts.survey(h for h in self.hosts.hosts if any(s.host == h.name for s in listed))
        send(resp, {"services": [self._view(s, version) for s in listed]})

    def on_put_item(self, req: falcon.Request, resp: falcon.Response, service_id: str) -> None:
        """Nova's 2.53 update: status enabled/disabled (with an optional disabled_reason), forced_down; the body's
        form is api/openapi.yaml's."""
        _admin(req, "update")
        version = version_of(req)
        if version < UUID_IDS:  # the older actions (os-services/enable...) are not served
            raise NotFound("The resource could not be found.")
        if not _is_uuid(service_id):
            raise BadRequest("", f"Invalid uuid {cut(service_id)}")
        service = next((s for s in compute_services(self.hosts) if s.uuid == service_id), None)
        if service is None:
            raise NotFound(f"Service {service_id} could not be found.")
        if service.binary != BINARY:
            raise BadRequest("", f"Updating a {service.binary} service is not supported. Only nova-compute "
                                 "services can be updated.")
        body = read_json(req, self.config.max_json_body)
        state = self.states.get(service)
        if "status" in body:
            if body["status"] == "enabled":
                if body.get("disabled_reason"):
                    raise BadRequest("", "Specifying 'disabled_reason' with status 'enabled' is invalid.")
                state = replace(state, disabled=False, disabled_reason=None)
            else:
                state = replace(state, disabled=True, disabled_reason=body.get("disabled_reason"))
        if "forced_down" in body:
            state = replace(state, forced_down=str(body["forced_down"]).lower() in TRUE)
        if "status" not in body and "forced_down" not in body:
            raise BadRequest("", "No updates were requested. Fields 'status' or 'forced_down' should be specified.")
        self.states.save(replace(state, updated=time.time()))
        send(resp, {"service": self._view(service, version)})


def _is_uuid(text: str) -> bool:
    try:
        uuid.UUID(text)
    except ValueError:
        return False
    return True
