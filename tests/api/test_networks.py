"""Neutron networks that are real: Terraform-managed libvirt networks on the simulated hypervisor, subnets
validated, fixed IPs allocated from them into the servers' NICs, and admin-only provider networks.

Everything runs on libvirt's test driver: its networks are XML in <root>/hypervisor/node.xml, never a bridge
on this host.
"""

from __future__ import annotations

import ipaddress
import json
import xml.etree.ElementTree as ET
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
import requests
from test_plan_schema import check_plan

from provisioner.errors import InputError
from provisioner.networks import HostAddress, NetworkSpec, bridge_name, network_dir, render_network_plan
from provisioner.provider.simulator import open_readonly

from apitest import live, names_field, qcow2_file, serve_root  # noqa: F401 (fixtures)


def _libvirt_network(live, name: str) -> ET.Element | None:
    """The simulated hypervisor's definition of network `name`, or None."""
    conn = open_readonly(live.layout.simulator_uri)
    try:
        found = [n for n in conn.listAllNetworks() if n.name() == name]
        return ET.fromstring(found[0].XMLDesc(0)) if found else None
    finally:
        conn.close()


def _domain_xml(live, name: str) -> ET.Element:
    conn = open_readonly(live.layout.simulator_uri)
    try:
        return ET.fromstring(conn.lookupByName(name).XMLDesc(0))
    finally:
        conn.close()


def _post(live, user: str, path: str, body: dict[str, Any]) -> requests.Response:
    return requests.post(f"{live.url}{path}", headers={"X-Auth-Token": live.token(user)}, json=body, timeout=60)


def _neutron_error(resp: requests.Response) -> str:
    return resp.json()["NeutronError"]["message"]


@pytest.fixture(scope="module")
def image(live, qcow2_file: Path) -> str:
    """An image alice may boot."""
    return live.osc("alice", "image", "create", "--file", str(qcow2_file), "--disk-format", "qcow2", "netimg",
                    "-f", "json")["id"]


# -- the engine's side: pure rendering ---------------------------------------------------------------------


def test_network_plan_matches_the_schema_and_is_pure() -> None:
    spec = NetworkSpec("net-x", bridge_name("0f3c1e2d-aaaa-bbbb-cccc-1234567890ab"), "test:///default",
                       (HostAddress(ipaddress.IPv4Address("10.9.0.1"), 24),
                        HostAddress(ipaddress.IPv6Address("fd00:9::1"), 64)), forward="nat")
    plan = render_network_plan(spec)
    assert plan == render_network_plan(spec), "same input, same bytes"
    assert check_plan(plan) == [], plan
    assert 'forward   = { mode = "nat" }' in plan and '{ address = "10.9.0.1", prefix = 24 },' in plan
    # libvirt reads an <ip> without family as IPv4 and refuses an IPv6 address there.
    assert '{ address = "fd00:9::1", prefix = 64, family = "ipv6" }' in plan
    isolated = render_network_plan(NetworkSpec("net-x", "pvx", "test:///default"))
    assert check_plan(isolated) == [] and "forward" not in isolated.split("resource", 1)[1]


def test_bridge_names_fit_linux_and_bad_specs_are_refused() -> None:
    name = bridge_name("0f3c1e2d-aaaa-bbbb-cccc-1234567890ab")
    assert name == "pv0f3c1e2daaaab" and len(name) == 15
    with pytest.raises(InputError, match="bridge name"):
        NetworkSpec("net-x", "a-bridge-name-too-long", "test:///default")
    with pytest.raises(InputError, match="forward mode 'bridge'"):
        NetworkSpec("net-x", "pvx", "test:///default", forward="bridge")


# -- networks and fixed IPs through the stock clients ------------------------------------------------------


