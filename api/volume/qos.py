"""Cinder's QoS specs (admin): named sets of key/value limits for a consumer (front-end, back-end or both), each
associated with volume types.

They are records, kept and shown as Cinder does for a backend that applies no
QoS (the backend reports QoS_support false, api/volume/backend.py): a
front-end spec would be the hypervisor's to apply, and the engine's guests
take no I/O limits yet.
"""

from __future__ import annotations

import threading
import uuid
from dataclasses import dataclass, field, replace
from typing import Any

import falcon

from api.auth import require_admin, token_of
from api.config import ApiConfig
from api.db import Database, Table
from api.errors import BadRequest, Conflict, NotFound
from api.http import read_json, send
from api.volume.types import TypeStore
from provisioner.excerpt import describe

CONSUMERS = ("front-end", "back-end", "both")


@dataclass(frozen=True)
class QosSpec:
    """A QoS spec and the volume types it is associated with (a type has at most one)."""

    id: str
    name: str
    consumer: str = "back-end"
    specs: dict[str, str] = field(default_factory=dict)
    types: tuple[str, ...] = ()
    project_id: str = ""  # the Table's scope column: specs belong to no project


def qos_view(spec: QosSpec) -> dict[str, Any]:
    """A QoS spec as Cinder shows it."""
    return {"id": spec.id, "name": spec.name, "consumer": spec.consumer, "specs": spec.specs}


def _links(req: falcon.Request, spec: QosSpec) -> list[dict[str, str]]:
    return [{"rel": "self", "href": f"{req.prefix}/volume/v3/qos-specs/{spec.id}"},
            {"rel": "bookmark", "href": f"{req.prefix}/volume/qos-specs/{spec.id}"}]


class QosStore:
    """The QoS specs, in table api_volume_qos_specs."""

    def __init__(self, db: Database):
        self.specs = Table(db, "volume_qos_specs", QosSpec)
        self._lock = threading.Lock()

    def get(self, qos_id: str) -> QosSpec:
        """One spec; NotFound if there is none."""
        found = self.specs.get(qos_id)
        if found is None:
            raise NotFound(f"QoS Specs {describe(qos_id)} could not be found.")
        return found

    def add(self, spec: QosSpec) -> QosSpec:
        """Record a new spec; Conflict if its name is taken."""
        with self._lock:
            if self.specs.list(name=spec.name):
                raise Conflict(f"QoS Specs {describe(spec.name)} already exists.")
            return self.specs.insert(spec)

    def change(self, qos_id: str, **changes: Any) -> QosSpec:
        """Update a stored spec (NotFound if it went meanwhile)."""
        with self._lock:
            return self.specs.update(replace(self.get(qos_id), **changes))

    def of_type(self, type_id: str) -> QosSpec | None:
        """The spec a volume type is associated with, if any."""
        return next((s for s in self.specs.list() if type_id in s.types), None)


class QosSpecs:
    """GET /volume/v3/qos-specs, POST (name, consumer, and the other members are the specs)."""

    def __init__(self, config: ApiConfig, store: QosStore):
        self.config = config
        self.store = store

    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        require_admin(token_of(req), "listing QoS specs")
        send(resp, {"qos_specs": [qos_view(s) for s in self.store.specs.list()]})

    def on_post(self, req: falcon.Request, resp: falcon.Response) -> None:
        require_admin(token_of(req), "creating QoS specs")
        body = dict(read_json(req, self.config.max_json_body)["qos_specs"])  # of api/openapi.yaml's form
        name = body.pop("name").strip()
        if not name:
            raise BadRequest("qos_specs.name", "must not be blank")
        consumer = body.pop("consumer", None) or "back-end"
        spec = self.store.add(QosSpec(id=str(uuid.uuid4()), name=name, consumer=consumer,
                                      specs={k: str(v) for k, v in body.items()}))
        send(resp, {"qos_specs": qos_view(spec), "links": _links(req, spec)})


