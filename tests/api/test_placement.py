"""Several hypervisors (config.yaml `hypervisors:`): servers placed by free RAM, availability zones, capacity
exhausted (No valid host), os-hypervisors through the real `openstack` CLI, a hypervisor going away, and each
server's hypervisor kept across a restart of the API.

The hypervisors are libvirt test-driver node files of their own (`simulator:NAME`), plus one qemu+ssh URI to a
closed loopback port: real libvirt, real ssh, nothing listening (no real remote host exists on this machine; the
two-libvirtd fixture over qemu+ssh is tests/e2e's).
"""

from __future__ import annotations

import json
import socket
import time
from pathlib import Path
from typing import Any, Iterator

import pytest
import requests

from api.compute.placement import Hosts, HypervisorDown
from api.config import config_path, parse_config, read_document
from provisioner.provider.simulator import open_readonly
from provisioner.spec.codec import spec_from_json

from apitest import Live, qcow2_file, serve_layout, serve_root  # noqa: F401 (fixtures)

SIZES = {"big": 5120, "small": 4096}


def _closed_port() -> int:
    with socket.socket() as sock:  # bound then closed: nothing listens there afterwards
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture(scope="module")
def known_hosts(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("ssh") / "known_hosts"
    path.write_text("[127.0.0.1]:1 ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C9okWi0dh2l9GKJl\n")
    return path


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory, known_hosts: Path) -> Iterator[Live]:
    config = f"""hypervisors:
- {{name: big, uri: "simulator:big", memory_mb: {SIZES['big']}, cpus: 8, disk_gb: 100}}
- {{name: small, uri: "simulator:small", memory_mb: {SIZES['small']}, cpus: 8, disk_gb: 100}}
- {{name: edge, uri: "simulator:edge", zone: east}}
- {{name: gone, uri: "simulator:gone", zone: lost, memory_mb: 4096, cpus: 4, disk_gb: 50}}
- {{name: far, uri: "qemu+ssh://nobody@127.0.0.1:{_closed_port()}/system", zone: far, memory_mb: 4096, cpus: 4,
   disk_gb: 50, known_hosts: {known_hosts}}}
"""
    with serve_root(tmp_path_factory.mktemp("api") / "root", config) as server:
        yield server


def _call(live: Live, method: str, path: str, user: str = "alice", **kwargs: Any) -> requests.Response:
    headers = {"X-Auth-Token": live.token(user), **kwargs.pop("headers", {})}
    return requests.request(method, f"{live.url}/compute/v2.1{path}", headers=headers, timeout=60, **kwargs)


@pytest.fixture(scope="module")
def image(live: Live, qcow2_file: Path) -> str:
    return live.osc("alice", "image", "create", "--file", str(qcow2_file), "--disk-format", "qcow2", "cirros",
                    "-f", "json")["id"]


def _create(live: Live, image: str, name: str, flavor: str = "2", zone: str | None = "nova") -> str:
    body: dict[str, Any] = {"name": name, "imageRef": image, "flavorRef": flavor, "networks": "none"}
    if zone is not None:
        body["availability_zone"] = zone
    resp = _call(live, "POST", "/servers", json={"server": body})
    assert resp.status_code == 202, resp.text
    return resp.json()["server"]["id"]


def _settled(live: Live, server_id: str) -> dict[str, Any]:
    """The server once it is ACTIVE or ERROR, as an admin sees it (with its host)."""
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        server = _call(live, "GET", f"/servers/{server_id}", user="admin").json()["server"]
        if server["status"] in ("ACTIVE", "ERROR"):
            return server
        time.sleep(0.2)
    raise AssertionError(f"server {server_id} never settled: {server}")


def _domains(uri: str) -> set[str]:
    conn = open_readonly(uri)
    try:
        return {d.name() for d in conn.listAllDomains()}
    finally:
        conn.close()