def test_network_subnet_server_fixed_ip(live, image: str) -> None:
    network = live.osc("alice", "network", "create", "lan", "-f", "json")
    assert network["status"] == "ACTIVE" and network["provider:network_type"] == "local"
    name = f"net-{network['id']}"
    workspace = network_dir(live.layout, name)
    plan = (workspace / "terraform" / "main.tf").read_text()
    assert check_plan(plan) == [], plan
    assert json.loads((workspace / "status.json").read_text())["state"] == "applied"
    defined = _libvirt_network(live, name)
    assert defined is not None, "the libvirt network exists on the simulated hypervisor"
    bridge = defined.find("bridge").get("name")
    assert bridge == bridge_name(network["id"]) and len(bridge) <= 15
    assert defined.find("forward") is None, "isolated: no forward"
    assert defined.find("ip") is None, "no subnet yet: no address"

    subnet = live.osc("alice", "subnet", "create", "--network", "lan", "--subnet-range", "10.20.0.0/24",
                      "--dns-nameserver", "10.20.0.53", "--allocation-pool", "start=10.20.0.10,end=10.20.0.20",
                      "lan-v4", "-f", "json")
    assert subnet["gateway_ip"] == "10.20.0.1"
    ip = _libvirt_network(live, name).find("ip")
    assert (ip.get("address"), ip.get("prefix")) == ("10.20.0.1", "24"), "re-applied with the subnet's gateway"

    server = live.osc("alice", "server", "create", "--image", image, "--flavor", "m1.tiny", "--network", "lan",
                      "--wait", "fixed1", "-f", "json")
    assert server["status"] == "ACTIVE", server
    domain = f"srv-{server['id']}"
    nic = json.loads((live.layout.domain_dir(domain) / "spec.json").read_text())["nics"][0]
    assert nic["addresses"] == ["10.20.0.10/24"] and nic["gateway"] == "10.20.0.1"
    assert nic["resolvers"] == ["10.20.0.53"] and nic["network"] == name and nic["bridge"] is None
    network_config = (live.layout.domain_dir(domain) / "cloud-init" / "network-config").read_text()
    assert "10.20.0.10/24" in network_config and "dhcp4" not in network_config, "configured statically"
    source = _domain_xml(live, domain).find("devices/interface/source")
    assert source.get("network") == name, "the NIC plugs into the libvirt network"

    ports = live.osc("alice", "port", "list", "--server", "fixed1", "-f", "json")
    assert len(ports) == 1
    port = live.osc("alice", "port", "show", ports[0]["ID"], "-f", "json")
    assert port["fixed_ips"] == [{"subnet_id": subnet["id"], "ip_address": "10.20.0.10"}]
    assert port["device_id"] == server["id"] and port["mac_address"] == nic["mac"]
    shown = live.osc("alice", "server", "show", "fixed1", "-f", "json")
    assert shown["addresses"] == {"lan": ["10.20.0.10"]}, "the fixed IP, not an address libvirt made up"

    conn = live.sdk("alice")
    second = conn.compute.create_server(name="fixed2", image_id=image, flavor_id="1",
                                        networks=[{"uuid": network["id"], "fixed_ip": "10.20.0.15"}])
    taken = live.osc("alice", "server", "create", "--image", image, "--flavor", "m1.tiny",
                     "--nic", f"net-id={network['id']},v4-fixed-ip=10.20.0.15", "fixed3", check=False)
    assert taken.returncode != 0 and "409" in taken.stderr and "10.20.0.15" in taken.stderr, taken.stderr
    outside = live.osc("alice", "server", "create", "--image", image, "--flavor", "m1.tiny",
                       "--nic", f"net-id={network['id']},v4-fixed-ip=10.30.0.5", "fixed3", check=False)
    assert outside.returncode != 0 and "400" in outside.stderr, outside.stderr
    assert "server.networks[0].fixed_ip" in outside.stderr
    conn.compute.wait_for_server(second, wait=120)
    by_device = {p.device_id: p.fixed_ips for p in conn.network.ports(network_id=network["id"])}
    assert by_device[second.id] == [{"subnet_id": subnet["id"], "ip_address": "10.20.0.15"}]

    busy = live.osc("alice", "network", "delete", "lan", check=False)
    assert busy.returncode != 0 and _libvirt_network(live, name) is not None, "409 while ports use it"
    in_subnet = _post(live, "alice", "/network/v2.0/subnets", {"subnet": {"network_id": network["id"],
                                                                         "cidr": "10.20.0.128/25"}})
    assert in_subnet.status_code == 400 and "subnet.cidr" in _neutron_error(in_subnet), "overlap"
    resp = requests.delete(f"{live.url}/network/v2.0/subnets/{subnet['id']}",
                           headers={"X-Auth-Token": live.token("alice")}, timeout=30)
    assert resp.status_code == 409, "a subnet whose addresses ports hold stays"

    live.osc("alice", "server", "delete", "--wait", "fixed1")
    conn.compute.delete_server(second)
    conn.compute.wait_for_delete(second, wait=120)
    assert list(conn.network.ports(network_id=network["id"])) == [], "ports go with their servers"
    reused = _post(live, "alice", "/compute/v2.1/servers", {"server": {
        "name": "fixed4", "imageRef": image, "flavorRef": "1",
        "networks": [{"uuid": network["id"], "fixed_ip": "10.20.0.15"}]}})
    assert reused.status_code == 202, "a deleted server's address is free again"
    conn.compute.wait_for_server(conn.compute.get_server(reused.json()["server"]["id"]), wait=120)
    conn.compute.delete_server(reused.json()["server"]["id"])
    conn.compute.wait_for_delete(conn.compute.get_server(reused.json()["server"]["id"]), wait=120)

    live.osc("alice", "network", "delete", "lan")
    assert _libvirt_network(live, name) is None, "terraform destroy removed the libvirt network"
    assert not workspace.exists(), "and its workspace"
    assert subnet["id"] not in {s.id for s in conn.network.subnets()}


