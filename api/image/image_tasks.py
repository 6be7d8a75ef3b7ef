"""GET /image/v2/images/{id}/tasks (Glance 2.12): an image's import tasks.

Images here get their data in the request that sends it (an upload, a server snapshot's job), never
through Glance's asynchronous tasks: the list is always empty. Tempest waits on it after createImage.
"""

from __future__ import annotations

import falcon

from api.auth import token_of
from api.http import send
from api.image.catalog import ImageCatalog


class ImageTasks:
    """An image's tasks: none (404 for an image the token cannot see)."""

    def __init__(self, catalog: ImageCatalog):
        self.catalog = catalog

    def on_get(self, req: falcon.Request, resp: falcon.Response, image_id: str) -> None:
        self.catalog.get(token_of(req), image_id)
        send(resp, {"tasks": []})
