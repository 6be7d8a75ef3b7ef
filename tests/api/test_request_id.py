"""Every response of every service carries its request-id header, as the real services send it (issue #12:
Tempest reads `x-openstack-request-id` on server create, and failed 190 tests without it)."""

from __future__ import annotations

import os
import re

import pytest
import requests

from api.request_id import new_request_id
from apitest import Live, live  # noqa: F401 (fixture)

REQUEST_ID = re.compile(r"req-[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}")
ITEM = "00000000-0000-4000-8000-000000000000"

# (method, path, authenticated, expected status): successes and each kind of error, per service.
CASES = [
    ("GET", "/identity/v3", False, 200),
    ("GET", "/identity/v3/auth/projects", True, 200),
    ("GET", "/identity/v3/projects", True, 403),
    ("GET", "/identity/v3/no-such-collection", True, 404),
    ("GET", "/compute/v2.1", False, 200),
    ("GET", "/compute/v2.1/servers", True, 200),
    ("GET", "/compute/v2.1/servers", False, 401),
    ("GET", f"/compute/v2.1/servers/{ITEM}", True, 404),
    ("POST", "/compute/v2.1/servers/detail", True, 405),
    ("POST", "/compute/v2.1/servers", True, 400),
    ("GET", "/image/v2/images", True, 200),
    ("GET", f"/image/v2/images/{ITEM}", True, 404),
    ("GET", "/network/v2.0/networks", True, 200),
    ("GET", "/network/v2.0/networks", False, 401),
    ("GET", "/volume/v3", False, 200),
    ("GET", "/volume/v3/volumes", True, 200),
    ("GET", f"/volume/v3/volumes/{ITEM}", True, 404),
    ("GET", "/no-such-service", False, 404),
]


@pytest.mark.parametrize(("method", "path", "authenticated", "status"), CASES,
                         ids=[f"{m} {p} {s}" for m, p, _, s in CASES])
def test_every_response_carries_a_fresh_request_id(live: Live, method: str, path: str, authenticated: bool,
                                                   status: int) -> None:
    headers = {"X-Auth-Token": live.token("alice")} if authenticated else {}
    body = {"json": {}} if method == "POST" else {}
    seen = set()
    for _ in range(2):
        resp = requests.request(method, live.url + path, headers=headers, timeout=30, **body)
        assert resp.status_code == status, resp.text
        request_id = resp.headers.get("x-openstack-request-id")
        assert request_id is not None and REQUEST_ID.fullmatch(request_id), resp.headers
        seen.add(request_id)
        if path.startswith("/compute"):
            # Nova's second name for the same id (older clients read it).
            assert resp.headers.get("x-compute-request-id") == request_id
        else:
            assert "x-compute-request-id" not in resp.headers
    assert len(seen) == 2, "each request gets its own id"


def test_token_issue_and_its_refusal_carry_a_request_id(live: Live) -> None:
    body = {"auth": {"identity": {"methods": ["password"], "password": {"user": {
        "name": "alice", "domain": {"name": "Default"}, "password": "wrong-password"}}}}}
    refused = requests.post(f"{live.url}/identity/v3/auth/tokens", json=body, timeout=30)
    assert refused.status_code == 401
    assert REQUEST_ID.fullmatch(refused.headers["x-openstack-request-id"])
    body["auth"]["identity"]["password"]["user"]["password"] = "s3cret-pass"
    issued = requests.post(f"{live.url}/identity/v3/auth/tokens", json=body, timeout=30)
    assert issued.status_code == 201
    assert REQUEST_ID.fullmatch(issued.headers["x-openstack-request-id"])


def test_a_client_supplied_request_id_is_not_echoed(live: Live) -> None:
    # oslo.middleware keeps its own id (a client's goes to logs as the global id, if at all):
    # echoing header content back would let a client write into other systems' logs.
    supplied = "req-00000000-0000-4000-8000-000000000000"
    resp = requests.get(f"{live.url}/compute/v2.1", timeout=30,
                        headers={"X-OpenStack-Request-ID": supplied, "X-Compute-Request-ID": supplied})
    assert REQUEST_ID.fullmatch(resp.headers["x-openstack-request-id"])
    assert resp.headers["x-openstack-request-id"] != supplied
    assert resp.headers["x-compute-request-id"] == resp.headers["x-openstack-request-id"]


def test_forked_worker_processes_do_not_repeat_each_others_request_ids() -> None:
    """Ids come from `random`, which reseeds itself in a forked child (serve forks its workers)."""
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:
        try:
            os.write(write, new_request_id().encode())
        finally:
            os._exit(0)
    os.close(write)
    assert os.waitpid(pid, 0)[1] == 0
    child = os.read(read, 100).decode()
    os.close(read)
    assert REQUEST_ID.fullmatch(child) and child != new_request_id()
