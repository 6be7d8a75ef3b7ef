"""Neutron's URLs (collections and `{item_id}` items share one resource, falcon's suffix routing)."""

from __future__ import annotations

import falcon

from api.compute.models import ComputeStore
from api.context import ApiContext
from api.http import Discovery
from api.network import resources as r
from api.network.applier import NetworkApplier
from api.network.extensions import Extensions
from api.network.floating_ips import FloatingIps, FloatingIpStore
from api.network.ports import PortStore
from api.network.routers import Routers, RouterStore
from api.network.store import NetworkStore
from api.network.subnet_pools import SubnetPools, SubnetPoolStore
from api.quota import routes as quota_routes
from api.quota.models import NETWORK
from api.quota.store import QuotaStore


def add_routes(app: falcon.App, ctx: ApiContext, store: NetworkStore, compute: ComputeStore, uri: str) -> None:
    """Mount Neutron v2.0 under /network; managed networks go onto the hypervisor at `uri`."""
    app.add_route("/network", Discovery(r.version_list))
    applier = NetworkApplier(store, ctx.engine, uri, ctx.config.network_forward)
    quotas = QuotaStore(ctx.db, ctx.config.quotas, {NETWORK: lambda project, user: store.usage(project)})
    ports = PortStore(store)
    routers = Routers(ctx.config, RouterStore(store, ports))
    collections = {
        "networks": r.Networks(ctx.config, store, applier, quotas),
        "subnets": r.Subnets(ctx.config, store, applier, quotas),
        "ports": r.Ports(ctx.config, compute, ports, quotas),
        "routers": routers,
        "security-groups": r.SecurityGroups(ctx.config, store, quotas),
        "security-group-rules": r.SecurityGroupRules(ctx.config, store, quotas),
        "extensions": Extensions(),
        "floatingips": FloatingIps(ctx.config, FloatingIpStore(store)),
        "subnetpools": SubnetPools(ctx.config, SubnetPoolStore(store)),
    }
    for path, resource in collections.items():
        app.add_route(f"/network/v2.0/{path}", resource)
        app.add_route(f"/network/v2.0/{path}/{{item_id}}", resource, suffix="item")
    app.add_route("/network/v2.0/routers/{item_id}/add_router_interface", routers, suffix="add")
    app.add_route("/network/v2.0/routers/{item_id}/remove_router_interface", routers, suffix="remove")
    quota_routes.add_network_routes(app, ctx, quotas)