class QosItem:
    """GET, PUT (set keys) and DELETE (202; `force` to drop its associations) /volume/v3/qos-specs/{id}."""

    def __init__(self, config: ApiConfig, store: QosStore):
        self.config = config
        self.store = store

    def on_get(self, req: falcon.Request, resp: falcon.Response, qos_id: str) -> None:
        require_admin(token_of(req), "showing QoS specs")
        spec = self.store.get(qos_id)
        send(resp, {"qos_specs": qos_view(spec), "links": _links(req, spec)})

    def on_put(self, req: falcon.Request, resp: falcon.Response, qos_id: str) -> None:
        require_admin(token_of(req), "setting QoS specs")
        given = {k: str(v) for k, v in read_json(req, self.config.max_json_body)["qos_specs"].items()}
        spec = self.store.get(qos_id)
        if "consumer" in given and given["consumer"] not in CONSUMERS:
            raise BadRequest("qos_specs.consumer", f"{describe(given['consumer'])} is not one of "
                                                   f"{', '.join(CONSUMERS)}")
        consumer = given.pop("consumer", spec.consumer)
        self.store.change(spec.id, consumer=consumer, specs={**spec.specs, **given})
        send(resp, {"qos_specs": given if consumer == spec.consumer else {**given, "consumer": consumer}})

    def on_delete(self, req: falcon.Request, resp: falcon.Response, qos_id: str) -> None:
        require_admin(token_of(req), "deleting QoS specs")
        spec = self.store.get(qos_id)
        if spec.types and not req.get_param_as_bool("force", default=False):
            raise BadRequest("qos_specs", f"QoS Specs {spec.id} is still associated with volume types: "
                                          "disassociate them first, or delete with force=True")
        self.store.specs.delete(spec.id)
        resp.status = 202


class QosKeys:
    """PUT /volume/v3/qos-specs/{id}/delete_keys: remove keys (202; 404 for a key it does not have)."""

    def __init__(self, config: ApiConfig, store: QosStore):
        self.config = config
        self.store = store

    def on_put(self, req: falcon.Request, resp: falcon.Response, qos_id: str) -> None:
        require_admin(token_of(req), "unsetting QoS specs")
        keys = read_json(req, self.config.max_json_body)["keys"]
        spec = self.store.get(qos_id)
        missing = [k for k in keys if k not in spec.specs]
        if missing:
            raise NotFound(f"QoS spec {spec.id} has no key {describe(missing[0])}.")
        self.store.change(spec.id, specs={k: v for k, v in spec.specs.items() if k not in keys})
        resp.status = 202


class QosAssociations:
    """GET /volume/v3/qos-specs/{id}/{associations,associate,disassociate,disassociate_all}: Cinder's
    association calls (associate and disassociate take `vol_type_id`; all but associations answer 202)."""

    def __init__(self, store: QosStore, types: TypeStore):
        self.store = store
        self.types = types

    def on_get(self, req: falcon.Request, resp: falcon.Response, qos_id: str, call: str) -> None:
        token = token_of(req)
        require_admin(token, f"QoS specs {call}")
        spec = self.store.get(qos_id)
        if call == "associations":
            found = []
            for type_id in spec.types:
                try:
                    found.append(self.types.get(token, type_id))
                except NotFound:
                    continue  # deleted since: no longer associated
            send(resp, {"qos_associations": [{"association_type": "volume_type", "id": t.id, "name": t.name}
                                             for t in found]})
            return
        if call == "disassociate_all":
            self.store.change(spec.id, types=())
        elif call in ("associate", "disassociate"):
            type_id = req.get_param("vol_type_id")
            if not type_id:
                raise BadRequest("vol_type_id", "is required")
            vtype = self.types.get(token, type_id)
            if call == "associate":
                other = self.store.of_type(vtype.id)
                if other is not None and other.id != spec.id:
                    raise BadRequest("vol_type_id", f"volume type {vtype.id} is already associated with QoS "
                                                    f"specs {other.id}")
                if vtype.id not in spec.types:
                    self.store.change(spec.id, types=(*spec.types, vtype.id))
            else:
                self.store.change(spec.id, types=tuple(t for t in spec.types if t != vtype.id))
        else:
            raise NotFound(f"Unknown QoS specs call {describe(call)}: associations, associate, disassociate or "
                           "disassociate_all")
        resp.status = 202
