"""Cinder's URLs (the catalog's volumev3/block-storage URL is /volume/v3, without a project id)."""

from __future__ import annotations

import falcon

from api.context import ApiContext
from api.volume import resources as r
from api.volume.store import VolumeStore
from api.volume.worker import VolumeWorker


def add_routes(app: falcon.App, ctx: ApiContext, store: VolumeStore, worker: VolumeWorker) -> None:
    """Mount Cinder v3 under /volume."""
    config = ctx.config
    app.add_route("/volume", r.Versions())
    app.add_route("/volume/v3", r.Version())
    for path, detail in (("/volume/v3/volumes", False), ("/volume/v3/volumes/detail", True)):
        app.add_route(path, r.Volumes(config, store, worker, detail))
    app.add_route("/volume/v3/volumes/{volume_id}", r.VolumeItem(store, worker))
    for path, detail in (("/volume/v3/snapshots", False), ("/volume/v3/snapshots/detail", True)):
        app.add_route(path, r.Snapshots(config, store, worker, detail))
    app.add_route("/volume/v3/snapshots/{snapshot_id}", r.SnapshotItem(store, worker))
