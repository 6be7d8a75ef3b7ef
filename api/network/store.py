"""Neutron's records in SQLite, scoped by project; the configured default network is shared by all.

Ports are not records of their own: they are the servers' NICs (api_servers),
so a server's fixed IPs are freed when its record goes.
"""

from __future__ import annotations

import ipaddress
import re
import uuid
from contextlib import contextmanager
from dataclasses import replace
from typing import Any, Callable, Iterable, Iterator

from api.compute.models import Server
from api.config import DefaultNetwork
from api.db import Database, Table
from api.errors import BadRequest, Conflict, Forbidden, NotFound
from api.http import field, given
from api.identity.tokens import Token
from api.network import ipam, pool_allocation, rules
from api.network.models import (ACTIVE, BUILD, DOWN, INTERFACE, FloatingIp, Network, Port, SecurityGroup,
                                SecurityGroupRule, Subnet, SubnetPool)
from provisioner.excerpt import cut, describe
from provisioner.networks import libvirt_name

# The quota check a create runs, with the project that will own the record, in the transaction inserting it.
Admit = Callable[[str], None]
# A host bridge a provider network may name (a Linux interface name).
BRIDGE_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,14}")


def _only(body: dict[str, Any], where: str, allowed: tuple[str, ...]) -> None:
    """BadRequest naming the first field of `body` an update may not change."""
    for key in body:
        if key not in allowed:
            raise BadRequest(where, f"{cut(key)} cannot be updated (updatable: {', '.join(allowed)})")


