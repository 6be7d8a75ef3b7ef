"""Neutron subnet pools on a live server (issue 12): create, list, show, rename, add prefixes, delete; refused
inputs name the field and change nothing; another project's pool is hidden unless shared (an admin's flag)."""

from __future__ import annotations

from typing import Any

import pytest
import requests

from apitest import Live, live  # noqa: F401 (fixture)

NET = "/network/v2.0"


def _call(live: Live, method: str, path: str, body: Any = None, user: str = "alice") -> requests.Response:
    return requests.request(method, f"{live.url}{NET}{path}", headers={"X-Auth-Token": live.token(user)},
                            json=body, timeout=60)


def test_subnet_pool_lifecycle(live: Live) -> None:
    created = _call(live, "POST", "/subnetpools", {"subnetpool": {"name": "pool", "prefixes": ["1.0.0.0/16",
                                                                                             "2.0.0.0/16"]}})
    assert created.status_code == 201, created.text
    pool = created.json()["subnetpool"]
    assert (pool["ip_version"], pool["prefixes"], pool["min_prefixlen"]) == (4, ["1.0.0.0/16", "2.0.0.0/16"], "16")
    assert _call(live, "GET", f"/subnetpools/{pool['id']}").json()["subnetpool"]["name"] == "pool"
    assert pool["id"] in {p["id"] for p in _call(live, "GET", "/subnetpools?name=pool").json()["subnetpools"]}
    assert _call(live, "GET", f"/subnetpools/{pool['id']}", user="bob").status_code == 404, "not shared"

    renamed = _call(live, "PUT", f"/subnetpools/{pool['id']}", {"subnetpool": {
        "name": "pool-2", "prefixes": ["1.0.0.0/16", "2.0.0.0/16", "3.0.0.0/16"]}})
    assert renamed.status_code == 200, renamed.text
    assert renamed.json()["subnetpool"]["name"] == "pool-2" and len(renamed.json()["subnetpool"]["prefixes"]) == 3
    fewer = _call(live, "PUT", f"/subnetpools/{pool['id']}", {"subnetpool": {"prefixes": ["1.0.0.0/16"]}})
    assert fewer.status_code == 400 and "subset" in fewer.text
    assert _call(live, "DELETE", f"/subnetpools/{pool['id']}").status_code == 204
    assert _call(live, "GET", f"/subnetpools/{pool['id']}").status_code == 404


@pytest.mark.parametrize(("body", "status", "message"), [
    ({"name": "x"}, 400, "subnetpool.prefixes"),
    ({"prefixes": []}, 400, "subnetpool.prefixes"),
    ({"prefixes": ["not-a-cidr"]}, 400, "subnetpool.prefixes[0]"),
    ({"prefixes": ["10.0.0.0/8", "2001:db8::/32"]}, 400, "Cannot mix IPv4 and IPv6"),
    ({"prefixes": ["10.0.0.0/8"], "min_prefixlen": 4}, 400, "min_prefixlen"),
    ({"prefixes": ["10.0.0.0/8"], "default_prefixlen": 33}, 400, "default_prefixlen"),
    ({"prefixes": ["10.0.0.0/8"], "shared": True}, 403, "admin role"),
])
def test_refused_pools(live: Live, body: dict[str, Any], status: int, message: str) -> None:
    before = _call(live, "GET", "/subnetpools").json()["subnetpools"]
    resp = _call(live, "POST", "/subnetpools", {"subnetpool": body})
    assert resp.status_code == status and message in resp.text, resp.text
    assert _call(live, "GET", "/subnetpools").json()["subnetpools"] == before


def test_shared_pool_is_every_projects(live: Live) -> None:
    pool = _call(live, "POST", "/subnetpools", {"subnetpool": {"name": "shared-pool", "prefixes": ["10.200.0.0/16"],
                                                               "shared": True}}, user="admin").json()["subnetpool"]
    assert _call(live, "GET", f"/subnetpools/{pool['id']}", user="bob").status_code == 200
    assert _call(live, "DELETE", f"/subnetpools/{pool['id']}", user="bob").status_code == 403
    assert _call(live, "DELETE", f"/subnetpools/{pool['id']}", user="admin").status_code == 204
