"""A server's metadata (/servers/{id}/metadata[/{key}]) and addresses (/servers/{id}/ips[/{network}])."""

from __future__ import annotations

from typing import Any

import falcon

from api.auth import token_of
from api.compute.addresses import AddressRefresher
from api.compute.models import ComputeStore, Server
from api.compute.views import server_view
from api.config import ApiConfig
from api.errors import BadRequest, NotFound
from api.http import read_json, send
from api.network.store import NetworkStore
from api.quota.models import COMPUTE
from api.quota.store import QuotaStore
from provisioner.excerpt import cut, describe

MAX_KEY = MAX_VALUE = 255  # Nova's metadata key and value lengths


def checked_metadata(items: Any, where: str) -> dict[str, str]:
    """Metadata as Nova accepts it: an object of 1-255 character keys to strings of at most 255 characters.

    For the bodies still checked by hand (server create, rebuild); the metadata API's own bodies are checked
    against api/openapi.yaml's NovaMetadata."""
    if not isinstance(items, dict):
        raise BadRequest(where, f"{describe(items)} is not an object")
    for key, value in items.items():
        if not key or len(key) > MAX_KEY:
            raise BadRequest(f"{where}.{cut(key)}", f"metadata keys are 1 to {MAX_KEY} characters")
        if not isinstance(value, str) or len(value) > MAX_VALUE:
            raise BadRequest(f"{where}.{cut(key)}", f"{describe(value)} is not a string of at most "
                                                     f"{MAX_VALUE} characters")
    return dict(items)


class ServerMetadata:
    """GET, POST (merge) and PUT (replace) /compute/v2.1/servers/{id}/metadata."""

    def __init__(self, config: ApiConfig, store: ComputeStore, quotas: QuotaStore):
        self.config = config
        self.store = store
        self.quotas = quotas

    def on_get(self, req: falcon.Request, resp: falcon.Response, server_id: str) -> None:
        send(resp, {"metadata": self.store.server(token_of(req), server_id).metadata})

    def _set(self, req: falcon.Request, resp: falcon.Response, server_id: str, merge: bool) -> None:
        server = self.store.server(token_of(req), server_id)
        items = read_json(req, self.config.max_json_body)["metadata"]  # its form is api/openapi.yaml's
        metadata = {**server.metadata, **items} if merge else items
        self.quotas.check_each(COMPUTE, server.project_id, {"metadata_items": len(metadata)})
        changed = self.store.change(server.id, metadata=metadata)
        if changed is None:
            raise NotFound(f"Instance {server_id} could not be found.")
        send(resp, {"metadata": changed.metadata})

    def on_post(self, req: falcon.Request, resp: falcon.Response, server_id: str) -> None:
        self._set(req, resp, server_id, merge=True)

    def on_put(self, req: falcon.Request, resp: falcon.Response, server_id: str) -> None:
        self._set(req, resp, server_id, merge=False)


class ServerMetadataItem:
    """GET, PUT and DELETE /compute/v2.1/servers/{id}/metadata/{key}."""

    def __init__(self, config: ApiConfig, store: ComputeStore, quotas: QuotaStore):
        self.config = config
        self.store = store
        self.quotas = quotas

    def _item(self, req: falcon.Request, server_id: str, key: str) -> tuple[Server, str]:
        server = self.store.server(token_of(req), server_id)
        if key not in server.metadata:
            raise NotFound("Metadata item was not found")
        return server, server.metadata[key]

    def on_get(self, req: falcon.Request, resp: falcon.Response, server_id: str, key: str) -> None:
        _, value = self._item(req, server_id, key)
        send(resp, {"meta": {key: value}})

    def on_put(self, req: falcon.Request, resp: falcon.Response, server_id: str, key: str) -> None:
        server = self.store.server(token_of(req), server_id)
        meta = read_json(req, self.config.max_json_body)["meta"]  # one item, of api/openapi.yaml's form
        if key not in meta:
            raise BadRequest("meta", "Request body and URI mismatch")
        metadata = {**server.metadata, **meta}
        self.quotas.check_each(COMPUTE, server.project_id, {"metadata_items": len(metadata)})
        if self.store.change(server.id, metadata=metadata) is None:
            raise NotFound(f"Instance {server_id} could not be found.")
        send(resp, {"meta": meta})

    def on_delete(self, req: falcon.Request, resp: falcon.Response, server_id: str, key: str) -> None:
        server, _ = self._item(req, server_id, key)
        self.store.change(server.id, metadata={k: v for k, v in server.metadata.items() if k != key})
        resp.status = 204


class ServerIps:
    """GET /compute/v2.1/servers/{id}/ips[/{network}]: the server's addresses, by network name."""

    def __init__(self, store: ComputeStore, networks: NetworkStore, addresses: AddressRefresher):
        self.store = store
        self.networks = networks
        self.addresses = addresses

    def _addresses(self, req: falcon.Request, server_id: str) -> dict[str, list[dict[str, Any]]]:
        token = token_of(req)
        server = self.addresses.refresh(self.store.server(token, server_id))
        names = {n.id: n.name for n in self.networks.visible_networks(token)}
        detail = server_view(server, req.prefix, names, [], floating=self.networks.floating_by_port())
        return {name: [{"version": a["version"], "addr": a["addr"]} for a in entries]
                for name, entries in detail["addresses"].items()}

    def on_get(self, req: falcon.Request, resp: falcon.Response, server_id: str) -> None:
        send(resp, {"addresses": self._addresses(req, server_id)})

    def on_get_network(self, req: falcon.Request, resp: falcon.Response, server_id: str, network: str) -> None:
        addresses = self._addresses(req, server_id)
        if network not in addresses:
            raise NotFound("There is no such network in this instance.")
        send(resp, {network: addresses[network]})
