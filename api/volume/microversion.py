"""Cinder's microversions: which 3.N a request asked for, and the headers every versioned answer carries.

A client asks with `OpenStack-API-Version: volume 3.N` (`latest` is the
maximum); no header means 3.0. A malformed version is a 400, one outside
[MIN, MAX] a 406, as Cinder answers. The version chosen is
`req.context.volume_version` (a `Version`); responses under /volume/v3 name
it in OpenStack-API-Version, with `Vary` on it.
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
    """A volume microversion, 3.N; compares numerically (3.10 > 3.9)."""

    major: int
    minor: int

    def __str__(self) -> str:
        return f"{self.major}.{self.minor}"


MIN = Version(3, 0)
MAX = Version(3, 60)  # 3.60: volume list filters on created_at/updated_at (Yoga's Cinder goes to 3.70)
HEADER = "OpenStack-API-Version"
SERVICE = "volume"
VERSIONED_PREFIX = "/volume/v3"
FORMAT = re.compile(r"([1-9][0-9]{0,3})\.(0|[1-9][0-9]{0,3})")
# The versions whose behaviour this API implements, for the code that asks.
VOLUME_SUMMARY = Version(3, 12)  # GET /volumes/summary
SNAPSHOT_USER_ID = Version(3, 41)  # snapshots carry user_id
EXTEND_IN_USE = Version(3, 42)  # os-extend of an attached volume


class NotAcceptable(ApiError):
    """A well-formed microversion this API does not serve."""

    status, kind, title = 406, "notAcceptable", "Not Acceptable"


def parse(text: str) -> Version:
    """`3.N` or `latest` as a Version within [MIN, MAX]; BadRequest or NotAcceptable otherwise."""
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
    """The version a request asks for: the volume entry of OpenStack-API-Version, else MIN."""
    for entry in (req.get_header(HEADER) or "").split(","):
        service, _, value = entry.strip().partition(" ")
        if service.lower() == SERVICE:
            return parse(value)
    return MIN


def version_of(req: falcon.Request) -> Version:
    """The microversion the middleware settled for this request (MIN outside the versioned API)."""
    return getattr(req.context, "volume_version", MIN)


class MicroversionMiddleware:
    """Settles the microversion of every /volume/v3/... request and names it in the response."""

    def process_request(self, req: falcon.Request, resp: falcon.Response) -> None:
        # The version document at /volume/v3 itself is unversioned, as in Cinder.
        if req.path.startswith(VERSIONED_PREFIX + "/"):
            req.context.volume_version = MIN  # the answer to a refused header still says what it served
            req.context.volume_version = requested(req)

    def process_response(self, req: falcon.Request, resp: falcon.Response, resource: Any,
                         req_succeeded: bool) -> None:
        version = getattr(req.context, "volume_version", None)
        if version is None:
            return
        resp.set_header(HEADER, f"{SERVICE} {version}")
        resp.append_header("Vary", HEADER)
