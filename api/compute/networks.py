"""Nova's network proxies (os-networks, os-tenant-networks): the Neutron networks the caller sees, in
nova-network's shape (id, label, the first IPv4 subnet's cidr). Nova removed both at 2.36: a newer request
is a 404."""

from __future__ import annotations

import ipaddress
from typing import Any

import falcon

from api.auth import token_of
from api.compute.security_groups import proxied
from api.errors import NotFound
from api.http import send
from api.network.models import Network
from api.network.store import NetworkStore
from provisioner.excerpt import cut


class NovaNetworks:
    """GET /os-networks[/{id}] or /os-tenant-networks[/{id}] (the same networks here: those the caller sees)."""

    def __init__(self, networks: NetworkStore):
        self.networks = networks

    def _view(self, network: Network) -> dict[str, Any]:
        cidrs = [s.cidr for s in self.networks.subnets_of(network.id)
                 if ipaddress.ip_network(s.cidr, strict=False).version == 4]
        return {"id": network.id, "label": network.name, "cidr": cidrs[0] if cidrs else None}

    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        proxied(req)
        send(resp, {"networks": [self._view(n) for n in self.networks.visible_networks(token_of(req))]})

    def on_get_item(self, req: falcon.Request, resp: falcon.Response, network_id: str) -> None:
        proxied(req)
        found = next((n for n in self.networks.visible_networks(token_of(req)) if n.id == network_id), None)
        if found is None:
            raise NotFound(f"Network {cut(network_id)} could not be found.")
        send(resp, {"network": self._view(found)})
