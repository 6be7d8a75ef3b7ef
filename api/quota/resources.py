"""Quota and limits requests of Nova, Cinder and Neutron: a member reads its own project's, an admin any
project's and sets or resets them."""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import partial
from typing import Any, Callable, ClassVar, Mapping

import falcon

from api.auth import token_of
from api.compute.microversion import version_of
from api.config import ApiConfig
from api.errors import BadRequest, Forbidden
from api.http import read_json, send
from api.identity.tokens import Token
from api.quota import views
from api.quota.microversions import shown
from api.quota.models import COMPUTE, MAX_LIMIT, NETWORK, UNLIMITED, VOLUME, limit_value
from api.quota.store import QuotaStore
from provisioner.excerpt import cut

ProjectExists = Callable[[str], bool]
_CLASS_NAME = re.compile(r"[A-Za-z0-9_-][A-Za-z0-9_.-]*")


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


def _class_name(name: str) -> str:
    """A quota class name: 1 to 255 characters, as Nova and Cinder check it, and a name, not a path (letters,
    digits, `_ - .`, not starting with a dot: `..` and `%00` in a URL are refused rather than stored)."""
    if not 1 <= len(name) <= 255:
        raise BadRequest("quota_class_name", "must be 1 to 255 characters")
    if not _CLASS_NAME.fullmatch(name):
        raise BadRequest("quota_class_name", f"{cut(name)!r} is not a class name (letters, digits, _ - ., not "
                                             "starting with a dot)")
    return name


def parse_limits(body: dict[str, Any], where: str, ignored: tuple[str, ...] = ()) -> dict[str, int]:
    """The new limits in an update body whose form api/openapi.yaml checked (known resources, integers or
    strings of digits): as integers, a string's value from -1 to MAX_LIMIT too."""
    values = {}
    for key, value in body.items():
        if key in ignored:
            continue
        limit = limit_value(value)
        if limit is None:
            raise BadRequest(f"{where}.{key}", f"not an integer from -1 (unlimited) to {MAX_LIMIT}")
        values[key] = limit
    return values


@dataclass(frozen=True)
class QuotaUpdates:
    """How one service's quota update (PUT) and reset (DELETE) differ from the others'; QuotaHandler has the
    flow. Each answers in its own service's words, as Tempest and the stock clients expect."""

    kind: str  # COMPUTE, VOLUME or NETWORK
    update_rule: str  # the policy rules named when a non-admin tries
    delete_rule: str
    body_key: str  # the update body's one key
    ignored: tuple[str, ...]  # keys of that body that are not quotas
    below_usage: str  # the refusal of a limit below usage, with {resource}, {limit} and {used}
    view: Callable[[Mapping[str, int]], dict[str, Any]]  # the body answering an update: the new limits
    reset_status: int
    forceable: bool = False  # `force: true` skips the usage check
    exempt: tuple[str, ...] = ()  # resources whose limit may be set below their usage
    needs_values: bool = False  # an update must name at least one quota
    per_user: bool = False  # ?user_id= names one user of the project (Nova's per-user quotas)


NOVA_UPDATES = QuotaUpdates(
    kind=COMPUTE, update_rule="os_compute_api:os-quota-sets:update",
    delete_rule="os_compute_api:os-quota-sets:delete", body_key="quota_set", ignored=("force",),
    below_usage="Quota limit {limit} for {resource} must be greater than or equal to already used and reserved "
                "{used}.",
    view=partial(views.quota_set, None), reset_status=202, forceable=True, per_user=True)
CINDER_UPDATES = QuotaUpdates(
    kind=VOLUME, update_rule="volume_extension:quotas:update", delete_rule="volume_extension:quotas:delete",
    body_key="quota_set", ignored=("id", "tenant_id"),
    below_usage="Quota {resource} limit must be equal or greater than existing resources. "
                "Current usage is {used} and the requested limit is {limit}.",
    view=partial(views.quota_set, None), reset_status=200, exempt=("per_volume_gigabytes",), needs_values=True)
NEUTRON_UPDATES = QuotaUpdates(
    kind=NETWORK, update_rule="update_quota", delete_rule="delete_quota", body_key="quota",
    ignored=("force", "check_limit"),
    below_usage="Quota limit {limit} for {resource} must be greater than or equal to already used {used}",
    view=views.neutron_quota, reset_status=204, forceable=True)