def test_servers_go_to_the_most_free_ram_until_none_fits(live: Live, image: str) -> None:
    # m1.small takes 2048 MiB: big 5120 → 3072, then small 4096 → 2048, big → 1024, small → 0, then neither.
    placed = []
    for index in range(4):
        server = _settled(live, _create(live, image, f"spread{index}"))
        assert server["status"] == "ACTIVE", server.get("fault")
        placed.append(server["OS-EXT-SRV-ATTR:host"])
        assert server["OS-EXT-SRV-ATTR:hypervisor_hostname"] == server["OS-EXT-SRV-ATTR:host"]
        assert server["OS-EXT-AZ:availability_zone"] == "nova"
        domain = f"srv-{server['id']}"
        assert domain in _domains(live.layout.named_simulator_uri(placed[-1])), "built on its own hypervisor"
        assert json.loads((live.layout.domain_dir(domain) / "spec.json").read_text())["libvirt_uri"] == \
            live.layout.named_simulator_uri(placed[-1])
    assert placed == ["big", "small", "big", "small"]
    for name in ("big", "small"):  # each hypervisor's shared workspace (pool, base image) applied there
        shared = live.layout.shared / f"simulator-{name}"
        assert (shared / "applied.tf").is_file() and (shared / "terraform" / "terraform.tfstate").is_file()
    full = _settled(live, _create(live, image, "spread-full"))
    assert full["status"] == "ERROR"
    assert full["fault"]["message"].startswith("No valid host was found. ")
    assert "big: 1024 MiB RAM" in full["fault"]["message"] and "small: 0 MiB RAM" in full["fault"]["message"]
    assert full["OS-EXT-SRV-ATTR:host"] is None
    alice_view = _call(live, "GET", f"/servers/{full['id']}").json()["server"]
    assert "OS-EXT-SRV-ATTR:host" not in alice_view, "host fields are an admin's"
    tiny = _settled(live, _create(live, image, "spread-tiny", flavor="1"))
    assert (tiny["status"], tiny["OS-EXT-SRV-ATTR:host"]) == ("ACTIVE", "big"), "512 MiB still fits on big"
    assert _call(live, "DELETE", f"/servers/{full['id']}").status_code == 204


def test_a_zone_keeps_its_servers_and_an_unknown_zone_is_refused(live: Live, image: str) -> None:
    server = _settled(live, _create(live, image, "east1", flavor="1", zone="east"))
    assert (server["status"], server["OS-EXT-SRV-ATTR:host"], server["OS-EXT-AZ:availability_zone"]) == (
        "ACTIVE", "edge", "east")
    # edge has no override: libvirt's node info sizes it (the test driver's node: 3072 MiB).
    too_big = _settled(live, _create(live, image, "east-large", flavor="4", zone="east"))
    assert too_big["status"] == "ERROR" and "edge: 2560 MiB RAM" in too_big["fault"]["message"]
    unknown = _call(live, "POST", "/servers", json={"server": {
        "name": "x", "imageRef": image, "flavorRef": "1", "networks": "none", "availability_zone": "mars"}})
    assert unknown.status_code == 400
    assert "availability_zone" in unknown.json()["badRequest"]["message"]
    assert "is not available" in unknown.json()["badRequest"]["message"]
    wrong_type = _call(live, "POST", "/servers", json={"server": {
        "name": "x", "imageRef": image, "flavorRef": "1", "networks": "none", "availability_zone": 7}})
    assert wrong_type.status_code == 400 and "availability_zone" in wrong_type.json()["badRequest"]["message"]
    zones = {z["zoneName"]: z for z in _call(live, "GET", "/os-availability-zone").json()["availabilityZoneInfo"]}
    assert set(zones) == {"nova", "east", "lost", "far"}
    assert zones["east"]["zoneState"]["available"] is True and zones["far"]["zoneState"]["available"] is False
    detail = {z["zoneName"]: z for z in _call(live, "GET", "/os-availability-zone/detail",
                                              user="admin").json()["availabilityZoneInfo"]}
    assert set(detail["nova"]["hosts"]) == {"big", "small"} and set(detail["east"]["hosts"]) == {"edge"}
    assert {z.name for z in live.sdk("alice").compute.availability_zones()} == set(zones)


