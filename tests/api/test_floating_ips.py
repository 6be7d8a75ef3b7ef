"""The external network (router:external) an operator makes, as the projects see it (issue 12): listed to every
project, its subnets only to its owner (or if shared); on a live server with real libvirt networks on the
simulated hypervisor. (Routers' gateways on it: tests/api/test_neutron_api.py.)"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import requests

from api.config import stable_id

from apitest import Live, live, qcow2_file  # noqa: F401 (fixtures)

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



def _network_with_subnet(live: Live, name: str, cidr: str) -> tuple[str, str]:
    network = _call(live, "POST", "/networks", {"network": {"name": name}}).json()["network"]
    subnet = _call(live, "POST", "/subnets", {"subnet": {"network_id": network["id"], "cidr": cidr,
                                                         "ip_version": 4}})
    assert subnet.status_code == 201, subnet.text
    return network["id"], subnet.json()["subnet"]["id"]


def test_floating_ip_lifecycle(live: Live, public: tuple[str, str]) -> None:
    network_id, subnet_id = public
    created = _call(live, "POST", "/floatingips", {"floatingip": {"floating_network_id": network_id}})
    assert created.status_code == 201, created.text
    fip = created.json()["floatingip"]
    assert fip["status"] == "DOWN" and fip["port_id"] is None and fip["subnet_id"] == subnet_id
    assert fip["floating_ip_address"].startswith("172.31.4.")
    assert [f["id"] for f in _call(live, "GET", f"/floatingips?floating_network_id={network_id}").json()[
        "floatingips"]] == [fip["id"]]
    assert _call(live, "GET", f"/floatingips/{fip['id']}", user="bob").status_code == 404, "another project's"

    private_net, private_subnet = _network_with_subnet(live, "fip-private", "10.78.0.0/24")
    port = _call(live, "POST", "/ports", {"port": {"network_id": private_net}}).json()["port"]
    unreachable = _call(live, "PUT", f"/floatingips/{fip['id']}", {"floatingip": {"port_id": port["id"]}})
    assert unreachable.status_code == 404 and "is not reachable from subnet" in unreachable.text, unreachable.text
    router = _call(live, "POST", "/routers", {"router": {
        "name": "fip-router", "external_gateway_info": {"network_id": network_id}}}).json()["router"]
    assert _call(live, "PUT", f"/routers/{router['id']}/add_router_interface",
                 {"subnet_id": private_subnet}).status_code == 200
    associated = _call(live, "PUT", f"/floatingips/{fip['id']}", {"floatingip": {"port_id": port["id"]}})
    assert associated.status_code == 200, associated.text
    in_use = _call(live, "DELETE", f"/networks/{network_id}", user="admin")
    assert in_use.status_code == 409, "an associated floating IP holds its network"
    body = associated.json()["floatingip"]
    assert (body["status"], body["port_id"], body["router_id"]) == ("ACTIVE", port["id"], router["id"])
    assert body["fixed_ip_address"] == port["fixed_ips"][0]["ip_address"]
    second = _call(live, "POST", "/floatingips", {"floatingip": {"floating_network_id": network_id,
                                                                  "port_id": port["id"]}})
    assert second.status_code == 409, "that fixed IP has a floating IP already"
    taken = _call(live, "POST", "/floatingips", {"floatingip": {"floating_network_id": network_id,
                                                                 "floating_ip_address": fip["floating_ip_address"]}},
                  user="admin")
    assert taken.status_code == 409, "the address is held"

    cleared = _call(live, "PUT", f"/floatingips/{fip['id']}", {"floatingip": {"port_id": None}})
    assert cleared.json()["floatingip"]["status"] == "DOWN" and cleared.json()["floatingip"]["port_id"] is None
    assert _call(live, "DELETE", f"/floatingips/{fip['id']}").status_code == 204
    assert _call(live, "GET", f"/floatingips/{fip['id']}").status_code == 404
    assert _call(live, "PUT", f"/routers/{router['id']}/remove_router_interface",
                 {"subnet_id": private_subnet}).status_code == 200
    for path in (f"/routers/{router['id']}", f"/ports/{port['id']}", f"/networks/{private_net}"):
        assert _call(live, "DELETE", path).status_code == 204, path


@pytest.mark.parametrize(("body", "status", "message"), [
    ({}, 400, "floatingip.floating_network_id"),
    ({"floating_network_id": 5}, 400, "floatingip.floating_network_id"),
    ({"floating_network_id": "no-such-network"}, 404, "could not be found"),
    ({"floating_network_id": "PUBLIC", "floating_ip_address": "172.31.4.77"}, 403, "admin role"),
    ({"floating_network_id": "PUBLIC", "subnet_id": "nope"}, 400, "floatingip.subnet_id"),
    ({"floating_network_id": "PUBLIC", "port_id": "no-such-port"}, 404, "no-such-port"),
])
def test_refused_floating_ips(live: Live, public: tuple[str, str], body: dict[str, Any], status: int,
                              message: str) -> None:
    body = {k: public[0] if v == "PUBLIC" else v for k, v in body.items()}
    before = _call(live, "GET", "/floatingips").json()["floatingips"]
    resp = _call(live, "POST", "/floatingips", {"floatingip": body})
    assert resp.status_code == status and message in resp.text, resp.text
    assert _call(live, "GET", "/floatingips").json()["floatingips"] == before


def test_a_private_network_is_not_a_floating_network(live: Live) -> None:
    network = _call(live, "POST", "/networks", {"network": {"name": "fip-not-external"}}).json()["network"]
    resp = _call(live, "POST", "/floatingips", {"floatingip": {"floating_network_id": network["id"]}})
    assert resp.status_code == 400 and "is not a valid external network" in resp.text
    assert _call(live, "DELETE", f"/networks/{network['id']}").status_code == 204


def test_nova_shows_a_servers_floating_ip(live: Live, public: tuple[str, str], qcow2_file: Path) -> None:
    network_id, _ = public
    private_net, private_subnet = _network_with_subnet(live, "fip-server-net", "10.79.0.0/24")
    router = _call(live, "POST", "/routers", {"router": {
        "name": "fip-server-router", "external_gateway_info": {"network_id": network_id}}}).json()["router"]
    assert _call(live, "PUT", f"/routers/{router['id']}/add_router_interface",
                 {"subnet_id": private_subnet}).status_code == 200
    live.osc("alice", "image", "create", "--file", str(qcow2_file), "--disk-format", "qcow2", "fip-image")
    server = live.osc("alice", "server", "create", "--image", "fip-image", "--flavor", "m1.tiny", "--network",
                      private_net, "--wait", "fip-vm", "-f", "json")
    nic = _call(live, "GET", f"/ports?device_id={server['id']}").json()["ports"][0]
    fip = _call(live, "POST", "/floatingips", {"floatingip": {"floating_network_id": network_id,
                                                               "port_id": nic["id"]}})
    assert fip.status_code == 201, fip.text
    address = fip.json()["floatingip"]["floating_ip_address"]
    shown = requests.get(f"{live.url}/compute/v2.1/servers/{server['id']}", timeout=10,
                         headers={"X-Auth-Token": live.token("alice")}).json()["server"]
    entries = shown["addresses"]["fip-server-net"]
    assert [(e["addr"], e["OS-EXT-IPS:type"]) for e in entries] == [
        (nic["fixed_ips"][0]["ip_address"], "fixed"), (address, "floating")]
    listed = requests.get(f"{live.url}/compute/v2.1/servers/detail", timeout=10,
                          headers={"X-Auth-Token": live.token("alice")}).json()["servers"]
    assert next(s for s in listed if s["id"] == server["id"])["addresses"] == shown["addresses"]
    ips = requests.get(f"{live.url}/compute/v2.1/servers/{server['id']}/ips", timeout=10,
                       headers={"X-Auth-Token": live.token("alice")}).json()["addresses"]
    assert [e["addr"] for e in ips["fip-server-net"]] == [nic["fixed_ips"][0]["ip_address"], address]

    live.osc("alice", "server", "delete", "--wait", server["id"])
    left = _call(live, "GET", f"/floatingips/{fip.json()['floatingip']['id']}").json()["floatingip"]
    assert (left["port_id"], left["status"]) == (None, "DOWN"), "the server's port went: so did the association"
    assert _call(live, "DELETE", f"/floatingips/{left['id']}").status_code == 204
    assert _call(live, "PUT", f"/routers/{router['id']}/remove_router_interface",
                 {"subnet_id": private_subnet}).status_code == 200
    assert _call(live, "DELETE", f"/routers/{router['id']}").status_code == 204


def test_deleting_an_external_network_releases_its_floating_ips(live: Live) -> None:
    network = _call(live, "POST", "/networks", {"network": {"name": "fip-doomed", "router:external": True}},
                    user="admin").json()["network"]
    assert _call(live, "POST", "/subnets", {"subnet": {"network_id": network["id"], "cidr": "172.31.9.0/24",
                                                       "ip_version": 4}}, user="admin").status_code == 201
    fip = _call(live, "POST", "/floatingips", {"floatingip": {"floating_network_id": network["id"]}},
                user="admin").json()["floatingip"]
    demo = stable_id("project", "demo")  # alice's project
    for_alice = _call(live, "POST", "/floatingips", {"floatingip": {"floating_network_id": network["id"],
                                                                     "tenant_id": demo}}, user="admin")
    assert for_alice.status_code == 201 and for_alice.json()["floatingip"]["project_id"] == demo, for_alice.text
    assert for_alice.json()["floatingip"]["id"] in {f["id"] for f in _call(live, "GET", "/floatingips").json()[
        "floatingips"]}, "alice's now"
    refused = _call(live, "POST", "/floatingips", {"floatingip": {"floating_network_id": network["id"],
                                                                   "project_id": fip["project_id"]}})
    assert refused.status_code == 403, "only an admin creates one for another project"
    assert _call(live, "DELETE", f"/networks/{network['id']}", user="admin").status_code == 204
    assert fip["id"] not in {f["id"] for f in _call(live, "GET", "/floatingips", user="admin").json()["floatingips"]}