class QuotaHandler:
    """What each service's quota-set resource shares: its stores, the read check, and the update and reset
    flow that its `updates` parameterise."""

    updates: ClassVar[QuotaUpdates]

    def __init__(self, config: ApiConfig, quotas: QuotaStore, exists: ProjectExists):
        self.config = config
        self.quotas = quotas
        self.exists = exists

    def _readable(self, req: falcon.Request, project_id: str, rule: str) -> Token:
        token = token_of(req)
        _may_read(token, project_id, rule)
        _known(self.exists, project_id)
        return token

    def _admit_change(self, req: falcon.Request, project_id: str, rule: str) -> str | None:
        """Refuses a change of a project's limits unless an admin asks, for a known project; the user it is
        for, when the service has per-user quotas and the request names one."""
        _must_admin(token_of(req), rule)
        _known(self.exists, project_id)
        return req.get_param("user_id") if self.updates.per_user else None

    def _shown(self, req: falcon.Request, limits: Mapping[str, int]) -> Mapping[str, int]:
        """The limits a response shows (Nova's microversions drop some)."""
        return limits

    def update(self, req: falcon.Request, resp: falcon.Response, project_id: str) -> None:
        """An admin sets some of a project's limits (or of one of its users); answers with all of them."""
        updates = self.updates
        user_id = self._admit_change(req, project_id, updates.update_rule)
        body = read_json(req, self.config.max_json_body)[updates.body_key]
        values = parse_limits(body, updates.body_key, updates.ignored)
        if updates.needs_values and not values:
            raise BadRequest(updates.body_key, "name at least one quota to set")
        if user_id:
            self._within_project(project_id, values)
            self.quotas.set_user_limits(updates.kind, project_id, user_id, values)
        else:
            if not (updates.forceable and body.get("force", False)):
                low = self.quotas.below_usage(updates.kind, project_id, values, exempt=updates.exempt)
                if low:
                    raise BadRequest("", updates.below_usage.format(resource=low[0], limit=low[1], used=low[2]))
            self.quotas.set_limits(updates.kind, project_id, values)
        send(resp, updates.view(self._shown(req, self.quotas.limits(updates.kind, project_id, user_id))))

    def _within_project(self, project_id: str, values: Mapping[str, int]) -> None:
        """Nova's bound of a user's limits: none above the project's (nor unlimited in a limited project)."""
        project = self.quotas.limits(self.updates.kind, project_id)
        for resource, limit in values.items():
            maximum = project[resource]
            if maximum != UNLIMITED and (limit == UNLIMITED or limit > maximum):
                raise BadRequest("", f"Quota limit {limit} for {resource} must be less than or equal to {maximum}.")

    def reset(self, req: falcon.Request, resp: falcon.Response, project_id: str) -> None:
        """An admin puts a project (or one of its users) back on the defaults (the project's limits)."""
        updates = self.updates
        user_id = self._admit_change(req, project_id, updates.delete_rule)
        self.quotas.reset(updates.kind, project_id, user_id)
        resp.status = updates.reset_status


class NovaLimits:
    """GET /compute/v2.1/limits[?tenant_id=]: absolute limits and usage (no rate limits)."""

    def __init__(self, quotas: QuotaStore):
        self.quotas = quotas

    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        token = token_of(req)
        project = _asked_project(req, "tenant_id", token)
        _may_read(token, project, "os_compute_api:limits:other_project")
        send(resp, views.nova_limits(self.quotas.limits(COMPUTE, project), self.quotas.usage(COMPUTE, project)))


class NovaQuotaSets(QuotaHandler):
    """/compute/v2.1/os-quota-sets/{project_id}[/detail|/defaults]: GET, and PUT / DELETE for an admin."""

    updates = NOVA_UPDATES
    on_put = QuotaHandler.update
    on_delete = QuotaHandler.reset

    def _shown(self, req: falcon.Request, limits: Mapping[str, int]) -> Mapping[str, int]:
        return shown(limits, version_of(req))

    def on_get(self, req: falcon.Request, resp: falcon.Response, project_id: str) -> None:
        self._readable(req, project_id, "os_compute_api:os-quota-sets:show")
        limits = self.quotas.limits(COMPUTE, project_id, req.get_param("user_id"))
        send(resp, views.quota_set(project_id, self._shown(req, limits)))

    def on_get_detail(self, req: falcon.Request, resp: falcon.Response, project_id: str) -> None:
        token = self._readable(req, project_id, "os_compute_api:os-quota-sets:detail")
        asked = req.get_param("user_id")
        user = asked or (token.user_id if project_id == token.project_id else None)  # key pairs count per user
        limits = self.quotas.limits(COMPUTE, project_id, asked)
        send(resp, views.quota_set(project_id, self._shown(req, limits), self.quotas.usage(COMPUTE, project_id, user)))

    def on_get_defaults(self, req: falcon.Request, resp: falcon.Response, project_id: str) -> None:
        _known(self.exists, project_id)  # Nova's defaults policy lets anyone read them
        send(resp, views.quota_set(project_id, self._shown(req, self.quotas.class_limits(COMPUTE))))


