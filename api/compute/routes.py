"""Nova's URLs."""

from __future__ import annotations

import falcon

from api.change_counter import ChangeCounters
from api.compute import flavor_extras, flavors
from api.compute import resources as r
from api.compute import security_groups as sg
from api.compute import server_meta
from api.compute.addresses import AddressRefresher
from api.compute.aggregates import AggregateAction, AggregateItem, Aggregates, AggregateStore
from api.compute.assisted_snapshots import AssistedSnapshots
from api.compute.attachments import Attachments, VolumeAttachmentItem, VolumeAttachments
from api.compute.block_devices import BlockDevices
from api.compute.builder import ServerBuilder
from api.compute.console import ConsoleLog
from api.compute.diagnostics import Diagnostics
from api.compute.extensions import Extensions
from api.compute.external_events import ExternalEvents
from api.compute.floating_ips import FloatingIpActions, NovaFloatingIp, NovaFloatingIps
from api.compute.hosts import ComputeHosts
from api.compute.hypervisors import Hypervisors
from api.compute.instance_actions import InstanceActionLog, InstanceActions
from api.compute.keypairs import KeypairItem, Keypairs
from api.compute.microversion import NOVA
from api.compute.models import ComputeStore
from api.compute.migrations import Migrations, MigrationStore
from api.compute.networks import NovaNetworks
from api.compute.placement import Hosts
from api.compute.rebuild import Rebuilds
from api.compute.resize import Resizes
from api.compute.images import NovaImageItem, NovaImageMetadata, NovaImages
from api.compute.snapshots import ServerImages
from api.compute.server_password import ServerPassword
from api.compute.server_tags import ServerTag, ServerTags
from api.compute.server_groups import ServerGroupItem, ServerGroups, ServerGroupStore
from api.compute.services import Services, ServiceStates
from api.compute.tasks import ServerTasks
from api.compute.tenant_usage import TenantUsage
from api.compute.usage_audit import UsageAuditLog
from api.compute.volumes import EmptyIdNotFound, NovaProxy, snapshot_proxy, volume_proxy
from api.compute.zones import AvailabilityZones
from api.config import config_path
from api.context import ApiContext
from api.http import Discovery
from api.microversion import MicroversionMiddleware
from api.network.store import NetworkStore
from api.quota import routes as quota_routes
from api.quota.models import COMPUTE, NETWORK
from api.quota.store import QuotaStore
from api.volume.resources import Snapshots, Volumes
from api.volume.store import VolumeStore
from api.volume.worker import VolumeWorker


