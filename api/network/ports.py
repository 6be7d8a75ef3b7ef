"""Neutron ports of their own: create, update and delete, with fixed IPs from the network's subnets.

A server's NICs are ports too, listed from its record (views.port_views) and
not changed here. A port made here holds its addresses (no server takes them)
until it is deleted; the engine plugs nothing into it.
"""

from __future__ import annotations

import ipaddress
import secrets
import uuid
from dataclasses import replace
from typing import Any

from api.errors import BadRequest, Conflict, Forbidden, NotFound
from api.http import given
from api.identity.tokens import Token
from api.network import ipam, port_attributes
from api.network.models import GATEWAY, INTERFACE, Network, Port
from api.network.port_attributes import MAC
from api.network.store import Admit, NetworkStore
from provisioner.excerpt import describe

# OpenStack's prefix for the MACs it makes (fa:16:3e), as Neutron's base_mac.
MAC_PREFIX = "fa:16:3e"


def _mac(body: dict[str, Any]) -> str:
    requested = body.get("mac_address")
    if requested is None:
        return MAC_PREFIX + "".join(f":{b:02x}" for b in secrets.token_bytes(3))
    mac = requested.lower()
    if not MAC.fullmatch(mac) or int(mac[:2], 16) & 1:
        raise BadRequest("port.mac_address", f"{describe(requested)} is not a unicast MAC address")
    return mac


