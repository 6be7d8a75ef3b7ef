"""GET and DELETE /compute/v2.1/servers/{id}/os-server-password: the encrypted password a guest posts to
Nova's metadata service. Guests here are seeded by a NoCloud ISO and have no metadata service to post one
to, so the password is always empty and clearing it changes nothing (as Nova, for a guest that posted none)."""

from __future__ import annotations

import falcon

from api.auth import token_of
from api.compute.models import ComputeStore
from api.http import send


class ServerPassword:
    """The server's posted password: always empty here."""

    def __init__(self, store: ComputeStore):
        self.store = store

    def on_get(self, req: falcon.Request, resp: falcon.Response, server_id: str) -> None:
        self.store.server(token_of(req), server_id)
        send(resp, {"password": ""})

    def on_delete(self, req: falcon.Request, resp: falcon.Response, server_id: str) -> None:
        self.store.server(token_of(req), server_id)
        resp.status = 204