def add_routes(app: falcon.App, ctx: ApiContext, store: ComputeStore, networks: NetworkStore, volumes: VolumeStore,
               builder: ServerBuilder, tasks: ServerTasks, hosts: Hosts, block_devices: BlockDevices) -> None:
    """Mount Nova v2.1 under /compute; servers go onto the hypervisors of `hosts`."""
    config = ctx.config
    groups = ServerGroupStore(ctx.db, store)
    catalog = flavors.FlavorCatalog(ctx.db, config.flavors, ChangeCounters.next_to(config_path(ctx.layout)))
    builder.flavor_source = catalog.all
    quotas = QuotaStore(ctx.db, config.quotas, {
        COMPUTE: lambda project, user: {**store.usage(project, user, catalog.all()),
                                        "server_groups": len(groups.groups.list([project]))},
        NETWORK: lambda project, user: networks.usage(project)})
    addresses = AddressRefresher(hosts.uri_of, lambda server_id, ports: store.change(server_id, ports=ports))
    app.add_middleware(MicroversionMiddleware(NOVA))
    # Nova answers its version list with 200 (Tempest's list_versions schema), not 300 Multiple Choices.
    app.add_route("/compute", Discovery(lambda base: {"versions": [r.legacy_version_document(base),
                                                                   r.version_document(base)]}))
    # Nova's legacy v2 endpoint, where the version list's v2.0 entry points: its version document.
    app.add_route("/compute/v2", Discovery(lambda base: {"version": r.legacy_version_document(base)}))
    app.add_route("/compute/v2.1/extensions", Extensions())
    app.add_route("/compute/v2.1/extensions/{alias}", Extensions(), suffix="item")
    app.add_route("/compute/v2.1", Discovery(lambda base: {"version": r.version_document(base)}))
    extras = flavor_extras.FlavorExtras(ctx.db)
    app.add_route("/compute/v2.1/flavors", flavors.Flavors(config, catalog, extras, detail=False))
    app.add_route("/compute/v2.1/flavors/detail", flavors.FlavorList(config, catalog, extras, detail=True))
    flavor = flavors.FlavorItem(config, catalog, extras)
    app.add_route("/compute/v2.1/flavors/{flavor_id}", flavor)
    app.add_route("/compute/v2.1/flavors/{flavor_id}/os-extra_specs",
                  flavor_extras.ExtraSpecs(config, flavor.find, extras))
    app.add_route("/compute/v2.1/flavors/{flavor_id}/os-extra_specs/{key}",
                  flavor_extras.ExtraSpec(config, flavor.find, extras))
    app.add_route("/compute/v2.1/flavors/{flavor_id}/os-flavor-access", flavor_extras.FlavorAccess(flavor.find, extras))
    app.add_route("/compute/v2.1/flavors/{flavor_id}/action", flavor_extras.FlavorAction(config, flavor.find, extras))
    app.add_route("/compute/v2.1/os-keypairs", Keypairs(config, store, quotas))
    app.add_route("/compute/v2.1/os-keypairs/{name}", KeypairItem(store))
    servers = r.Servers(config, catalog, store, networks, volumes, builder, tasks, addresses, quotas, groups,
                        extras, block_devices)
    app.add_route("/compute/v2.1/servers", servers)
    app.add_route("/compute/v2.1/servers/detail", servers, suffix="detail")  # GET only: POST there is a 405
    item = r.ServerItem(config, catalog, store, networks, volumes, tasks, addresses, groups)
    app.add_route("/compute/v2.1/servers/{server_id}", item)
    app.add_route("/compute/v2.1/servers/{server_id}/metadata", server_meta.ServerMetadata(config, store, quotas))
    app.add_route("/compute/v2.1/servers/{server_id}/metadata/{key}",
                  server_meta.ServerMetadataItem(config, store, quotas))
    app.add_route("/compute/v2.1/servers/{server_id}/tags", ServerTags(config, store))
    app.add_route("/compute/v2.1/servers/{server_id}/tags/{tag}", ServerTag(store))
    app.add_route("/compute/v2.1/servers/{server_id}/os-server-password", ServerPassword(store))
    app.add_route("/compute/v2.1/servers/{server_id}/diagnostics", Diagnostics(store, hosts.uri_of))
    ips = server_meta.ServerIps(store, networks, addresses)
    app.add_route("/compute/v2.1/servers/{server_id}/ips", ips)
    app.add_route("/compute/v2.1/servers/{server_id}/ips/{network}", ips, suffix="network")
    action = r.ServerAction(config, store, tasks, hosts.uri_of, ConsoleLog(ctx.layout), networks)
    migrations = MigrationStore(ctx.db)
    app.add_route("/compute/v2.1/os-migrations", Migrations(migrations))
    app.add_route("/compute/v2.1/os-server-external-events", ExternalEvents(config, store))
    action.handlers.update(Resizes(store, tasks, catalog.all, quotas, migrations).actions())
    action.handlers.update(Rebuilds(store, tasks, builder.images, quotas, item.view).actions())
    action.handlers.update(ServerImages(store, tasks, builder.images, block_devices).actions())
    nova_images = NovaImages(builder.images)
    app.add_route("/compute/v2.1/images", nova_images)
    app.add_route("/compute/v2.1/images/detail", nova_images, suffix="detail")
    app.add_route("/compute/v2.1/images/{image_id}", NovaImageItem(builder.images))
    image_metadata = NovaImageMetadata(config, builder.images)
    app.add_route("/compute/v2.1/images/{image_id}/metadata", image_metadata)
    app.add_route("/compute/v2.1/images/{image_id}/metadata/{key}", image_metadata, suffix="key")
    app.add_route("/compute/v2.1/servers/{server_id}/action", action)
    action_log = InstanceActionLog(store, tasks, config.max_json_body)
    app.add_middleware(action_log)
    instance_actions = InstanceActions(store, action_log)
    app.add_route("/compute/v2.1/servers/{server_id}/os-instance-actions", instance_actions)
    app.add_route("/compute/v2.1/servers/{server_id}/os-instance-actions/{request_id}", instance_actions,
                  suffix="item")
    app.add_route("/compute/v2.1/os-security-groups", sg.SecurityGroups(config, networks, quotas))
    app.add_route("/compute/v2.1/os-security-groups/{security_group_id}", sg.SecurityGroupItem(config, networks, quotas, store))
    app.add_route("/compute/v2.1/os-security-group-rules", sg.SecurityGroupRules(config, networks, quotas))
    app.add_route("/compute/v2.1/os-security-group-rules/{rule_id}", sg.SecurityGroupRuleItem(config, networks, quotas))
    app.add_route("/compute/v2.1/servers/{server_id}/os-security-groups",
                  sg.ServerSecurityGroups(config, networks, quotas, store))
    app.add_route("/compute/v2.1/os-floating-ips", NovaFloatingIps(config, networks, store))
    app.add_route("/compute/v2.1/os-floating-ips/{floating_ip_id}", NovaFloatingIp(config, networks, store))
    action.handlers.update(FloatingIpActions(config, networks, store).actions())
    nova_networks = NovaNetworks(networks)
    for proxy in ("os-networks", "os-tenant-networks"):
        app.add_route(f"/compute/v2.1/{proxy}", nova_networks)
        app.add_route(f"/compute/v2.1/{proxy}/{{network_id}}", nova_networks, suffix="item")
    app.add_route("/compute/v2.1/os-server-groups", ServerGroups(config, groups, quotas))
    app.add_route("/compute/v2.1/os-server-groups/{group_id}", ServerGroupItem(groups))
    states = ServiceStates(ctx.db)
    hosts.unavailable = states.unavailable_hosts  # a disabled nova-compute's hypervisor takes no new server
    services = Services(config, hosts, states)
    app.add_route("/compute/v2.1/os-services", services)
    app.add_route("/compute/v2.1/os-services/{service_id}", services, suffix="item")
    hypervisors = Hypervisors(hosts, store, catalog.all, states)
    for path, suffix in (("", None), ("/detail", "detail"), ("/statistics", "statistics"),
                         ("/{hypervisor_id}", "item"), ("/{hypervisor_id}/uptime", "uptime"),
                         ("/{hypervisor_id}/search", "search"), ("/{hypervisor_id}/servers", "servers")):
        app.add_route(f"/compute/v2.1/os-hypervisors{path}", hypervisors, suffix=suffix)
    compute_hosts = ComputeHosts(config, store, catalog.all, hypervisors)
    app.add_route("/compute/v2.1/os-hosts", compute_hosts)
    app.add_route("/compute/v2.1/os-hosts/{host}", compute_hosts, suffix="item")
    app.add_route("/compute/v2.1/os-hosts/{host}/{action}", compute_hosts, suffix="power")
    aggregates = AggregateStore(ctx.db)
    app.add_route("/compute/v2.1/os-aggregates", Aggregates(config, aggregates))
    app.add_route("/compute/v2.1/os-aggregates/{aggregate_id}", AggregateItem(config, aggregates))
    app.add_route("/compute/v2.1/os-aggregates/{aggregate_id}/action", AggregateAction(config, aggregates, hosts))
    usage = TenantUsage(store, catalog.all, quota_routes.project_exists(ctx))
    app.add_route("/compute/v2.1/os-simple-tenant-usage", usage)
    app.add_route("/compute/v2.1/os-simple-tenant-usage/{project_id}", usage, suffix="item")
    audit = UsageAuditLog(hosts)
    app.add_route("/compute/v2.1/os-instance_usage_audit_log", audit)
    app.add_route("/compute/v2.1/os-instance_usage_audit_log/{before}", audit, suffix="item")
    zones = AvailabilityZones(hosts)
    app.add_route("/compute/v2.1/os-availability-zone", zones)
    app.add_route("/compute/v2.1/os-availability-zone/detail", zones, suffix="detail")
    quota_routes.add_compute_routes(app, ctx, quotas)


