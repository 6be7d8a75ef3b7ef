"""GET /compute/v2.1/os-availability-zone[/detail]: the one zone every server is in (`nova`)."""

from __future__ import annotations

import time

import falcon

from api.auth import token_of
from api.compute.views import HOST
from api.errors import Forbidden
from api.http import isotime, send

ZONE = "nova"  # the zone the server view names (OS-EXT-AZ:availability_zone)


class AvailabilityZones:
    """The zone list; the detail (an admin's) names this host and its compute service."""

    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        send(resp, {"availabilityZoneInfo": [{"zoneName": ZONE, "zoneState": {"available": True}, "hosts": None}]})

    def on_get_detail(self, req: falcon.Request, resp: falcon.Response) -> None:
        if not token_of(req).is_admin:
            raise Forbidden("Policy doesn't allow os_compute_api:os-availability-zone:detail to be performed.")
        service = {"available": True, "active": True, "updated_at": isotime(time.time())}
        hosts = {HOST: {"nova-compute": service}}
        send(resp, {"availabilityZoneInfo": [{"zoneName": ZONE, "zoneState": {"available": True}, "hosts": hosts}]})
