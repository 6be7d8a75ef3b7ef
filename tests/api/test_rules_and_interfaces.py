"""Neutron security group rules (protocols, port and ICMP ranges, remote groups, duplicates) and router
interface ports (ACTIVE when the host's bridge holds the address, IPv4 or IPv6; overlapping subnets refused),
on a live server with real networks on the simulated hypervisor (issue 12)."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from typing import Any

import pytest
import requests

from provisioner.provider.simulator import open_readonly

from apitest import Live, live  # noqa: F401 (fixture)

NET = "/network/v2.0"


def _call(live: Live, method: str, path: str, body: Any = None, user: str = "alice") -> requests.Response:
    return requests.request(method, f"{live.url}{NET}{path}", headers={"X-Auth-Token": live.token(user)},
                            json=body, timeout=120)


@pytest.fixture(scope="module")
def group(live: Live) -> str:
    resp = _call(live, "POST", "/security-groups", {"security_group": {"name": "rules-test"}})
    assert resp.status_code == 201, resp.text
    return resp.json()["security_group"]["id"]


def _rule(live: Live, group: str, **fields: Any) -> requests.Response:
    return _call(live, "POST", "/security-group-rules",
                 {"security_group_rule": {"security_group_id": group, "direction": "ingress", **fields}})


@pytest.mark.parametrize(("fields", "status", "message"), [
    ({"protocol": "bad_protocol_name"}, 400, "protocol 'bad_protocol_name' not supported"),
    ({"protocol": 256}, 400, "protocol '256' not supported"),
    ({"protocol": "tcp", "port_range_min": -16, "port_range_max": 80}, 400, "Invalid value for port -16"),
    ({"protocol": "tcp", "port_range_min": 80, "port_range_max": 79}, 400,
     "port_range_min must be <= port_range_max"),
    ({"protocol": "tcp", "port_range_min": 80, "port_range_max": 65536}, 400, "Invalid value for port 65536"),
    ({"protocol": "tcp", "port_range_max": 6}, 400, "port_range_min must be <= port_range_max"),
    ({"protocol": "tcp", "port_range_min": 0, "port_range_max": 6}, 400, "Invalid value for port 0"),
    ({"protocol": "icmp", "port_range_min": 1, "port_range_max": 256}, 400, "Invalid value for ICMP code"),
    ({"protocol": "icmp", "port_range_min": 300, "port_range_max": 1}, 400, "Invalid value for ICMP type"),
    ({"protocol": "icmp", "port_range_max": 6}, 400, "ICMP type (port-range-min) is missing"),
    ({"port_range_min": 22, "port_range_max": 22}, 400, "Must also specify protocol"),
    ({"protocol": "gre", "port_range_min": 22, "port_range_max": 22}, 400, "gre does not take a port range"),
    ({"protocol": "tcp", "remote_group_id": "bad_group_id"}, 404, "bad_group_id does not exist"),
    ({"ethertype": "IPv6", "remote_ip_prefix": "10.0.0.0/8"}, 400, "Conflicting value ethertype IPv6"),
    ({"protocol": "tcp", "remote_ip_prefix": "10.0.0.0/8", "remote_group_id": "GROUP"}, 400,
     "Only remote_ip_prefix or remote_group_id"),
])
def test_refused_rules(live: Live, group: str, fields: dict[str, Any], status: int, message: str) -> None:
    fields = {k: group if v == "GROUP" else v for k, v in fields.items()}
    before = _call(live, "GET", f"/security-groups/{group}").json()["security_group"]["security_group_rules"]
    resp = _rule(live, group, **fields)
    assert resp.status_code == status and message in resp.json()["NeutronError"]["message"], resp.text
    after = _call(live, "GET", f"/security-groups/{group}").json()["security_group"]["security_group_rules"]
    assert after == before


def test_icmp_types_and_codes_and_duplicates(live: Live, group: str) -> None:
    for icmp_type, code in ((3, 2), (3, 0), (8, 0), (0, 0), (11, None)):
        resp = _rule(live, group, protocol="icmp", port_range_min=icmp_type, port_range_max=code)
        assert resp.status_code == 201, resp.text
        rule = resp.json()["security_group_rule"]
        assert (rule["protocol"], rule["port_range_min"], rule["port_range_max"]) == ("icmp", icmp_type, code)
    first = _rule(live, group, protocol="tcp", port_range_min=66, port_range_max=67)
    assert first.status_code == 201
    again = _rule(live, group, protocol="TCP", port_range_min=66, port_range_max=67, description="other words")
    assert again.status_code == 409
    assert f"Rule id is {first.json()['security_group_rule']['id']}" in again.json()["NeutronError"]["message"]
    numbered = _rule(live, group, protocol="6", port_range_min=68, port_range_max=68)
    assert numbered.status_code == 201 and numbered.json()["security_group_rule"]["protocol"] == "6"
    other = _call(live, "POST", "/security-groups", {"security_group": {"name": "remote"}}).json()
    remote = _rule(live, group, protocol="tcp", remote_group_id=other["security_group"]["id"])
    assert remote.status_code == 201
    bobs = _call(live, "POST", "/security-groups", {"security_group": {"name": "bobs"}}, user="bob").json()
    hidden = _rule(live, group, protocol="udp", remote_group_id=bobs["security_group"]["id"])
    assert hidden.status_code == 404, "another project's group is not a remote group here"



def test_remote_ip_prefix_is_kept_as_given_with_its_mask(live: Live) -> None:
    group = _call(live, "POST", "/security-groups", {"security_group": {"name": "prefixes"}}).json()["security_group"]
    for given, shown, ethertype in (("10.2.3.124/24", "10.2.3.124/24", "IPv4"), ("10.9.9.9", "10.9.9.9/32", "IPv4"),
                                    ("FD00:0::5/64", "fd00::5/64", "IPv6"), ("fd00::7", "fd00::7/128", "IPv6")):
        resp = _rule(live, group["id"], ethertype=ethertype, protocol="tcp", port_range_min=22, port_range_max=22,
                     remote_ip_prefix=given)
        assert resp.status_code == 201, resp.text
        assert resp.json()["security_group_rule"]["remote_ip_prefix"] == shown, "Neutron keeps the host bits"
    # Another way of writing the same prefix is the same rule; so is every address and none.
    again = _rule(live, group["id"], ethertype="IPv4", protocol="tcp", port_range_min=22, port_range_max=22,
                  remote_ip_prefix="10.9.9.9/32")
    assert again.status_code == 409, again.text
    assert _rule(live, group["id"], protocol="udp", remote_ip_prefix="0.0.0.0/0").status_code == 201
    everything = _rule(live, group["id"], protocol="udp")
    assert everything.status_code == 409 and "already exists" in everything.json()["NeutronError"]["message"]
    bad = _rule(live, group["id"], protocol="udp", remote_ip_prefix="10.0.0.300/8")
    assert bad.status_code == 400 and "security_group_rule.remote_ip_prefix" in bad.json()["NeutronError"]["message"]


def test_deleting_a_group_deletes_the_rules_naming_it_as_remote_group(live: Live) -> None:
    def new_group(name: str) -> str:
        made = _call(live, "POST", "/security-groups", {"security_group": {"name": name}})
        return made.json()["security_group"]["id"]

    holder, peer = new_group("holder"), new_group("peer")
    kept = _rule(live, holder, protocol="tcp", port_range_min=80, port_range_max=80).json()["security_group_rule"]
    gone = _rule(live, holder, protocol="tcp", remote_group_id=peer)
    assert gone.status_code == 201, gone.text
    assert _call(live, "DELETE", f"/security-groups/{peer}").status_code == 204
    left = _call(live, "GET", f"/security-groups/{holder}").json()["security_group"]["security_group_rules"]
    assert [r["id"] for r in left] == [kept["id"]], "the rule naming the deleted group went with it"
    missing = _call(live, "GET", f"/security-group-rules/{gone.json()['security_group_rule']['id']}")
    assert missing.status_code == 404


def _network_with_subnet(live: Live, name: str, cidr: str) -> tuple[str, str]:
    network = _call(live, "POST", "/networks", {"network": {"name": name}}).json()["network"]
    subnet = _call(live, "POST", "/subnets", {"subnet": {"network_id": network["id"], "cidr": cidr,
                                                         "ip_version": 4}})
    assert subnet.status_code == 201, subnet.text
    return network["id"], subnet.json()["subnet"]["id"]


def test_router_interfaces_are_active_on_the_hosts_gateway(live: Live) -> None:
    router = _call(live, "POST", "/routers", {"router": {"name": "r1", "admin_state_up": False}}).json()["router"]
    first_net, first = _network_with_subnet(live, "ri-1", "10.77.0.0/28")
    second_net, overlapping = _network_with_subnet(live, "ri-2", "10.77.0.0/28")
    same_network = _call(live, "POST", "/subnets", {"subnet": {"network_id": first_net, "cidr": "10.77.0.0/29",
                                                               "ip_version": 4}})
    assert same_network.status_code == 400, same_network.text
    # Neutron's words, which Tempest's create_subnet looks for to try the next CIDR.
    assert "overlaps with another subnet" in same_network.json()["NeutronError"]["message"]
    added = _call(live, "PUT", f"/routers/{router['id']}/add_router_interface", {"subnet_id": first})
    assert added.status_code == 200, added.text
    port = _call(live, "GET", f"/ports/{added.json()['port_id']}").json()["port"]
    assert port["status"] == "ACTIVE" and port["device_id"] == router["id"]
    assert port["fixed_ips"][0]["ip_address"] == "10.77.0.1", "the subnet's gateway, which the host's bridge holds"

    routed = _call(live, "PUT", f"/routers/{router['id']}", {"router": {"routes": [
        {"destination": "10.90.0.0/24", "nexthop": "10.77.0.5"}]}})
    assert routed.status_code == 200 and routed.json()["router"]["routes"], routed.text
    cleared = _call(live, "PUT", f"/routers/{router['id']}", {"router": {"routes": None}})
    assert cleared.status_code == 200 and cleared.json()["router"]["routes"] == [], "null clears, as Neutron"
    refused = _call(live, "PUT", f"/routers/{router['id']}/add_router_interface", {"subnet_id": overlapping})
    assert refused.status_code == 400 and "overlaps with cidr 10.77.0.0/28" in refused.text
    assert [p for p in _call(live, "GET", f"/ports?device_id={router['id']}").json()["ports"]] == [port]

    # A port on another address: nothing carries it, so it stays DOWN as an interface too.
    other = _call(live, "POST", "/ports", {"port": {"network_id": second_net}}).json()["port"]
    assert other["fixed_ips"][0]["ip_address"] != "10.77.0.1"
    router2 = _call(live, "POST", "/routers", {"router": {"name": "r2"}}).json()["router"]
    assert _call(live, "PUT", f"/routers/{router2['id']}/add_router_interface",
                 {"port_id": other["id"]}).status_code == 200
    assert _call(live, "GET", f"/ports/{other['id']}").json()["port"]["status"] == "DOWN"
    for r, body in ((router, {"subnet_id": first}), (router2, {"port_id": other["id"]})):
        assert _call(live, "PUT", f"/routers/{r['id']}/remove_router_interface", body).status_code == 200
        assert _call(live, "DELETE", f"/routers/{r['id']}").status_code == 204
    for network in (first_net, second_net):
        assert _call(live, "DELETE", f"/networks/{network}").status_code == 204


def test_an_ipv6_gateway_is_on_the_libvirt_network_and_its_interface_active(live: Live) -> None:
    network = _call(live, "POST", "/networks", {"network": {"name": "ri-v6"}}).json()["network"]
    made = _call(live, "POST", "/subnets", {"subnet": {"network_id": network["id"], "cidr": "fd00:77::/64",
                                                       "ip_version": 6}})
    assert made.status_code == 201, made.text
    subnet = made.json()["subnet"]
    conn = open_readonly(live.layout.simulator_uri)
    try:
        ips = ET.fromstring(conn.networkLookupByName(f"net-{network['id']}").XMLDesc(0)).findall("ip")
    finally:
        conn.close()
    assert [(ip.get("family"), ip.get("address"), ip.get("prefix")) for ip in ips] == [
        ("ipv6", "fd00:77::1", "64")], "the host holds the IPv6 subnet's gateway"

    router = _call(live, "POST", "/routers", {"router": {"name": "r-v6"}}).json()["router"]
    added = _call(live, "PUT", f"/routers/{router['id']}/add_router_interface", {"subnet_id": subnet["id"]})
    assert added.status_code == 200, added.text
    port = _call(live, "GET", f"/ports/{added.json()['port_id']}").json()["port"]
    assert port["status"] == "ACTIVE" and port["fixed_ips"][0]["ip_address"] == "fd00:77::1"
    assert _call(live, "PUT", f"/routers/{router['id']}/remove_router_interface",
                 {"subnet_id": subnet["id"]}).status_code == 200
    assert _call(live, "DELETE", f"/routers/{router['id']}").status_code == 204
    assert _call(live, "DELETE", f"/networks/{network['id']}").status_code == 204