class NovaQuotaClassSets:
    """/compute/v2.1/os-quota-class-sets/{class_name}: an admin reads and sets a quota class's limits; the
    `default` class's are what every project has until its own are set (as Nova's DbQuotaDriver)."""

    def __init__(self, config: ApiConfig, quotas: QuotaStore):
        self.config = config
        self.quotas = quotas

    def on_get(self, req: falcon.Request, resp: falcon.Response, class_name: str) -> None:
        _must_admin(token_of(req), "os_compute_api:os-quota-class-sets:show")
        limits = shown(self.quotas.class_limits(COMPUTE, _class_name(class_name)), version_of(req), quota_class=True)
        send(resp, {"quota_class_set": {"id": class_name, **limits}})

    def on_put(self, req: falcon.Request, resp: falcon.Response, class_name: str) -> None:
        _must_admin(token_of(req), "os_compute_api:os-quota-class-sets:update")
        values = parse_limits(read_json(req, self.config.max_json_body)["quota_class_set"], "quota_class_set")
        self.quotas.set_class_limits(COMPUTE, _class_name(class_name), values)
        limits = shown(self.quotas.class_limits(COMPUTE, class_name), version_of(req), quota_class=True)
        send(resp, {"quota_class_set": limits})


class CinderLimits:
    """GET /volume/v3/limits (an admin may ask for another project with ?project_id=, as in Cinder)."""

    def __init__(self, quotas: QuotaStore):
        self.quotas = quotas

    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        token = token_of(req)
        project = _asked_project(req, "project_id", token) if token.is_admin else token.project_id
        send(resp, views.cinder_limits(self.quotas.limits(VOLUME, project), self.quotas.usage(VOLUME, project)))


class CinderQuotaSets(QuotaHandler):
    """/volume/v3/os-quota-sets/{project_id}[?usage=true] and …/defaults: GET, and PUT / DELETE for an admin."""

    updates = CINDER_UPDATES
    on_put = QuotaHandler.update
    on_delete = QuotaHandler.reset

    def on_get(self, req: falcon.Request, resp: falcon.Response, project_id: str) -> None:
        self._readable(req, project_id, "volume_extension:quotas:show")
        usage = self.quotas.usage(VOLUME, project_id) if req.get_param_as_bool("usage", default=False) else None
        send(resp, views.quota_set(project_id, self.quotas.limits(VOLUME, project_id), usage, cinder=True))

    def on_get_defaults(self, req: falcon.Request, resp: falcon.Response, project_id: str) -> None:
        _known(self.exists, project_id)
        send(resp, views.quota_set(project_id, self.quotas.class_limits(VOLUME)))


class CinderQuotaClassSets:
    """/volume/v3/os-quota-class-sets/{class_name}: an admin reads and sets a quota class's limits, the
    per-volume-type ones (volumes_<type>, ...) too; the `default` class's are every project's defaults."""

    def __init__(self, config: ApiConfig, quotas: QuotaStore):
        self.config = config
        self.quotas = quotas

    def on_get(self, req: falcon.Request, resp: falcon.Response, class_name: str) -> None:
        _must_admin(token_of(req), "volume_extension:quota_classes")
        send(resp, {"quota_class_set": {"id": class_name, **self.quotas.class_limits(VOLUME, _class_name(class_name))}})

    def on_put(self, req: falcon.Request, resp: falcon.Response, class_name: str) -> None:
        _must_admin(token_of(req), "volume_extension:quota_classes")
        body = read_json(req, self.config.max_json_body)["quota_class_set"]
        known = set(self.quotas.resources(VOLUME))
        # Cinder sets the resources it knows and passes over other keys (a deleted type's, say).
        values = parse_limits({k: v for k, v in body.items() if k in known}, "quota_class_set")
        self.quotas.set_class_limits(VOLUME, _class_name(class_name), values)
        send(resp, {"quota_class_set": self.quotas.class_limits(VOLUME, class_name)})


class NeutronQuotas(QuotaHandler):
    """/network/v2.0/quotas[/{project_id}[/default|/details]]."""

    updates = NEUTRON_UPDATES
    on_put_item = QuotaHandler.update
    on_delete_item = QuotaHandler.reset

    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        _must_admin(token_of(req), "get_quota")
        send(resp, views.neutron_quota_list({p: self.quotas.limits(NETWORK, p)
                                             for p in self.quotas.overridden(NETWORK)}))

    def on_get_item(self, req: falcon.Request, resp: falcon.Response, project_id: str) -> None:
        self._readable(req, project_id, "get_quota")
        send(resp, views.neutron_quota(self.quotas.limits(NETWORK, project_id)))

    def on_get_default(self, req: falcon.Request, resp: falcon.Response, project_id: str) -> None:
        self._readable(req, project_id, "get_quota")
        send(resp, views.neutron_quota(self.quotas.class_limits(NETWORK)))

    def on_get_details(self, req: falcon.Request, resp: falcon.Response, project_id: str) -> None:
        self._readable(req, project_id, "get_quota")
        send(resp, views.neutron_quota(self.quotas.limits(NETWORK, project_id),
                                       self.quotas.usage(NETWORK, project_id)))
