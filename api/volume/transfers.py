"""Cinder's volume transfers: a project offers an available volume (status awaiting-transfer) under an id and a
one-time auth key; whoever presents both takes the volume (and its snapshots, unless `no_snapshots`) into
their own project, within its quotas.

Served at /os-volume-transfer (every microversion) and /volume-transfers (3.55 on, with no_snapshots; 3.57
adds source_project_id, destination_project_id and accepted). Only a salted SHA-256 of the auth key is kept:
the key itself is shown once, in the answer to the create.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import time
import uuid
from dataclasses import dataclass
from typing import Any

import falcon

from api.auth import token_of
from api.config import ApiConfig
from api.db import Database, Table
from api.errors import BadRequest, NotFound
from api.http import isotime, read_json, send
from api.identity.tokens import Token
from api.quota.models import VOLUME
from api.quota.store import QuotaStore
from api.volume import microversion
from api.volume.models import AVAILABLE, AWAITING_TRANSFER
from api.volume.store import VolumeStore, invalid_volume
from provisioner.excerpt import describe

KEY_LENGTH = 16  # characters of an auth key, as Cinder's volume_transfer_key_length


@dataclass(frozen=True)
class Transfer:
    """An offered volume; `key_hash` is SHA-256 of `salt` + the auth key."""

    id: str
    name: str | None
    volume_id: str
    project_id: str  # the offering project
    salt: str
    key_hash: str
    no_snapshots: bool = False
    created: float = 0.0


def _hash(salt: str, key: str) -> str:
    return hashlib.sha256(f"{salt}{key}".encode()).hexdigest()


def transfer_view(transfer: Transfer, req: falcon.Request, detail: bool = True) -> dict[str, Any]:
    """A transfer as Cinder shows it at the request's microversion (list without detail: id, name, volume_id,
    links)."""
    version = microversion.version_of(req)
    path = "volume-transfers" if version >= microversion.TRANSFERS else "os-volume-transfer"
    body: dict[str, Any] = {
        "id": transfer.id, "name": transfer.name, "volume_id": transfer.volume_id,
        "links": [{"rel": "self", "href": f"{req.prefix}/volume/v3/{path}/{transfer.id}"},
                  {"rel": "bookmark", "href": f"{req.prefix}/volume/{path}/{transfer.id}"}]}
    if detail:
        body["created_at"] = isotime(transfer.created, micro=True)
        if version >= microversion.TRANSFERS:
            body["no_snapshots"] = transfer.no_snapshots
        if version >= microversion.TRANSFER_PROJECTS:
            body.update({"source_project_id": transfer.project_id, "destination_project_id": None,
                         "accepted": False})
    return body


def _require_path_version(req: falcon.Request, new_path: bool) -> None:
    if new_path and microversion.version_of(req) < microversion.TRANSFERS:
        raise NotFound(f"The resource could not be found (volume-transfers needs microversion "
                       f"{microversion.TRANSFERS}).")


class TransferStore:
    """The open transfers (table api_volume_transfers)."""

    def __init__(self, db: Database, volumes: VolumeStore, quotas: QuotaStore):
        self.transfers = Table(db, "volume_transfers", Transfer)
        self.volumes = volumes
        self.quotas = quotas

    def get(self, token: Token, transfer_id: str) -> Transfer:
        """A transfer of the token's project (any, for an admin)."""
        found = self.transfers.get(transfer_id)
        if found is None or (found.project_id != token.project_id and not token.is_admin):
            raise NotFound(f"Transfer {describe(transfer_id)} could not be found.")
        return found

    def offer(self, token: Token, volume_id: str, name: str | None, no_snapshots: bool) -> tuple[Transfer, str]:
        """Offer an available volume of the token's project: the transfer and its auth key."""
        volume = self.volumes.volume(token, volume_id)
        if volume.project_id != token.project_id:
            raise invalid_volume(f"volume {volume.id} belongs to another project: only its own may transfer it")
        key = secrets.token_hex(KEY_LENGTH // 2)
        salt = secrets.token_hex(8)
        transfer = Transfer(id=str(uuid.uuid4()), name=name, volume_id=volume.id, project_id=volume.project_id,
                            salt=salt, key_hash=_hash(salt, key), no_snapshots=no_snapshots, created=time.time())
        self.volumes.transition(volume.id, (AVAILABLE,), AWAITING_TRANSFER)
        self.transfers.insert(transfer)
        return transfer, key

    def cancel(self, transfer: Transfer) -> None:
        """Withdraw an offer: the volume is available again."""
        self.transfers.delete(transfer.id)
        if (volume := self.volumes.volumes.get(transfer.volume_id)) and volume.status == AWAITING_TRANSFER:
            self.volumes.change(volume.id, status=AVAILABLE)

    def accept(self, token: Token, transfer_id: str, key: str) -> Transfer:
        """Take the volume (and its snapshots, unless the offer said no_snapshots) into the token's project."""
        transfer = self.transfers.get(transfer_id)
        if transfer is None:
            raise NotFound(f"Transfer {describe(transfer_id)} could not be found.")
        if not hmac.compare_digest(_hash(transfer.salt, key), transfer.key_hash):
            raise BadRequest("accept.auth_key", f"Invalid auth key: attempt to accept transfer {transfer.id} "
                                                "with an invalid auth key")
        # Its new project's quotas count it (and the snapshots that go with it) in the transaction that moves it.
        self.volumes.give(transfer.volume_id, token.project_id, token.user_id, not transfer.no_snapshots,
                          lambda volumes, snapshots, gigabytes: self.quotas.check(
                              VOLUME, token.project_id,
                              {"volumes": volumes, "snapshots": snapshots, "gigabytes": gigabytes}))
        self.transfers.delete(transfer.id)
        return transfer


class Transfers:
    """GET /volume/v3/{os-volume-transfer,volume-transfers}[/detail] (the project's; all_tenants for admins),
    POST (202: the transfer with its auth key)."""

    def __init__(self, config: ApiConfig, store: TransferStore, new_path: bool):
        self.config = config
        self.store = store
        self.new_path = new_path

    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        self._list(req, resp, detail=False)

    def on_get_detail(self, req: falcon.Request, resp: falcon.Response) -> None:
        self._list(req, resp, detail=True)

    def _list(self, req: falcon.Request, resp: falcon.Response, detail: bool) -> None:
        _require_path_version(req, self.new_path)
        token = token_of(req)
        all_projects = req.get_param_as_bool("all_tenants", default=False) or False
        found = self.store.transfers.list(VolumeStore.scope(token, all_projects))
        send(resp, {"transfers": [transfer_view(t, req, detail) for t in found]})

    def on_post(self, req: falcon.Request, resp: falcon.Response) -> None:
        _require_path_version(req, self.new_path)
        token = token_of(req)
        body = read_json(req, self.config.max_json_body)["transfer"]  # of api/openapi.yaml's form
        no_snapshots = bool(body.get("no_snapshots")) and microversion.version_of(req) >= microversion.TRANSFERS
        transfer, key = self.store.offer(token, body["volume_id"], body.get("name"), no_snapshots)
        send(resp, {"transfer": {**transfer_view(transfer, req), "auth_key": key}}, 202)


class TransferItem:
    """GET and DELETE (202: the volume is available again) /volume/v3/{…}/{transfer_id}."""

    def __init__(self, store: TransferStore, new_path: bool):
        self.store = store
        self.new_path = new_path

    def on_get(self, req: falcon.Request, resp: falcon.Response, transfer_id: str) -> None:
        _require_path_version(req, self.new_path)
        send(resp, {"transfer": transfer_view(self.store.get(token_of(req), transfer_id), req)})

    def on_delete(self, req: falcon.Request, resp: falcon.Response, transfer_id: str) -> None:
        _require_path_version(req, self.new_path)
        self.store.cancel(self.store.get(token_of(req), transfer_id))
        resp.status = 202


class TransferAccept:
    """POST /volume/v3/{…}/{transfer_id}/accept (202): any project holding the id and auth key."""

    def __init__(self, config: ApiConfig, store: TransferStore, new_path: bool):
        self.config = config
        self.store = store
        self.new_path = new_path

    def on_post(self, req: falcon.Request, resp: falcon.Response, transfer_id: str) -> None:
        _require_path_version(req, self.new_path)
        token = token_of(req)
        key = read_json(req, self.config.max_json_body)["accept"]["auth_key"]
        transfer = self.store.accept(token, transfer_id, key)
        send(resp, {"transfer": transfer_view(transfer, req, detail=False)}, 202)
