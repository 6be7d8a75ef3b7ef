"""Neutron routers as records: create, update (name, gateway, extra routes), delete, and interfaces.

An interface is a port on a subnet holding the subnet's gateway address
(device_owner network:router_interface); a gateway is a port on an external
network (network:router_gateway). Nothing routes packets between them: the
engine's libvirt networks forward as `network_forward` says. An interface
port is ACTIVE when the host's bridge holds its address (an IPv4 gateway of
an applied network: NetworkStore.interface_status), DOWN otherwise.
"""

from __future__ import annotations

import ipaddress
import secrets
import uuid
from dataclasses import replace
from typing import Any

import falcon

from api.auth import token_of
from api.config import ApiConfig
from api.db import Table
from api.errors import BadRequest, Conflict, Forbidden, NotFound
from api.http import given, read_json, send
from api.identity.tokens import Token
from api.network import ipam
from api.network.bulk import create_all
from api.network.models import DOWN, Port, Router, Subnet
from api.network.ports import GATEWAY, INTERFACE, MAC_PREFIX, PortStore
from api.network.store import NetworkStore
from api.network.views import filtered, selected, stamps
from provisioner.excerpt import describe


def _subnet_id(body: dict[str, Any]) -> str:
    """An interface request without port_id names a subnet."""
    if "subnet_id" not in body:
        raise BadRequest("router.subnet_id", "is required (or give a port_id)")
    return body["subnet_id"]