def add_attachment_routes(app: falcon.App, ctx: ApiContext, store: ComputeStore, attachments: Attachments) -> None:
    """Mount Nova's os-volume_attachments (attach and detach re-apply the server's plan)."""
    app.add_route("/compute/v2.1/servers/{server_id}/os-volume_attachments",
                  VolumeAttachments(ctx.config, store, attachments))
    app.add_route("/compute/v2.1/servers/{server_id}/os-volume_attachments/{volume_id}",
                  VolumeAttachmentItem(ctx.config, store, attachments))


def add_volume_routes(app: falcon.App, ctx: ApiContext, volumes: VolumeStore, worker: VolumeWorker,
                      cinder: tuple[Volumes, Snapshots]) -> None:
    """Mount Nova's volume proxies (os-volumes, os-snapshots: through Cinder's `cinder` collections) and
    os-assisted-volume-snapshots."""
    app.add_middleware(EmptyIdNotFound())
    for path, param, proxied in (("os-volumes", "volume_id", volume_proxy(volumes, worker, cinder[0])),
                                 ("os-snapshots", "snapshot_id", snapshot_proxy(volumes, worker, cinder[1]))):
        resource = NovaProxy(ctx.config, proxied)
        app.add_route(f"/compute/v2.1/{path}", resource)
        app.add_route(f"/compute/v2.1/{path}/detail", resource, suffix="detail")
        app.add_route(f"/compute/v2.1/{path}/{{{param}}}", resource, suffix="item")
    assisted = AssistedSnapshots(ctx.config, volumes)
    app.add_route("/compute/v2.1/os-assisted-volume-snapshots", assisted)
    app.add_route("/compute/v2.1/os-assisted-volume-snapshots/{snapshot_id}", assisted, suffix="item")
