"""Neutron's records in SQLite, scoped by project; the configured default network is shared by all."""

from __future__ import annotations

import ipaddress
import uuid
from typing import Any

from api.config import DefaultNetwork
from api.db import Database, Table
from api.errors import BadRequest, Conflict, NotFound
from api.http import field
from api.identity.tokens import Token
from api.network.models import Network, SecurityGroup, SecurityGroupRule, Subnet


class NetworkStore:
    """Networks, subnets, security groups and rules one token may see and change."""

    def __init__(self, db: Database, default: DefaultNetwork):
        self.networks = Table(db, "networks", Network)
        self.subnets = Table(db, "subnets", Subnet)
        self.groups = Table(db, "security_groups", SecurityGroup)
        self.rules = Table(db, "security_group_rules", SecurityGroupRule)
        self.default = Network(id=default.id, name=default.name, project_id="", shared=True,
                               bridge=default.bridge, libvirt_network=default.libvirt_network)

    @staticmethod
    def _scope(token: Token) -> list[str] | None:
        return None if token.is_admin else [token.project_id]

    # -- networks ------------------------------------------------------------

    def visible_networks(self, token: Token) -> list[Network]:
        """The default network, then the project's own (every project's for an admin)."""
        return [self.default, *self.networks.list(self._scope(token))]

    def network(self, token: Token, network_id: str) -> Network:
        """A network the token may see; NotFound otherwise."""
        found = next((n for n in self.visible_networks(token) if n.id == network_id), None)
        if found is None:
            raise NotFound(f"Network {network_id} could not be found.")
        return found

    def create_network(self, token: Token, body: dict[str, Any]) -> Network:
        """A new network record of the token's project."""
        name = field(body, "name", str, "network", False, "")
        return self.networks.insert(Network(
            id=str(uuid.uuid4()), name=name, project_id=token.project_id,
            admin_state_up=field(body, "admin_state_up", bool, "network", False, True),
            shared=False, description=field(body, "description", str, "network", False, "")))

    def delete_network(self, token: Token, network_id: str, in_use: bool) -> None:
        """Delete a network and its subnets; Conflict for the default network or one with servers."""
        network = self.network(token, network_id)
        if network.id == self.default.id:
            raise Conflict(f"Network {network_id} is the configured default network and cannot be deleted.")
        if in_use:
            raise Conflict(f"Unable to complete operation on network {network_id}. "
                           "There are one or more ports still in use on the network.")
        for subnet in self.subnets.list():
            if subnet.network_id == network_id:
                self.subnets.delete(subnet.id)
        self.networks.delete(network_id)

    # -- subnets -------------------------------------------------------------

    def visible_subnets(self, token: Token) -> list[Subnet]:
        """Subnets of the networks the token may see."""
        networks = {n.id for n in self.visible_networks(token)}
        return [s for s in self.subnets.list() if s.network_id in networks]

    def subnet(self, token: Token, subnet_id: str) -> Subnet:
        """A subnet the token may see; NotFound otherwise."""
        found = next((s for s in self.visible_subnets(token) if s.id == subnet_id), None)
        if found is None:
            raise NotFound(f"Subnet {subnet_id} could not be found.")
        return found

    def create_subnet(self, token: Token, body: dict[str, Any]) -> Subnet:
        """A new IPv4 subnet on a network of the token's project (or the default one, for an admin)."""
        network = self.network(token, field(body, "network_id", str, "subnet"))
        if network.project_id != token.project_id and not token.is_admin:
            raise NotFound(f"Network {network.id} could not be found.")
        if field(body, "ip_version", int, "subnet", False, 4) != 4:
            raise BadRequest("subnet.ip_version", "only IPv4 subnets are supported")
        try:
            cidr = ipaddress.IPv4Network(field(body, "cidr", str, "subnet"), strict=False)
        except ValueError as exc:
            raise BadRequest("subnet.cidr", str(exc)) from None
        hosts = list(cidr.hosts()) if cidr.num_addresses <= 65536 else [cidr[1], cidr[-2]]
        gateway = field(body, "gateway_ip", str, "subnet", False, str(hosts[0]) if hosts else None)
        if gateway is not None and ipaddress.IPv4Address(gateway) not in cidr:
            raise BadRequest("subnet.gateway_ip", f"{gateway} is not in {cidr}")
        pools = ({"start": str(hosts[1]), "end": str(hosts[-1])},) if len(hosts) > 1 else ()
        dns = field(body, "dns_nameservers", list, "subnet", False, [])
        return self.subnets.insert(Subnet(
            id=str(uuid.uuid4()), name=field(body, "name", str, "subnet", False, ""),
            project_id=token.project_id, network_id=network.id, cidr=str(cidr), gateway_ip=gateway,
            enable_dhcp=field(body, "enable_dhcp", bool, "subnet", False, True),
            dns_nameservers=tuple(str(d) for d in dns), allocation_pools=pools,
            description=field(body, "description", str, "subnet", False, "")))

    def delete_subnet(self, token: Token, subnet_id: str) -> None:
        """Delete a subnet the token may see."""
        self.subnets.delete(self.subnet(token, subnet_id).id)

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

    def create_group(self, token: Token, body: dict[str, Any]) -> SecurityGroup:
        """A new security group of the token's project."""
        name = field(body, "name", str, "security_group")
        if name == "default" and self.groups.list([token.project_id], "default"):
            raise Conflict("Default security group already exists.")
        return self.groups.insert(SecurityGroup(
            id=str(uuid.uuid4()), name=name, project_id=token.project_id,
            description=field(body, "description", str, "security_group", False, "")))

    def delete_group(self, token: Token, group_id: str) -> None:
        """Delete a security group and its rules."""
        group = self.group(token, group_id)
        for rule in self.rules.list([group.project_id]):
            if rule.security_group_id == group.id:
                self.rules.delete(rule.id)
        self.groups.delete(group.id)

    def visible_rules(self, token: Token) -> list[SecurityGroupRule]:
        """Rules of the security groups the token may see."""
        groups = {g.id for g in self.visible_groups(token)}
        return [r for r in self.rules.list(self._scope(token)) if r.security_group_id in groups]

    def create_rule(self, token: Token, body: dict[str, Any]) -> SecurityGroupRule:
        """A new rule in one of the token's security groups."""
        where = "security_group_rule"
        group = self.group(token, field(body, "security_group_id", str, where))
        direction = field(body, "direction", str, where)
        if direction not in ("ingress", "egress"):
            raise BadRequest(f"{where}.direction", f"{direction!r}: use ingress or egress")
        ethertype = field(body, "ethertype", str, where, False, "IPv4")
        if ethertype not in ("IPv4", "IPv6"):
            raise BadRequest(f"{where}.ethertype", f"{ethertype!r}: use IPv4 or IPv6")
        low = field(body, "port_range_min", int, where, False)
        high = field(body, "port_range_max", int, where, False)
        for name, port in (("port_range_min", low), ("port_range_max", high)):
            if port is not None and not 0 <= port <= 65535:
                raise BadRequest(f"{where}.{name}", f"{port} is not a port number")
        if low is not None and high is not None and low > high:
            raise BadRequest(f"{where}.port_range_min", "is larger than port_range_max")
        prefix = field(body, "remote_ip_prefix", str, where, False)
        if prefix is not None:
            try:
                prefix = str(ipaddress.ip_network(prefix, strict=False))
            except ValueError as exc:
                raise BadRequest(f"{where}.remote_ip_prefix", str(exc)) from None
        protocol = field(body, "protocol", (str, int), where, False)
        return self.rules.insert(SecurityGroupRule(
            id=str(uuid.uuid4()), project_id=group.project_id, security_group_id=group.id, direction=direction,
            ethertype=ethertype, protocol=None if protocol is None else str(protocol).lower(),
            port_range_min=low, port_range_max=high, remote_ip_prefix=prefix,
            remote_group_id=field(body, "remote_group_id", str, where, False),
            description=field(body, "description", str, where, False, "")))

    def rule(self, token: Token, rule_id: str) -> SecurityGroupRule:
        """A rule the token may see; NotFound otherwise."""
        found = next((r for r in self.visible_rules(token) if r.id == rule_id), None)
        if found is None:
            raise NotFound(f"Security group rule {rule_id} does not exist")
        return found

    def delete_rule(self, token: Token, rule_id: str) -> None:
        """Delete a rule the token may see."""
        self.rules.delete(self.rule(token, rule_id).id)
