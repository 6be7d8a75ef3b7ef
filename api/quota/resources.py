"""Quota and limits requests of Nova, Cinder and Neutron: a member reads its own project's, an admin any
project's and sets or resets them."""

from __future__ import annotations

from typing import Any, Callable, Mapping

import falcon

from api.auth import token_of
from api.config import ApiConfig
from api.errors import BadRequest, Forbidden
from api.http import read_json, send
from api.identity.tokens import Token
from api.quota import views
from api.quota.models import COMPUTE, MAX_LIMIT, NETWORK, VOLUME, limit_value
from api.quota.store import QuotaStore

ProjectExists = Callable[[str], bool]


def cut(text: str, limit: int = 40) -> str:
    """A user-supplied string quoted for a message, cut to `limit` characters."""
    return repr(text[:limit]) + ("…" if len(text) > limit else "")


def _asked_project(req: falcon.Request, param: str, token: Token) -> str:
    """The project a limits request names in `param`, else the token's. openstacksdk sends the literal
    text "None" when the user named no project (`openstack limits show`): that is the token's project too."""
    asked = req.get_param(param)
    return token.project_id if asked in (None, "None") else asked


def _may_read(token: Token, project_id: str, rule: str) -> None:
    if project_id != token.project_id and not token.is_admin:
        raise Forbidden(f"Policy doesn't allow {rule} to be performed.")


def _must_admin(token: Token, rule: str) -> None:
    if not token.is_admin:
        raise Forbidden(f"Policy doesn't allow {rule} to be performed.")


def _known(exists: ProjectExists, project_id: str) -> None:
    if not exists(project_id):
        raise BadRequest("", f"Project ID {cut(project_id)} is not a valid project.")


def parse_limits(body: dict[str, Any], known: Mapping[str, int], where: str,
                 ignored: tuple[str, ...] = ()) -> dict[str, int]:
    """The new limits in an update body: known resource names only, each an integer from -1 to MAX_LIMIT."""
    values = {}
    for key, value in body.items():
        if key in ignored:
            continue
        if key not in known:
            raise BadRequest(where, f"{cut(key)} is not a quota of this service; use {', '.join(known)}")
        limit = limit_value(value)
        if limit is None:
            raise BadRequest(f"{where}.{key}", f"not an integer from -1 (unlimited) to {MAX_LIMIT}")
        values[key] = limit
    return values


def _force(body: dict[str, Any], where: str) -> bool:
    force = body.get("force", False)
    if not isinstance(force, bool):
        raise BadRequest(f"{where}.force", "must be true or false")
    return force


class NovaLimits:
    """GET /compute/v2.1/limits[?tenant_id=]: absolute limits and usage (no rate limits)."""

    def __init__(self, quotas: QuotaStore):
        self.quotas = quotas

    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        token = token_of(req)
        project = _asked_project(req, "tenant_id", token)
        _may_read(token, project, "os_compute_api:limits:other_project")
        send(resp, views.nova_limits(self.quotas.limits(COMPUTE, project), self.quotas.usage(COMPUTE, project)))


class NovaQuotaSets:
    """/compute/v2.1/os-quota-sets/{project_id}[/detail|/defaults]: GET, and PUT / DELETE for an admin."""

    def __init__(self, config: ApiConfig, quotas: QuotaStore, exists: ProjectExists):
        self.config = config
        self.quotas = quotas
        self.exists = exists

    def _readable(self, req: falcon.Request, project_id: str, rule: str) -> Token:
        token = token_of(req)
        _may_read(token, project_id, f"os_compute_api:os-quota-sets:{rule}")
        _known(self.exists, project_id)
        return token

    def on_get(self, req: falcon.Request, resp: falcon.Response, project_id: str) -> None:
        self._readable(req, project_id, "show")
        send(resp, views.quota_set(project_id, self.quotas.limits(COMPUTE, project_id)))

    def on_get_detail(self, req: falcon.Request, resp: falcon.Response, project_id: str) -> None:
        token = self._readable(req, project_id, "detail")
        user = token.user_id if project_id == token.project_id else None  # key pairs are counted per user
        send(resp, views.quota_set(project_id, self.quotas.limits(COMPUTE, project_id),
                                   self.quotas.usage(COMPUTE, project_id, user)))

    def on_get_defaults(self, req: falcon.Request, resp: falcon.Response, project_id: str) -> None:
        _known(self.exists, project_id)  # Nova's defaults policy lets anyone read them
        send(resp, views.quota_set(project_id, self.quotas.defaults.of(COMPUTE)))

    def on_put(self, req: falcon.Request, resp: falcon.Response, project_id: str) -> None:
        _must_admin(token_of(req), "os_compute_api:os-quota-sets:update")
        _known(self.exists, project_id)
        if req.get_param("user_id"):
            raise BadRequest("user_id", "per-user quotas are not supported: set the project's")
        body = read_json(req, self.config.max_json_body, "quota_set")
        values = parse_limits(body, self.quotas.defaults.of(COMPUTE), "quota_set", ("force",))
        if not _force(body, "quota_set"):
            low = self.quotas.below_usage(COMPUTE, project_id, values)
            if low:
                raise BadRequest("", f"Quota limit {low[1]} for {low[0]} must be greater than or equal to "
                                     f"already used and reserved {low[2]}.")
        self.quotas.set_limits(COMPUTE, project_id, values)
        send(resp, views.quota_set(None, self.quotas.limits(COMPUTE, project_id)))

    def on_delete(self, req: falcon.Request, resp: falcon.Response, project_id: str) -> None:
        _must_admin(token_of(req), "os_compute_api:os-quota-sets:delete")
        _known(self.exists, project_id)
        if req.get_param("user_id"):
            raise BadRequest("user_id", "per-user quotas are not supported: reset the project's")
        self.quotas.reset(COMPUTE, project_id)
        resp.status = 202


