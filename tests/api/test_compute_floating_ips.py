"""Nova's floating-IP proxy (issue #12): os-floating-ips and addFloatingIp/removeFloatingIp over Neutron's
floating IPs, on a live server with a server built by the real engine on the simulated hypervisor."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest
import requests
from apitest import Live, live, qcow2_file  # noqa: F401 (fixtures)

V236 = {"OpenStack-API-Version": "compute 2.36"}


def _call(live: Live, method: str, path: str, body: Any = None, user: str = "alice",
          headers: dict[str, str] | None = None) -> requests.Response:
    return requests.request(method, f"{live.url}{path}", json=body, timeout=120,
                            headers={"X-Auth-Token": live.token(user), **(headers or {})})


def _nova(live: Live, method: str, path: str, body: Any = None, **kwargs: Any) -> requests.Response:
    return _call(live, method, f"/compute/v2.1{path}", body, **kwargs)


@pytest.fixture(scope="module")
def pool(live: Live) -> str:
    """The admin's external network (the pool's name) with a subnet."""
    network = _call(live, "POST", "/network/v2.0/networks", {"network": {"name": "nova-pool", "router:external": True}},
                    user="admin").json()["network"]
    subnet = _call(live, "POST", "/network/v2.0/subnets", {"subnet": {"network_id": network["id"],
                                                                       "cidr": "172.31.9.0/24", "ip_version": 4}},
                   user="admin")
    assert subnet.status_code == 201, subnet.text
    return network["id"]


def test_allocate_list_show_release(live: Live, pool: str) -> None:
    made = _nova(live, "POST", "/os-floating-ips", {"pool": "nova-pool"})
    assert made.status_code == 200, made.text
    fip = made.json()["floating_ip"]
    assert fip["ip"].startswith("172.31.9.") and (fip["pool"], fip["fixed_ip"], fip["instance_id"]) == (
        "nova-pool", None, None)
    assert _nova(live, "GET", "/os-floating-ips").json()["floating_ips"] == [fip]
    assert _nova(live, "GET", f"/os-floating-ips/{fip['id']}").json()["floating_ip"] == fip
    neutron = _call(live, "GET", f"/network/v2.0/floatingips/{fip['id']}").json()["floatingip"]
    assert neutron["floating_ip_address"] == fip["ip"], "the same record as Neutron's"
    assert _nova(live, "GET", f"/os-floating-ips/{fip['id']}", user="bob").status_code == 404
    assert _nova(live, "GET", "/os-floating-ips", user="admin").json()["floating_ips"] == [], "the admin's own"
    default = _nova(live, "POST", "/os-floating-ips")
    assert default.status_code == 200 and default.json()["floating_ip"]["pool"] == "nova-pool", "the only pool"
    for made_id in (fip["id"], default.json()["floating_ip"]["id"]):
        assert _nova(live, "DELETE", f"/os-floating-ips/{made_id}").status_code == 202
    assert _nova(live, "GET", f"/os-floating-ips/{fip['id']}").status_code == 404
    assert _nova(live, "DELETE", f"/os-floating-ips/{fip['id']}").status_code == 404
    assert _nova(live, "GET", "/os-floating-ips", headers=V236).status_code == 404, "removed at 2.36"


def test_bad_allocations_are_refused(live: Live, pool: str) -> None:
    missing = _nova(live, "POST", "/os-floating-ips", {"pool": "no-such-pool"})
    assert missing.status_code == 404 and "no-such-pool" in missing.json()["itemNotFound"]["message"]
    for body, field in (({"pool": 5}, "pool"), ({"pool": "x", "other": 1}, "other")):
        resp = _nova(live, "POST", "/os-floating-ips", body)
        assert resp.status_code == 400 and field in resp.json()["badRequest"]["message"], resp.text
    assert _nova(live, "GET", "/os-floating-ips").json()["floating_ips"] == []


def test_associate_with_a_server(live: Live, pool: str, qcow2_file: Path) -> None:  # noqa: F811
    net = _call(live, "POST", "/network/v2.0/networks", {"network": {"name": "fip-private"}}).json()["network"]
    subnet = _call(live, "POST", "/network/v2.0/subnets", {"subnet": {"network_id": net["id"], "cidr": "10.77.0.0/24",
                                                                       "ip_version": 4}}).json()["subnet"]
    router = _call(live, "POST", "/network/v2.0/routers", {"router": {
        "name": "fip-router", "external_gateway_info": {"network_id": pool}}}).json()["router"]
    assert _call(live, "PUT", f"/network/v2.0/routers/{router['id']}/add_router_interface",
                 {"subnet_id": subnet["id"]}).status_code == 200
    image = live.osc("alice", "image", "create", "--file", str(qcow2_file), "--disk-format", "qcow2", "fips",
                     "-f", "json")["id"]
    made = _nova(live, "POST", "/servers", {"server": {"name": "floating", "imageRef": image, "flavorRef": "1",
                                                       "networks": [{"uuid": net["id"]}]}})
    assert made.status_code == 202, made.text
    server_id = made.json()["server"]["id"]
    for _ in range(600):  # bounded: 600 polls of 0.2 s
        server = _nova(live, "GET", f"/servers/{server_id}").json()["server"]
        if server["status"] == "ACTIVE":
            break
        time.sleep(0.2)
    fixed = server["addresses"]["fip-private"][0]["addr"]
    first, second = (_nova(live, "POST", "/os-floating-ips", {"pool": "nova-pool"}).json()["floating_ip"]
                     for _ in range(2))
    action = f"/servers/{server_id}/action"
    assert _nova(live, "POST", action, {"addFloatingIp": {"address": first["ip"]}}).status_code == 202
    shown = _nova(live, "GET", f"/os-floating-ips/{first['id']}").json()["floating_ip"]
    assert (shown["instance_id"], shown["fixed_ip"]) == (server_id, fixed)
    addresses = _nova(live, "GET", f"/servers/{server_id}").json()["server"]["addresses"]["fip-private"]
    assert {"addr": first["ip"], "OS-EXT-IPS:type": "floating"}.items() <= addresses[-1].items()
    taken = _nova(live, "POST", action, {"addFloatingIp": {"address": second["ip"]}})
    assert taken.status_code == 400 and "addFloatingIp.address" in taken.json()["badRequest"]["message"]
    wrong_fixed = _nova(live, "POST", action, {"addFloatingIp": {"address": second["ip"], "fixed_address": "10.9.9.9"}})
    assert wrong_fixed.status_code == 400 and "fixed_address" in wrong_fixed.json()["badRequest"]["message"]
    assert _nova(live, "POST", action, {"addFloatingIp": {"address": "192.0.2.1"}}).status_code == 404
    assert _nova(live, "POST", action, {"addFloatingIp": {}}).status_code == 400
    assert _nova(live, "POST", action, {"removeFloatingIp": {"address": second["ip"]}}).status_code == 409
    assert _nova(live, "POST", action, {"removeFloatingIp": {"address": first["ip"]}}).status_code == 202
    assert _nova(live, "GET", f"/os-floating-ips/{first['id']}").json()["floating_ip"]["instance_id"] is None
    assert _nova(live, "POST", action, {"removeFloatingIp": {"address": "192.0.2.1"}}).status_code == 404
