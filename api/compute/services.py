"""GET /compute/v2.1/os-services (admin): the one compute service, this host's (the API's job runner builds
every server here through Terraform), always up. Enabling and disabling it is not offered."""

from __future__ import annotations

import time
import uuid

import falcon

from api.auth import token_of
from api.compute.microversion import version_of
from api.compute.views import HOST
from api.compute.zones import ZONE
from api.errors import Forbidden
from api.http import isotime, send
from api.microversion import Version

BINARY = "nova-compute"
SERVICE_UUID = str(uuid.uuid5(uuid.NAMESPACE_URL, f"provisioner:{BINARY}@{HOST}"))  # 2.53's id, stable per host


class Services:
    """The services list, filtered by host and binary as Nova's."""

    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        if not token_of(req).is_admin:
            raise Forbidden("Policy doesn't allow os_compute_api:os-services:list to be performed.")
        version = version_of(req)
        service = {"id": SERVICE_UUID if version >= Version(2, 53) else 1, "binary": BINARY, "host": HOST,
                   "zone": ZONE, "status": "enabled", "state": "up", "updated_at": isotime(time.time()),
                   "disabled_reason": None}
        if version >= Version(2, 11):
            service["forced_down"] = False
        host, binary = req.get_param("host"), req.get_param("binary")
        wanted = (host is None or host == HOST) and (binary is None or binary == BINARY)
        send(resp, {"services": [service] if wanted else []})
