"""Neutron floating IPs: /network/v2.0/floatingips[/{id}] (create, list, show, update, delete).

A floating IP is an address of an external network (router:external) held
for a project, taken from the network's subnets like a port's fixed IP
(NetworkStore.taken counts it). It may be associated with a port's IPv4
fixed IP when a router joins the two: a router with its gateway on the
floating IP's network and an interface on the port's subnet, as Neutron
requires (404 otherwise). The association is a record: the engine applies no
NAT for it (docs/api.md, Floating IPs); Nova shows it in the server's
addresses as a `floating` address. A port that goes away takes its
association with it (the floating IP is DOWN and unassociated again).
"""

from __future__ import annotations

import ipaddress
import uuid
from dataclasses import replace
from typing import Any

import falcon

from api.auth import token_of
from api.config import ApiConfig
from api.db import Table
from api.errors import BadRequest, Conflict, Forbidden, NotFound
from api.http import field, read_json, send
from api.identity.tokens import Token
from api.network import ipam
from api.network.models import ACTIVE, DOWN, FloatingIp, Router
from api.network.ports import INTERFACE
from api.network.store import NetworkStore
from api.network.views import filtered, own_port_view, port_views, selected, stamps
from provisioner.excerpt import cut

WHERE = "floatingip"


class FloatingIpStore:
    """The floating IPs one token may see and change."""

    def __init__(self, store: NetworkStore):
        self.store = store
        self.table = store.floating_ips
        self.routers = Table(store.db, "routers", Router)

    def visible(self, token: Token) -> list[FloatingIp]:
        """The project's floating IPs (every one for an admin), each without an association whose port is gone."""
        return [self._settled(f) for f in self.table.list(None if token.is_admin else [token.project_id])]

    def get(self, token: Token, fip_id: str) -> FloatingIp:
        """A floating IP the token may see; NotFound otherwise."""
        found = self.table.get(fip_id)
        if found is None or (not token.is_admin and found.project_id != token.project_id):
            raise NotFound(f"Floating IP {cut(fip_id)} could not be found")
        return self._settled(found)

    def _ports(self, project_id: str | None) -> dict[str, dict[str, Any]]:
        """Port views by id: the servers' NICs and Neutron's own ports (of one project, or all for None)."""
        scope = None if project_id is None else [project_id]
        views = [p for s in self.store.servers.list(scope) for p in port_views(s)]  # addresses only: no groups
        views += [own_port_view(p) for p in self.store.ports.list(scope)]
        return {p["id"]: p for p in views}

    def _settled(self, fip: FloatingIp) -> FloatingIp:
        if fip.port_id is not None and fip.port_id not in self._ports(None):
            return replace(fip, port_id=None, fixed_ip_address=None, router_id=None)
        return fip

    def _associate(self, token: Token, fip: FloatingIp, body: dict[str, Any]) -> FloatingIp:
        """`fip` with the body's port_id (and fixed_ip_address), checked; null port_id disassociates."""
        port_id = field(body, "port_id", str, WHERE, False)
        if port_id is None:
            return replace(fip, port_id=None, fixed_ip_address=None, router_id=None)
        port = self._ports(None if token.is_admin else token.project_id).get(port_id)
        if port is None:
            raise NotFound(f"Port {cut(port_id)} could not be found.")
        addresses = [f["ip_address"] for f in port["fixed_ips"] if ipaddress.ip_address(f["ip_address"]).version == 4]
        wanted = field(body, "fixed_ip_address", str, WHERE, False)
        if wanted is not None and wanted not in addresses:
            raise BadRequest(f"{WHERE}.fixed_ip_address", f"{cut(wanted)} is not an IPv4 address of port {port_id}")
        if not addresses:
            raise BadRequest(f"{WHERE}.port_id", f"port {port_id} has no IPv4 address to associate")
        fixed = wanted or addresses[0]
        taken = next((f for f in self.table.list() if f.id != fip.id and f.port_id == port_id
                      and f.fixed_ip_address == fixed), None)
        if taken is not None:
            raise Conflict(f"Cannot associate floating IP {fip.floating_ip_address} ({fip.id}) with port {port_id} "
                           f"using fixed IP {fixed}, as that fixed IP already has a floating IP on external network "
                           f"{taken.floating_network_id}.")
        router = self._router(fip.floating_network_id, port["network_id"], fixed)
        return replace(fip, port_id=port_id, fixed_ip_address=fixed, router_id=router.id)

    def _router(self, external_id: str, network_id: str, fixed: str) -> Router:
        """A router with its gateway on the external network and an interface on the fixed IP's subnet."""
        address = ipaddress.ip_address(fixed)
        subnets = {s.id for s in self.store.subnets_of(network_id) if address in ipaddress.ip_network(s.cidr)}
        for router in self.routers.list():
            if router.gateway_network_id != external_id:
                continue
            interfaces = [p for p in self.store.ports.list() if p.device_id == router.id and p.device_owner == INTERFACE]
            if any(f["subnet_id"] in subnets for p in interfaces for f in p.fixed_ips):
                return router
        raise NotFound(f"External network {external_id} is not reachable from subnet {', '.join(sorted(subnets))}. "
                       "Therefore, cannot associate Port with a Floating IP.")

    def create(self, token: Token, body: dict[str, Any]) -> FloatingIp:
        """A floating IP of the token's project on an external network, associated if port_id is given."""
        network = self.store.network(token, field(body, "floating_network_id", str, WHERE))
        if not network.external:
            raise BadRequest(f"{WHERE}.floating_network_id", f"Bad floatingip request: Network {network.id} is not "
                                                              "a valid external network.")
        requested = field(body, "floating_ip_address", str, WHERE, False)
        if requested is not None and not token.is_admin:
            raise Forbidden("choosing floating_ip_address requires the admin role")
        subnets = [s for s in self.store.subnets_of(network.id) if s.ip_version == 4]
        subnet_id = field(body, "subnet_id", str, WHERE, False)
        if subnet_id is not None:
            subnets = [s for s in subnets if s.id == subnet_id]
            if not subnets:
                raise BadRequest(f"{WHERE}.subnet_id", f"subnet {cut(subnet_id)} is not an IPv4 subnet of network "
                                                       f"{network.id}")
        project = field(body, "project_id", str, WHERE, False) or field(body, "tenant_id", str, WHERE, False)
        if project is not None and project != token.project_id and not token.is_admin:
            raise Forbidden("creating a floating IP for another project requires the admin role")
        with self.store.db.transaction():
            fixed = ipam.allocate(subnets, self.store.taken(network.id), requested, f"{WHERE}.floating_ip_address")
            if fixed is None:
                raise BadRequest(f"{WHERE}.floating_network_id", f"network {network.id} has no IPv4 subnet")
            fip = FloatingIp(id=str(uuid.uuid4()), project_id=project or token.project_id,
                             floating_network_id=network.id,
                             subnet_id=fixed.subnet.id, floating_ip_address=str(fixed.address),
                             description=field(body, "description", str, WHERE, False, ""))
            if body.get("port_id") is not None:
                fip = self._associate(token, fip, body)
            return self.table.insert(fip)

    def update(self, token: Token, fip_id: str, body: dict[str, Any]) -> FloatingIp:
        """Associate (port_id), disassociate (port_id null) or describe a floating IP."""
        fip = self.get(token, fip_id)
        unknown = sorted(set(body) - {"port_id", "fixed_ip_address", "description"})
        if unknown:
            raise BadRequest(f"{WHERE}.{cut(unknown[0])}", "cannot be updated (updatable: port_id, "
                                                           "fixed_ip_address, description)")
        with self.store.db.transaction():
            if "port_id" in body:
                fip = self._associate(token, fip, body)
            fip = replace(fip, description=field(body, "description", str, WHERE, False, fip.description))
            return self.table.update(fip)

    def delete(self, token: Token, fip_id: str) -> None:
        """Release the address."""
        self.table.delete(self.get(token, fip_id).id)


