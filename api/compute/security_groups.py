"""Nova's security-group proxy (os-security-groups, os-security-group-rules, a server's groups): the
Neutron records of api/network in Nova's shapes. Nova removed the proxy at 2.36: a newer request is a 404."""

from __future__ import annotations

import ipaddress
import re
from typing import Any

import falcon

from api.auth import token_of
from api.compute.microversion import version_of
from api.compute.models import ComputeStore
from api.config import ApiConfig
from api.errors import BadRequest, Conflict, NotFound
from api.http import read_json, send
from api.identity.tokens import Token
from api.microversion import Version
from api.network.models import SecurityGroup, SecurityGroupRule
from api.network.store import NetworkStore
from api.quota.errors import nova_refusal
from api.quota.models import NETWORK
from api.quota.store import QuotaStore
from provisioner.excerpt import cut

REMOVED_IN = Version(2, 36)
_UUID = re.compile(r"[0-9a-fA-F]{8}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{12}")


def proxied(req: falcon.Request) -> None:
    """A 404 for the proxies Nova removed at 2.36 (security groups, floating IPs)."""
    if version_of(req) >= REMOVED_IN:
        raise NotFound("The resource could not be found.")


def rule_view(rule: SecurityGroupRule, groups: dict[str, SecurityGroup]) -> dict[str, Any]:
    """A Neutron ingress rule as Nova shows it (ports -1 for ICMP's any)."""
    remote = groups.get(rule.remote_group_id or "")
    return {"id": rule.id, "parent_group_id": rule.security_group_id, "ip_protocol": rule.protocol,
            "from_port": rule.port_range_min if rule.port_range_min is not None else (-1 if rule.protocol else None),
            "to_port": rule.port_range_max if rule.port_range_max is not None else (-1 if rule.protocol else None),
            "group": {"name": remote.name, "tenant_id": remote.project_id} if remote else {},
            # Nova shows a cidr unless the rule names a group; a rule with neither is open to all.
            "ip_range": {} if remote else {"cidr": rule.remote_ip_prefix or "0.0.0.0/0"}}


def group_view(group: SecurityGroup, rules: list[SecurityGroupRule],
               groups: dict[str, SecurityGroup]) -> dict[str, Any]:
    """A security group as Nova shows it: its IPv4 ingress rules only (Nova's model has no others)."""
    own = [r for r in rules if r.security_group_id == group.id and r.direction == "ingress" and r.ethertype == "IPv4"]
    return {"id": group.id, "name": group.name, "description": group.description, "tenant_id": group.project_id,
            "rules": [rule_view(r, groups) for r in own]}


class _Proxy:
    def __init__(self, config: ApiConfig, networks: NetworkStore, quotas: QuotaStore):
        self.config = config
        self.networks = networks
        self.quotas = quotas

    def _view(self, token: Token, group: SecurityGroup) -> dict[str, Any]:
        groups = {g.id: g for g in self.networks.visible_groups(token)}
        return group_view(group, self.networks.visible_rules(token), groups)

    def _group_body(self, req: falcon.Request) -> dict[str, Any]:
        body = read_json(req, self.config.max_json_body)["security_group"]  # both strings, per api/openapi.yaml
        return {"name": body["name"], "description": body["description"]}


class SecurityGroups(_Proxy):
    """GET and POST /compute/v2.1/os-security-groups."""

    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        proxied(req)
        token = token_of(req)
        groups = self.networks.visible_groups(token)
        rules = self.networks.visible_rules(token)
        by_id = {g.id: g for g in groups}
        send(resp, {"security_groups": [group_view(g, rules, by_id) for g in groups]})

    def on_post(self, req: falcon.Request, resp: falcon.Response) -> None:
        proxied(req)
        token = token_of(req)
        group = self.networks.create_group(token, self._group_body(req), lambda project: self.quotas.check(
            NETWORK, project, {"security_group": 1}, refuse=nova_refusal))
        send(resp, {"security_group": self._view(token, group)})

    def on_delete(self, req: falcon.Request, resp: falcon.Response) -> None:
        """`DELETE os-security-groups/` (an empty id; the app strips the slash): Nova's router matches no
        route for it and answers 404, not 405."""
        raise NotFound("The resource could not be found.")


class SecurityGroupItem(_Proxy):
    """GET, PUT and DELETE /compute/v2.1/os-security-groups/{id} (not while a server is in the group)."""

    def __init__(self, config: ApiConfig, networks: NetworkStore, quotas: QuotaStore, store: ComputeStore):
        super().__init__(config, networks, quotas)
        self.store = store

    def on_get(self, req: falcon.Request, resp: falcon.Response, security_group_id: str) -> None:
        proxied(req)
        token = token_of(req)
        send(resp, {"security_group": self._view(token, self.networks.group(token, security_group_id))})

    def on_put(self, req: falcon.Request, resp: falcon.Response, security_group_id: str) -> None:
        proxied(req)
        token = token_of(req)
        group = self.networks.update_group(token, security_group_id, self._group_body(req))
        send(resp, {"security_group": self._view(token, group)})

    def on_delete(self, req: falcon.Request, resp: falcon.Response, security_group_id: str) -> None:
        proxied(req)
        token = token_of(req)
        group = self.networks.group(token, security_group_id)
        if group.name == "default":
            raise BadRequest("security_group", "the default security group cannot be deleted")
        users = [sv.id for sv in self.store.listed([group.project_id]) if group.holds(sv)]
        if users:  # Neutron refuses a group in use (409); Nova answers that with 400
            raise BadRequest("security_group", f"security group {group.id} is in use by instance {users[0]}")
        self.networks.delete_group(token, group.id)
        resp.status = 202


