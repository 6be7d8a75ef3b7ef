"""OpenStack microversions: which version of a service's API a request asked for, and the headers every
versioned answer carries. Nova (api/compute/microversion.py) and Cinder (api/volume/microversion.py) each
describe their scheme as a `Microversions`; this module does the rest for both.

A client asks with `OpenStack-API-Version: <service> X.N` (Nova also reads its older
`X-OpenStack-Nova-API-Version: X.N`); `latest` means the maximum, no header the minimum. A malformed version
is a 400, one outside [min, max] a 406, as Nova and Cinder answer. The version chosen is stored on
`req.context` under the scheme's attribute; responses name it in the header(s) read, with `Vary` on them.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

import falcon

from api.errors import ApiError, BadRequest
from provisioner.excerpt import cut

HEADER = "OpenStack-API-Version"
FORMAT = re.compile(r"([1-9][0-9]{0,3})\.(0|[1-9][0-9]{0,3})")


@dataclass(frozen=True, order=True)
class Version:
    """A microversion, X.N; compares numerically (2.10 > 2.9)."""

    major: int
    minor: int

    def __str__(self) -> str:
        return f"{self.major}.{self.minor}"


class NotAcceptable(ApiError):
    """A well-formed microversion this API does not serve."""

    status, kind, title = 406, "notAcceptable", "Not Acceptable"


@dataclass(frozen=True)
class Microversions:
    """One service's microversion scheme."""

    service: str  # its name in OpenStack-API-Version ("compute", "volume")
    min: Version  # served when the request names no version
    max: Version  # served for `latest`
    context_attr: str  # the req.context attribute that holds the version settled
    prefix: str  # the versioned API: the paths below it
    prefix_versioned: bool  # whether the version document at `prefix` itself is versioned too
    legacy_header: str | None = None  # a service-specific header read and answered as well

    def parse(self, text: str) -> Version:
        """`X.N` or `latest` as a Version within [min, max]; BadRequest or NotAcceptable otherwise."""
        text = text.strip()
        if text.lower() == "latest":
            return self.max
        match = FORMAT.fullmatch(text)
        if match is None:
            raise BadRequest(HEADER, f"API Version String {cut(text)} is of invalid format. "
                                     "Must be of format MajorNum.MinorNum.")
        version = Version(int(match[1]), int(match[2]))
        if not self.min <= version <= self.max:
            raise NotAcceptable(f"Version {version} is not supported by the API. "
                                f"Minimum is {self.min} and maximum is {self.max}.")
        return version

    def requested(self, req: falcon.Request) -> Version:
        """The version a request asks for: this service's entry of OpenStack-API-Version, else the legacy
        header (if the service has one), else min."""
        for entry in (req.get_header(HEADER) or "").split(","):
            service, _, value = entry.strip().partition(" ")
            if service.lower() == self.service:
                return self.parse(value)
        legacy = req.get_header(self.legacy_header) if self.legacy_header else None
        return self.parse(legacy) if legacy else self.min

    def version_of(self, req: falcon.Request) -> Version:
        """The microversion the middleware settled for this request (min outside the versioned API)."""
        version: Version = getattr(req.context, self.context_attr, self.min)
        return version

    def applies_to(self, path: str) -> bool:
        """Whether a request path is in this service's versioned API."""
        return path.startswith(self.prefix + "/") or (self.prefix_versioned and path == self.prefix)


class MicroversionMiddleware:
    """Settles the microversion of every request in one service's versioned API and names it in the
    response."""

    def __init__(self, scheme: Microversions):
        self.scheme = scheme
        headers = (HEADER, scheme.legacy_header) if scheme.legacy_header else (HEADER,)
        self.vary = ", ".join(headers)

    def process_request(self, req: falcon.Request, resp: falcon.Response) -> None:
        if self.scheme.applies_to(req.path):
            # The answer to a refused header still says what it served.
            setattr(req.context, self.scheme.context_attr, self.scheme.min)
            setattr(req.context, self.scheme.context_attr, self.scheme.requested(req))

    def process_response(self, req: falcon.Request, resp: falcon.Response, resource: Any,
                         req_succeeded: bool) -> None:
        version = getattr(req.context, self.scheme.context_attr, None)
        if version is None:
            return
        resp.set_header(HEADER, f"{self.scheme.service} {version}")
        if self.scheme.legacy_header:
            resp.set_header(self.scheme.legacy_header, str(version))
        resp.append_header("Vary", self.vary)