def test_a_network_created_through_the_api_goes_where_its_servers_are(live: Live, image: str) -> None:
    network = live.osc("alice", "network", "create", "lan", "-f", "json")
    assert network["status"] == "ACTIVE"
    # With a subnet the NIC has its fixed IP: nobody asks the test driver for the guest's addresses (its
    # interfaceAddresses crashes the process for a NIC on a libvirt network without addresses).
    live.osc("alice", "subnet", "create", "--network", "lan", "--subnet-range", "10.9.0.0/24", "lan-v4")
    nic = [{"uuid": network["id"]}]
    east = _call(live, "POST", "/servers", json={"server": {
        "name": "lan-east", "imageRef": image, "flavorRef": "1", "networks": nic, "availability_zone": "east"}})
    server = _settled(live, east.json()["server"]["id"])
    assert (server["status"], server["OS-EXT-SRV-ATTR:host"]) == ("ACTIVE", "edge"), server.get("fault")
    libvirt_name = f"net-{network['id']}"
    assert libvirt_name in _networks(live.layout.named_simulator_uri("edge")), "applied where its server is"
    assert libvirt_name in _networks(live.layout.named_simulator_uri("big")), "and on the first, from its creation"
    anywhere = _call(live, "POST", "/servers", json={"server": {
        "name": "lan-any", "imageRef": image, "flavorRef": "1", "networks": nic}})
    server = _settled(live, anywhere.json()["server"]["id"])
    assert server["status"] == "ACTIVE", server.get("fault")
    for name in ("lan-east", "lan-any"):  # the later tests count what each hypervisor holds
        assert _call(live, "DELETE", f"/servers/{_id_of(live, name)}").status_code == 204
    deadline = time.monotonic() + 60
    while {"lan-east", "lan-any"} & {s["name"] for s in _call(live, "GET", "/servers").json()["servers"]}:
        assert time.monotonic() < deadline, "deleted servers are gone"
        time.sleep(0.2)
    assert libvirt_name not in _networks(live.layout.named_simulator_uri("edge")), "its last server there left"


def _networks(uri: str) -> set[str]:
    conn = open_readonly(uri)
    try:
        return {n.name() for n in conn.listAllNetworks()}
    finally:
        conn.close()


def _id_of(live: Live, name: str) -> str:
    return next(s["id"] for s in _call(live, "GET", "/servers").json()["servers"] if s["name"] == name)


def test_hypervisor_list_and_show_through_the_openstack_cli(live: Live, image: str) -> None:
    listed = {h["Hypervisor Hostname"]: h for h in live.osc("admin", "hypervisor", "list", "-f", "json")}
    assert list(listed) == ["big", "small", "edge", "gone", "far"]
    assert listed["big"]["State"] == "up" and listed["far"]["State"] == "down"
    # `openstack hypervisor show` also lists os-aggregates, which the API does not serve: openstacksdk shows it.
    sdk = live.sdk("admin")
    found = sdk.compute.find_hypervisor("big", details=True)
    big = sdk.compute.get_hypervisor(found.id).to_dict()
    servers = [s for s in _call(live, "GET", "/servers/detail?all_tenants=1", user="admin").json()["servers"]
               if s["OS-EXT-SRV-ATTR:host"] == "big"]
    flavors = {"1": 512, "2": 2048, "3": 4096, "4": 8192}
    assert big["memory_size"] == SIZES["big"] and big["vcpus"] == 8 and big["local_disk_size"] == 100
    assert big["memory_used"] == sum(flavors[s["flavor"]["id"]] for s in servers) == 2048 + 2048 + 512
    assert big["running_vms"] == len(servers) > 0
    assert sdk.compute.get_hypervisor(sdk.compute.find_hypervisor("far").id).state == "down"
    stats = _call(live, "GET", "/os-hypervisors/statistics", user="admin").json()["hypervisor_statistics"]
    assert stats["count"] == 5 and stats["memory_mb"] >= SIZES["big"] + SIZES["small"]
    old = _call(live, "GET", "/os-hypervisors", user="admin").json()["hypervisors"]
    assert [h["id"] for h in old] == [1, 2, 3, 4, 5], "ids before 2.53: the config.yaml order"
    assert _call(live, "GET", "/os-hypervisors/sma/search", user="admin").json()["hypervisors"][0][
        "hypervisor_hostname"] == "small"
    assert _call(live, "GET", "/os-hypervisors", user="alice").status_code == 403


def test_a_hypervisor_that_went_away_fails_the_build_naming_it(live: Live, image: str) -> None:
    node = Path(live.layout.named_simulator_uri("gone")[len("test://"):])
    assert node.is_file(), "made at the API's start"
    placed = _settled(live, _create(live, image, "lost0", flavor="1", zone="lost"))
    assert (placed["status"], placed["OS-EXT-SRV-ATTR:host"]) == ("ACTIVE", "gone")
    node.unlink()
    server = _settled(live, _create(live, image, "lost1", flavor="1", zone="lost"))
    assert server["status"] == "ERROR" and "hypervisor gone is unreachable" in server["fault"]["message"]
    assert server["fault"]["message"].startswith("No valid host was found. "), "a down host takes nothing"
    # Placed before it went away, built after: the build fails at once, naming it (ServerTasks.before_build).
    hosts = Hosts(parse_config(read_document(config_path(live.layout)), "config.yaml").hypervisors,
                  live.layout)
    spec = spec_from_json(json.loads((live.layout.domain_dir(f"srv-{placed['id']}") / "spec.json").read_text()))
    with pytest.raises(HypervisorDown, match="hypervisor gone is unreachable"):
        hosts.check_spec(spec)
    gone = next(h for h in _call(live, "GET", "/os-hypervisors", user="admin").json()["hypervisors"]
                if h["hypervisor_hostname"] == "gone")
    assert gone["state"] == "down"


