"""A server's tags (/servers/{id}/tags[/{tag}], from 2.26): short labels a user attaches, shown in the server
body and kept with the server's record. Nova's limits: at most 50 tags of 1 to 60 characters, no '/' or ','
(the body's forms are api/openapi.yaml's; a tag in the URL is checked here)."""

from __future__ import annotations

import falcon

from api.auth import token_of
from api.compute.microversion import version_of
from api.compute.models import BUILD, ComputeStore, Server
from api.config import ApiConfig
from api.errors import BadRequest, Conflict, NotFound
from api.http import read_json, send
from api.microversion import Version
from provisioner.excerpt import cut

SINCE = Version(2, 26)
MAX_TAGS = 50
MAX_TAG = 60


def _server(req: falcon.Request, store: ComputeStore, server_id: str) -> Server:
    if version_of(req) < SINCE:
        raise NotFound("Server tags need microversion 2.26 or later.")
    return store.server(token_of(req), server_id)


def _changeable(server: Server) -> None:
    """Nova changes no tags while the server builds (409)."""
    if server.status == BUILD:
        raise Conflict(f"Cannot update tags of instance {server.id} while it is building")


def _save(store: ComputeStore, server: Server, tags: tuple[str, ...]) -> None:
    if store.change(server.id, tags=tags) is None:
        raise NotFound(f"Instance {server.id} could not be found.")


class ServerTags:
    """GET, PUT (replace all) and DELETE (all) /compute/v2.1/servers/{id}/tags."""

    def __init__(self, config: ApiConfig, store: ComputeStore):
        self.config = config
        self.store = store

    def on_get(self, req: falcon.Request, resp: falcon.Response, server_id: str) -> None:
        send(resp, {"tags": list(_server(req, self.store, server_id).tags)})

    def on_put(self, req: falcon.Request, resp: falcon.Response, server_id: str) -> None:
        server = _server(req, self.store, server_id)
        tags = tuple(dict.fromkeys(read_json(req, self.config.max_json_body)["tags"]))  # repeats count once
        _changeable(server)
        _save(self.store, server, tags)
        send(resp, {"tags": list(tags)})

    def on_delete(self, req: falcon.Request, resp: falcon.Response, server_id: str) -> None:
        server = _server(req, self.store, server_id)
        _changeable(server)
        _save(self.store, server, ())
        resp.status = 204


class ServerTag:
    """GET (exists?), PUT (add) and DELETE /compute/v2.1/servers/{id}/tags/{tag}."""

    def __init__(self, store: ComputeStore):
        self.store = store

    def on_get(self, req: falcon.Request, resp: falcon.Response, server_id: str, tag: str) -> None:
        if tag not in _server(req, self.store, server_id).tags:
            raise NotFound(f"Instance {server_id} has no tag {cut(tag)}")
        resp.status = 204

    def on_put(self, req: falcon.Request, resp: falcon.Response, server_id: str, tag: str) -> None:
        server = _server(req, self.store, server_id)
        if not 1 <= len(tag) <= MAX_TAG or "/" in tag or "," in tag or not tag.isprintable():
            raise BadRequest("tag", f"{cut(tag)}: a tag is 1 to {MAX_TAG} printable characters without '/' or ','")
        _changeable(server)
        resp.status = 204
        if tag in server.tags:
            return
        if len(server.tags) >= MAX_TAGS:
            raise BadRequest("tag", f"instance {server.id} has {MAX_TAGS} tags, the most it may have")
        _save(self.store, server, (*server.tags, tag))
        resp.status = 201
        resp.set_header("Location", f"{req.prefix}/compute/v2.1/servers/{server.id}/tags/{tag}")

    def on_delete(self, req: falcon.Request, resp: falcon.Response, server_id: str, tag: str) -> None:
        server = _server(req, self.store, server_id)
        _changeable(server)
        if tag not in server.tags:
            raise NotFound(f"Instance {server_id} has no tag {cut(tag)}")
        _save(self.store, server, tuple(t for t in server.tags if t != tag))
        resp.status = 204