def test_forward_mode_from_the_config(tmp_path: Path) -> None:
    with serve_root(tmp_path / "root", config="network_forward: nat\n") as forwarding:
        network = forwarding.osc("alice", "network", "create", "wan", "-f", "json")
        assert network["status"] == "ACTIVE"
        name = f"net-{network['id']}"
        assert _libvirt_network(forwarding, name).find("forward") is None, "no address yet: libvirt needs one"
        forwarding.osc("alice", "subnet", "create", "--network", "wan", "--subnet-range", "10.30.0.0/24", "wan-v4")
        defined = _libvirt_network(forwarding, name)
        assert defined.find("forward").get("mode") == "nat", "network_forward: nat in config.yaml"
        assert defined.find("ip").get("address") == "10.30.0.1"


def test_subnet_validation_names_the_field(live, image: str) -> None:
    network = live.sdk("alice").network.create_network(name="checks")
    assert network.status == "ACTIVE"
    for fixed_ip, message in (("10.1.0.5", "has no subnet"), (5, "is not a str"), ("10.1.0", "not an IPv4")):
        resp = _post(live, "alice", "/compute/v2.1/servers", {"server": {
            "name": "x", "imageRef": image, "flavorRef": "1",
            "networks": [{"uuid": network.id, "fixed_ip": fixed_ip}]}})
        assert resp.status_code == 400, resp.text
        assert names_field(resp.json()["badRequest"]["message"], "server.networks[0].fixed_ip"), resp.text
        assert message in resp.text

    def bad(field: str, **subnet: Any) -> None:
        resp = _post(live, "alice", "/network/v2.0/subnets",
                     {"subnet": {"network_id": network.id, "ip_version": 4, **subnet}})
        assert resp.status_code == 400, (subnet, resp.text)
        assert _neutron_error(resp).startswith(field), (field, resp.text)

    bad("subnet.cidr", cidr="10.1.0.0/33")
    bad("subnet.cidr", cidr="not-a-cidr")
    bad("subnet.cidr", cidr="10.1.0.0/31")
    bad("subnet.ip_version", cidr="fd00::/64", ip_version=5)
    bad("subnet.gateway_ip", cidr="10.1.0.0/24", gateway_ip="10.2.0.1")
    bad("subnet.gateway_ip", cidr="10.1.0.0/24", gateway_ip="10.1.0.0")
    bad("subnet.gateway_ip", cidr="10.1.0.0/24", gateway_ip="nope")
    bad("subnet.allocation_pools[0].start", cidr="10.1.0.0/24", allocation_pools=[{"start": "10.9.0.5",
                                                                                   "end": "10.1.0.9"}])
    bad("subnet.allocation_pools[0].end", cidr="10.1.0.0/24", allocation_pools=[{"start": "10.1.0.5"}])
    bad("subnet.allocation_pools[0]", cidr="10.1.0.0/24", allocation_pools=[{"start": "10.1.0.9",
                                                                             "end": "10.1.0.5"}])
    bad("subnet.allocation_pools[0]", cidr="10.1.0.0/24", allocation_pools=[{"start": "10.1.0.1",
                                                                             "end": "10.1.0.5"}])
    bad("subnet.allocation_pools[1]", cidr="10.1.0.0/24", allocation_pools=[
        {"start": "10.1.0.5", "end": "10.1.0.9"}, {"start": "10.1.0.8", "end": "10.1.0.20"}])
    bad("subnet.dns_nameservers[1]", cidr="10.1.0.0/24", dns_nameservers=["10.1.0.53", "dns.example"])
    bad("subnet.host_routes[0].nexthop", cidr="10.1.0.0/24", host_routes=[{"destination": "0.0.0.0/0",
                                                                           "nexthop": "fd00::1"}])
    bad("subnet.network_id", cidr="10.1.0.0/24", network_id=None)
    cli = live.osc("alice", "subnet", "create", "--network", "checks", "--subnet-range", "10.1.0.0/24",
                   "--gateway", "10.3.0.1", "bad", check=False)
    assert cli.returncode != 0 and "subnet.gateway_ip" in cli.stderr, cli.stderr

    no_gateway = live.osc("alice", "subnet", "create", "--network", "checks", "--subnet-range", "10.1.0.0/24",
                          "--gateway", "none", "plain", "-f", "json")
    assert no_gateway["gateway_ip"] is None
    assert no_gateway["allocation_pools"] == [{"start": "10.1.0.1", "end": "10.1.0.254"}]
    assert _libvirt_network(live, f"net-{network.id}").find("ip") is None, "no gateway: no host address"
    bad("subnet.cidr", cidr="10.1.0.0/16")
    live.osc("alice", "network", "delete", "checks")