def test_an_admin_forces_a_host_with_zone_colon_host(live: Live, image: str) -> None:
    def create(user: str, zone: str) -> requests.Response:
        return _call(live, "POST", "/servers", user=user, json={"server": {
            "name": "forced", "imageRef": image, "flavorRef": "1", "networks": "none", "availability_zone": zone}})

    refused = create("alice", "east:edge")
    assert refused.status_code == 403 and "forced_host" in refused.json()["forbidden"]["message"]
    unknown = create("admin", "nova:nowhere")
    assert unknown.status_code == 400 and "Compute host 'nowhere' could not be found" in \
        unknown.json()["badRequest"]["message"]
    assert create("admin", "a:b:c:d").status_code == 400
    server = _settled(live, create("admin", "nova:edge").json()["server"]["id"])
    assert (server["status"], server["OS-EXT-SRV-ATTR:host"], server["OS-EXT-AZ:availability_zone"]) == (
        "ACTIVE", "edge", "east"), "the host's own zone, as Nova"
    # Forced onto a host that is gone (no placement check skips it): the build fails at once, naming it.
    server = _settled(live, create("admin", "lost:gone").json()["server"]["id"])
    assert (server["status"], server["OS-EXT-SRV-ATTR:host"]) == ("ERROR", "gone")
    assert server["fault"]["message"].startswith("hypervisor gone is unreachable: its node file")


def test_an_ssh_hypervisor_that_cannot_be_reached_fails_the_build_in_bounded_time(
        live: Live, image: str, known_hosts: Path) -> None:
    wrapper = (live.layout.simulators / "far" / "ssh").read_text()
    assert "StrictHostKeyChecking=yes" in wrapper and f'UserKnownHostsFile="{known_hosts}"' in wrapper
    assert "ConnectTimeout=" in wrapper
    server = _settled(live, _create(live, image, "far1", flavor="1", zone="far"))
    assert server["status"] == "ERROR" and "hypervisor far is unreachable" in server["fault"]["message"]
    assert server["OS-EXT-SRV-ATTR:host"] is None


def test_a_restarted_api_keeps_each_servers_hypervisor(live: Live, image: str) -> None:
    before = {s["id"]: s["OS-EXT-SRV-ATTR:host"]
              for s in _call(live, "GET", "/servers/detail?all_tenants=1", user="admin").json()["servers"]}
    assert {"big", "small"} <= set(before.values())
    with serve_layout(live.layout) as url:  # a new app over the same root: its records as stored
        again = Live(live.layout, url)
        after = {s["id"]: s["OS-EXT-SRV-ATTR:host"]
                 for s in _call(again, "GET", "/servers/detail?all_tenants=1", user="admin").json()["servers"]}
        small = _call(again, "GET", "/os-hypervisors/detail", user="admin").json()["hypervisors"][1]
    assert after == before
    assert small["hypervisor_hostname"] == "small" and small["memory_mb_used"] == 2 * 2048


V253 = {"OpenStack-API-Version": "compute 2.53"}


def _computes(live: Live) -> dict[str, dict[str, Any]]:
    services = _call(live, "GET", "/os-services", user="admin", headers=V253).json()["services"]
    return {s["host"]: s for s in services if s["binary"] == "nova-compute"}


def _set(live: Live, service_id: str, body: Any, user: str = "admin",
         headers: dict[str, str] | None = None) -> requests.Response:
    return _call(live, "PUT", f"/os-services/{service_id}", user=user, json=body,
                 headers=V253 if headers is None else headers)