class NetworkStore:
    """Networks, subnets, security groups and rules one token may see and change."""

    def __init__(self, db: Database, default: DefaultNetwork):
        self.db = db
        self.networks = Table(db, "networks", Network)
        self.subnets = Table(db, "subnets", Subnet)
        self.groups = Table(db, "security_groups", SecurityGroup)
        self.rules = Table(db, "security_group_rules", SecurityGroupRule)
        self.ports = Table(db, "ports", Port)
        self.servers = Table(db, "servers", Server)
        self.floating_ips = Table(db, "floating_ips", FloatingIp)
        self.pools = Table(db, "subnet_pools", SubnetPool)
        self.default = Network(id=default.id, name=default.name, project_id="", shared=True,
                               bridge=default.bridge, libvirt_network=default.libvirt_network, status=ACTIVE)
        # Called with a project's id when what its servers' security groups allow changed (a rule added or
        # deleted, a group deleted, a server's groups changed): api/network/firewall_sync.py applies it.
        self.on_groups_changed: list[Callable[[str], None]] = []
        # Called with a renamed group's project id, old name and new name: Nova keeps a server's groups by name,
        # so api/compute/models.py ComputeStore.rename_group renames them on its servers.
        self.on_group_renamed: list[Callable[[str, str, str], None]] = []

    def groups_changed(self, project_id: str) -> None:
        """Tell the listeners that the security groups of the project's servers allow something else now."""
        for listener in self.on_groups_changed:
            listener(project_id)

    @staticmethod
    def _scope(token: Token) -> list[str] | None:
        return None if token.is_admin else [token.project_id]

    # -- networks ------------------------------------------------------------

    def visible_networks(self, token: Token) -> list[Network]:
        """The default network, then the project's own and shared or external ones (every one for an admin)."""
        return [self.default, *(n for n in self.networks.list()
                                if token.is_admin or n.project_id == token.project_id or n.shared or n.external)]

    def network(self, token: Token, network_id: str) -> Network:
        """A network the token may see; NotFound otherwise."""
        found = next((n for n in self.visible_networks(token) if n.id == network_id), None)
        if found is None:
            raise NotFound(f"Network {network_id} could not be found.")
        return found

    def create_network(self, token: Token, body: dict[str, Any], admit: Admit) -> Network:
        """A new network of the token's project: Terraform-managed (status BUILD until applied), or,
        for an admin, a provider network on an existing host bridge (ACTIVE at once). The body's form is
        api/openapi.yaml's."""
        network_type = body.get("provider:network_type")
        physical = body.get("provider:physical_network")
        shared = given(body, "shared", False)
        external = given(body, "router:external", False)
        requested = [name for name, value in (("provider:network_type", network_type),
                                              ("provider:physical_network", physical),
                                              ("shared", shared), ("router:external", external)) if value]
        if requested and not token.is_admin:
            raise Forbidden(f"setting {', '.join(requested)} requires the admin role")
        if body.get("provider:segmentation_id") is not None:
            raise BadRequest("network.provider:segmentation_id", "VLAN/VXLAN segments are not supported")
        network_id = str(uuid.uuid4())
        common = {"id": network_id, "name": given(body, "name", ""),
                  "project_id": token.project_id, "shared": shared, "external": external,
                  "admin_state_up": given(body, "admin_state_up", True),
                  "description": given(body, "description", "")}
        if network_type is None and physical is None:
            return self._insert(self.networks, Network(**common, libvirt_network=libvirt_name(network_id),
                                                       managed=True, status=BUILD), admit)
        if network_type != "flat":
            raise BadRequest("network.provider:network_type", f"{describe(network_type)}: only 'flat' (a host bridge) "
                                                              "is supported")
        if physical is None or not BRIDGE_NAME.fullmatch(physical):
            raise BadRequest("network.provider:physical_network",
                             f"{describe(physical)} is not a host bridge name (1 to 15 letters, digits, _ . -; "
                             "a letter or digit first)")
        return self._insert(self.networks, Network(**common, bridge=physical, status=ACTIVE), admit)

    def _insert(self, table: Table, record: Any, admit: Admit) -> Any:
        """Insert `record` once `admit` lets its project have one more, in one write transaction."""
        with self.db.transaction():
            admit(record.project_id)
            return table.insert(record)

    def _set(self, network_id: str, **changes: Any) -> Network | None:
        """Change fields of the stored network in one write transaction, so that changes of other fields made
        meanwhile (its status, its hypervisors, a PUT) are kept (None if it is gone meanwhile)."""
        with self.db.transaction():
            current = self.networks.get(network_id)
            return None if current is None else self.networks.update(replace(current, **changes))

    def set_status(self, network_id: str, status: str) -> Network | None:
        """Record a network's status (None if it is gone meanwhile)."""
        return self._set(network_id, status=status)

    def set_hypervisors(self, network_id: str, hypervisors: tuple[str, ...]) -> Network | None:
        """Record which hypervisors carry a network's libvirt network (None if it is gone meanwhile)."""
        return self._set(network_id, hypervisors=hypervisors)

    def deletable(self, token: Token, network_id: str) -> Network:
        """The network, if it may be deleted now; Conflict for the default network or one with ports (or
        associated floating IPs: unassociated ones go with it, as in Neutron)."""
        network = self.network(token, network_id)
        if network.id == self.default.id:
            raise Conflict(f"Network {network_id} is the configured default network and cannot be deleted.")
        if network.project_id != token.project_id and not token.is_admin:
            raise Forbidden(f"network {network_id} belongs to another project")
        associated = any(f.floating_network_id == network.id and f.port_id for f in self.floating_ips.list())
        if self.ports_on(network.id) or self.own_ports_on(network.id) or associated:
            raise Conflict(f"Unable to complete operation on network {network_id}. "
                           "There are one or more ports still in use on the network.")
        return network

    def update_network(self, token: Token, network_id: str, body: dict[str, Any]) -> Network:
        """Change a network's name, description, admin_state_up (its owner or an admin), shared and
        router:external (an admin); other fields are refused by name. api/openapi.yaml checks the first
        three; shared and router:external are typed here, as the spec does not describe them (see there)."""
        where = "network"
        network = self.network(token, network_id)
        if network.id == self.default.id:
            raise Forbidden(f"network {network_id} is the configured default network: change it in config.yaml")
        if network.project_id != token.project_id and not token.is_admin:
            raise Forbidden(f"network {network_id} belongs to another project")
        _only(body, where, ("name", "description", "admin_state_up", "shared", "router:external"))
        admin_only = [k for k in ("shared", "router:external") if k in body]
        if admin_only and not token.is_admin:
            raise Forbidden(f"setting {', '.join(admin_only)} requires the admin role")
        changes = {"name": given(body, "name", network.name),
                   "description": given(body, "description", network.description),
                   "admin_state_up": given(body, "admin_state_up", network.admin_state_up),
                   "shared": field(body, "shared", bool, where, False, network.shared),
                   "external": field(body, "router:external", bool, where, False, network.external)}
        return self._set(network.id, **changes) or network

    def forget_network(self, network_id: str) -> None:
        """Delete a network's record, its subnets' and its floating IPs'."""
        for fip in self.floating_ips.list():
            if fip.floating_network_id == network_id:
                self.floating_ips.delete(fip.id)
        for subnet in self.subnets_of(network_id):
            self.subnets.delete(subnet.id)
        self.networks.delete(network_id)

    # -- subnets -------------------------------------------------------------

    def visible_subnets(self, token: Token) -> list[Subnet]:
        """Subnets of the networks the token may see, but another project's external network's unless it is
        shared (Neutron without subnet-external-network: the network is listed, its subnets are not)."""
        networks = {n.id for n in self.visible_networks(token)
                    if token.is_admin or n.project_id == token.project_id or n.shared or not n.external}
        return [s for s in self.subnets.list() if s.network_id in networks]

    def subnets_of(self, network_id: str) -> list[Subnet]:
        """A network's subnets, oldest first."""
        return [s for s in self.subnets.list() if s.network_id == network_id]

    def subnet(self, token: Token, subnet_id: str) -> Subnet:
        """A subnet the token may see; NotFound otherwise."""
        found = next((s for s in self.visible_subnets(token) if s.id == subnet_id), None)
        if found is None:
            raise NotFound(f"Subnet {subnet_id} could not be found.")
        return found

    # -- subnet pools --------------------------------------------------------

    def visible_pools(self, token: Token) -> list[SubnetPool]:
        """The project's subnet pools and shared ones (every one for an admin)."""
        return [p for p in self.pools.list() if token.is_admin or p.project_id == token.project_id or p.shared]

    def pool(self, token: Token, pool_id: str) -> SubnetPool:
        """A subnet pool the token may see; NotFound otherwise."""
        found = next((p for p in self.visible_pools(token) if p.id == pool_id), None)
        if found is None:
            raise NotFound(f"Subnet pool {cut(pool_id)} could not be found.")
        return found

    def create_subnet(self, token: Token, body: dict[str, Any], admit: Admit) -> Subnet:
        """A new IPv4 or IPv6 subnet on a network of the token's project (or any network, for an admin); its
        cidr given, or allocated from the subnet pool it names. The body's form is api/openapi.yaml's."""
        network = self.network(token, body["network_id"])
        if network.project_id != token.project_id and not token.is_admin:
            raise NotFound(f"Network {network.id} could not be found.")
        pool_id = body.get("subnetpool_id")
        with self.db.transaction():  # the pool's free blocks are read and one taken in one write transaction
            if pool_id is not None:
                pool = self.pool(token, pool_id)
                body = {**body, "cidr": str(pool_allocation.carve(pool, body, self.subnets.list())),
                        "ip_version": given(body, "ip_version", pool.ip_version)}
            return self._subnet(token, network, body, pool_id, admit)

    def _subnet(self, token: Token, network: Network, body: dict[str, Any], pool_id: str | None,
                admit: Admit) -> Subnet:
        request = ipam.parse_subnet(body, self.subnets_of(network.id))
        return self._insert(self.subnets, Subnet(
            id=str(uuid.uuid4()), name=given(body, "name", ""),
            project_id=network.project_id or token.project_id, network_id=network.id, cidr=str(request.cidr),
            gateway_ip=None if request.gateway is None else str(request.gateway),
            enable_dhcp=given(body, "enable_dhcp", True),
            dns_nameservers=tuple(str(d) for d in request.dns), ip_version=request.cidr.version,
            allocation_pools=tuple({"start": str(a), "end": str(b)} for a, b in request.pools),
            host_routes=request.host_routes, ipv6_ra_mode=request.ipv6_modes[0],
            ipv6_address_mode=request.ipv6_modes[1], subnetpool_id=pool_id,
            description=given(body, "description", "")), admit)

    def update_subnet(self, token: Token, subnet_id: str, body: dict[str, Any]) -> Subnet:
        """Change a subnet's name, description, enable_dhcp, gateway_ip, dns_nameservers or host_routes
        (the members api/openapi.yaml allows; the addresses checked as at create); the subnet's owner or an
        admin."""
        subnet = self.subnet(token, subnet_id)
        if subnet.project_id != token.project_id and not token.is_admin:
            raise Forbidden(f"subnet {subnet_id} belongs to another project")
        addressing = ipam.update_subnet(subnet, body)
        return self.subnets.update(replace(
            addressing, name=given(body, "name", subnet.name),
            description=given(body, "description", subnet.description),
            enable_dhcp=given(body, "enable_dhcp", subnet.enable_dhcp)))

    def delete_subnet(self, token: Token, subnet_id: str) -> Subnet:
        """Delete a subnet the token may see; Conflict while a port holds one of its addresses."""
        subnet = self.subnet(token, subnet_id)
        cidr = ipaddress.ip_network(subnet.cidr)
        with self.db.transaction():
            if ipam.auto_address(subnet):
                # Neutron deletes an auto-address subnet under its ports (their addresses on it go), unless a
                # router's interface is on it.
                self._release_auto_addresses(subnet)
            if any(address in cidr for address in self.taken(subnet.network_id)):
                raise Conflict(f"Unable to complete operation on subnet {subnet_id}: "
                               "one or more ports have an IP allocation from this subnet.")
            self.subnets.delete(subnet.id)
        return subnet

    def _release_auto_addresses(self, subnet: Subnet) -> None:
        """Drop `subnet`'s addresses from the ports holding them, but a router interface's."""
        for port in self.own_ports_on(subnet.network_id):
            if port.device_owner == INTERFACE:
                continue
            kept = tuple(f for f in port.fixed_ips if f.get("subnet_id") != subnet.id)
            if kept != port.fixed_ips:
                self.ports.update(replace(port, fixed_ips=kept))

    # -- ports and fixed IPs --------------------------------------------------

    def ports_on(self, network_id: str) -> list[tuple[Server, dict[str, Any]]]:
        """Every server's NICs on a network, whoever owns the server."""
        return [(s, p) for s in self.servers.list() for p in s.ports if p["network_id"] == network_id]

    def own_ports_on(self, network_id: str) -> list[Port]:
        """The ports created through Neutron on a network, whoever owns them."""
        return [p for p in self.ports.list() if p.network_id == network_id]

    def floating_by_port(self) -> dict[str, list[str]]:
        """The floating IP addresses associated with each port id (Nova shows a server NIC's as `floating`)."""
        found: dict[str, list[str]] = {}
        for fip in self.floating_ips.list():
            if fip.port_id is not None:
                found.setdefault(fip.port_id, []).append(fip.floating_ip_address)
        return found

    def interface_status(self, network_id: str, fixed_ips: Iterable[dict[str, str]]) -> str:
        """A router interface's port status: ACTIVE if the host carries each of its addresses, being the
        gateway of a subnet (IPv4 or IPv6) of an applied network (the host's bridge holds it:
        api/network/applier.py); DOWN otherwise (another address, a network not applied)."""
        network = self.networks.get(network_id)
        gateways = {s.id: s.gateway_ip for s in self.subnets_of(network_id)}
        fixed = list(fixed_ips)
        carried = fixed and all(gateways.get(f.get("subnet_id", "")) == f.get("ip_address") for f in fixed)
        return ACTIVE if network is not None and network.status == ACTIVE and carried else DOWN

    def taken(self, network_id: str) -> set[ipam.IP]:
        """Every address held on a network: by servers' NICs and by Neutron's own ports."""
        held = {ipaddress.ip_address(ip) for _, port in self.ports_on(network_id) for ip in port.get("ips") or ()}
        held.update(ipaddress.ip_address(f["ip_address"]) for p in self.own_ports_on(network_id) for f in p.fixed_ips)
        held.update(ipaddress.ip_address(f.floating_ip_address) for f in self.floating_ips.list()
                    if f.floating_network_id == network_id)
        return held

    def allocate(self, requests: list[tuple[Network, str | None, str]]) -> list[ipam.FixedIp | None]:
        """A fixed IP for each (network, requested address or None, field name) of one server's NICs."""
        chosen: list[ipam.FixedIp | None] = []
        for network, requested, where in requests:
            taken = self.taken(network.id)
            taken.update(f.address for f in chosen if f is not None and f.subnet.network_id == network.id)
            # A guest's NIC is addressed from the IPv4 subnets (the engine configures no IPv6).
            ipv4 = [s for s in self.subnets_of(network.id) if s.ip_version == 4]
            chosen.append(ipam.allocate(ipv4, taken, requested, where))
        return chosen

    @contextmanager
    def allocating(self) -> Iterator[None]:
        """Hold SQLite's write lock for the block (across threads and worker processes), so addresses
        chosen by allocate() cannot be given twice before the server that holds them is inserted."""
        with self.db.transaction():
            yield

    # -- security groups -----------------------------------------------------

    def visible_groups(self, token: Token) -> list[SecurityGroup]:
        """Security groups of the token's project (every project's for an admin); `default` is made on first use."""
        if not self.groups.list([token.project_id], "default"):
            self._create_default(token.project_id)
        return self.groups.list(self._scope(token))

    def _create_default(self, project_id: str) -> None:
        group = self.groups.insert(SecurityGroup(id=str(uuid.uuid4()), name="default", project_id=project_id,
                                                 description="Default security group"))
        for ethertype in ("IPv4", "IPv6"):
            self.rules.insert(SecurityGroupRule(id=str(uuid.uuid4()), project_id=project_id,
                                                security_group_id=group.id, direction="egress", ethertype=ethertype))
            self.rules.insert(SecurityGroupRule(id=str(uuid.uuid4()), project_id=project_id,
                                                security_group_id=group.id, direction="ingress",
                                                ethertype=ethertype, remote_group_id=group.id))

    def group(self, token: Token, group_id: str) -> SecurityGroup:
        """A security group the token may see; NotFound otherwise."""
        found = next((g for g in self.visible_groups(token) if g.id == group_id), None)
        if found is None:
            raise NotFound(f"Security group {group_id} does not exist")
        return found

    def create_group(self, token: Token, body: dict[str, Any], admit: Admit) -> SecurityGroup:
        """A new security group of the token's project (the body's form is api/openapi.yaml's)."""
        name = given(body, "name", "")
        group = SecurityGroup(id=str(uuid.uuid4()), name=name, project_id=token.project_id,
                              description=given(body, "description", ""))
        if name.lower() == "default":  # Neutron's name_not_default: the project's own is made on first use
            raise Conflict("Default security group already exists.")
        with self.db.transaction():
            admit(group.project_id)
            return self.groups.insert(group)

    def update_group(self, token: Token, group_id: str, body: dict[str, Any]) -> SecurityGroup:
        """Rename or describe a security group (not `default`'s name); the members are api/openapi.yaml's. The
        servers in a renamed group stay in it (the on_group_renamed listeners)."""
        group = self.group(token, group_id)
        name = given(body, "name", group.name)
        if group.name == "default" and name != "default":
            raise Conflict("Insufficient rights for removing default security group.")
        if name == "default" and group.name != "default":
            raise Conflict("Default security group already exists.")
        updated = self.groups.update(replace(group, name=name, description=given(body, "description",
                                                                                  group.description)))
        if name != group.name:
            for listener in self.on_group_renamed:
                listener(group.project_id, group.name, name)
        return updated

    def delete_group(self, token: Token, group_id: str) -> None:
        """Delete a security group, its rules and the rules of any group naming it as remote_group_id (Neutron's
        foreign key cascades so); Conflict while a port uses it (a server's NIC: the server names it)."""
        group = self.group(token, group_id)
        if any(group.id in p.security_groups for p in self.ports.list()) or any(
                s.ports and group.holds(s) for s in self.servers.list([group.project_id])):
            raise Conflict(f"Security Group {group_id} in use.")
        with self.db.transaction():
            for rule in self.rules.list():
                if group.id in (rule.security_group_id, rule.remote_group_id):
                    self.rules.delete(rule.id)
            self.groups.delete(group.id)
        self.groups_changed(group.project_id)

    def visible_rules(self, token: Token) -> list[SecurityGroupRule]:
        """Rules of the security groups the token may see."""
        groups = {g.id for g in self.visible_groups(token)}
        return [r for r in self.rules.list(self._scope(token)) if r.security_group_id in groups]

    def create_rule(self, token: Token, body: dict[str, Any], admit: Admit) -> SecurityGroupRule:
        """A new rule in one of the token's security groups. The body's form (members, types, enums; ports
        are integers) is api/openapi.yaml's; the port bounds (in Neutron's words) and what depends on the
        protocol, the group or the other rules are here."""
        where = "security_group_rule"
        group = self.group(token, body["security_group_id"])
        direction = body["direction"]
        ethertype = given(body, "ethertype", "IPv4")
        low, high = body.get("port_range_min"), body.get("port_range_max")
        for name, port in (("port_range_min", low), ("port_range_max", high)):
            if port is not None and not 0 <= port <= 65535:  # in Neutron's words, which Tempest matches
                raise BadRequest(f"{where}.{name}", f"Invalid value for port {port}")
        protocol = rules.protocol_of(body.get("protocol"))
        rules.check_range(protocol, low, high)
        prefix = body.get("remote_ip_prefix")
        if prefix is not None:
            try:
                # Neutron keeps the address as given (10.2.3.124/24 stays so) and adds a missing mask (/32, /128).
                interface = ipaddress.ip_interface(prefix)
            except ValueError as exc:
                raise BadRequest(f"{where}.remote_ip_prefix", str(exc)) from None
            if f"IPv{interface.version}" != ethertype:
                raise BadRequest(f"{where}.remote_ip_prefix", f"Conflicting value ethertype {ethertype} for CIDR "
                                                              f"{cut(prefix)}")
            prefix = str(interface)
        remote_group = body.get("remote_group_id")
        if remote_group is not None:
            if prefix is not None:
                raise BadRequest(where, "Only remote_ip_prefix or remote_group_id may be provided.")
            remote_group = self.group(token, remote_group).id  # NotFound, as Neutron, for one not visible
        rule = SecurityGroupRule(
            id=str(uuid.uuid4()), project_id=group.project_id, security_group_id=group.id, direction=direction,
            ethertype=ethertype, protocol=protocol, port_range_min=low, port_range_max=high,
            remote_ip_prefix=prefix, remote_group_id=remote_group,
            description=given(body, "description", ""))
        same = next((r for r in self.rules.list([group.project_id]) if rules.same_rule(r, rule)), None)
        if same is not None:
            raise Conflict(f"Security group rule already exists. Rule id is {same.id}.")
        inserted = self._insert(self.rules, rule, admit)
        self.groups_changed(group.project_id)
        return inserted

    def rule(self, token: Token, rule_id: str) -> SecurityGroupRule:
        """A rule the token may see; NotFound otherwise."""
        found = next((r for r in self.visible_rules(token) if r.id == rule_id), None)
        if found is None:
            raise NotFound(f"Security group rule {rule_id} does not exist")
        return found

    def delete_rule(self, token: Token, rule_id: str) -> None:
        """Delete a rule the token may see."""
        rule = self.rule(token, rule_id)
        self.rules.delete(rule.id)
        self.groups_changed(rule.project_id)

    # -- quota usage ---------------------------------------------------------

    def usage(self, project_id: str) -> dict[str, int]:
        """Neutron's quota usage of a project: its networks, subnets, security groups and rules, and its
        ports (its servers' NICs and the ports created through Neutron)."""
        nics = sum(len(s.ports) for s in self.servers.list([project_id]))
        return {"network": self.networks.count(project_id), "subnet": self.subnets.count(project_id),
                "port": nics + self.ports.count(project_id), "security_group": self.groups.count(project_id),
                "security_group_rule": self.rules.count(project_id)}
