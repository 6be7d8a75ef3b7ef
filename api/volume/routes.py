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
from api.volume import message_resources as m
from api.volume import resources as r
from api.volume import types as t
from api.volume.empty_id import EmptyIdNotFound
from api.volume.microversion import CINDER
from api.volume.store import VolumeStore
from api.volume.worker import VolumeWorker


def add_routes(app: falcon.App, ctx: ApiContext, store: VolumeStore, worker: VolumeWorker) -> None:
    """Mount Cinder v3 under /volume."""
    config = ctx.config
    app.add_middleware(MicroversionMiddleware(CINDER))
    app.add_middleware(EmptyIdNotFound())
    # Clients also try the catalog URL /volume/v3 for discovery: the same list, 200.
    app.add_route("/volume", Discovery(lambda base: {"versions": [r.version_document(base)]}, 300))
    app.add_route("/volume/v3", Discovery(lambda base: {"versions": [r.version_document(base)]}))
    quotas = QuotaStore(ctx.db, config.quotas, {VOLUME: lambda project, user: store.usage(project)})
    types = t.TypeStore(ctx.db)
    images = ImageCatalog(ctx.layout, ctx.db)  # a volume from an image copies its file
    volumes = r.Volumes(config, store, worker, quotas, types, images)
    snapshots = r.Snapshots(config, store, worker, quotas)
    # One resource per collection; /detail has only GET (a POST there is a 405, as in Cinder).
    app.add_route("/volume/v3/volumes", volumes)
    app.add_route("/volume/v3/volumes/detail", volumes, suffix="detail")
    app.add_route("/volume/v3/volumes/summary", volumes, suffix="summary")
    app.add_route("/volume/v3/volumes/{volume_id}", r.VolumeItem(config, store, worker))
    app.add_route("/volume/v3/volumes/{volume_id}/action", r.VolumeActions(config, store, worker, quotas))
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
    app.add_route("/volume/v3/snapshots/{snapshot_id}/action", r.SnapshotActions(config, store, worker))
    app.add_route("/volume/v3/messages", m.Messages(store.messages))
    app.add_route("/volume/v3/messages/{message_id}", m.MessageItem(store.messages))
    app.add_route("/volume/v3/os-availability-zone", r.AvailabilityZones())
    app.add_route("/volume/v3/extensions", r.Extensions())
    quota_routes.add_volume_routes(app, ctx, quotas)