def test_os_services_lists_one_compute_service_per_hypervisor(live: Live) -> None:
    services = _call(live, "GET", "/os-services", user="admin").json()["services"]
    assert [(s["binary"], s["host"], s["zone"], s["id"]) for s in services] == [
        ("nova-compute", "big", "nova", 1), ("nova-compute", "small", "nova", 2), ("nova-compute", "edge", "east", 3),
        ("nova-compute", "gone", "lost", 4), ("nova-compute", "far", "far", 5),
        ("nova-scheduler", services[5]["host"], "internal", 6), ("nova-conductor", services[5]["host"], "internal", 7)]
    hypervisors = _call(live, "GET", "/os-hypervisors", user="admin").json()["hypervisors"]
    assert {h["hypervisor_hostname"]: h["state"] for h in hypervisors} == \
        {host: s["state"] for host, s in _computes(live).items()}, "up or down as os-hypervisors says"
    assert _computes(live)["far"]["state"] == "down" and _computes(live)["big"]["state"] == "up"
    (edge,) = _call(live, "GET", "/os-services?host=edge&binary=nova-compute", user="admin",
                    headers=V253).json()["services"]
    assert (edge["status"], edge["forced_down"], edge["disabled_reason"]) == ("enabled", False, None)
    listed = live.osc("admin", "compute", "service", "list", "-f", "json")
    assert [(s["Binary"], s["Host"], s["Zone"]) for s in listed][:3] == [
        ("nova-compute", "big", "nova"), ("nova-compute", "small", "nova"), ("nova-compute", "edge", "east")]


def test_os_hosts_aggregates_and_the_usage_audit_know_every_hypervisor(live: Live, image: str) -> None:
    v242, v247 = {"OpenStack-API-Version": "compute 2.42"}, {"OpenStack-API-Version": "compute 2.47"}
    hosts = _call(live, "GET", "/os-hosts", user="admin", headers=v242).json()["hosts"]
    assert [(h["host_name"], h["zone"]) for h in hosts if h["service"] == "compute"] == [
        ("big", "nova"), ("small", "nova"), ("edge", "east"), ("gone", "lost"), ("far", "far")]
    east = _call(live, "GET", "/os-hosts?zone=east", user="admin", headers=v242).json()["hosts"]
    assert [h["host_name"] for h in east] == ["edge"]
    # A compute host's rows: its own capacity, and the servers placed on it (flavor RAM per project).
    made = _call(live, "POST", "/servers", user="admin", json={"server": {  # admin: alice's quota is used up
        "name": "on-some-host", "imageRef": image, "flavorRef": "1", "networks": "none",
        "availability_zone": "nova"}})
    assert made.status_code == 202, made.text
    ours = _settled(live, made.json()["server"]["id"])
    assert ours["OS-EXT-SRV-ATTR:host"] in SIZES, ours.get("fault")
    servers = _call(live, "GET", "/servers/detail?all_tenants=1", user="admin", headers=v247).json()["servers"]
    for name, memory in SIZES.items():
        rows = [r["resource"] for r in
                _call(live, "GET", f"/os-hosts/{name}", user="admin", headers=v242).json()["host"]]
        assert (rows[0]["project"], rows[0]["memory_mb"]) == ("(total)", memory)
        placed = [s for s in servers if s["OS-EXT-SRV-ATTR:host"] == name]
        assert rows[1]["memory_mb"] == sum(s["flavor"]["ram"] for s in placed), name
        projects = {r["project"] for r in rows[3:]}
        assert projects == {s["tenant_id"] for s in placed}, name
        assert (ours["tenant_id"] in projects) == (ours["OS-EXT-SRV-ATTR:host"] == name)
    assert _call(live, "DELETE", f"/servers/{ours['id']}", user="admin").status_code == 204
    assert _call(live, "GET", "/os-hosts/nowhere", user="admin", headers=v242).status_code == 404

    made = _call(live, "POST", "/os-aggregates", user="admin", json={"aggregate": {"name": "pair"}})
    assert made.status_code == 200, made.text
    action = f"/os-aggregates/{made.json()['aggregate']['id']}/action"
    added = _call(live, "POST", action, user="admin", json={"add_host": {"host": "small"}})
    assert added.status_code == 200 and added.json()["aggregate"]["hosts"] == ["small"], added.text
    assert _call(live, "POST", action, user="admin", json={"add_host": {"host": "nowhere"}}).status_code == 404
    assert _call(live, "POST", action, user="admin", json={"remove_host": {"host": "small"}}).status_code == 200

    audit = _call(live, "GET", "/os-instance_usage_audit_log", user="admin").json()["instance_usage_audit_logs"]
    assert audit["hosts_not_run"] == ["big", "small", "edge", "gone", "far"]


