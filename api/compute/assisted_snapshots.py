"""Nova's os-assisted-volume-snapshots (admin or service, up to every microversion): the calls a Cinder
driver whose volumes are files makes to have the hypervisor snapshot an attached volume.

This API's Cinder copies a volume's file itself, attached or not (api.volume.worker), so it never needs the
hypervisor's help: both calls check what Nova checks (the volume is attached to a server, the create_info or
delete_info is well formed) and answer as Nova does, with nothing left to do on the guest's disks.
"""

from __future__ import annotations

import json
from typing import Any

import falcon

from api.auth import token_of
from api.config import ApiConfig
from api.errors import BadRequest, Forbidden
from api.http import read_json, send
from api.identity.tokens import Token
from api.volume.store import VolumeStore
from provisioner.excerpt import cut


def _allowed(token: Token, action: str) -> None:
    """Nova's policy: the admin or service role."""
    if not (token.is_admin or "service" in token.roles):
        raise Forbidden(f"Policy doesn't allow os_compute_api:os-assisted-volume-snapshots:{action} to be "
                        "performed.")


def _attached(store: VolumeStore, volume_id: str, where: str) -> None:
    """Nova's VolumeBDMNotFound (400) unless the volume is attached to a server."""
    found = store.volumes.get(volume_id)
    if found is None or found.server_id is None:
        raise BadRequest(where, f"No volume Block Device Mapping with id {cut(volume_id)}.")


class AssistedSnapshots:
    """POST /os-assisted-volume-snapshots and DELETE /os-assisted-volume-snapshots/{id}?delete_info=…"""

    def __init__(self, config: ApiConfig, store: VolumeStore):
        self.config = config
        self.store = store

    def on_post(self, req: falcon.Request, resp: falcon.Response) -> None:
        token = token_of(req)
        _allowed(token, "create")
        body = read_json(req, self.config.max_json_body)["snapshot"]  # its form is api/openapi.yaml's
        _attached(self.store, body["volume_id"], "snapshot.volume_id")
        # Nova answers with the id create_info gave (none: null), not the snapshot_id.
        send(resp, {"snapshot": {"id": body["create_info"].get("id"), "volumeId": body["volume_id"]}})

    def on_delete_item(self, req: falcon.Request, resp: falcon.Response, snapshot_id: str) -> None:
        token = token_of(req)
        _allowed(token, "delete")
        text = req.get_param("delete_info")
        if not text:
            raise BadRequest("delete_info", "Delete info is required")
        try:
            info: Any = json.loads(text)
        except ValueError:
            raise BadRequest("delete_info", f"Invalid delete_info: {cut(text)} is not JSON") from None
        if not isinstance(info, dict) or not isinstance(info.get("volume_id"), str):
            raise BadRequest("delete_info", "Invalid delete_info: it must be an object with a volume_id")
        _attached(self.store, info["volume_id"], "delete_info.volume_id")
        resp.status = 204