class RouterStore:
    """Routers one token may see and change, with their interface and gateway ports."""

    def __init__(self, store: NetworkStore, ports: PortStore):
        self.store = store
        self.ports = ports
        self.routers = Table(store.db, "routers", Router)

    def visible(self, token: Token) -> list[Router]:
        """The project's routers (every one for an admin)."""
        return self.routers.list(None if token.is_admin else [token.project_id])

    def router(self, token: Token, router_id: str) -> Router:
        """A router the token may see; NotFound otherwise."""
        found = self.routers.get(router_id)
        if found is None or (not token.is_admin and found.project_id != token.project_id):
            raise NotFound(f"Router {router_id} could not be found")
        return found

    def ports_of(self, router: Router, owner: str) -> list[Port]:
        """The router's interface (or gateway) ports."""
        return [p for p in self.store.ports.list() if p.device_id == router.id and p.device_owner == owner]

    def view(self, router: Router) -> dict[str, Any]:
        """A router as Neutron shows it."""
        gateway = None
        if router.gateway_network_id is not None:
            gateway = {"network_id": router.gateway_network_id, "enable_snat": router.enable_snat,
                       "external_fixed_ips": [dict(f) for p in self.ports_of(router, GATEWAY) for f in p.fixed_ips]}
        return {"id": router.id, "name": router.name, "status": "ACTIVE", "admin_state_up": router.admin_state_up,
                "external_gateway_info": gateway, "description": router.description, "routes": list(router.routes),
                **stamps(router.project_id, router.tags)}

    def _new_port(self, router: Router, network_id: str, fixed: ipam.FixedIp, owner: str) -> Port:
        entry = fixed.port_entry()
        status = self.store.interface_status(network_id, [entry]) if owner == INTERFACE else DOWN
        return self.store.ports.insert(Port(
            id=str(uuid.uuid4()), name="", project_id=router.project_id, network_id=network_id,
            mac_address=MAC_PREFIX + "".join(f":{b:02x}" for b in secrets.token_bytes(3)),
            fixed_ips=(entry,), device_id=router.id, device_owner=owner, status=status))

    def _gateway(self, token: Token, router: Router, body: dict[str, Any]) -> Router:
        """`router` with the body's external_gateway_info (None or {} clears it), its gateway port made."""
        info = body["external_gateway_info"]
        for port in self.ports_of(router, GATEWAY):
            self.store.ports.delete(port.id)
        if not info:
            return replace(router, gateway_network_id=None)
        where = "router.external_gateway_info"
        if "network_id" not in info:  # the rest of its form is api/openapi.yaml's
            raise BadRequest(f"{where}.network_id", "is required")
        network = self.store.network(token, info["network_id"])
        if not network.external:
            raise BadRequest(f"{where}.network_id", f"network {network.id} is not an external network")
        subnets = self.store.subnets_of(network.id)
        router = replace(router, gateway_network_id=network.id,
                         enable_snat=given(info, "enable_snat", True))
        for fixed in self._gateway_addresses(token, subnets, info.get("external_fixed_ips"), where):
            self._new_port(router, network.id, fixed, GATEWAY)
        return router

    def _gateway_addresses(self, token: Token, subnets: list[Subnet], requests: list[dict[str, str]] | None,
                           where: str) -> list[ipam.FixedIp]:
        """The gateway's addresses: those external_fixed_ips asks for (an admin's choice, as Neutron's
        policy has it; each by subnet and/or address, 409 if taken), else one from the first subnet with room."""
        taken = self.store.taken(subnets[0].network_id) if subnets else set()
        if not requests:
            fixed = ipam.allocate(subnets, taken, None, f"{where}.external_fixed_ips")
            return [] if fixed is None else [fixed]
        if not token.is_admin:
            raise Forbidden(f"setting {where}.external_fixed_ips requires the admin role")
        chosen: list[ipam.FixedIp] = []
        for index, request in enumerate(requests):
            at = f"{where}.external_fixed_ips[{index}]"
            candidates = subnets
            if "subnet_id" in request:
                candidates = [s for s in subnets if s.id == request["subnet_id"]]
                if not candidates:
                    raise BadRequest(f"{at}.subnet_id", f"{describe(request['subnet_id'])} is not a subnet of the "
                                                        "external network")
            fixed = ipam.allocate(candidates, taken | {c.address for c in chosen}, request.get("ip_address"),
                                  f"{at}.ip_address")
            if fixed is None:
                raise BadRequest(at, "the external network has no subnet")
            chosen.append(fixed)
        return chosen

    def create(self, token: Token, body: dict[str, Any]) -> Router:
        """A new router of the token's project."""
        project = body.get("project_id") or body.get("tenant_id") or token.project_id
        if project != token.project_id and not token.is_admin:
            raise Forbidden("creating a router for another project requires the admin role")
        router = Router(id=str(uuid.uuid4()), name=given(body, "name", ""), project_id=project,
                        admin_state_up=given(body, "admin_state_up", True),
                        description=given(body, "description", ""))
        with self.store.db.transaction():
            if body.get("external_gateway_info") is not None:
                router = self._gateway(token, router, body)
            return self.routers.insert(router)

    def update(self, token: Token, router_id: str, body: dict[str, Any]) -> Router:
        """Change a router's name, description, admin state, gateway or extra routes."""
        router = self.router(token, router_id)  # the updatable members are api/openapi.yaml's
        with self.store.db.transaction():
            if "external_gateway_info" in body:
                router = self._gateway(token, router, body)
            if "routes" in body:
                router = replace(router, routes=self._routes(router, body))
            return self.routers.update(replace(
                router, name=given(body, "name", router.name),
                description=given(body, "description", router.description),
                admin_state_up=given(body, "admin_state_up", router.admin_state_up)))

    def _routes(self, router: Router, body: dict[str, Any]) -> tuple[dict[str, str], ...]:
        """Extra routes, each with a nexthop in a subnet the router has an interface on."""
        connected = [ipaddress.ip_network(s.cidr) for p in self.ports_of(router, INTERFACE)
                     for f in p.fixed_ips if (s := self.store.subnets.get(f["subnet_id"])) is not None]
        routes = []
        for index, route in enumerate(body.get("routes") or []):  # each {destination, nexthop}, per the spec
            where = f"router.routes[{index}]"
            try:
                destination = ipaddress.ip_network(str(route["destination"]), strict=False)
                nexthop = ipaddress.ip_address(str(route["nexthop"]))
            except ValueError:
                raise BadRequest(where, "destination must be a CIDR and nexthop an IP address") from None
            if not any(nexthop in net for net in connected):
                raise BadRequest(f"{where}.nexthop", f"{nexthop} is not in a subnet the router is connected to")
            routes.append({"destination": str(destination), "nexthop": str(nexthop)})
        return tuple(routes)

    def delete(self, token: Token, router_id: str) -> None:
        """Delete a router without interfaces (its gateway port goes with it)."""
        router = self.router(token, router_id)
        if self.ports_of(router, INTERFACE):
            raise Conflict(f"Router {router_id} still has ports")
        for port in self.ports_of(router, GATEWAY):
            self.store.ports.delete(port.id)
        self.routers.delete(router.id)

    def add_interface(self, token: Token, router_id: str, body: dict[str, Any]) -> dict[str, Any]:
        """Connect a subnet (a new port on its gateway address) or an unused port to the router."""
        router = self.router(token, router_id)
        with self.store.db.transaction():
            if "port_id" in body:
                port = self.ports.port(token, body["port_id"])
                if port.device_id:
                    raise Conflict(f"Port {port.id} is in use by {port.device_owner or 'a device'}")
                if not port.fixed_ips:
                    raise BadRequest("router.port_id", f"port {port.id} has no fixed IP")
                self._refuse_overlap(router, [f["subnet_id"] for f in port.fixed_ips])
                port = self.store.ports.update(replace(
                    port, device_id=router.id, device_owner=INTERFACE,
                    status=self.store.interface_status(port.network_id, port.fixed_ips)))
            else:
                subnet = self.store.subnet(token, _subnet_id(body))
                if subnet.gateway_ip is None:
                    raise BadRequest("router.subnet_id", f"subnet {subnet.id} has no gateway IP")
                if any(f["subnet_id"] == subnet.id for p in self.ports_of(router, INTERFACE) for f in p.fixed_ips):
                    raise BadRequest("router.subnet_id", f"router {router.id} already has a port on subnet "
                                                         f"{subnet.id}")
                self._refuse_overlap(router, [subnet.id])
                gateway = ipaddress.ip_address(subnet.gateway_ip)
                if gateway in self.store.taken(subnet.network_id):
                    raise ipam.IpAddressAlreadyAllocated(f"IP address {gateway} is already allocated in subnet "
                                                         f"{subnet.id}")
                port = self._new_port(router, subnet.network_id, ipam.FixedIp(subnet, gateway), INTERFACE)
        return _interface_info(router, port)

    def _refuse_overlap(self, router: Router, subnet_ids: list[str]) -> None:
        """Neutron's 400 for an interface on a subnet overlapping one the router is already connected to."""
        connected = [s for p in self.ports_of(router, INTERFACE) for f in p.fixed_ips
                     if (s := self.store.subnets.get(f["subnet_id"])) is not None]
        for subnet_id in subnet_ids:
            new = self.store.subnets.get(subnet_id)
            if new is None:
                continue
            cidr = ipaddress.ip_network(new.cidr)
            for old in connected:
                other = ipaddress.ip_network(old.cidr)
                if old.id != new.id and cidr.version == other.version and cidr.overlaps(other):
                    raise BadRequest("router.subnet_id", f"Bad router request: Cidr {new.cidr} of subnet {new.id} "
                                                         f"overlaps with cidr {old.cidr} of subnet {old.id}.")

    def remove_interface(self, token: Token, router_id: str, body: dict[str, Any]) -> dict[str, Any]:
        """Disconnect a subnet or port from the router; the interface port is deleted."""
        router = self.router(token, router_id)
        interfaces = self.ports_of(router, INTERFACE)
        if "port_id" in body:
            port_id = body["port_id"]
            port = next((p for p in interfaces if p.id == port_id), None)
        else:
            subnet_id = _subnet_id(body)
            port = next((p for p in interfaces if any(f["subnet_id"] == subnet_id for f in p.fixed_ips)), None)
        if port is None:
            raise NotFound(f"Router {router.id} has no interface matching the request")
        if router.routes and len(interfaces) == 1:
            raise Conflict(f"Router interface for router {router.id} cannot be deleted, as it is required by "
                           "one or more routes.")
        self.store.ports.delete(port.id)
        return _interface_info(router, port)


