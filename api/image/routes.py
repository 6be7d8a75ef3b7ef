"""Glance's URLs."""

from __future__ import annotations

import falcon

from api.context import ApiContext
from api.http import Discovery
from api.image import resources as r
from api.image.catalog import ImageCatalog
from api.image.image_tasks import ImageTasks


def add_routes(app: falcon.App, ctx: ApiContext, catalog: ImageCatalog) -> None:
    """Mount Glance v2 under /image."""
    app.add_route("/image", Discovery(r.version_list, 300))
    app.add_route("/image/v2/images", r.Images(ctx.config, catalog))
    app.add_route("/image/v2/images/{image_id}", r.ImageItem(ctx.config, catalog))
    app.add_route("/image/v2/images/{image_id}/file", r.ImageFile(ctx.config, catalog))
    app.add_route("/image/v2/images/{image_id}/tags/{tag}", r.ImageTag(catalog))
    app.add_route("/image/v2/images/{image_id}/actions/{action}", r.ImageAction(catalog))
    app.add_route("/image/v2/images/{image_id}/tasks", ImageTasks(catalog))
