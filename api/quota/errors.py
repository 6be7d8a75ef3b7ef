"""Over-quota refusals, worded and shaped as each real service answers them.

Nova: 403 `{"forbidden": {...}}` (nova.exception.TooManyInstances and kin,
turned into HTTPForbidden by the servers and keypairs controllers). Cinder:
413 `{"overLimit": {..., "retryAfter": "0"}}` with `Retry-After: 0`, the
message prefixed by the exception's class name (cinder.api.middleware.fault).
Neutron: 409 `{"NeutronError": {"type": "OverQuota", ...}}`.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

import falcon

from api.errors import ApiError
from api.quota.models import COMPUTE, NETWORK, VOLUME


@dataclass(frozen=True)
class Over:
    """One resource a request would take over its limit."""

    resource: str
    requested: int
    used: int
    limit: int


class OverQuota(ApiError):
    """A create refused by a quota; `service` decides the body shape (not the URL: a server's ports are Nova's)."""

    def __init__(self, service: str, message: str):
        super().__init__(message)
        self.service = service
        self.status, self.kind = {COMPUTE: (403, "forbidden"), VOLUME: (413, "overLimit"),
                                  NETWORK: (409, "OverQuota")}[service]


def nova_refusal(overs: list[Over]) -> OverQuota:
    """Nova's message for instances/cores/ram (TooManyInstances), key pairs, or ports."""
    names = [o.resource for o in overs]
    if names == ["key_pairs"]:
        return OverQuota(COMPUTE, "Quota exceeded, too many key pairs.")
    if names == ["port"]:
        return OverQuota(COMPUTE, "Maximum number of ports exceeded")
    if names == ["metadata_items"]:
        return OverQuota(COMPUTE, f"Maximum number of metadata items exceeds {overs[0].limit}")
    joined = ", ".join(names)
    return OverQuota(COMPUTE, f"Quota exceeded for {joined}: Requested {', '.join(str(o.requested) for o in overs)}, "
                              f"but already used {', '.join(str(o.used) for o in overs)} of "
                              f"{', '.join(str(o.limit) for o in overs)} {joined}")


def cinder_refusal(overs: list[Over]) -> OverQuota:
    """Cinder's message for the first resource over (cinder.quota_utils.process_reserve_over_quota)."""
    over = overs[0]
    if over.resource == "per_volume_gigabytes":
        text = (f"VolumeSizeExceedsLimit: Requested volume size {over.requested}G is larger than maximum allowed "
                f"limit {over.limit}G.")
    elif over.resource == "gigabytes":
        text = (f"VolumeSizeExceedsAvailableQuota: Requested volume or snapshot exceeds allowed gigabytes quota. "
                f"Requested {over.requested}G, quota is {over.limit}G and {over.used}G has been consumed.")
    elif over.resource == "snapshots":
        text = f"SnapshotLimitExceeded: Maximum number of snapshots allowed ({over.limit}) exceeded"
    else:
        text = f"VolumeLimitExceeded: Maximum number of volumes allowed ({over.limit}) exceeded for quota 'volumes'."
    return OverQuota(VOLUME, text)


def neutron_refusal(overs: list[Over]) -> OverQuota:
    """Neutron's OverQuota: the resources as a Python list, as neutron_lib formats it."""
    return OverQuota(NETWORK, f"Quota exceeded for resources: {sorted(o.resource for o in overs)}.")


REFUSALS = {COMPUTE: nova_refusal, VOLUME: cinder_refusal, NETWORK: neutron_refusal}


def handle_over_quota(req: falcon.Request, resp: falcon.Response, ex: OverQuota, params: dict) -> None:
    """falcon error handler: the refusal in its service's body."""
    resp.status = ex.status
    resp.content_type = falcon.MEDIA_JSON
    if ex.service == NETWORK:
        body = {"NeutronError": {"type": "OverQuota", "message": ex.message, "detail": ""}}
    elif ex.service == VOLUME:
        body = {"overLimit": {"code": ex.status, "message": ex.message, "retryAfter": "0"}}
        resp.set_header("Retry-After", "0")
    else:
        body = {ex.kind: {"code": ex.status, "message": ex.message}}
    resp.text = json.dumps(body)


def install(app: falcon.App) -> None:
    """Register the handler (falcon picks it over ApiError's: it is the more specific class)."""
    app.add_error_handler(OverQuota, handle_over_quota)
