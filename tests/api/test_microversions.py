"""What Nova's and Cinder's microversion answers share and where they differ (api/microversion.py serves both):
the exact response headers, which paths are versioned, which legacy header counts, and the refusals' bodies.
The version-dependent behaviour itself is in test_compute_microversions.py and test_cinder_conformance.py."""

from __future__ import annotations

import pytest
import requests
from apitest import Live, live  # noqa: F401 (fixture)

LEGACY = "X-OpenStack-Nova-API-Version"


def _get(live: Live, path: str, headers: dict[str, str] | None = None) -> requests.Response:
    return requests.get(f"{live.url}{path}", timeout=30, headers={"X-Auth-Token": live.token("alice"),
                                                                  **(headers or {})})


def test_each_service_names_its_version_in_its_own_headers(live: Live) -> None:
    compute = _get(live, "/compute/v2.1/flavors", {"OpenStack-API-Version": "volume 3.5, compute 2.10"})
    assert compute.headers["OpenStack-API-Version"] == "compute 2.10"
    assert compute.headers[LEGACY] == "2.10"
    assert compute.headers["Vary"] == f"OpenStack-API-Version, {LEGACY}"
    volume = _get(live, "/volume/v3/volumes", {"OpenStack-API-Version": "compute 2.10, volume 3.5"})
    assert volume.headers["OpenStack-API-Version"] == "volume 3.5"
    assert LEGACY not in volume.headers, "Cinder has no legacy header"
    assert volume.headers["Vary"] == "OpenStack-API-Version"


def test_cinder_ignores_novas_legacy_header(live: Live) -> None:
    resp = _get(live, "/volume/v3/volumes", {LEGACY: "3.42"})
    assert resp.status_code == 200
    assert resp.headers["OpenStack-API-Version"] == "volume 3.0"


def test_which_paths_are_versioned(live: Live) -> None:
    """Nova versions its v2.1 version document; Cinder's /volume/v3 document is unversioned; other services and
    the version lists carry no microversion headers at all."""
    assert _get(live, "/compute/v2.1").headers["OpenStack-API-Version"] == "compute 2.1"
    for path in ("/volume/v3", "/compute", "/volume", "/compute/v2.1x", "/image/v2/images"):
        headers = _get(live, path, {"OpenStack-API-Version": "compute 2.10, volume 3.5"}).headers
        assert "OpenStack-API-Version" not in headers and LEGACY not in headers, path


@pytest.mark.parametrize(("path", "header", "body"), [
    ("/compute/v2.1/flavors", "compute 2.80",
     b'{"notAcceptable": {"code": 406, "message": "Version 2.80 is not supported by the API. '
     b'Minimum is 2.1 and maximum is 2.79."}}'),
    ("/volume/v3/volumes", "volume 3.61",
     b'{"notAcceptable": {"code": 406, "message": "Version 3.61 is not supported by the API. '
     b'Minimum is 3.0 and maximum is 3.60."}}'),
    ("/compute/v2.1/flavors", "compute 2.x",
     b'{"badRequest": {"code": 400, "message": "OpenStack-API-Version: API Version String \'2.x\' is of invalid '
     b'format. Must be of format MajorNum.MinorNum."}}'),
    ("/volume/v3/volumes", "volume 03.1",
     b'{"badRequest": {"code": 400, "message": "OpenStack-API-Version: API Version String \'03.1\' is of invalid '
     b'format. Must be of format MajorNum.MinorNum."}}'),
])
def test_refusals_name_the_minimum_served(live: Live, path: str, header: str, body: bytes) -> None:
    resp = _get(live, path, {"OpenStack-API-Version": header})
    assert resp.content == body
    service, minimum = ("compute", "2.1") if path.startswith("/compute") else ("volume", "3.0")
    assert resp.headers["OpenStack-API-Version"] == f"{service} {minimum}"
