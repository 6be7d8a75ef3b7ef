"""Nova's floating-IP proxy (os-floating-ips, the addFloatingIp/removeFloatingIp server actions): Neutron's
floating IPs (api/network/floating_ips.py) in Nova's shapes. A pool is an external network, by name; an
association follows Neutron's rules (a router joining the networks, 404 otherwise). Nova removed the proxy
at 2.36: a newer request is a 404."""

from __future__ import annotations

from typing import Any

import falcon

from api.auth import token_of
from api.compute.models import ComputeStore, Server
from api.compute.security_groups import proxied
from api.config import ApiConfig
from api.errors import BadRequest, Conflict, NotFound
from api.http import field, read_json, send
from api.identity.tokens import Token
from api.network.floating_ips import FloatingIpStore
from api.network.models import FloatingIp, Network
from api.network.store import NetworkStore
from provisioner.excerpt import cut


def _view(fip: FloatingIp, pools: dict[str, str], owners: dict[str, str]) -> dict[str, Any]:
    """Nova's floating IP: its pool (network name), address, fixed IP and the server of its port."""
    return {"id": fip.id, "ip": fip.floating_ip_address, "pool": pools.get(fip.floating_network_id),
            "fixed_ip": fip.fixed_ip_address, "instance_id": owners.get(fip.port_id or "")}


class _Proxy:
    def __init__(self, config: ApiConfig, networks: NetworkStore, store: ComputeStore):
        self.config = config
        self.networks = networks
        self.fips = FloatingIpStore(networks)
        self.store = store

    def _pools(self, token: Token) -> dict[str, str]:
        return {n.id: n.name for n in self.networks.visible_networks(token) if n.external}

    def _owners(self, token: Token) -> dict[str, str]:
        """NIC port id -> server id, for the token's servers."""
        projects = None if token.is_admin else [token.project_id]
        return {nic.id: s.id for s in self.store.listed(projects) for nic in s.nics()}

    def view(self, token: Token, fip: FloatingIp) -> dict[str, Any]:
        """The floating IP as Nova shows it to `token`."""
        return _view(fip, self._pools(token), self._owners(token))


class NovaFloatingIps(_Proxy):
    """GET and POST /compute/v2.1/os-floating-ips (POST allocates from a pool: an external network's name)."""

    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        proxied(req)
        token = token_of(req)
        pools, owners = self._pools(token), self._owners(token)
        # Nova lists the project's own, an admin's too (Neutron's list would show an admin every project's).
        mine = [f for f in self.fips.visible(token) if f.project_id == token.project_id]
        send(resp, {"floating_ips": [_view(f, pools, owners) for f in mine]})

    def on_post(self, req: falcon.Request, resp: falcon.Response) -> None:
        proxied(req)
        token = token_of(req)
        body = read_json(req, self.config.max_json_body) if req.content_length else {}
        pool = self._pool(token, (body or {}).get("pool"))
        fip = self.fips.create(token, {"floating_network_id": pool.id})
        send(resp, {"floating_ip": self.view(token, fip)})

    def _pool(self, token: Token, name: str | None) -> Network:
        external = [n for n in self.networks.visible_networks(token) if n.external]
        found = next((n for n in external if name in (None, n.name, n.id)), None)
        if found is None:
            raise NotFound(f"Floating IP pool {cut(name)} not found." if name else "No floating IP pool is defined.")
        return found


class NovaFloatingIp(_Proxy):
    """GET and DELETE /compute/v2.1/os-floating-ips/{id}."""

    def on_get(self, req: falcon.Request, resp: falcon.Response, floating_ip_id: str) -> None:
        proxied(req)
        token = token_of(req)
        send(resp, {"floating_ip": self.view(token, self._get(token, floating_ip_id))})

    def on_delete(self, req: falcon.Request, resp: falcon.Response, floating_ip_id: str) -> None:
        proxied(req)
        token = token_of(req)
        self.fips.delete(token, self._get(token, floating_ip_id).id)
        resp.status = 202

    def _get(self, token: Token, floating_ip_id: str) -> FloatingIp:
        try:
            return self.fips.get(token, floating_ip_id)
        except NotFound:
            raise NotFound(f"Floating IP not found for ID {cut(floating_ip_id)}") from None


class FloatingIpActions(_Proxy):
    """The addFloatingIp and removeFloatingIp server actions (the server's first NIC unless fixed_address
    names another's address)."""

    def actions(self) -> dict[str, Any]:
        """The action names this module serves, for ServerAction."""
        return {"addFloatingIp": self.add, "removeFloatingIp": self.remove}

    def _by_address(self, req: falcon.Request, address: str) -> FloatingIp:
        token = token_of(req)
        found = next((f for f in self.fips.visible(token) if f.floating_ip_address == address), None)
        if found is None:
            raise NotFound(f"floating IP {cut(address)} not found")
        return found

    def add(self, req: falcon.Request, resp: falcon.Response, server: Server, arguments: Any) -> None:
        """Associate the floating IP `address` with a NIC of the server (202)."""
        proxied(req)
        arguments = arguments if isinstance(arguments, dict) else {}
        address = field(arguments, "address", str, "addFloatingIp")
        fixed = field(arguments, "fixed_address", str, "addFloatingIp", False)
        fip = self._by_address(req, address)
        nics = [n for n in server.nics() if n.ips and (fixed is None or fixed in n.ips)]
        if not nics:
            where = f"a NIC with the fixed address {cut(fixed)}" if fixed else "a NIC with an address"
            raise BadRequest("addFloatingIp.fixed_address" if fixed else "addFloatingIp",
                             f"instance {server.id} has no {where}")
        body: dict[str, Any] = {"port_id": nics[0].id}  # another server's floating IP moves, as in Nova
        if fixed is not None:
            body["fixed_ip_address"] = fixed
        try:
            self.fips.update(token_of(req), fip.id, body)
        except Conflict as exc:  # Nova answers Neutron's conflict (the fixed IP has a floating IP) with 400
            raise BadRequest("addFloatingIp.address", exc.message) from None
        resp.status = 202

    def remove(self, req: falcon.Request, resp: falcon.Response, server: Server, arguments: Any) -> None:
        """Disassociate the floating IP `address` from the server (409 if it is not the server's)."""
        proxied(req)
        fip = self._by_address(req, field(arguments if isinstance(arguments, dict) else {}, "address", str,
                                          "removeFloatingIp"))
        if fip.port_id is None or fip.port_id not in {n.id for n in server.nics()}:
            raise Conflict(f"floating IP {fip.floating_ip_address} is not associated with instance {server.id}")
        self.fips.update(token_of(req), fip.id, {"port_id": None})
        resp.status = 202