def floating_ip_view(fip: FloatingIp) -> dict[str, Any]:
    """A floating IP as Neutron shows it: ACTIVE while associated, DOWN otherwise."""
    return {"id": fip.id, "floating_ip_address": fip.floating_ip_address,
            "floating_network_id": fip.floating_network_id, "subnet_id": fip.subnet_id, "port_id": fip.port_id,
            "fixed_ip_address": fip.fixed_ip_address, "router_id": fip.router_id,
            "status": ACTIVE if fip.port_id else DOWN, "description": fip.description, "port_details": None,
            "port_forwardings": [], "qos_policy_id": None, "dns_domain": "", "dns_name": "",
            **stamps(fip.project_id, fip.tags)}


class FloatingIps:
    """/network/v2.0/floatingips[/{item_id}]."""

    def __init__(self, config: ApiConfig, fips: FloatingIpStore):
        self.config = config
        self.fips = fips

    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        send(resp, {"floatingips": filtered(req, [floating_ip_view(f) for f in self.fips.visible(token_of(req))])})

    def on_post(self, req: falcon.Request, resp: falcon.Response) -> None:
        fip = self.fips.create(token_of(req), read_json(req, self.config.max_json_body, WHERE))
        send(resp, {"floatingip": floating_ip_view(fip)}, 201)

    def on_get_item(self, req: falcon.Request, resp: falcon.Response, item_id: str) -> None:
        send(resp, {"floatingip": selected(req, floating_ip_view(self.fips.get(token_of(req), item_id)))})

    def on_put_item(self, req: falcon.Request, resp: falcon.Response, item_id: str) -> None:
        fip = self.fips.update(token_of(req), item_id, read_json(req, self.config.max_json_body, WHERE))
        send(resp, {"floatingip": floating_ip_view(fip)})

    def on_delete_item(self, req: falcon.Request, resp: falcon.Response, item_id: str) -> None:
        self.fips.delete(token_of(req), item_id)
        resp.status = 204
