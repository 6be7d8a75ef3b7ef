"""Neutron records through the CLI, openstacksdk, and bad input answered with 400/413 naming the field."""

from __future__ import annotations

import requests

from apitest import live  # noqa: F401 (fixtures)


def test_network_subnet_security_groups(live) -> None:
    network = live.osc("alice", "network", "create", "n2", "-f", "json")
    assert network["name"] == "n2"
    subnet = live.osc("alice", "subnet", "create", "--network", "n2", "--subnet-range", "10.0.5.0/24", "s2",
                      "-f", "json")
    assert subnet["cidr"] == "10.0.5.0/24" and subnet["gateway_ip"] == "10.0.5.1"
    assert "n2" not in {n["Name"] for n in live.osc("bob", "network", "list", "-f", "json")}
    assert "default" in {g["Name"] for g in live.osc("alice", "security", "group", "list", "-f", "json")}
    live.osc("alice", "security", "group", "create", "web", "-f", "json")
    rule = live.osc("alice", "security", "group", "rule", "create", "--protocol", "tcp", "--dst-port", "22",
                    "web", "-f", "json")
    assert rule["port_range_min"] == 22
    live.osc("alice", "network", "delete", "n2")
    assert "n2" not in {n["Name"] for n in live.osc("alice", "network", "list", "-f", "json")}


def test_openstacksdk(live) -> None:
    conn = live.sdk("alice")
    assert {f.name for f in conn.compute.flavors()} >= {"m1.tiny", "m1.small"}
    assert [n.name for n in conn.network.networks(name="default")] == ["default"]
    assert isinstance(list(conn.image.images()), list)


def test_bad_input(live) -> None:
    headers = {"X-Auth-Token": live.token("alice"), "Content-Type": "application/json"}
    servers = f"{live.url}/compute/v2.1/servers"
    resp = requests.post(servers, headers=headers, data=b"{not json", timeout=10)
    assert resp.status_code == 400 and "malformed JSON" in resp.json()["badRequest"]["message"]
    resp = requests.post(servers, headers=headers, timeout=10,
                         json={"server": {"name": "x", "flavorRef": "nope", "imageRef": "nope"}})
    assert resp.status_code == 400 and "server.flavorRef" in resp.json()["badRequest"]["message"]
    resp = requests.post(servers, headers=headers, timeout=10,
                         json={"server": {"name": "x", "flavorRef": "1", "imageRef": "nope"}})
    assert resp.status_code == 400 and "server.imageRef" in resp.json()["badRequest"]["message"]
    resp = requests.post(servers, headers=headers, timeout=10, json={"server": {"flavorRef": "1"}})
    assert resp.status_code == 400 and "server.name" in resp.json()["badRequest"]["message"]
    huge = b'{"server": {"name": "' + b"x" * (2 << 20) + b'"}}'
    resp = requests.post(servers, headers=headers, data=huge, timeout=30)
    assert resp.status_code == 413
    resp = requests.post(f"{live.url}/network/v2.0/subnets", headers=headers, timeout=10,
                         json={"subnet": {"network_id": "nope", "cidr": "10.0.0.0/24"}})
    assert resp.status_code == 404 and resp.json()["NeutronError"]["type"] == "NotFound"
