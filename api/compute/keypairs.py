"""Nova's os-keypairs: a user's SSH keys (or X.509 certificates, type x509 from 2.2); from 2.10 an admin
may act on another user's with `user_id`. Keypairs count against the key_pairs quota of their user."""

from __future__ import annotations

import time

import falcon

from api.auth import token_of
from api.compute import keys
from api.compute.microversion import version_of
from api.compute.models import ComputeStore, Keypair
from api.compute.views import keypair_detail, keypair_list_entry, keypair_view
from api.config import ApiConfig
from api.errors import BadRequest, Conflict, Forbidden, NotFound
from api.http import read_json, send
from api.microversion import Version
from api.quota.models import COMPUTE
from api.quota.store import QuotaStore
from provisioner.excerpt import cut

TYPE_FIELD = Version(2, 2)
USER_FIELD = Version(2, 10)


def _owner(req: falcon.Request, requested: str | None) -> str:
    """Whose keypairs the request acts on: the caller's, or from 2.10 an admin's choice of user."""
    token = token_of(req)
    if requested is None or requested == token.user_id:
        return token.user_id
    if version_of(req) < USER_FIELD:
        raise BadRequest("user_id", "is only accepted from microversion 2.10 on")
    if not token.is_admin:
        raise Forbidden("Policy doesn't allow os_compute_api:os-keypairs to be performed for another user.")
    return requested


class Keypairs:
    """GET and POST /compute/v2.1/os-keypairs."""

    def __init__(self, config: ApiConfig, store: ComputeStore, quotas: QuotaStore):
        self.config = config
        self.store = store
        self.quotas = quotas

    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        owner = _owner(req, req.get_param("user_id"))
        send(resp, {"keypairs": [keypair_list_entry(k, version_of(req)) for k in self.store.keypairs.list([owner])]})

    def on_post(self, req: falcon.Request, resp: falcon.Response) -> None:
        token = token_of(req)
        version = version_of(req)
        # Its structure (name's form, type from 2.2, user_id from 2.10) is api/openapi.yaml's, checked before.
        body = read_json(req, self.config.max_json_body)["keypair"]
        name, kind = body["name"], body.get("type", "ssh")
        owner = _owner(req, body.get("user_id"))
        public = body.get("public_key")
        private = None
        if kind == "x509":
            if public is None:
                public, private = keys.generate_x509(owner)
            fingerprint = keys.x509_fingerprint(public)
        else:
            if public is None:
                public, private = keys.generate()
            fingerprint = keys.fingerprint(public)
        keypair = Keypair(id=f"{owner}/{name}", name=name, user_id=owner, public_key=public.strip(),
                          fingerprint=fingerprint, type=kind, created=time.time())
        with self.store.db.transaction():
            self.quotas.check(COMPUTE, token.project_id, {"key_pairs": 1}, owner)
            if self.store.keypairs.get(keypair.id) is not None:
                raise Conflict(f"Key pair '{name}' already exists.")
            self.store.keypairs.insert(keypair)
        # Nova answers 200 at 2.1 and 201 from 2.2 on, generated or imported alike.
        send(resp, {"keypair": keypair_view(keypair, version, private)}, 201 if version >= TYPE_FIELD else 200)


class KeypairItem:
    """GET and DELETE /compute/v2.1/os-keypairs/{name}."""

    def __init__(self, store: ComputeStore):
        self.store = store

    def _get(self, req: falcon.Request, name: str) -> Keypair:
        owner = _owner(req, req.get_param("user_id"))
        keypair = self.store.keypairs.get(f"{owner}/{name}")
        if keypair is None:
            raise NotFound(f"Keypair {cut(name)} not found for user {cut(owner)}")
        return keypair

    def on_get(self, req: falcon.Request, resp: falcon.Response, name: str) -> None:
        send(resp, {"keypair": keypair_detail(self._get(req, name), version_of(req))})

    def on_delete(self, req: falcon.Request, resp: falcon.Response, name: str) -> None:
        self.store.keypairs.delete(self._get(req, name).id)
        resp.status = 204 if version_of(req) >= TYPE_FIELD else 202
