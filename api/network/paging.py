"""Neutron's sorting and pagination of a list: `sort_key`/`sort_dir` (repeated, in pairs), `limit`, `marker`
(the id of the last item of the previous page) and `page_reverse` (the page before the marker). Without
them a list is in creation order, whole. No `<collection>_links` are returned: a client pages on by
giving the last id it got as the next marker (openstacksdk does)."""

from __future__ import annotations

from typing import Any

import falcon

from api.errors import BadRequest, NotFound
from provisioner.excerpt import cut, describe

DIRECTIONS = ("asc", "desc")


def _sort_value(value: Any) -> tuple[bool, str, Any]:
    """A key that orders None first and never compares values of different types."""
    plain = value if isinstance(value, (int, float, str, bool)) else str(value)
    return (value is not None, type(value).__name__, plain)


def _sorted(req: falcon.Request, views: list[dict[str, Any]]) -> list[dict[str, Any]]:
    keys = req.get_param_as_list("sort_key") or []
    directions = req.get_param_as_list("sort_dir") or []
    if len(directions) not in (0, len(keys)):
        raise BadRequest("sort_dir", "The number of sort_keys and sort_dirs must be same")
    known = {k for v in views for k in v}
    for key in keys:
        if views and key not in known:
            raise BadRequest("sort_key", f"{cut(key)} is an invalid attribute for sort_key")
    for direction in directions:
        if direction not in DIRECTIONS:
            raise BadRequest("sort_dir", f"{describe(direction)}: use asc or desc")
    # Stable sorts from the last key to the first: the first key decides, the next break its ties.
    for key, direction in reversed(list(zip(keys, directions or ["asc"] * len(keys)))):
        views = sorted(views, key=lambda v: _sort_value(v.get(key)), reverse=direction == "desc")
    return views


def paged(req: falcon.Request, views: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """`views` sorted as asked, then the page `limit`/`marker`/`page_reverse` select."""
    views = _sorted(req, views)
    limit = req.get_param_as_int("limit")
    if limit is not None and limit < 0:
        raise BadRequest("limit", f"{limit}: must be 0 (no limit) or more")
    marker = req.get_param("marker")
    reverse = req.get_param_as_bool("page_reverse") or False
    if marker is not None:
        at = next((index for index, view in enumerate(views) if view.get("id") == marker), None)
        if at is None:
            raise NotFound(f"Marker {cut(marker)} could not be found.")
        views = views[:at] if reverse else views[at + 1:]
    if limit:
        views = views[-limit:] if reverse else views[:limit]
    return views
