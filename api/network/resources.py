"""Neutron v2.0 request handling."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import falcon

from api.auth import token_of
from api.compute.models import ComputeStore
from api.config import ApiConfig
from api.errors import ApiError, Conflict, NotFound
from api.http import read_json, send
from api.identity.tokens import Token
from api.network.applier import NetworkApplier
from api.network.bulk import create_all
from api.network.models import ERROR, Network, Subnet
from api.network.store import NetworkStore
from api.network.ports import GATEWAY, INTERFACE, PortStore
from api.network.views import (filtered, group_view, network_view, own_port_view, port_views, rule_view, selected,
                               subnet_view)
from api.quota.models import NETWORK
from api.quota.store import QuotaStore
from provisioner.errors import ProvisionError


def version_list(base_url: str) -> dict[str, Any]:
    """Neutron's versions document (v2.0)."""
    return {"versions": [{"id": "v2.0", "status": "CURRENT",
                          "links": [{"rel": "self", "href": f"{base_url}/network/v2.0/"}]}]}


# The resources Neutron's GET /v2.0/ lists (collection -> member name) that this API serves.
RESOURCES = {"networks": "network", "subnets": "subnet", "ports": "port", "routers": "router",
             "floatingips": "floatingip", "security-groups": "security_group",
             "security-group-rules": "security_group_rule", "subnetpools": "subnetpool"}


def version_details(base_url: str) -> dict[str, Any]:
    """GET /network/v2.0/: the resources served, each with its collection's link."""
    return {"resources": [{"name": name, "collection": collection,
                           "links": [{"rel": "self", "href": f"{base_url}/network/v2.0/{collection}"}]}
                          for collection, name in RESOURCES.items()]}


class Networks:
    """/network/v2.0/networks[/{id}]: create and delete converge a managed network's libvirt_network."""

    def __init__(self, config: ApiConfig, store: NetworkStore, applier: NetworkApplier, quotas: QuotaStore):
        self.config = config
        self.store = store
        self.applier = applier
        self.quotas = quotas

    def _view(self, token: Token, network_id: str) -> dict[str, Any]:
        network = self.store.network(token, network_id)
        subnets = [s.id for s in self.store.visible_subnets(token) if s.network_id == network.id]
        return network_view(network, subnets)

    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        token = token_of(req)
        views = [self._view(token, n.id) for n in self.store.visible_networks(token)]
        send(resp, {"networks": filtered(req, views)})

    def on_post(self, req: falcon.Request, resp: falcon.Response) -> None:
        token = token_of(req)
        admit = self.quotas.admission(NETWORK, {"network": 1})

        def create(body: dict[str, Any]) -> Network:
            return self.applier.create(self.store.create_network(token, body, admit))

        def undo(network: Network) -> None:
            self.applier.destroy(network)
            self.store.forget_network(network.id)

        create_all(req, resp, self.config.max_json_body, "network", "networks", create, undo,
                   lambda n: self._view(token, n.id))

    def on_put_item(self, req: falcon.Request, resp: falcon.Response, item_id: str) -> None:
        token = token_of(req)
        self.store.update_network(token, item_id, read_json(req, self.config.max_json_body, "network"))
        send(resp, {"network": self._view(token, item_id)})

    def on_get_item(self, req: falcon.Request, resp: falcon.Response, item_id: str) -> None:
        send(resp, {"network": selected(req, self._view(token_of(req), item_id))})

    def on_delete_item(self, req: falcon.Request, resp: falcon.Response, item_id: str) -> None:
        network = self.store.deletable(token_of(req), item_id)
        try:
            self.applier.destroy(network)
        except ProvisionError as exc:
            self.store.set_status(network.id, ERROR)
            raise ApiError(f"Network {item_id} could not be destroyed: {exc}") from None
        self.store.forget_network(network.id)
        resp.status = 204