class CinderLimits:
    """GET /volume/v3/limits (an admin may ask for another project with ?project_id=, as in Cinder)."""

    def __init__(self, quotas: QuotaStore):
        self.quotas = quotas

    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        token = token_of(req)
        project = _asked_project(req, "project_id", token) if token.is_admin else token.project_id
        send(resp, views.cinder_limits(self.quotas.limits(VOLUME, project), self.quotas.usage(VOLUME, project)))


class CinderQuotaSets:
    """/volume/v3/os-quota-sets/{project_id}[?usage=true] and …/defaults: GET, and PUT / DELETE for an admin."""

    def __init__(self, config: ApiConfig, quotas: QuotaStore, exists: ProjectExists):
        self.config = config
        self.quotas = quotas
        self.exists = exists

    def on_get(self, req: falcon.Request, resp: falcon.Response, project_id: str) -> None:
        _may_read(token_of(req), project_id, "volume_extension:quotas:show")
        _known(self.exists, project_id)
        usage = self.quotas.usage(VOLUME, project_id) if req.get_param_as_bool("usage", default=False) else None
        send(resp, views.quota_set(project_id, self.quotas.limits(VOLUME, project_id), usage, cinder=True))

    def on_get_defaults(self, req: falcon.Request, resp: falcon.Response, project_id: str) -> None:
        _known(self.exists, project_id)
        send(resp, views.quota_set(project_id, self.quotas.defaults.of(VOLUME)))

    def on_put(self, req: falcon.Request, resp: falcon.Response, project_id: str) -> None:
        _must_admin(token_of(req), "volume_extension:quotas:update")
        _known(self.exists, project_id)
        body = read_json(req, self.config.max_json_body, "quota_set")
        values = parse_limits(body, self.quotas.defaults.of(VOLUME), "quota_set", ("id", "tenant_id"))
        if not values:
            raise BadRequest("quota_set", "name at least one quota to set")
        low = self.quotas.below_usage(VOLUME, project_id, values, exempt=("per_volume_gigabytes",))
        if low:
            raise BadRequest("", f"Quota {low[0]} limit must be equal or greater than existing resources. "
                                 f"Current usage is {low[2]} and the requested limit is {low[1]}.")
        self.quotas.set_limits(VOLUME, project_id, values)
        send(resp, views.quota_set(None, self.quotas.limits(VOLUME, project_id)))

    def on_delete(self, req: falcon.Request, resp: falcon.Response, project_id: str) -> None:
        _must_admin(token_of(req), "volume_extension:quotas:delete")
        _known(self.exists, project_id)
        self.quotas.reset(VOLUME, project_id)
        resp.status = 200


class NeutronQuotas:
    """/network/v2.0/quotas[/{project_id}[/default|/details]]."""

    def __init__(self, config: ApiConfig, quotas: QuotaStore, exists: ProjectExists):
        self.config = config
        self.quotas = quotas
        self.exists = exists

    def _readable(self, req: falcon.Request, project_id: str) -> None:
        _may_read(token_of(req), project_id, "get_quota")
        _known(self.exists, project_id)

    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        _must_admin(token_of(req), "get_quota")
        send(resp, views.neutron_quota_list({p: self.quotas.limits(NETWORK, p)
                                             for p in self.quotas.overridden(NETWORK)}))

    def on_get_item(self, req: falcon.Request, resp: falcon.Response, project_id: str) -> None:
        self._readable(req, project_id)
        send(resp, views.neutron_quota(self.quotas.limits(NETWORK, project_id)))

    def on_get_default(self, req: falcon.Request, resp: falcon.Response, project_id: str) -> None:
        self._readable(req, project_id)
        send(resp, views.neutron_quota(self.quotas.defaults.of(NETWORK)))

    def on_get_details(self, req: falcon.Request, resp: falcon.Response, project_id: str) -> None:
        self._readable(req, project_id)
        send(resp, views.neutron_quota(self.quotas.limits(NETWORK, project_id),
                                       self.quotas.usage(NETWORK, project_id)))

    def on_put_item(self, req: falcon.Request, resp: falcon.Response, project_id: str) -> None:
        _must_admin(token_of(req), "update_quota")
        _known(self.exists, project_id)
        body = read_json(req, self.config.max_json_body, "quota")
        values = parse_limits(body, self.quotas.defaults.of(NETWORK), "quota", ("force", "check_limit"))
        if not _force(body, "quota"):
            low = self.quotas.below_usage(NETWORK, project_id, values)
            if low:
                raise BadRequest("", f"Quota limit {low[1]} for {low[0]} must be greater than or equal to "
                                     f"already used {low[2]}")
        self.quotas.set_limits(NETWORK, project_id, values)
        send(resp, views.neutron_quota(self.quotas.limits(NETWORK, project_id)))

    def on_delete_item(self, req: falcon.Request, resp: falcon.Response, project_id: str) -> None:
        _must_admin(token_of(req), "delete_quota")
        _known(self.exists, project_id)
        self.quotas.reset(NETWORK, project_id)
        resp.status = 204