def _port(body: dict[str, Any], key: str) -> int | None:
    """A port given as a number or a string of digits (api/openapi.yaml allows both, as Nova does)."""
    value = body.get(key)
    return None if value is None else int(value)


def neutron_rule(body: dict[str, Any]) -> dict[str, Any]:
    """A Nova rule request as the Neutron rule body api/network validates (ingress, IPv4)."""
    where = "security_group_rule"
    parent, protocol = body["parent_group_id"], body.get("ip_protocol")
    low, high = _port(body, "from_port"), _port(body, "to_port")
    if protocol is not None and protocol.lower() != "icmp":
        if low is None or high is None or not 1 <= low <= high <= 65535:
            raise BadRequest(f"{where}.from_port", "tcp and udp need 1 <= from_port <= to_port <= 65535")
    elif protocol is not None:
        if low is None or high is None or not (-1 <= low <= 255 and -1 <= high <= 255):
            raise BadRequest(f"{where}.from_port", "icmp type and code are -1 to 255")
        low, high = (None if low == -1 else low), (None if high == -1 else high)
    elif low is not None or high is not None:
        raise BadRequest(f"{where}.ip_protocol", "is required with ports")
    cidr, group_id = body.get("cidr"), body.get("group_id")
    if cidr is not None and group_id is not None:
        raise BadRequest(f"{where}.cidr", "give a cidr or a group_id, not both")
    if not _UUID.fullmatch(parent):  # Nova's validate_id before asking Neutron
        raise BadRequest(f"{where}.parent_group_id", f"{cut(parent)} is not a security group id")
    if cidr is not None:
        try:
            ipaddress.ip_network(cidr, strict=False)
        except ValueError:
            raise BadRequest(f"{where}.cidr", f"{cut(cidr)} is not a CIDR") from None
    return {"security_group_id": parent, "direction": "ingress", "ethertype": "IPv4",
            "protocol": protocol.lower() if protocol else None, "port_range_min": low, "port_range_max": high,
            "remote_ip_prefix": (cidr or "0.0.0.0/0") if group_id is None else None,
            "remote_group_id": group_id}


class SecurityGroupRules(_Proxy):
    """POST /compute/v2.1/os-security-group-rules."""

    def on_post(self, req: falcon.Request, resp: falcon.Response) -> None:
        proxied(req)
        token = token_of(req)
        body = neutron_rule(read_json(req, self.config.max_json_body)["security_group_rule"])
        try:
            self.networks.group(token, body["security_group_id"])
        except NotFound:
            raise NotFound(f"Security group {cut(body['security_group_id'])} not found.") from None
        if body["remote_group_id"] is not None:
            self.networks.group(token, body["remote_group_id"])
        try:
            rule = self.networks.create_rule(token, body, lambda project: self.quotas.check(
                NETWORK, project, {"security_group_rule": 1}, refuse=nova_refusal))
        except Conflict as exc:  # Neutron's duplicate rule: Nova answers 400
            raise BadRequest("security_group_rule", exc.message) from None
        groups = {g.id: g for g in self.networks.visible_groups(token)}
        send(resp, {"security_group_rule": rule_view(rule, groups)})


class SecurityGroupRuleItem(_Proxy):
    """DELETE /compute/v2.1/os-security-group-rules/{id}."""

    def on_delete(self, req: falcon.Request, resp: falcon.Response, rule_id: str) -> None:
        proxied(req)
        self.networks.delete_rule(token_of(req), rule_id)
        resp.status = 202


class ServerSecurityGroups(_Proxy):
    """GET /compute/v2.1/servers/{id}/os-security-groups: the groups the server was given, by name."""

    def __init__(self, config: ApiConfig, networks: NetworkStore, quotas: QuotaStore, store: ComputeStore):
        super().__init__(config, networks, quotas)
        self.store = store

    def on_get(self, req: falcon.Request, resp: falcon.Response, server_id: str) -> None:
        token = token_of(req)
        server = self.store.server(token, server_id)
        groups = [g for g in self.networks.visible_groups(token)
                  if g.name in server.security_groups and g.project_id == server.project_id]
        rules = self.networks.visible_rules(token)
        by_id = {g.id: g for g in groups}
        send(resp, {"security_groups": [group_view(g, rules, by_id) for g in groups]})
