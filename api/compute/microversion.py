"""Nova's microversions: which 2.x a request asked for, and the headers every versioned answer carries.

A client asks with `OpenStack-API-Version: compute 2.N` (or the older
`X-OpenStack-Nova-API-Version: 2.N`); `latest` means the maximum, no header
means 2.1. A malformed version is a 400, one outside [MIN, MAX] a 406, as
Nova answers. The version chosen is `req.context.compute_version` (a
`Version`); responses name it in both headers, with `Vary` on them.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

import falcon

from api.errors import ApiError, BadRequest
from provisioner.excerpt import cut


@dataclass(frozen=True, order=True)
class Version:
    """A compute microversion, 2.N; compares numerically (2.10 > 2.9)."""

    major: int
    minor: int

    def __str__(self) -> str:
        return f"{self.major}.{self.minor}"


MIN = Version(2, 1)
MAX = Version(2, 79)
HEADER = "OpenStack-API-Version"
LEGACY_HEADER = "X-OpenStack-Nova-API-Version"
SERVICE = "compute"
VERSIONED_PREFIX = "/compute/v2.1"
FORMAT = re.compile(r"([1-9][0-9]{0,3})\.(0|[1-9][0-9]{0,3})")


class NotAcceptable(ApiError):
    """A well-formed microversion this API does not serve."""

    status, kind, title = 406, "notAcceptable", "Not Acceptable"


def parse(text: str) -> Version:
    """`2.N` or `latest` as a Version within [MIN, MAX]; BadRequest or NotAcceptable otherwise."""
    text = text.strip()
    if text.lower() == "latest":
        return MAX
    match = FORMAT.fullmatch(text)
    if match is None:
        raise BadRequest(HEADER, f"API Version String {cut(text)} is of invalid format. "
                                 "Must be of format MajorNum.MinorNum.")
    version = Version(int(match[1]), int(match[2]))
    if not MIN <= version <= MAX:
        raise NotAcceptable(f"Version {version} is not supported by the API. "
                            f"Minimum is {MIN} and maximum is {MAX}.")
    return version


def requested(req: falcon.Request) -> Version:
    """The version a request asks for: the compute entry of OpenStack-API-Version, else the legacy header,
    else MIN."""
    for entry in (req.get_header(HEADER) or "").split(","):
        service, _, value = entry.strip().partition(" ")
        if service.lower() == SERVICE:
            return parse(value)
    legacy = req.get_header(LEGACY_HEADER)
    return parse(legacy) if legacy else MIN


def version_of(req: falcon.Request) -> Version:
    """The microversion the middleware settled for this request (MIN outside the versioned API)."""
    return getattr(req.context, "compute_version", MIN)


class MicroversionMiddleware:
    """Settles the microversion of every /compute/v2.1 request and names it in the response."""

    def process_request(self, req: falcon.Request, resp: falcon.Response) -> None:
        if req.path == VERSIONED_PREFIX or req.path.startswith(VERSIONED_PREFIX + "/"):
            req.context.compute_version = MIN  # the answer to a refused header still says what it served
            req.context.compute_version = requested(req)

    def process_response(self, req: falcon.Request, resp: falcon.Response, resource: Any,
                         req_succeeded: bool) -> None:
        version = getattr(req.context, "compute_version", None)
        if version is None:
            return
        resp.set_header(HEADER, f"{SERVICE} {version}")
        resp.set_header(LEGACY_HEADER, str(version))
        resp.append_header("Vary", f"{HEADER}, {LEGACY_HEADER}")