def _interface_info(router: Router, port: Port) -> dict[str, Any]:
    subnets = [f["subnet_id"] for f in port.fixed_ips]
    return {"id": router.id, "port_id": port.id, "subnet_id": subnets[0] if subnets else None,
            "subnet_ids": subnets, "network_id": port.network_id, "project_id": router.project_id,
            "tenant_id": router.project_id}


class Routers:
    """/network/v2.0/routers[/{id}], and PUT .../{id}/add_router_interface and remove_router_interface."""

    def __init__(self, config: ApiConfig, routers: RouterStore):
        self.config = config
        self.routers = routers

    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        views = [self.routers.view(r) for r in self.routers.visible(token_of(req))]
        send(resp, {"routers": filtered(req, views)})

    def on_post(self, req: falcon.Request, resp: falcon.Response) -> None:
        token = token_of(req)
        create_all(req, resp, self.config.max_json_body, "router", "routers",
                   lambda body: self.routers.create(token, body),
                   lambda router: self.routers.delete(token, router.id), self.routers.view)

    def on_get_item(self, req: falcon.Request, resp: falcon.Response, item_id: str) -> None:
        send(resp, {"router": selected(req, self.routers.view(self.routers.router(token_of(req), item_id)))})

    def on_put_item(self, req: falcon.Request, resp: falcon.Response, item_id: str) -> None:
        router = self.routers.update(token_of(req), item_id, read_json(req, self.config.max_json_body, "router"))
        send(resp, {"router": self.routers.view(router)})

    def on_delete_item(self, req: falcon.Request, resp: falcon.Response, item_id: str) -> None:
        self.routers.delete(token_of(req), item_id)
        resp.status = 204

    def on_put_add(self, req: falcon.Request, resp: falcon.Response, item_id: str) -> None:
        send(resp, self.routers.add_interface(token_of(req), item_id, read_json(req, self.config.max_json_body)))

    def on_put_remove(self, req: falcon.Request, resp: falcon.Response, item_id: str) -> None:
        send(resp, self.routers.remove_interface(token_of(req), item_id, read_json(req, self.config.max_json_body)))