class Subnets:
    """/network/v2.0/subnets[/{id}]: a change re-applies the network's libvirt_network (its addresses)."""

    def __init__(self, config: ApiConfig, store: NetworkStore, applier: NetworkApplier, quotas: QuotaStore):
        self.config = config
        self.store = store
        self.applier = applier
        self.quotas = quotas

    def _reapply(self, network_id: str) -> None:
        network = self.store.networks.get(network_id)
        if network is not None:
            self.applier.apply(network)

    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        views = [subnet_view(s) for s in self.store.visible_subnets(token_of(req))]
        send(resp, {"subnets": filtered(req, views)})

    def on_post(self, req: falcon.Request, resp: falcon.Response) -> None:
        token = token_of(req)
        admit = self.quotas.admission(NETWORK, {"subnet": 1})

        def create(body: dict[str, Any]) -> Subnet:
            subnet = self.store.create_subnet(token, body, admit)
            self._reapply(subnet.network_id)
            return subnet

        def undo(subnet: Subnet) -> None:
            self.store.subnets.delete(subnet.id)
            self._reapply(subnet.network_id)

        create_all(req, resp, self.config.max_json_body, "subnet", "subnets", create, undo, subnet_view)

    def on_put_item(self, req: falcon.Request, resp: falcon.Response, item_id: str) -> None:
        subnet = self.store.update_subnet(token_of(req), item_id, read_json(req, self.config.max_json_body, "subnet"))
        self._reapply(subnet.network_id)
        send(resp, {"subnet": subnet_view(subnet)})

    def on_get_item(self, req: falcon.Request, resp: falcon.Response, item_id: str) -> None:
        send(resp, {"subnet": selected(req, subnet_view(self.store.subnet(token_of(req), item_id)))})

    def on_delete_item(self, req: falcon.Request, resp: falcon.Response, item_id: str) -> None:
        self._reapply(self.store.delete_subnet(token_of(req), item_id).network_id)
        resp.status = 204


@dataclass(frozen=True)
class PortShown:
    """A port as a token sees it: its view, and what tags need of it."""

    id: str
    project_id: str
    tags: tuple[str, ...]
    view: dict[str, Any]


class Ports:
    """/network/v2.0/ports[/{id}]: the NICs of the servers the token may see (read only), and ports of
    their own (api/network/ports.py)."""

    def __init__(self, config: ApiConfig, compute: ComputeStore, ports: PortStore, quotas: QuotaStore):
        self.config = config
        self.compute = compute
        self.ports = ports
        self.quotas = quotas

    def _views(self, token: Token) -> list[dict[str, Any]]:
        scope = None if token.is_admin else [token.project_id]
        servers, groups = self.compute.servers.list(scope), self.ports.store.groups.list(scope)
        return ([p for s in servers for p in port_views(s, token.is_admin, groups)]
                + [own_port_view(p, token.is_admin) for p in self.ports.visible(token)])

    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        send(resp, {"ports": filtered(req, self._views(token_of(req)))})

    def on_post(self, req: falcon.Request, resp: falcon.Response) -> None:
        token = token_of(req)
        admit = self.quotas.admission(NETWORK, {"port": 1})
        create_all(req, resp, self.config.max_json_body, "port", "ports",
                   lambda body: self.ports.create(token, body, admit),
                   lambda port: self.ports.delete(token, port.id), lambda port: own_port_view(port, token.is_admin))

    def port(self, token: Token, item_id: str) -> PortShown:
        """A port the token may see, a server's NIC or one of Neutron's own; NotFound otherwise."""
        found = next((p for p in self._views(token) if p["id"] == item_id), None)
        if found is None:
            raise NotFound(f"Port {item_id} could not be found.")
        return PortShown(found["id"], found["project_id"], tuple(found["tags"]), found)

    def on_get_item(self, req: falcon.Request, resp: falcon.Response, item_id: str) -> None:
        send(resp, {"port": selected(req, self.port(token_of(req), item_id).view)})

    def on_put_item(self, req: falcon.Request, resp: falcon.Response, item_id: str) -> None:
        body = read_json(req, self.config.max_json_body, "port")
        token = token_of(req)
        self._own(req, item_id, deleting=False)
        send(resp, {"port": own_port_view(self.ports.update(token, item_id, body), token.is_admin)})

    def on_delete_item(self, req: falcon.Request, resp: falcon.Response, item_id: str) -> None:
        self._own(req, item_id, deleting=True)
        self.ports.delete(token_of(req), item_id)
        resp.status = 204

    def _own(self, req: falcon.Request, item_id: str, deleting: bool) -> None:
        """Conflict for a server's NIC (changed through Nova) and for deleting a router's port (removed with
        its interface or gateway; it may be updated, as in Neutron); NotFound for what the token cannot see."""
        found = self.port(token_of(req), item_id).view
        if found["device_owner"].startswith("compute:"):
            raise Conflict(f"Port {item_id} is a NIC of server {found['device_id']}: change it through Nova")
        if deleting and found["device_owner"] in (INTERFACE, GATEWAY):
            raise Conflict(f"Port {item_id} cannot be deleted directly via the port API: it has owner "
                           f"{found['device_owner']} (remove the router interface or gateway)")


