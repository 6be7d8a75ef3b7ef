"""Admin views of the one backend (api.volume.backend), as Cinder serves them: GET /os-services and PUT
/os-services/{enable,disable,disable-log-reason,freeze,thaw}, GET /os-hosts[/{host}],
GET /scheduler-stats/get_pools and GET /capabilities/{host}."""

from __future__ import annotations

from typing import Any

import falcon

from api.auth import require_admin, token_of
from api.config import ApiConfig
from api.errors import BadRequest, NotFound
from api.http import isotime, read_json, send
from api.volume import microversion
from api.volume.backend import (
    BACKEND,
    CAPABILITIES,
    POOL_HOST,
    VOLUME,
    VOLUME_HOST,
    Backend,
    ServiceState,
    host_matches,
)
from api.volume.store import VolumeStore
from provisioner.excerpt import describe

ZONE = "nova"


def service_view(state: ServiceState, version: microversion.Version) -> dict[str, Any]:
    """A service as Cinder lists it (the volume service also says whether it is frozen and replicated)."""
    body: dict[str, Any] = {"binary": state.name, "host": state.host, "zone": ZONE,
                            "status": "disabled" if state.disabled else "enabled", "state": "up",
                            "updated_at": isotime(state.updated, micro=True),
                            "disabled_reason": state.disabled_reason}
    if state.name == VOLUME:
        body.update({"frozen": state.frozen, "replication_status": "disabled", "active_backend_id": None})
        if version >= microversion.BACKEND_STATE:
            body["backend_state"] = "up"
    return body


class Services:
    """GET /volume/v3/os-services (admin; `host` and `binary` filters)."""

    def __init__(self, backend: Backend):
        self.backend = backend

    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        require_admin(token_of(req), "listing services")
        host, binary = req.get_param("host"), req.get_param("binary")
        found = [s for s in self.backend.services()
                 if (host is None or host_matches(host, s.host)) and (binary is None or s.name == binary)]
        version = microversion.version_of(req)
        send(resp, {"services": [service_view(s, version) for s in found]})


class ServiceAction:
    """PUT /volume/v3/os-services/{action} (admin): enable, disable, disable-log-reason (a host and binary);
    freeze, thaw (a cinder-volume host)."""

    def __init__(self, config: ApiConfig, backend: Backend):
        self.config = config
        self.backend = backend

    def on_put(self, req: falcon.Request, resp: falcon.Response, service_action: str) -> None:
        require_admin(token_of(req), f"os-services/{service_action}")
        body = read_json(req, self.config.max_json_body)  # of api/openapi.yaml's form
        if service_action in ("freeze", "thaw"):
            state = self.backend.volume_service(body.get("host") or "")
            self.backend.change(state, frozen=service_action == "freeze")
            resp.status = 200
            return
        if service_action not in ("enable", "disable", "disable-log-reason"):
            raise NotFound(f"Unknown action {describe(service_action)}: enable, disable, disable-log-reason, freeze "
                           "or thaw")
        state = self.backend.service(body.get("host"), body.get("binary") or body.get("service"))
        reason = body.get("disabled_reason") if service_action == "disable-log-reason" else None
        if service_action == "disable-log-reason" and not (reason or "").strip():
            raise BadRequest("disabled_reason", "is required to disable with a reason, and not blank")
        changed = self.backend.change(state, disabled=service_action != "enable", disabled_reason=reason)
        answer: dict[str, Any] = {"disabled": changed.disabled, "status": "disabled" if changed.disabled else
                                  "enabled", "host": changed.host, "service": changed.name, "binary": changed.name}
        if service_action != "disable":
            answer["disabled_reason"] = changed.disabled_reason
        send(resp, answer)


class Hosts:
    """GET /volume/v3/os-hosts (admin): the services' hosts."""

    def __init__(self, backend: Backend):
        self.backend = backend

    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        require_admin(token_of(req), "listing hosts")
        send(resp, {"hosts": [{"host_name": s.host, "service": s.name, "zone": ZONE,
                               "service-status": "available",
                               "service-state": "disabled" if s.disabled else "enabled",
                               "last-update": isotime(s.updated, micro=True)} for s in self.backend.services()]})


class HostItem:
    """GET /volume/v3/os-hosts/{host} (admin): the volumes and snapshots on an enabled cinder-volume host, in
    all and per project."""

    def __init__(self, backend: Backend, store: VolumeStore):
        self.backend = backend
        self.store = store

    def on_get(self, req: falcon.Request, resp: falcon.Response, host: str) -> None:
        require_admin(token_of(req), "showing a host")
        if not any(s.name == VOLUME and not s.disabled and host_matches(host, s.host)
                   for s in self.backend.services()):
            raise NotFound(f"Host {describe(host)} could not be found: no enabled cinder-volume service runs there")
        volumes, snapshots = self.store.volumes.list(), self.store.snapshots.list()
        projects = sorted({v.project_id for v in volumes} | {s.project_id for s in snapshots})
        rows = [self._row("(total)", volumes, snapshots)]
        rows += [self._row(p, [v for v in volumes if v.project_id == p], [s for s in snapshots if s.project_id == p])
                 for p in projects]
        send(resp, {"host": rows})

    @staticmethod
    def _row(project: str, volumes: list[Any], snapshots: list[Any]) -> dict[str, Any]:
        # Cinder shows these counts as text.
        return {"resource": {"project": project, "host": VOLUME_HOST, "volume_count": str(len(volumes)),
                             "total_volume_gb": str(sum(v.size for v in volumes)),
                             "snapshot_count": str(len(snapshots)),
                             "total_snapshot_gb": str(sum(s.size for s in snapshots))}}


class Pools:
    """GET /volume/v3/scheduler-stats/get_pools (admin; `detail=true` adds the capabilities)."""

    def __init__(self, backend: Backend, store: VolumeStore):
        self.backend = backend
        self.store = store

    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        require_admin(token_of(req), "listing pools")
        pool: dict[str, Any] = {"name": POOL_HOST}
        if req.get_param_as_bool("detail", default=False):
            allocated = sum(v.size for v in self.store.volumes.list())
            pool["capabilities"] = self.backend.capacity(allocated)
        send(resp, {"pools": [pool]})


class Capabilities:
    """GET /volume/v3/capabilities/{host} (admin): the backend's capabilities (host@backend, with or without
    #pool)."""

    def on_get(self, req: falcon.Request, resp: falcon.Response, host: str) -> None:
        require_admin(token_of(req), "showing capabilities")
        if host not in (VOLUME_HOST, POOL_HOST):
            raise NotFound(f"Host {describe(host)} could not be found: the backend is {VOLUME_HOST}")
        send(resp, {"namespace": f"OS::Storage::Capabilities::{VOLUME_HOST}", "volume_backend_name": BACKEND,
                    "pool_name": None, "display_name": None, "description": None, "visibility": None,
                    "vendor_name": CAPABILITIES["vendor_name"], "driver_version": CAPABILITIES["driver_version"],
                    "storage_protocol": CAPABILITIES["storage_protocol"], "replication_targets": [],
                    "properties": {"thin_provisioning": {
                        "type": "boolean", "title": "Thin Provisioning",
                        "description": "Volumes are qcow2 files: their space is taken as they are written."}}})
