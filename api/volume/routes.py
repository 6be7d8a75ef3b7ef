"""Cinder's URLs (the catalog's volumev3/block-storage URL is /volume/v3, without a project id)."""

from __future__ import annotations

import falcon

from api.context import ApiContext
from api.http import Discovery
from api.image.catalog import ImageCatalog
from api.microversion import MicroversionMiddleware
from api.quota import routes as quota_routes
from api.quota.models import VOLUME
from api.quota.store import QuotaStore
from api.volume import backend_resources as b
from api.volume import group_types as g
from api.volume import group_snapshots as gs
from api.volume import groups as gr
from api.volume import message_resources as m
from api.volume import qos as q
from api.volume import transfers as x
from api.volume import resources as r
from api.volume import types as t
from api.volume.backend import Backend
from api.volume.empty_id import EmptyIdNotFound
from api.volume.encryption import EncryptionResource, EncryptionStore
from api.volume.group_snapshots import GroupSnapshotStore
from api.volume.group_types import GroupTypeStore
from api.volume.groups import GroupStore
from api.volume.microversion import CINDER
from api.volume.qos import QosStore
from api.volume.store import VolumeStore
from api.volume.transfers import TransferStore
from api.volume.upload import VolumeUploads
from api.volume.worker import VolumeWorker


