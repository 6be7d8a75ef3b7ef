"""Neutron's URLs (collections and `{item_id}` items share one resource, falcon's suffix routing)."""

from __future__ import annotations

import falcon

from api.compute.models import ComputeStore
from api.compute.placement import Hosts
from api.compute.tasks import ServerTasks
from api.context import ApiContext
from api.http import Discovery
from api.network import resources as r
from api.network.applier import NetworkApplier
from api.network.carriers import NetworkCarriers
from api.network.deployment import Agents, ServiceProviders
from api.network.extensions import Extensions
from api.network.firewall_sync import Firewalls
from api.network.floating_ips import FloatingIps, FloatingIpStore
from api.network.ports import PortStore
from api.network.routers import Routers, RouterStore
from api.network.store import NetworkStore
from api.network.subnet_pools import SubnetPools, SubnetPoolStore
from api.network.tags import Taggable, Tags
from api.quota import routes as quota_routes
from api.quota.models import NETWORK
from api.quota.store import QuotaStore


def add_routes(app: falcon.App, ctx: ApiContext, store: NetworkStore, compute: ComputeStore, hosts: Hosts,
               tasks: ServerTasks) -> None:
    """Mount Neutron v2.0 under /network; managed networks go onto the first of `hosts` when created, and onto
    another while servers with a port on them are there (builds and deletes of `tasks`), and security groups
    onto the servers' ports."""
    app.add_route("/network", Discovery(r.version_list))
    app.add_route("/network/v2.0", Discovery(r.version_details))
    applier = NetworkApplier(store, ctx.engine, hosts, ctx.config.network_forward)
    NetworkCarriers(store, applier, compute, hosts, tasks, ctx.layout)
    store.on_groups_changed.append(Firewalls(store, compute, tasks, hosts.uri_of).changed)
    store.on_group_renamed.append(compute.rename_group)
    quotas = QuotaStore(ctx.db, ctx.config.quotas, {NETWORK: lambda project, user: store.usage(project)})
    ports = PortStore(store)
    router_store = RouterStore(store, ports)
    routers = Routers(ctx.config, router_store)
    floating_ips = FloatingIpStore(store)
    pools = SubnetPoolStore(store)
    collections = {
        "networks": r.Networks(ctx.config, store, applier, quotas),
        "subnets": r.Subnets(ctx.config, store, applier, quotas),
        "ports": r.Ports(ctx.config, compute, ports, quotas),
        "routers": routers,
        "security-groups": r.SecurityGroups(ctx.config, store, quotas),
        "security-group-rules": r.SecurityGroupRules(ctx.config, store, quotas),
        "extensions": Extensions(),
        "floatingips": FloatingIps(ctx.config, floating_ips),
        "subnetpools": SubnetPools(ctx.config, pools),
        "agents": Agents(),
    }
    for path, resource in collections.items():
        app.add_route(f"/network/v2.0/{path}", resource)
        app.add_route(f"/network/v2.0/{path}/{{item_id}}", resource, suffix="item")
    app.add_route("/network/v2.0/service-providers", ServiceProviders())
    taggable = {"networks": Taggable(store.networks, store.network),
                "subnets": Taggable(store.subnets, store.subnet),
                "ports": Taggable(store.ports, collections["ports"].port,
                                  "is a NIC of a server (changed through Nova)"),
                "routers": Taggable(router_store.routers, router_store.router),
                "security-groups": Taggable(store.groups, store.group),
                "floatingips": Taggable(store.floating_ips, floating_ips.get),
                "subnetpools": Taggable(pools.pools, pools.pool)}
    for path, kind in taggable.items():
        tags = Tags(ctx.config, kind)
        app.add_route(f"/network/v2.0/{path}/{{item_id}}/tags", tags)
        app.add_route(f"/network/v2.0/{path}/{{item_id}}/tags/{{tag}}", tags, suffix="one")
    app.add_route("/network/v2.0/routers/{item_id}/add_router_interface", routers, suffix="add")
    app.add_route("/network/v2.0/routers/{item_id}/remove_router_interface", routers, suffix="remove")
    quota_routes.add_network_routes(app, ctx, quotas)
