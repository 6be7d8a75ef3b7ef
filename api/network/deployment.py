"""What this Neutron deployment runs besides the API: no agents (the engine applies networks itself, through
Terraform and libvirt: api/network/applier.py) and no configurable service providers. The agent and
service-type APIs answer that truthfully: empty lists, and no agent to show, change or delete."""

from __future__ import annotations

import falcon

from api.errors import NotFound
from api.http import send
from provisioner.excerpt import cut


class Agents:
    """/network/v2.0/agents[/{id}]: the list is empty for everyone."""

    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        send(resp, {"agents": []})

    def _none(self, item_id: str) -> None:
        raise NotFound(f"Agent {cut(item_id)} could not be found.")

    def on_get_item(self, req: falcon.Request, resp: falcon.Response, item_id: str) -> None:
        self._none(item_id)

    def on_put_item(self, req: falcon.Request, resp: falcon.Response, item_id: str) -> None:
        self._none(item_id)

    def on_delete_item(self, req: falcon.Request, resp: falcon.Response, item_id: str) -> None:
        self._none(item_id)


class ServiceProviders:
    """/network/v2.0/service-providers: none configured."""

    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        send(resp, {"service_providers": []})
