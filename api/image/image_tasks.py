"""Glance's tasks: an image's import tasks (GET /image/v2/images/{id}/tasks, Glance 2.12) and /image/v2/tasks.

An image imported through `POST /v2/images/{id}/import` gets one task, as in
Glance: its `input` is the import request, its `request_id` the import call's.
The import is done within that call (the data is already staged in the store),
so a task is recorded finished. Uploads and server snapshots have none.

The tasks API (admins only, as Glance's default policy) lists them; creating one is
refused: its one type, `import`, fetches the image from a URL (`import_from`),
which this API never does (stage the data and import it with glance-direct).
"""

from __future__ import annotations

import time
import uuid
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import falcon

from api.auth import token_of
from api.config import ApiConfig
from api.db import Database, Table
from api.errors import BadRequest, Forbidden, NotFound
from api.http import isotime, read_json, send
from api.identity.tokens import Token
from provisioner.excerpt import cut, describe

if TYPE_CHECKING:
    from api.image.catalog import ImageCatalog

TASK_TTL = 48 * 3600  # Glance's task_time_to_live: when a finished task's record expires (shown, not enforced)


@dataclass(frozen=True)
class ImageTask:
    """One import task of one image."""

    id: str
    image_id: str
    project_id: str
    user_id: str
    request_id: str
    status: str
    input: dict[str, Any] = field(default_factory=dict)
    message: str = ""
    created: float = 0.0


class ImageTaskLog:
    """The image_tasks table."""

    def __init__(self, db: Database):
        self.rows = Table(db, "image_tasks", ImageTask)

    def record(self, image_id: str, project_id: str, user_id: str, request_id: str, status: str,
               request: dict[str, Any]) -> ImageTask:
        """A finished import task for `image_id`; `request` is the import request's body."""
        return self.rows.insert(ImageTask(id=str(uuid.uuid4()), image_id=image_id, project_id=project_id,
                                          user_id=user_id, request_id=request_id, status=status,
                                          input={"image_id": image_id, "import_req": request, "backend": None},
                                          created=time.time()))

    def all(self) -> list[ImageTask]:
        """Every task, oldest first."""
        return self.rows.list()

    def of_image(self, image_id: str) -> list[ImageTask]:
        """The image's tasks, oldest first."""
        return [t for t in self.rows.list() if t.image_id == image_id]

    def drop_image(self, image_id: str) -> None:
        """Forget the tasks of a deleted image."""
        for task in self.of_image(image_id):
            self.rows.delete(task.id)


def task_view(task: ImageTask) -> dict[str, Any]:
    """A task as Glance shows it in an image's task list."""
    when = isotime(task.created)
    return {"id": task.id, "type": "api_image_import", "status": task.status, "owner": task.project_id,
            "user_id": task.user_id, "request_id": task.request_id, "image_id": task.image_id,
            "input": task.input, "result": {}, "message": task.message,
            "created_at": when, "updated_at": when, "expires_at": isotime(task.created + TASK_TTL),
            "deleted_at": None, "deleted": False}


class ImageTasks:
    """An image's tasks (404 for an image the token cannot see)."""

    def __init__(self, catalog: ImageCatalog):
        self.catalog = catalog

    def on_get(self, req: falcon.Request, resp: falcon.Response, image_id: str) -> None:
        self.catalog.get(token_of(req), image_id)
        send(resp, {"tasks": [task_view(t) for t in self.catalog.tasks.of_image(image_id)]})


def _admin(token: Token) -> None:
    if not token.is_admin:
        raise Forbidden("the tasks API is for admins")


class Tasks:
    """GET /image/v2/tasks (filters: status, type) and POST (refused: see the module's docstring)."""

    def __init__(self, config: ApiConfig, catalog: ImageCatalog):
        self.config = config
        self.catalog = catalog

    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        _admin(token_of(req))
        views = [task_view(t) for t in self.catalog.tasks.all()]
        for key in ("status", "type"):
            wanted = req.get_param(key)
            if wanted is not None:
                views = [v for v in views if v[key] == wanted]
        send(resp, {"tasks": views, "first": "/v2/tasks", "schema": "/v2/schemas/tasks"})

    def on_post(self, req: falcon.Request, resp: falcon.Response) -> None:
        _admin(token_of(req))
        body = read_json(req, self.config.max_json_body)
        if body["type"] != "import":
            raise BadRequest("type", f"{describe(body['type'])}: the one task type is import")
        raise BadRequest("input.import_from", f"{cut(str(body['input'].get('import_from')))}: this site never "
                                              "fetches images from URLs; stage the data and import it "
                                              "(POST /v2/images/{id}/import, method glance-direct)")


class TaskItem:
    """GET /image/v2/tasks/{task_id}."""

    def __init__(self, catalog: ImageCatalog):
        self.catalog = catalog

    def on_get(self, req: falcon.Request, resp: falcon.Response, task_id: str) -> None:
        _admin(token_of(req))
        task = self.catalog.tasks.rows.get(task_id)
        if task is None:
            raise NotFound(f"Task with the given ID {cut(task_id)} not found")
        send(resp, task_view(task))
