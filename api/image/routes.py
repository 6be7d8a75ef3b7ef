"""Glance's URLs."""

from __future__ import annotations

import falcon

from api.context import ApiContext
from api.http import Discovery
from api.image import resources as r
from api.image.catalog import ImageCatalog
from api.image.image_tasks import ImageTasks, TaskItem, Tasks
from api.image.imports import ImageImport, ImageStage, ImportInfo, StoresInfo
from api.image import metadef_resources as m
from api.image.members import ImageMemberItem, ImageMembers
from api.image.metadefs import Metadefs
from api.image.schemas import Schema


def add_routes(app: falcon.App, ctx: ApiContext, catalog: ImageCatalog) -> None:
    """Mount Glance v2 under /image."""
    app.add_route("/image", Discovery(r.version_list, 300))
    app.add_route("/image/v2/images", r.Images(ctx.config, catalog))
    app.add_route("/image/v2/images/{image_id}", r.ImageItem(ctx.config, catalog))
    app.add_route("/image/v2/images/{image_id}/file", r.ImageFile(ctx.config, catalog))
    app.add_route("/image/v2/images/{image_id}/tags/{tag}", r.ImageTag(catalog))
    app.add_route("/image/v2/images/{image_id}/actions/{action}", r.ImageAction(catalog))
    app.add_route("/image/v2/images/{image_id}/tasks", ImageTasks(catalog))
    app.add_route("/image/v2/images/{image_id}/members", ImageMembers(ctx.config, catalog))
    app.add_route("/image/v2/images/{image_id}/members/{member_id}", ImageMemberItem(ctx.config, catalog))
    app.add_route("/image/v2/images/{image_id}/stage", ImageStage(ctx.config, catalog))
    app.add_route("/image/v2/images/{image_id}/import", ImageImport(ctx.config, catalog))
    app.add_route("/image/v2/tasks", Tasks(ctx.config, catalog))
    app.add_route("/image/v2/tasks/{task_id}", TaskItem(catalog))
    app.add_route("/image/v2/info/import", ImportInfo())
    app.add_route("/image/v2/info/stores", StoresInfo())
    app.add_route("/image/v2/schemas/{name}", Schema())
    app.add_route("/image/v2/schemas/metadefs/{name}", Schema("metadefs/"))

    metadefs = Metadefs(ctx.db)
    namespace = "/image/v2/metadefs/namespaces/{namespace}"
    app.add_route("/image/v2/metadefs/resource_types", m.ResourceTypes())
    app.add_route("/image/v2/metadefs/namespaces", m.Namespaces(ctx.config, metadefs))
    app.add_route(namespace, m.NamespaceItem(ctx.config, metadefs))
    for segment, kind in (("objects", m.OBJECTS), ("properties", m.PROPERTIES), ("tags", m.TAGS)):
        app.add_route(f"{namespace}/{segment}", m.ClearableMembers(ctx.config, metadefs, kind))
    app.add_route(f"{namespace}/resource_types", m.NamespaceMembers(ctx.config, metadefs, m.ASSOCIATIONS))
    app.add_route(f"{namespace}/objects/{{name}}", m.NamespaceMember(ctx.config, metadefs, m.OBJECTS))
    app.add_route(f"{namespace}/properties/{{name}}", m.NamespaceMember(ctx.config, metadefs, m.PROPERTIES))
    app.add_route(f"{namespace}/tags/{{name}}", m.TagItem(ctx.config, metadefs))
    app.add_route(f"{namespace}/resource_types/{{name}}", m.AssociationItem(ctx.config, metadefs))
