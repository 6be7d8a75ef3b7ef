"""The external network (router:external) an operator makes, as the projects see it (issue 12): listed to every
project, its subnets only to its owner (or if shared); on a live server with real libvirt networks on the
simulated hypervisor. (Routers' gateways on it: tests/api/test_neutron_api.py.)"""

from __future__ import annotations

from typing import Any

import pytest
import requests

from apitest import Live, live  # noqa: F401 (fixture)

NET = "/network/v2.0"


def _call(live: Live, method: str, path: str, body: Any = None, user: str = "alice") -> requests.Response:
    return requests.request(method, f"{live.url}{NET}{path}", headers={"X-Auth-Token": live.token(user)},
                            json=body, timeout=120)


@pytest.fixture(scope="module")
def public(live: Live) -> tuple[str, str]:
    """The admin's external network and its subnet."""
    network = _call(live, "POST", "/networks", {"network": {"name": "fip-public", "router:external": True}},
                    user="admin")
    assert network.status_code == 201, network.text
    network_id = network.json()["network"]["id"]
    subnet = _call(live, "POST", "/subnets", {"subnet": {"network_id": network_id, "cidr": "172.31.4.0/24",
                                                         "ip_version": 4}}, user="admin")
    assert subnet.status_code == 201, subnet.text
    return network_id, subnet.json()["subnet"]["id"]


def test_external_network_is_listed_but_its_subnets_are_not(live: Live, public: tuple[str, str]) -> None:
    network_id, subnet_id = public
    listed = _call(live, "GET", "/networks?router:external=True").json()["networks"]
    assert network_id in {n["id"] for n in listed} and all(n["router:external"] for n in listed)
    assert _call(live, "GET", f"/subnets?network_id={network_id}").json()["subnets"] == []
    assert _call(live, "GET", f"/subnets/{subnet_id}").status_code == 404
    assert [s["id"] for s in _call(live, "GET", f"/subnets?network_id={network_id}", user="admin").json()[
        "subnets"]] == [subnet_id], "its owner sees it"
    shared = _call(live, "PUT", f"/networks/{network_id}", {"network": {"shared": True}}, user="admin")
    assert shared.status_code == 200
    try:
        assert [s["id"] for s in _call(live, "GET", f"/subnets?network_id={network_id}").json()["subnets"]] == [
            subnet_id], "a shared network's subnets are every project's to see"
    finally:
        _call(live, "PUT", f"/networks/{network_id}", {"network": {"shared": False}}, user="admin")

