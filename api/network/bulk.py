"""Neutron's bulk create: a POST body holds one object (`{"network": {...}}`) or a list of them
(`{"networks": [...]}`), created all or none."""

from __future__ import annotations

from typing import Any, Callable, TypeVar

import falcon

from api.errors import BadRequest
from api.http import read_json, send

T = TypeVar("T")


def create_all(req: falcon.Request, resp: falcon.Response, max_bytes: int, singular: str, plural: str,
               create: Callable[[dict[str, Any]], T], undo: Callable[[T], None],
               view: Callable[[T], dict[str, Any]]) -> None:
    """Create the body's object(s) with `create`; if one fails, `undo` the ones made before it and re-raise.
    Answers 201 with `{singular: view}` or, for a list body, `{plural: [views]}`."""
    data = read_json(req, max_bytes)
    if plural in data:
        items = data[plural]
        if not isinstance(items, list) or not items or not all(isinstance(i, dict) for i in items):
            raise BadRequest(plural, f"must be a non-empty list of {singular} objects")
    elif isinstance(data.get(singular), dict):
        items = [data[singular]]
    else:
        raise BadRequest(singular, f"the body needs a {singular!r} object or a {plural!r} list")
    created: list[T] = []
    try:
        for item in items:
            created.append(create(item))
    except BaseException:
        for record in reversed(created):
            undo(record)
        raise
    if plural in data:
        send(resp, {plural: [view(r) for r in created]}, 201)
    else:
        send(resp, {singular: view(created[0])}, 201)
