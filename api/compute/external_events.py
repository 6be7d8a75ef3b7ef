"""POST /compute/v2.1/os-server-external-events: the events Neutron (or Cinder) sends Nova about a server.
Nova's policy takes them from the service role (or an admin). Here the API is Neutron itself and a server's
addresses are read afresh on each request, so an event for an existing server has nothing left to do and is
`completed`; one for a server that does not exist `failed` with 404 (the answer is 207 when some failed,
404 when all did, as Nova's)."""

from __future__ import annotations

from typing import Any

import falcon

from api.auth import token_of
from api.compute.models import ComputeStore
from api.config import ApiConfig
from api.errors import Forbidden, NotFound
from api.http import read_json, send


class ExternalEvents:
    """The events, each answered with its status and code."""

    def __init__(self, config: ApiConfig, store: ComputeStore):
        self.config = config
        self.store = store

    def on_post(self, req: falcon.Request, resp: falcon.Response) -> None:
        token = token_of(req)
        if not (token.is_admin or "service" in token.roles):
            raise Forbidden("Policy doesn't allow os_compute_api:os-server-external-events:create to be performed.")
        events = read_json(req, self.config.max_json_body)["events"]  # their forms: api/openapi.yaml
        answered: list[dict[str, Any]] = []
        for event in events:
            known = self.store.servers.get(event["server_uuid"]) is not None
            answered.append({**event, "status": "completed" if known else "failed", "code": 200 if known else 404})
        if not any(e["code"] == 200 for e in answered):
            raise NotFound("No instances found for any event")
        send(resp, {"events": answered}, 200 if all(e["code"] == 200 for e in answered) else 207)
