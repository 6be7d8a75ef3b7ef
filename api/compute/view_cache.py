"""Server views as JSON text, kept per server while nothing they show has changed.

GET /servers/detail of 200 servers spent most of its time building each
server's view and serialising it, the same text as the last request's for
every server that did not change. A view is a pure function of the server's
record and a few inputs from elsewhere (the base URL, microversion, admin
view, the names of its networks, its attached volumes, its floating IPs,
its flavor): the text is reused only when the record is the same (the same
object from ComputeStore's copy of the rows, or an equal one) and those
inputs are equal. Each process keeps its own; a server's entry is replaced
by its next view and the whole cache emptied past its bound.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Hashable
from typing import Any

from api.compute.models import Server

# Past this many entries (servers deleted meanwhile leave theirs) the cache starts over.
LIMIT = 20000


class ServerViewCache:
    """server id -> (the record, the other inputs, the view's JSON text)."""

    def __init__(self, limit: int = LIMIT):
        self.limit = limit
        self._entries: dict[str, tuple[Server, Hashable, str]] = {}

    def text(self, server: Server, inputs: Hashable, view: Callable[[], dict[str, Any]]) -> str:
        """The JSON text of `view()` for `server` with `inputs`: the last one made from equal ones, or a new one."""
        entry = self._entries.get(server.id)
        if entry is not None and (entry[0] is server or entry[0] == server) and entry[1] == inputs:
            return entry[2]
        text = json.dumps(view())
        if len(self._entries) >= self.limit:
            self._entries = {}
        self._entries[server.id] = (server, inputs, text)  # one assignment: other threads see old or new
        return text
