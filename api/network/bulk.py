"""Neutron's bulk create: a POST body holds one object (`{"network": {...}}`) or a list of them
(`{"networks": [...]}`), created all or none. Every caller's body is validated by api/validation.py first."""

from __future__ import annotations

from typing import Any, Callable, TypeVar

import falcon

from api.http import read_json, send

T = TypeVar("T")


def create_all(req: falcon.Request, resp: falcon.Response, max_bytes: int, singular: str, plural: str,
               create: Callable[[dict[str, Any]], T], undo: Callable[[T], None],
               view: Callable[[T], dict[str, Any]]) -> None:
    """Create the body's object(s) with `create`; if one fails, `undo` the ones made before it and re-raise.
    Answers 201 with `{singular: view}` or, for a list body, `{plural: [views]}`."""
    data = read_json(req, max_bytes)
    # Its operation's schema in api/openapi.yaml requires one of the two: an object or a non-empty list of them.
    items = data[plural] if plural in data else [data[singular]]
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