class SecurityGroups:
    """/network/v2.0/security-groups[/{id}]."""

    def __init__(self, config: ApiConfig, store: NetworkStore, quotas: QuotaStore):
        self.config = config
        self.store = store
        self.quotas = quotas

    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        token = token_of(req)
        rules = self.store.visible_rules(token)
        views = [group_view(g, rules) for g in self.store.visible_groups(token)]
        send(resp, {"security_groups": filtered(req, views)})

    def on_post(self, req: falcon.Request, resp: falcon.Response) -> None:
        token = token_of(req)
        admit = self.quotas.admission(NETWORK, {"security_group": 1})
        create_all(req, resp, self.config.max_json_body, "security_group", "security_groups",
                   lambda body: self.store.create_group(token, body, admit),
                   lambda group: self.store.delete_group(token, group.id),
                   lambda group: group_view(group, self.store.visible_rules(token)))

    def on_put_item(self, req: falcon.Request, resp: falcon.Response, item_id: str) -> None:
        token = token_of(req)
        group = self.store.update_group(token, item_id, read_json(req, self.config.max_json_body, "security_group"))
        send(resp, {"security_group": group_view(group, self.store.visible_rules(token))})

    def on_get_item(self, req: falcon.Request, resp: falcon.Response, item_id: str) -> None:
        token = token_of(req)
        send(resp, {"security_group": group_view(self.store.group(token, item_id), self.store.visible_rules(token))})

    def on_delete_item(self, req: falcon.Request, resp: falcon.Response, item_id: str) -> None:
        self.store.delete_group(token_of(req), item_id)
        resp.status = 204


class SecurityGroupRules:
    """/network/v2.0/security-group-rules[/{id}]."""

    def __init__(self, config: ApiConfig, store: NetworkStore, quotas: QuotaStore):
        self.config = config
        self.store = store
        self.quotas = quotas

    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        views = [rule_view(r) for r in self.store.visible_rules(token_of(req))]
        send(resp, {"security_group_rules": filtered(req, views)})

    def on_post(self, req: falcon.Request, resp: falcon.Response) -> None:
        body = read_json(req, self.config.max_json_body, "security_group_rule")
        rule = self.store.create_rule(token_of(req), body, self.quotas.admission(NETWORK, {"security_group_rule": 1}))
        send(resp, {"security_group_rule": rule_view(rule)}, 201)

    def on_get_item(self, req: falcon.Request, resp: falcon.Response, item_id: str) -> None:
        send(resp, {"security_group_rule": rule_view(self.store.rule(token_of(req), item_id))})

    def on_delete_item(self, req: falcon.Request, resp: falcon.Response, item_id: str) -> None:
        self.store.delete_rule(token_of(req), item_id)
        resp.status = 204