def test_a_disabled_or_forced_down_compute_service_takes_no_new_server(live: Live, image: str) -> None:
    def create(name: str) -> dict[str, Any]:  # as admin: alice's instances quota is taken by the tests above
        resp = _call(live, "POST", "/servers", user="admin", json={"server": {
            "name": name, "imageRef": image, "flavorRef": "1", "networks": "none", "availability_zone": "east"}})
        assert resp.status_code == 202, resp.text
        return _settled(live, resp.json()["server"]["id"])

    edge = _computes(live)["edge"]["id"]
    disabled = _set(live, edge, {"status": "disabled", "disabled_reason": "new disks"})
    assert disabled.status_code == 200, disabled.text
    shown = disabled.json()["service"]
    assert (shown["id"], shown["host"], shown["status"], shown["disabled_reason"], shown["state"]) == (
        edge, "edge", "disabled", "new disks", "up")
    assert _computes(live)["edge"]["status"] == "disabled", "kept"
    assert _hypervisor(live, "edge")[:3] == ("disabled", "up", "new disks"), "os-hypervisors shows its service's"
    refused = create("east-off")
    assert refused["status"] == "ERROR" and refused["fault"]["message"].startswith("No valid host was found. ")
    assert "edge: its nova-compute service is disabled" in refused["fault"]["message"]
    enabled = _set(live, edge, {"status": "enabled"}).json()["service"]
    assert (enabled["status"], enabled["disabled_reason"]) == ("enabled", None)
    back = create("east-on")
    assert (back["status"], back["OS-EXT-SRV-ATTR:host"]) == ("ACTIVE", "edge"), back.get("fault")

    assert _hypervisor(live, "edge")[:3] == ("enabled", "up", None)
    down = _set(live, edge, {"forced_down": "true"}).json()["service"]
    assert (down["forced_down"], down["state"], down["status"]) == (True, "down", "enabled")
    assert _hypervisor(live, "edge")[:2] == ("enabled", "down")
    forced = create("east-down")
    assert forced["status"] == "ERROR" and "edge: its nova-compute service" in forced["fault"]["message"]
    up = _set(live, edge, {"forced_down": False}).json()["service"]
    assert (up["forced_down"], up["state"]) == (False, "up")
    for server in (refused, back, forced):
        assert _call(live, "DELETE", f"/servers/{server['id']}", user="admin").status_code == 204


def _hypervisor(live: Live, name: str) -> tuple[str, str, str | None]:
    """(status, state, its service's disabled_reason) of hypervisor `name` in os-hypervisors/detail."""
    listed = _call(live, "GET", "/os-hypervisors/detail", user="admin", headers=V253).json()["hypervisors"]
    (found,) = [h for h in listed if h["hypervisor_hostname"] == name]
    return found["status"], found["state"], found["service"]["disabled_reason"]


def test_bad_service_updates_are_refused(live: Live) -> None:
    edge = _computes(live)["edge"]["id"]
    scheduler = next(s for s in _call(live, "GET", "/os-services?binary=nova-scheduler", user="admin",
                                      headers=V253).json()["services"])["id"]
    unknown = "7c9e6679-7425-40de-944b-e07fc1f90ae7"
    for body, status, words in [
        ({"status": "maybe"}, 400, "status"),
        ({"status": "enabled", "disabled_reason": "why"}, 400, "Specifying 'disabled_reason' with status 'enabled'"),
        ({"disabled_reason": "alone"}, 400, "No updates were requested"),
        ({}, 400, "No updates were requested"),
        ({"status": "disabled", "disabled_reason": "x" * 256}, 400, "disabled_reason"),
        ({"status": "disabled", "disabled_reason": ""}, 400, "disabled_reason"),
        ({"forced_down": "maybe"}, 400, "forced_down"),
        ({"host": "edge", "binary": "nova-compute"}, 400, "host"),
        ([1], 400, "body"),
    ]:
        resp = _set(live, edge, body)
        assert resp.status_code == status and words in resp.json()["badRequest"]["message"], (body, resp.text)
    assert _set(live, unknown, {"status": "disabled"}).status_code == 404
    not_uuid = _set(live, "edge", {"status": "disabled"})
    assert not_uuid.status_code == 400 and "Invalid uuid 'edge'" in not_uuid.json()["badRequest"]["message"]
    other = _set(live, scheduler, {"status": "disabled"})
    assert other.status_code == 400 and "Updating a nova-scheduler service is not supported" in other.text
    assert _set(live, edge, {"status": "disabled"}, user="alice").status_code == 403
    old = _set(live, "enable", {"host": "edge", "binary": "nova-compute"}, headers={})
    assert old.status_code == 404, "before 2.53 the path is an action, not served"
    assert _computes(live)["edge"]["status"] == "enabled", "nothing refused was stored"