class PortStore:
    """Ports created through Neutron, in the network store's database."""

    def __init__(self, store: NetworkStore):
        self.store = store

    def visible(self, token: Token) -> list[Port]:
        """The project's ports (every one for an admin)."""
        return self.store.ports.list(None if token.is_admin else [token.project_id])

    def port(self, token: Token, port_id: str) -> Port:
        """A port the token may see; NotFound otherwise."""
        found = self.store.ports.get(port_id)
        if found is None or (not token.is_admin and found.project_id != token.project_id):
            raise NotFound(f"Port {port_id} could not be found.")
        return found

    def _groups(self, token: Token, body: dict[str, Any], default: tuple[str, ...]) -> tuple[str, ...]:
        groups = body.get("security_groups")  # ids (strings), per api/openapi.yaml
        if groups is None:
            return default
        for group_id in groups:
            self.store.group(token, group_id)
        return tuple(dict.fromkeys(groups))

    def _fixed_ips(self, network: Network, body: dict[str, Any], held: set[ipam.IP], mac: str,
                   current: tuple[dict[str, str], ...] = (), implicit: bool = True) -> tuple[dict[str, str], ...]:
        """Addresses for the port: those `fixed_ips` asks for (by subnet and/or address), else one from each
        IP version's pooled subnets; on an auto-address subnet (SLAAC, DHCPv6-stateless) the MAC's EUI-64
        address, on every such subnet unless `fixed_ips` names others and not `implicit` (an update, or a
        router's port). `held`: addresses taken by others; `current`: the port's own so far, of which a
        request naming only a subnet keeps the one on that subnet (as Neutron does on update)."""
        subnets = self.store.subnets_of(network.id)
        pooled = [s for s in subnets if not ipam.auto_address(s)]
        requests = body.get("fixed_ips")  # each {subnet_id and/or ip_address}, per api/openapi.yaml
        chosen: list[ipam.FixedIp] = []
        kept: list[dict[str, str]] = []
        if requests is None:
            for version in (4, 6):
                fixed = ipam.allocate([s for s in pooled if s.ip_version == version],
                                      held | {c.address for c in chosen}, None, "port.fixed_ips")
                if fixed is not None:
                    chosen.append(fixed)
            requests, implicit = [], True
        for index, request in enumerate(requests):
            where = f"port.fixed_ips[{index}]"
            own = next((f for f in current if "ip_address" not in request and f not in kept
                        and f.get("subnet_id") == request.get("subnet_id")), None)
            if own is not None:
                kept.append(own)
                continue
            candidates = pooled
            if "subnet_id" in request:
                subnet_id = request["subnet_id"]
                named = [s for s in subnets if s.id == subnet_id]
                if not named:
                    raise BadRequest(f"{where}.subnet_id", f"{describe(subnet_id)} is not a subnet of network "
                                                           f"{network.id}")
                if ipam.auto_address(named[0]):
                    if "ip_address" in request:
                        raise BadRequest(f"{where}.ip_address", f"IPv6 address {describe(request['ip_address'])} "
                                         f"cannot be directly assigned to a port on subnet {subnet_id} as the "
                                         "subnet is configured for automatic addresses")
                    chosen.append(ipam.eui64(named[0], mac))
                    continue
                candidates = named
            taken = held | {c.address for c in chosen} | {ipaddress.ip_address(f["ip_address"]) for f in kept}
            fixed = ipam.allocate(candidates, taken, request.get("ip_address"), f"{where}.ip_address")
            if fixed is None:
                raise BadRequest(where, f"network {network.id} has no subnet")
            chosen.append(fixed)
        if implicit:
            named_ids = {c.subnet.id for c in chosen} | {f.get("subnet_id") for f in kept}
            chosen.extend(ipam.eui64(s, mac) for s in subnets if ipam.auto_address(s) and s.id not in named_ids)
        return (*kept, *(c.port_entry() for c in chosen))

    def create(self, token: Token, body: dict[str, Any], admit: Admit) -> Port:
        """A new port on a network the token may use; addresses chosen in the write transaction."""
        network = self.store.network(token, body["network_id"])
        if network.project_id != token.project_id and not (network.shared or token.is_admin):
            raise NotFound(f"Network {network.id} could not be found.")
        project = body.get("project_id") or body.get("tenant_id")
        if project is not None and project != token.project_id and not token.is_admin:
            raise Forbidden("creating a port for another project requires the admin role")
        port_attributes.check_binding(body, token.is_admin)
        default_group = next(g.id for g in self.store.visible_groups(token)
                             if g.name == "default" and g.project_id == token.project_id)
        mac = _mac(body)
        common = {"id": str(uuid.uuid4()), "name": given(body, "name", ""),
                  "project_id": project or token.project_id, "network_id": network.id, "mac_address": mac,
                  "device_id": given(body, "device_id", ""), "device_owner": given(body, "device_owner", ""),
                  "admin_state_up": given(body, "admin_state_up", True),
                  "description": given(body, "description", ""),
                  "security_groups": self._groups(token, body, (default_group,)),
                  "allowed_address_pairs": port_attributes.address_pairs(body, mac) or (),
                  "extra_dhcp_opts": port_attributes.dhcp_options(body, ()),
                  **port_attributes.binding_of(body, None)}
        with self.store.db.transaction():
            if any(p.mac_address == common["mac_address"] for p in self.store.own_ports_on(network.id)):
                raise Conflict(f"Unable to complete operation for network {network.id}. The mac address "
                               f"{common['mac_address']} is in use.")
            router_port = common["device_owner"] in (INTERFACE, GATEWAY)
            port = Port(**common, fixed_ips=self._fixed_ips(network, body, self.store.taken(network.id), mac,
                                                            implicit=not router_port))
            admit(port.project_id)
            return self.store.ports.insert(port)

    def update(self, token: Token, port_id: str, body: dict[str, Any]) -> Port:
        """Change a port's name, description, admin state, device, security groups, fixed IPs, allowed
        address pairs, extra DHCP options or binding."""
        port = self.port(token, port_id)  # the updatable members are api/openapi.yaml's
        port_attributes.check_binding(body, token.is_admin)
        pairs = port_attributes.address_pairs(body, port.mac_address)
        with self.store.db.transaction():
            fixed_ips = port.fixed_ips
            if "fixed_ips" in body:
                network = self.store.network(token, port.network_id)
                own = {ipaddress.ip_address(f["ip_address"]) for f in port.fixed_ips}
                fixed_ips = self._fixed_ips(network, body, self.store.taken(network.id) - own, port.mac_address,
                                            port.fixed_ips, implicit=False)
            port = replace(port, allowed_address_pairs=port.allowed_address_pairs if pairs is None else pairs,
                           extra_dhcp_opts=port_attributes.dhcp_options(body, port.extra_dhcp_opts),
                           **port_attributes.binding_of(body, port))
            changed = replace(
                port, name=given(body, "name", port.name), description=given(body, "description", port.description),
                admin_state_up=given(body, "admin_state_up", port.admin_state_up),
                device_id=given(body, "device_id", port.device_id),
                device_owner=given(body, "device_owner", port.device_owner),
                security_groups=self._groups(token, body, port.security_groups), fixed_ips=fixed_ips)
            if changed.device_owner == INTERFACE:  # its status follows its addresses (models.Port.status)
                changed = replace(changed, status=self.store.interface_status(changed.network_id, changed.fixed_ips))
            return self.store.ports.update(changed)

    def delete(self, token: Token, port_id: str) -> Port:
        """Delete a port (its addresses are free again)."""
        port = self.port(token, port_id)
        self.store.ports.delete(port.id)
        return port
