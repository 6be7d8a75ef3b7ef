"""Cinder's answer to an item URL with an empty id (`/volume/v3/volumes/`): 404, not the collection.

The app strips a trailing slash before routing (api/app.py), so `volumes/`
would reach the collection's responder; Cinder routes it as an item whose id
is empty, which does not exist. Tempest checks it for GET, PUT and DELETE.
"""

from __future__ import annotations

import re
from typing import Any

import falcon

from api.errors import NotFound

# Cinder's collections whose items a client addresses as `<collection>/<id>`.
_ITEM = re.compile(r"/volume/v3/(volumes|snapshots|types|messages)/")
_KINDS = {"volumes": "Volume", "snapshots": "Snapshot", "types": "Volume type", "messages": "Message"}


class EmptyIdNotFound:
    """falcon middleware: 404 for GET, PUT or DELETE of `/volume/v3/<collection>/` (the path as sent)."""

    def process_request(self, req: falcon.Request, resp: falcon.Response) -> None:
        """falcon hook, before routing (which no longer sees the trailing slash)."""
        if req.method not in ("GET", "PUT", "DELETE"):
            return
        match = _ITEM.fullmatch(req.env.get("PATH_INFO", ""))
        if match is not None:
            raise NotFound(f"{_KINDS[match.group(1)]} could not be found: the path has an empty id.")