def add_routes(app: falcon.App, ctx: ApiContext, store: VolumeStore,
               worker: VolumeWorker) -> tuple[r.Volumes, r.Snapshots]:
    """Mount Cinder v3 under /volume; its volumes and snapshots collections, which Nova's proxies create through."""
    config = ctx.config
    app.add_middleware(MicroversionMiddleware(CINDER))
    app.add_middleware(EmptyIdNotFound())
    # Clients also try the catalog URL /volume/v3 for discovery: the same list, 200.
    app.add_route("/volume", Discovery(lambda base: {"versions": [r.version_document(base)]}, 300))
    app.add_route("/volume/v3", Discovery(lambda base: {"versions": [r.version_document(base)]}))
    quotas = QuotaStore(ctx.db, config.quotas, {VOLUME: lambda project, user: store.usage(project)})
    types = t.TypeStore(ctx.db)
    encryption = EncryptionStore(ctx.db, lambda name: any(v.volume_type == name for v in store.volumes.list()))
    types.on_delete.append(encryption.forget)
    images = ImageCatalog(ctx.layout, ctx.db)  # a volume from an image copies its file
    backend = Backend(ctx.db, ctx.layout.pool)
    group_types = GroupTypeStore(ctx.db)
    groups = GroupStore(ctx.db, store, worker, quotas, types, group_types)
    volumes = r.Volumes(config, store, worker, quotas, types, images, backend, groups, encryption)
    snapshots = r.Snapshots(config, store, worker, quotas)
    # One resource per collection; /detail has only GET (a POST there is a 405, as in Cinder).
    app.add_route("/volume/v3/volumes", volumes)
    app.add_route("/volume/v3/volumes/detail", volumes, suffix="detail")
    app.add_route("/volume/v3/volumes/summary", volumes, suffix="summary")
    app.add_route("/volume/v3/volumes/{volume_id}", r.VolumeItem(config, store, worker))
    app.add_route("/volume/v3/volumes/{volume_id}/action",
                  r.VolumeActions(config, store, worker, quotas, types, backend, encryption,
                                  VolumeUploads(config, store, images, worker.runner, ctx.layout, worker.uri_of)))
    for kind, collection in (("volume", "volumes"), ("snapshot", "snapshots")):
        metadata = r.Metadata(config, store, kind)
        app.add_route(f"/volume/v3/{collection}/{{{kind}_id}}/metadata", metadata)
        app.add_route(f"/volume/v3/{collection}/{{{kind}_id}}/metadata/{{key}}", metadata, suffix="key")
    app.add_route("/volume/v3/snapshots", snapshots)
    app.add_route("/volume/v3/snapshots/detail", snapshots, suffix="detail")
    app.add_route("/volume/v3/snapshots/{snapshot_id}", r.SnapshotItem(config, store, worker))
    app.add_route("/volume/v3/types", t.Types(config, types))
    app.add_route("/volume/v3/types/{type_id}", t.TypeItem(config, types))
    app.add_route("/volume/v3/types/{type_id}/extra_specs", t.ExtraSpecs(config, types))
    app.add_route("/volume/v3/types/{type_id}/extra_specs/{key}", t.ExtraSpec(config, types))
    app.add_route("/volume/v3/types/{type_id}/os-volume-type-access", t.TypeAccess(types))
    app.add_route("/volume/v3/types/{type_id}/action", t.TypeActions(config, types))
    encryption_resource = EncryptionResource(config, types, encryption)
    app.add_route("/volume/v3/types/{type_id}/encryption", encryption_resource)
    app.add_route("/volume/v3/types/{type_id}/encryption/{key}", encryption_resource, suffix="item")
    app.add_route("/volume/v3/snapshots/{snapshot_id}/action", r.SnapshotActions(config, store, worker))
    app.add_route("/volume/v3/messages", m.Messages(store.messages))
    app.add_route("/volume/v3/messages/{message_id}", m.MessageItem(store.messages))
    app.add_route("/volume/v3/os-availability-zone", r.AvailabilityZones(worker.placement))
    app.add_route("/volume/v3/extensions", r.Extensions())
    app.add_route("/volume/v3/os-services", b.Services(backend))
    app.add_route("/volume/v3/os-services/{service_action}", b.ServiceAction(config, backend))
    app.add_route("/volume/v3/os-hosts", b.Hosts(backend))
    app.add_route("/volume/v3/os-hosts/{host}", b.HostItem(backend, store))
    app.add_route("/volume/v3/scheduler-stats/get_pools", b.Pools(backend, store))
    app.add_route("/volume/v3/capabilities/{host}", b.Capabilities())
    qos = QosStore(ctx.db)
    app.add_route("/volume/v3/qos-specs", q.QosSpecs(config, qos))
    app.add_route("/volume/v3/qos-specs/{qos_id}", q.QosItem(config, qos))
    app.add_route("/volume/v3/qos-specs/{qos_id}/delete_keys", q.QosKeys(config, qos))
    app.add_route("/volume/v3/qos-specs/{qos_id}/{call}", q.QosAssociations(qos, types))
    transfers = TransferStore(ctx.db, store, quotas)
    for path, new_path in (("os-volume-transfer", False), ("volume-transfers", True)):
        app.add_route(f"/volume/v3/{path}", x.Transfers(config, transfers, new_path))
        app.add_route(f"/volume/v3/{path}/detail", x.Transfers(config, transfers, new_path), suffix="detail")
        app.add_route(f"/volume/v3/{path}/{{transfer_id}}", x.TransferItem(transfers, new_path))
        app.add_route(f"/volume/v3/{path}/{{transfer_id}}/accept", x.TransferAccept(config, transfers, new_path))
    app.add_route("/volume/v3/group_types", g.GroupTypes(config, group_types))
    app.add_route("/volume/v3/group_types/{group_type_id}", g.GroupTypeItem(config, group_types))
    app.add_route("/volume/v3/group_types/{group_type_id}/group_specs", g.GroupSpecs(config, group_types))
    app.add_route("/volume/v3/group_types/{group_type_id}/group_specs/{key}", g.GroupSpec(config, group_types))
    app.add_route("/volume/v3/groups", gr.Groups(config, groups))
    app.add_route("/volume/v3/groups/detail", gr.Groups(config, groups), suffix="detail")
    group_snapshots = GroupSnapshotStore(ctx.db, store, worker, quotas, groups)
    app.add_route("/volume/v3/groups/action", gr.GroupsAction(config, groups, group_snapshots.source))
    app.add_route("/volume/v3/groups/{volume_group_id}", gr.GroupItem(config, groups))
    app.add_route("/volume/v3/groups/{volume_group_id}/action", gr.GroupActions(config, groups, group_snapshots.count))
    app.add_route("/volume/v3/group_snapshots", gs.GroupSnapshots(config, group_snapshots))
    app.add_route("/volume/v3/group_snapshots/detail", gs.GroupSnapshots(config, group_snapshots), suffix="detail")
    app.add_route("/volume/v3/group_snapshots/{group_snapshot_id}", gs.GroupSnapshotItem(group_snapshots))
    app.add_route("/volume/v3/group_snapshots/{group_snapshot_id}/action",
                  gs.GroupSnapshotActions(config, group_snapshots))
    quota_routes.add_volume_routes(app, ctx, quotas)
    return volumes, snapshots
