"""Nova's os-simple-tenant-usage: each project's servers' hours in a period, weighted by their flavors' vCPUs,
memory and disk. Usage comes from the servers as they are now: a deleted server's record is gone with it,
so its hours are not counted (Nova keeps deleted instances' rows and counts them)."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any

import falcon

from api.auth import token_of
from api.compute.models import ComputeStore, Server
from api.compute.views import VM_STATES
from api.config import Flavor
from api.errors import BadRequest, Forbidden, NotFound
from api.http import send
from provisioner.excerpt import cut

_FORMATS = ("%Y-%m-%dT%H:%M:%S.%f", "%Y-%m-%dT%H:%M:%S", "%Y-%m-%d %H:%M:%S.%f", "%Y-%m-%d %H:%M:%S")
HOUR = 3600.0


def _moment(req: falcon.Request, name: str, default: float) -> float:
    """A start or end time as Nova reads them (its formats, naive UTC) in epoch seconds."""
    text = req.get_param(name)
    if text is None:
        return default
    for form in _FORMATS:
        try:
            return datetime.strptime(text, form).replace(tzinfo=timezone.utc).timestamp()
        except ValueError:
            continue
    raise BadRequest(name, f"{cut(text)} is not a time such as 2024-01-31T12:00:00")


def _iso(moment: float) -> str:
    return datetime.fromtimestamp(moment, timezone.utc).replace(tzinfo=None).isoformat()


@dataclass(frozen=True)
class Period:
    """The period asked about, in epoch seconds."""

    start: float
    end: float

    @classmethod
    def of(cls, req: falcon.Request) -> Period:
        """The request's start and end (now for either not given); a start after the end is a 400."""
        now = time.time()
        period = cls(_moment(req, "start", now), _moment(req, "end", now))
        if period.start > period.end:
            raise BadRequest("start", "Invalid start time. The start time cannot occur after the end time.")
        return period


class TenantUsage:
    """GET /os-simple-tenant-usage (an admin's, every project) and /os-simple-tenant-usage/{project_id}."""

    def __init__(self, store: ComputeStore, flavors: Callable[[], tuple[Flavor, ...]],
                 project_exists: Callable[[str], bool]):
        self.store = store
        self.flavors = flavors
        self.project_exists = project_exists

    def _server_usage(self, server: Server, flavor: Flavor | None, period: Period) -> dict[str, Any] | None:
        """One server's usage, None if it did not exist in the period."""
        now = time.time()
        begin, end = max(server.created, period.start), min(now, period.end)
        if end < begin:
            return None
        return {"instance_id": server.id, "name": server.name, "tenant_id": server.project_id,
                "hours": (end - begin) / HOUR, "memory_mb": flavor.ram if flavor else 0,
                "local_gb": (flavor.disk + flavor.ephemeral) if flavor else 0, "vcpus": flavor.vcpus if flavor else 0,
                "flavor": flavor.name if flavor else server.flavor_id, "started_at": _iso(server.created),
                "ended_at": None, "state": VM_STATES.get(server.status, "error"), "uptime": int(now - server.created)}

    def _usages(self, projects: list[str] | None, period: Period, detailed: bool) -> list[dict[str, Any]]:
        by_id = {f.id: f for f in self.flavors()}
        per_project: dict[str, list[dict[str, Any]]] = {p: [] for p in projects or []}
        for server in self.store.listed(projects):
            usage = self._server_usage(server, by_id.get(server.flavor_id), period)
            if usage is not None:
                per_project.setdefault(server.project_id, []).append(usage)
        usages = []
        for project, servers in per_project.items():
            if not servers and projects is None:
                continue
            body: dict[str, Any] = {
                "tenant_id": project, "start": _iso(period.start), "stop": _iso(period.end),
                "total_hours": sum(s["hours"] for s in servers),
                "total_vcpus_usage": sum(s["hours"] * s["vcpus"] for s in servers),
                "total_memory_mb_usage": sum(s["hours"] * s["memory_mb"] for s in servers),
                "total_local_gb_usage": sum(s["hours"] * s["local_gb"] for s in servers)}
            if detailed:
                body["server_usages"] = servers
            usages.append(body)
        return usages

    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        if req.env.get("PATH_INFO", "").endswith("/"):  # falcon strips the slash; for Nova it is an empty id
            raise NotFound("a project id is required after os-simple-tenant-usage/")
        if not token_of(req).is_admin:
            raise Forbidden("Policy doesn't allow os_compute_api:os-simple-tenant-usage:list to be performed.")
        detailed = req.get_param_as_bool("detailed", default=False)
        send(resp, {"tenant_usages": self._usages(None, Period.of(req), detailed)})

    def on_get_item(self, req: falcon.Request, resp: falcon.Response, project_id: str) -> None:
        token = token_of(req)
        if project_id != token.project_id and not token.is_admin:
            raise Forbidden("Policy doesn't allow os_compute_api:os-simple-tenant-usage:show to be performed.")
        if not self.project_exists(project_id):  # an admin asking for a project Keystone does not have
            raise NotFound(f"Project {cut(project_id)} could not be found.")
        (usage,) = self._usages([project_id], Period.of(req), detailed=True)
        if not usage["server_usages"]:
            usage = {}  # Nova answers an empty object for a project without usage in the period
        send(resp, {"tenant_usage": usage})
