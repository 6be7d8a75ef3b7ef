"""The request-id header every OpenStack service sends on every response, errors included.

Nova sends `x-openstack-request-id` and, for older clients, `x-compute-request-id`
with the same value; Keystone, Glance, Neutron and Cinder send
`x-openstack-request-id`. The value is `req-<uuid4>`, new for each request (as
oslo.middleware's RequestId): a client-supplied id is never echoed back.
Tempest and the stock clients read it from responses (Tempest on server create).
"""

from __future__ import annotations

import os
import random
import uuid
from typing import Any

import falcon

HEADER = "x-openstack-request-id"
# Extra header names per service (the first path segment), as the real services send them.
EXTRA_HEADERS = {"compute": ("x-compute-request-id",)}


# A generator of its own: whoever seeds the module's global one (Hypothesis does, before each example it
# runs) would make ids repeat; reseeded in a forked child, so worker processes never repeat each other's.
_IDS = random.Random()
os.register_at_fork(after_in_child=_IDS.seed)


def new_request_id() -> str:
    """A fresh request id, `req-` and a random (version 4) UUID.

    From `random`, not uuid4's os.urandom: an id is no secret, and a system call on
    every request hands the interpreter lock to other threads and waits to get it
    back.
    """
    return f"req-{uuid.UUID(int=_IDS.getrandbits(128), version=4)}"


class RequestIdMiddleware:
    """Gives each request an id (`req.context.request_id`) and sends it back in the service's headers.

    Mounted first, so its process_response runs for every response: also 401s from
    the auth middleware, 404s for unknown routes and 500s.
    """

    def process_request(self, req: falcon.Request, resp: falcon.Response) -> None:
        req.context.request_id = new_request_id()

    def process_response(self, req: falcon.Request, resp: falcon.Response, resource: Any,
                         req_succeeded: bool) -> None:
        request_id = getattr(req.context, "request_id", None) or new_request_id()
        service = req.path.strip("/").split("/", 1)[0]
        for name in (HEADER, *EXTRA_HEADERS.get(service, ())):
            resp.set_header(name, request_id)
