"""Nova's server groups (os-server-groups): a policy and the servers created into the group with the
`group` scheduler hint. One hypervisor hosts every server, so affinity always holds and an anti-affinity
group takes one server: a second one is refused (Nova would fail it with "No valid host")."""

from __future__ import annotations

import time
import uuid
from dataclasses import dataclass, replace
from typing import Any

import falcon

from api.auth import token_of
from api.compute.microversion import version_of
from api.compute.models import ComputeStore
from api.config import ApiConfig
from api.db import Database, Table
from api.errors import BadRequest, NotFound
from api.http import read_json, send
from api.identity.tokens import Token
from api.microversion import Version
from api.quota.models import COMPUTE
from api.quota.store import QuotaStore
from provisioner.excerpt import cut

POLICY_FIELD = Version(2, 64)  # `policy` and `rules` replace `policies` and `metadata`


@dataclass(frozen=True)
class ServerGroup:
    """A server group of a project; `members` are server ids in the order they joined."""

    id: str
    name: str
    project_id: str
    user_id: str
    policy: str
    members: tuple[str, ...] = ()
    max_server_per_host: int | None = None
    created: float = 0.0


class ServerGroupStore:
    """Server groups in SQLite, seen by their project (every project's by an admin)."""

    def __init__(self, db: Database, servers: ComputeStore):
        self.db = db
        self.groups = Table(db, "server_groups", ServerGroup)
        self.servers = servers

    def get(self, token: Token, group_id: str) -> ServerGroup:
        """A group the token may see; NotFound otherwise."""
        found = self.groups.get(group_id)
        if found is None or (found.project_id != token.project_id and not token.is_admin):
            raise NotFound(f"Instance group {cut(group_id)} could not be found.")
        return found

    def live_members(self, group: ServerGroup) -> list[str]:
        """The members that still exist (a deleted server leaves its groups)."""
        return [m for m in group.members if self.servers.servers.get(m) is not None]

    def join(self, token: Token, group_id: str, server_id: str) -> None:
        """Add a new server to a group (inside the transaction that inserts it); BadRequest if the group's
        policy cannot take it on this one host."""
        group = self.get(token, group_id)
        members = self.live_members(group)
        limit = group.max_server_per_host or 1
        if group.policy == "anti-affinity" and len(members) >= limit:
            raise BadRequest("os:scheduler_hints.group", f"anti-affinity group {group.name or group.id} already "
                                                         f"has {len(members)} server(s) on this hypervisor")
        self.groups.update(replace(group, members=(*members, server_id)))

    def groups_of(self, server_id: str, project_id: str) -> list[str]:
        """The ids of the groups a server is in."""
        return [g.id for g in self.groups.list([project_id]) if server_id in g.members]


def group_view(group: ServerGroup, members: list[str], version: Version) -> dict[str, Any]:
    """A server group as `version` shows it."""
    body: dict[str, Any] = {"id": group.id, "name": group.name, "members": members}
    if version >= POLICY_FIELD:
        body["policy"] = group.policy
        body["rules"] = {"max_server_per_host": group.max_server_per_host} if group.max_server_per_host else {}
    else:
        body["policies"] = [group.policy]
        body["metadata"] = {}
    if version >= Version(2, 13):
        body["project_id"], body["user_id"] = group.project_id, group.user_id
    return body


def _policy(body: dict[str, Any], version: Version) -> tuple[str, int | None]:
    """The policy and max_server_per_host of a body whose structure the version's schema checked."""
    if version < POLICY_FIELD:
        return body["policies"][0], None
    most = body.get("rules", {}).get("max_server_per_host")
    if most is not None and body["policy"] != "anti-affinity":
        raise BadRequest("server_group.rules.max_server_per_host", "is for the anti-affinity policy only")
    return body["policy"], most


class ServerGroups:
    """GET and POST /compute/v2.1/os-server-groups."""

    def __init__(self, config: ApiConfig, store: ServerGroupStore, quotas: QuotaStore):
        self.config = config
        self.store = store
        self.quotas = quotas

    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        token = token_of(req)
        everyone = token.is_admin and req.get_param_as_bool("all_projects", default=False)
        groups = self.store.groups.list(None if everyone else [token.project_id])
        version = version_of(req)
        send(resp, {"server_groups": [group_view(g, self.store.live_members(g), version) for g in groups]})

    def on_post(self, req: falcon.Request, resp: falcon.Response) -> None:
        token = token_of(req)
        version = version_of(req)
        # Its structure (name, the policies or policy and rules of the version) is api/openapi.yaml's.
        body = read_json(req, self.config.max_json_body)["server_group"]
        name = body["name"]
        policy, most = _policy(body, version)
        group = ServerGroup(id=str(uuid.uuid4()), name=name, project_id=token.project_id, user_id=token.user_id,
                            policy=policy, max_server_per_host=most, created=time.time())
        with self.store.db.transaction():
            self.quotas.check(COMPUTE, token.project_id, {"server_groups": 1}, token.user_id)
            self.store.groups.insert(group)
        send(resp, {"server_group": group_view(group, [], version)})


class ServerGroupItem:
    """GET and DELETE /compute/v2.1/os-server-groups/{id}."""

    def __init__(self, store: ServerGroupStore):
        self.store = store

    def on_get(self, req: falcon.Request, resp: falcon.Response, group_id: str) -> None:
        group = self.store.get(token_of(req), group_id)
        send(resp, {"server_group": group_view(group, self.store.live_members(group), version_of(req))})

    def on_delete(self, req: falcon.Request, resp: falcon.Response, group_id: str) -> None:
        self.store.groups.delete(self.store.get(token_of(req), group_id).id)
        resp.status = 204
