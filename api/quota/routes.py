"""The quota URLs of each service; each service's routes.py mounts its own with a QuotaStore it builds."""

from __future__ import annotations

import falcon

from api.config import config_path
from api.context import ApiContext
from api.identity.store import Accounts, IdentityStore
from api.quota import errors
from api.quota import resources as r
from api.quota.models import VOLUME
from api.quota.store import QuotaStore
from api.volume.types import DEFAULT_NAME, TypeStore


def project_exists(ctx: ApiContext) -> r.ProjectExists:
    """Whether a project id is Keystone's (the file's projects and those created through the API)."""
    identity = IdentityStore(Accounts(config_path(ctx.layout), ctx.config), ctx.db)
    return lambda project_id: any(p.id == project_id for p in identity.projects())


def add_compute_routes(app: falcon.App, ctx: ApiContext, quotas: QuotaStore) -> None:
    """Nova's limits and os-quota-sets."""
    errors.install(app)
    base = "/compute/v2.1/os-quota-sets/{project_id}"
    sets = r.NovaQuotaSets(ctx.config, quotas, project_exists(ctx))
    app.add_route("/compute/v2.1/limits", r.NovaLimits(quotas))
    app.add_route(base, sets)
    app.add_route(f"{base}/detail", sets, suffix="detail")
    app.add_route(f"{base}/defaults", sets, suffix="defaults")
    app.add_route("/compute/v2.1/os-quota-class-sets/{class_name}", r.NovaQuotaClassSets(ctx.config, quotas))


def volume_type_resources(types: TypeStore) -> list[str]:
    """Cinder's per-volume-type quotas: volumes_<name>, snapshots_<name> and gigabytes_<name> of each type."""
    names = [DEFAULT_NAME, *(t.name for t in types.types.list())]
    return [f"{kind}_{name}" for name in names for kind in ("volumes", "snapshots", "gigabytes")]


def add_volume_routes(app: falcon.App, ctx: ApiContext, quotas: QuotaStore) -> None:
    """Cinder's limits and os-quota-sets (the catalog URL has no project id: /volume/v3/os-quota-sets/{id})."""
    errors.install(app)
    base = "/volume/v3/os-quota-sets/{project_id}"
    sets = r.CinderQuotaSets(ctx.config, quotas, project_exists(ctx))
    types = TypeStore(ctx.db)
    quotas.add_resources(VOLUME, lambda: volume_type_resources(types))
    app.add_route("/volume/v3/limits", r.CinderLimits(quotas))
    app.add_route(base, sets)
    app.add_route(f"{base}/defaults", sets, suffix="defaults")
    app.add_route("/volume/v3/os-quota-class-sets/{class_name}", r.CinderQuotaClassSets(ctx.config, quotas))


def add_network_routes(app: falcon.App, ctx: ApiContext, quotas: QuotaStore) -> None:
    """Neutron's quotas extension (and quota_details)."""
    errors.install(app)
    quota = r.NeutronQuotas(ctx.config, quotas, project_exists(ctx))
    app.add_route("/network/v2.0/quotas", quota)
    app.add_route("/network/v2.0/quotas/{project_id}", quota, suffix="item")
    app.add_route("/network/v2.0/quotas/{project_id}/default", quota, suffix="default")
    app.add_route("/network/v2.0/quotas/{project_id}/details", quota, suffix="details")