def test_concurrent_creates_get_distinct_addresses_until_the_pool_is_full(live, image: str) -> None:
    conn = live.sdk("alice")
    network = conn.network.create_network(name="small")
    conn.network.create_subnet(network_id=network.id, ip_version=4, cidr="10.40.0.0/29",
                               allocation_pools=[{"start": "10.40.0.2", "end": "10.40.0.4"}])
    body = {"imageRef": image, "flavorRef": "1", "networks": [{"uuid": network.id}]}
    with ThreadPoolExecutor(3) as pool:
        answers = list(pool.map(lambda i: _post(live, "alice", "/compute/v2.1/servers",
                                                {"server": {"name": f"small{i}", **body}}), range(3)))
    assert [a.status_code for a in answers] == [202] * 3, [a.text for a in answers]
    full = _post(live, "alice", "/compute/v2.1/servers", {"server": {"name": "none-left", **body}})
    assert full.status_code == 409 and "No more IP addresses" in full.json()["conflictingRequest"]["message"]
    servers = [conn.compute.get_server(a.json()["server"]["id"]) for a in answers]
    for server in servers:
        conn.compute.wait_for_server(server, wait=180)
    addresses = {s.id: [a["addr"] for a in conn.compute.get_server(s.id).addresses["small"]] for s in servers}
    assert sorted(ip for ips in addresses.values() for ip in ips) == ["10.40.0.2", "10.40.0.3", "10.40.0.4"]
    for server in servers:
        conn.compute.delete_server(server)
    for server in servers:
        conn.compute.wait_for_delete(server, wait=180)
    conn.network.delete_network(network)


