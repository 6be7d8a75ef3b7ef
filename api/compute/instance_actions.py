"""Nova's os-instance-actions: what was asked of a server, by whom and when (request id, action, start time).

A falcon middleware records an action for each accepted (2xx) request that
Nova records one for: a create (the first server of a multi-create, whose id
the answer carries), a server action (Nova's action names: stop,
start, reboot, pause, unpause, resize, confirmResize, revertResize,
rebuild, lock, unlock, createImage, createBackup), a volume attach or
detach, and the delete. The request id is the one the answer's x-openstack-request-id
carries (api/request_id.py). A deleted server's actions stay readable from 2.21 (a 404 before, as Nova's),
by its project and admins, for RETAINED after the delete (Nova keeps them until its deleted rows are archived).
Recorded when the request is accepted: whether the work then succeeded is the
server's status and fault (there are no per-step events here).
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from typing import Any

import falcon

from api.auth import token_of
from api.compute.microversion import version_of
from api.compute.models import ComputeStore
from api.compute.tasks import ServerTasks
from api.db import Table
from api.errors import NotFound
from api.http import isotime, read_json_value, send
from api.microversion import Version
from provisioner.excerpt import cut

SERVERS = "/compute/v2.1/servers"
# The server action names Nova records, by their request body key.
ACTIONS = {"os-stop": "stop", "os-start": "start", "reboot": "reboot", "pause": "pause", "unpause": "unpause",
           "resize": "resize", "confirmResize": "confirmResize", "revertResize": "revertResize",
           "rebuild": "rebuild", "lock": "lock", "unlock": "unlock", "createImage": "createImage",
           "createBackup": "createBackup"}
DELETED_SERVERS = Version(2, 21)  # from which Nova shows a deleted server's actions
RETAINED = 7 * 86400.0  # seconds a deleted server's actions are kept


@dataclass(frozen=True)
class InstanceAction:
    """One recorded action; `id` is `<server id>/<request id>` (one request may act on several servers)."""

    id: str
    project_id: str
    user_id: str
    instance_uuid: str
    request_id: str
    action: str
    start_time: float


def action_view(action: InstanceAction, version: Version) -> dict[str, Any]:
    """Nova's instanceAction body; `updated_at` from 2.58 (the start: nothing updates one here)."""
    body: dict[str, Any] = {"action": action.action, "instance_uuid": action.instance_uuid,
                            "request_id": action.request_id, "user_id": action.user_id,
                            "project_id": action.project_id, "start_time": isotime(action.start_time),
                            "message": None}
    if version >= Version(2, 58):
        body["updated_at"] = isotime(action.start_time)
    return body


class InstanceActionLog:
    """The recorded actions (api_instance_actions), dropped RETAINED after their server's delete."""

    def __init__(self, store: ComputeStore, tasks: ServerTasks, max_json_body: int):
        self.store = store
        self.max_json_body = max_json_body
        self.actions = Table(store.db, "instance_actions", InstanceAction)
        tasks.on_destroyed.append(self.forget_old)

    def of(self, server_id: str) -> list[InstanceAction]:
        """A server's actions, newest first (as Nova lists them)."""
        found = [a for a in self.actions.list() if a.instance_uuid == server_id]
        return sorted(found, key=lambda a: a.start_time, reverse=True)

    def forget_old(self, destroyed: str) -> None:
        """When a server's domain is destroyed: drop the actions of servers deleted more than RETAINED ago."""
        cutoff = time.time() - RETAINED
        recorded = self.actions.list()
        old = {a.instance_uuid for a in recorded if a.action == "delete" and a.start_time < cutoff
               and self.store.servers.get(a.instance_uuid) is None}
        for action in recorded:
            if action.instance_uuid in old:
                self.actions.delete(action.id)

    def _action(self, req: falcon.Request, resp: falcon.Response, params: dict[str, str]) -> tuple[str, str] | None:
        """(server id, action name) that an accepted request records, or None."""
        template, method = req.uri_template, req.method
        if template == SERVERS and method == "POST" and resp.status_code == 202:
            server = json.loads(resp.text or "{}").get("server")  # the answer of this process's responder
            return (server["id"], "create") if isinstance(server, dict) and "id" in server else None
        server_id = params.get("server_id")
        if server_id is None:
            return None
        if template == SERVERS + "/{server_id}/action" and method == "POST":
            body = read_json_value(req, self.max_json_body)  # already read (and cached) by the responder
            name = next(iter(body), None) if isinstance(body, dict) and len(body) == 1 else None
            return (server_id, ACTIONS[name]) if name in ACTIONS else None
        if template == SERVERS + "/{server_id}" and method == "DELETE":
            return server_id, "delete"
        if template == SERVERS + "/{server_id}/os-volume_attachments" and method == "POST":
            return server_id, "attach_volume"
        if template == SERVERS + "/{server_id}/os-volume_attachments/{volume_id}" and method == "DELETE":
            return server_id, "detach_volume"
        return None

    def process_resource(self, req: falcon.Request, resp: falcon.Response, resource: Any,
                         params: dict[str, str]) -> None:
        """falcon hook after routing: keep the route's fields (server_id, …) for process_response."""
        req.context.route_params = dict(params)

    def process_response(self, req: falcon.Request, resp: falcon.Response, resource: Any,
                         req_succeeded: bool) -> None:
        """falcon hook: record the action of an accepted request."""
        if not req_succeeded or not 200 <= resp.status_code < 300 or not req.path.startswith(SERVERS):
            return
        found = self._action(req, resp, getattr(req.context, "route_params", {}))
        if found is None:
            return
        server_id, name = found
        token = token_of(req)
        request_id = getattr(req.context, "request_id", None) or resp.get_header("x-openstack-request-id") or ""
        self.actions.insert(InstanceAction(f"{server_id}/{request_id}", token.project_id, token.user_id,
                                           server_id, request_id, name, time.time()))


class InstanceActions:
    """GET /compute/v2.1/servers/{id}/os-instance-actions[/{request_id}]."""

    def __init__(self, store: ComputeStore, log: InstanceActionLog):
        self.store = store
        self.log = log

    def _actions(self, req: falcon.Request, server_id: str) -> list[InstanceAction]:
        """The server's actions, if the token may see the server; from 2.21 a deleted server's too (its
        project is its create's)."""
        token = token_of(req)
        try:
            return self.log.of(self.store.server(token, server_id).id)
        except NotFound:
            if version_of(req) < DELETED_SERVERS:
                raise
            actions = self.log.of(server_id)
            owner = next((a.project_id for a in actions if a.action == "create"), None)
            if owner is None or (owner != token.project_id and not token.is_admin):
                raise
            return actions

    def on_get(self, req: falcon.Request, resp: falcon.Response, server_id: str) -> None:
        send(resp, {"instanceActions": [action_view(a, version_of(req)) for a in self._actions(req, server_id)]})

    def on_get_item(self, req: falcon.Request, resp: falcon.Response, server_id: str, request_id: str) -> None:
        action = next((a for a in self._actions(req, server_id) if a.request_id == request_id), None)
        if action is None:
            raise NotFound(f"Action for request_id {cut(request_id)} on instance {cut(server_id)} not found")
        send(resp, {"instanceAction": {**action_view(action, version_of(req)), "events": []}})
