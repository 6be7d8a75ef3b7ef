"""Cinder's volume type encryption: /volume/v3/types/{type_id}/encryption[/{key}] (admin).

A type's encryption is a record (provider, control_location front-end or
back-end, cipher, key_size), kept and shown as Cinder does; it cannot be
created, changed or deleted while volumes of the type exist. This API has no
key manager, so no volume is ever encrypted: a volume of an encrypted type is
refused at create and retype (api.volume.resources), which is also why
attaching an encrypted volume stays unsupported (attach_encrypted_volume=false).
"""

from __future__ import annotations

import threading
import time
import uuid
from dataclasses import dataclass, replace
from typing import Any, Callable

import falcon

from api.auth import require_admin, token_of
from api.config import ApiConfig
from api.db import Database, Table
from api.errors import BadRequest, NotFound
from api.http import isotime, read_json, send
from api.volume.types import TypeStore, VolumeType
from provisioner.excerpt import describe

FIELDS = ("provider", "control_location", "cipher", "key_size")


@dataclass(frozen=True)
class Encryption:
    """A volume type's encryption specs; `id` is the type's id (one per type), `encryption_id` its own."""

    id: str
    encryption_id: str
    provider: str
    control_location: str = "front-end"
    cipher: str | None = None
    key_size: int | None = None
    created: float = 0.0
    updated: float | None = None
    project_id: str = ""  # the Table's scope column: encryption belongs to no project


def encryption_view(enc: Encryption) -> dict[str, Any]:
    """The specs as Cinder's show gives them."""
    return {"volume_type_id": enc.id, "encryption_id": enc.encryption_id, "provider": enc.provider,
            "control_location": enc.control_location, "cipher": enc.cipher, "key_size": enc.key_size,
            "deleted": False, "created_at": isotime(enc.created),
            "updated_at": isotime(enc.updated) if enc.updated else None, "deleted_at": None}


class EncryptionStore:
    """The encryption specs of volume types (table api_volume_type_encryption); `in_use(type_name)` tells
    whether volumes of a type exist."""

    def __init__(self, db: Database, in_use: Callable[[str], bool]):
        self.specs = Table(db, "volume_type_encryption", Encryption)
        self.in_use = in_use
        self._lock = threading.Lock()

    def of(self, vtype: VolumeType) -> Encryption | None:
        """The type's encryption, or None."""
        return self.specs.get(vtype.id)

    def refuse_encrypted(self, vtype: VolumeType, field: str) -> None:
        """400 for a volume of an encrypted type: there is no key manager to hold its key."""
        if self.of(vtype) is not None:
            raise BadRequest(field, f"volume type {describe(vtype.name)} is encrypted: encrypted volumes are not "
                                    "supported, this API has no key manager (neither creating nor attaching one: "
                                    "attach_encrypted_volume=false)")

    def forget(self, vtype: VolumeType) -> None:
        """The type is deleted: its encryption goes with it, as in Cinder."""
        self.specs.delete(vtype.id)

    def _unused(self, vtype: VolumeType, verb: str) -> None:
        if self.in_use(vtype.name):
            raise BadRequest("", f"Cannot {verb} encryption specs. Volume type in use.")

    def create(self, vtype: VolumeType, given: dict[str, Any]) -> Encryption:
        """Add the type's encryption; 400 if it has one or volumes of the type exist."""
        with self._lock:
            self._unused(vtype, "create")
            if self.of(vtype) is not None:
                raise BadRequest("", f"Volume type encryption for type {vtype.id} already exists.")
            enc = Encryption(id=vtype.id, encryption_id=str(uuid.uuid4()), created=time.time(),
                             **{k: given[k] for k in FIELDS if given.get(k) is not None})
            return self.specs.insert(enc)

    def existing(self, vtype: VolumeType, encryption_id: str | None = None) -> Encryption:
        """The type's encryption (with that encryption_id, if given); 404 otherwise."""
        enc = self.of(vtype)
        if enc is None or (encryption_id is not None and encryption_id != enc.encryption_id):
            raise NotFound(f"Volume type encryption for type {vtype.id} does not exist.")
        return enc

    def update(self, vtype: VolumeType, encryption_id: str, given: dict[str, Any]) -> Encryption:
        """Change some of the specs; 400 while volumes of the type exist, 404 without encryption."""
        with self._lock:
            self._unused(vtype, "update")
            enc = self.existing(vtype, encryption_id)
            return self.specs.update(replace(enc, updated=time.time(), **{k: given[k] for k in FIELDS if k in given}))

    def delete(self, vtype: VolumeType, encryption_id: str) -> None:
        """Remove the type's encryption; 400 while volumes of the type exist, 404 without encryption."""
        with self._lock:
            self._unused(vtype, "delete")
            self.specs.delete(self.existing(vtype, encryption_id).id)


class EncryptionResource:
    """GET ({} without encryption) and POST (admin) /volume/v3/types/{type_id}/encryption; GET (one spec), PUT and
    DELETE (202) …/encryption/{key}, where `key` is a spec's name for GET, the encryption_id for PUT and DELETE
    (suffix `item`)."""

    def __init__(self, config: ApiConfig, types: TypeStore, store: EncryptionStore):
        self.config = config
        self.types = types
        self.store = store

    def _type(self, req: falcon.Request, type_id: str) -> VolumeType:
        token = token_of(req)
        require_admin(token, "volume type encryption")
        return self.types.get(token, type_id)

    def on_get(self, req: falcon.Request, resp: falcon.Response, type_id: str) -> None:
        enc = self.store.of(self._type(req, type_id))
        send(resp, encryption_view(enc) if enc else {})

    def on_post(self, req: falcon.Request, resp: falcon.Response, type_id: str) -> None:
        vtype = self._type(req, type_id)
        given = read_json(req, self.config.max_json_body)["encryption"]  # of api/openapi.yaml's form
        enc = self.store.create(vtype, given)
        view = encryption_view(enc)
        send(resp, {"encryption": {k: view[k] for k in ("volume_type_id", "encryption_id", *FIELDS)}})

    def on_get_item(self, req: falcon.Request, resp: falcon.Response, type_id: str, key: str) -> None:
        """One spec: {key: value}."""
        enc = self.store.existing(self._type(req, type_id))
        if key not in FIELDS:
            raise NotFound(f"Volume type encryption for type {type_id} has no spec {describe(key)}: "
                           f"{', '.join(FIELDS)} are")
        send(resp, {key: getattr(enc, key)})

    def on_put_item(self, req: falcon.Request, resp: falcon.Response, type_id: str, key: str) -> None:
        """Change specs of the encryption whose encryption_id is `key`."""
        vtype = self._type(req, type_id)
        given = read_json(req, self.config.max_json_body)["encryption"]  # of api/openapi.yaml's form
        self.store.update(vtype, key, given)
        send(resp, {"encryption": given})

    def on_delete_item(self, req: falcon.Request, resp: falcon.Response, type_id: str, key: str) -> None:
        """Delete the encryption whose encryption_id is `key`."""
        self.store.delete(self._type(req, type_id), key)
        resp.status = 202