def test_provider_network_is_admin_only(live, image: str) -> None:
    args = ("network", "create", "--provider-network-type", "flat", "--provider-physical-network", "br7")
    refused = live.osc("alice", *args, "mine", check=False)
    assert refused.returncode != 0 and "403" in refused.stderr, refused.stderr
    shared = _post(live, "alice", "/network/v2.0/networks", {"network": {"name": "s", "shared": True}})
    assert shared.status_code == 403 and "shared" in _neutron_error(shared)

    network = live.osc("admin", *args, "--share", "--external", "site", "-f", "json")
    assert network["status"] == "ACTIVE" and network["shared"] and network["router:external"]
    assert network["provider:physical_network"] == "br7" and network["provider:network_type"] == "flat"
    assert not network_dir(live.layout, f"net-{network['id']}").exists(), "no Terraform for a host bridge"
    assert _libvirt_network(live, f"net-{network['id']}") is None
    assert "site" in {n["Name"] for n in live.osc("bob", "network", "list", "-f", "json")}, "shared"

    live.osc("admin", "subnet", "create", "--network", "site", "--subnet-range", "192.168.70.0/24",
             "--gateway", "192.168.70.254", "site-v4")
    conn = live.sdk("alice")
    server = conn.compute.create_server(name="onbridge", image_id=image, flavor_id="1",
                                        networks=[{"uuid": network["id"]}])
    conn.compute.wait_for_server(server, wait=120)
    nic = json.loads((live.layout.domain_dir(f"srv-{server.id}") / "spec.json").read_text())["nics"][0]
    assert nic["bridge"] == "br7" and nic["network"] is None
    assert nic["addresses"] == ["192.168.70.1/24"] and nic["gateway"] == "192.168.70.254"
    source = _domain_xml(live, f"srv-{server.id}").find("devices/interface/source")
    assert source.get("bridge") == "br7"
    conn.compute.delete_server(server)
    conn.compute.wait_for_delete(server, wait=120)

    for body, field in (
        ({"provider:network_type": "vlan", "provider:physical_network": "br7"}, "network.provider:network_type"),
        ({"provider:network_type": "flat", "provider:physical_network": "a-bridge-too-long"},
         "network.provider:physical_network"),
        ({"provider:network_type": "flat"}, "network.provider:physical_network"),
        ({"provider:network_type": "flat", "provider:physical_network": ".."}, "network.provider:physical_network"),
        ({"provider:network_type": "flat", "provider:physical_network": "br7", "provider:segmentation_id": 5},
         "network.provider:segmentation_id"),
    ):
        resp = _post(live, "admin", "/network/v2.0/networks", {"network": {"name": "bad", **body}})
        assert resp.status_code == 400 and _neutron_error(resp).startswith(field), resp.text
    live.osc("admin", "network", "delete", "site")
    assert "site" not in {n["Name"] for n in live.osc("admin", "network", "list", "-f", "json")}


def test_failed_apply_is_error(live, image: str) -> None:
    conn = live.sdk("alice")
    network = conn.network.create_network(name="broken")
    workspace = network_dir(live.layout, f"net-{network.id}")
    lock_file = workspace / "terraform" / ".terraform.lock.hcl"
    lock_file.write_text("this is not HCL {")  # Terraform cannot read it: every plan fails
    conn.network.create_subnet(network_id=network.id, ip_version=4, cidr="10.50.0.0/24")
    assert conn.network.get_network(network.id).status == "ERROR"
    status = json.loads((workspace / "status.json").read_text())
    assert status["state"] == "failed" and "terraform" in status["error"]
    resp = _post(live, "alice", "/compute/v2.1/servers", {"server": {
        "name": "x", "imageRef": image, "flavorRef": "1", "networks": [{"uuid": network.id}]}})
    assert resp.status_code == 400 and "server.networks[0].uuid" in resp.json()["badRequest"]["message"]
    assert "ERROR" in resp.json()["badRequest"]["message"]

    lock_file.unlink()  # repaired: the next command runs terraform init again
    conn.network.delete_network(network)
    assert _libvirt_network(live, f"net-{network.id}") is None and not workspace.exists()
