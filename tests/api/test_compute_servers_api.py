"""Nova server endpoints and parameters Tempest needs (issue #12): multi-create, requested security groups,
rename, metadata, ips, list filters and pagination, and the server body by microversion. Servers build on the
simulated hypervisor through the real engine."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest
import requests
from apitest import Live, live, names_field, qcow2_file  # noqa: F401 (fixtures)

V247 = {"OpenStack-API-Version": "compute 2.47"}
V279 = {"OpenStack-API-Version": "compute 2.79"}


@pytest.fixture(scope="module")
def image_id(live: Live, qcow2_file: Path) -> str:  # noqa: F811
    image = live.osc("alice", "image", "create", "--file", str(qcow2_file), "--disk-format", "qcow2",
                     "api-servers", "-f", "json")
    return image["id"]


def _call(live: Live, method: str, path: str, body: Any = None, headers: dict[str, str] | None = None,
          user: str = "alice") -> requests.Response:
    return requests.request(method, f"{live.url}/compute/v2.1{path}", json=body, timeout=60,
                            headers={"X-Auth-Token": live.token(user), **(headers or {})})


def _create(live: Live, image: str, name: str, headers: dict[str, str] | None = None,
            **extra: Any) -> requests.Response:
    body = {"server": {"name": name, "imageRef": image, "flavorRef": "1", "networks": "auto", **extra}}
    return _call(live, "POST", "/servers", body, headers)


def _wait_active(live: Live, server_id: str) -> dict[str, Any]:
    for _ in range(600):  # bounded: 600 polls of 0.2 s
        server = _call(live, "GET", f"/servers/{server_id}").json()["server"]
        if server["status"] in ("ACTIVE", "ERROR"):
            assert server["status"] == "ACTIVE", server.get("fault")
            return server
        time.sleep(0.2)
    raise AssertionError(f"server {server_id} did not become ACTIVE")


def _names(resp: requests.Response) -> list[str]:
    return [s["name"] for s in resp.json()["servers"]]


def test_multi_create_names_each_server(live: Live, image_id: str) -> None:
    resp = _create(live, image_id, "multi", min_count=2, max_count=3)
    assert resp.status_code == 202, resp.text
    listed = _call(live, "GET", "/servers?name=^multi-").json()["servers"]
    assert sorted(s["name"] for s in listed) == ["multi-1", "multi-2", "multi-3"]
    for server in listed:
        _wait_active(live, server["id"])
    reserved = _create(live, image_id, "resv", max_count=2, return_reservation_id=True)
    assert reserved.status_code == 202 and reserved.json()["reservation_id"].startswith("r-")
    assert sorted(_names(_call(live, "GET", "/servers?name=^resv-"))) == ["resv-1", "resv-2"]
    made = lambda: [s["id"] for prefix in ("multi", "resv")  # noqa: E731
                    for s in _call(live, "GET", f"/servers?name=^{prefix}-").json()["servers"]]
    assert len(made()) == 5
    for server_id in made():  # the other tests stay within the instances quota
        assert _call(live, "DELETE", f"/servers/{server_id}").status_code == 204
    for _ in range(600):  # bounded: deleting servers count against the quota until they are gone
        if not made():
            break
        time.sleep(0.2)


@pytest.mark.parametrize(("extra", "field", "reason"), [
    ({"min_count": 3, "max_count": 2}, "server.min_count", "must be <= max_count"),
    ({"min_count": 0}, "server.min_count", "is below the minimum of 1"),
    ({"max_count": "x" * 100}, "server.max_count", "does not match"),
    ({"max_count": 101}, "server.max_count", "at most 100"),
    ({"security_groups": [{"name": "no-such-group"}]}, "server.security_groups[0].name", "not found"),
    ({"security_groups": ["default"]}, "server.security_groups[0]", "is not an object"),
    ({"description": "before 2.19"}, "server.description", "2.19"),
    ({"min_count": "0"}, "server.min_count", "does not match"),
    ({"security_groups": [{}]}, "server.security_groups[0].name", "is required"),
    ({"accessIPv4": "192.0.2"}, "server.accessIPv4", "is not a valid ipv4"),
    ({"accessIPv6": "192.0.2.1"}, "server.accessIPv6", "is not a valid ipv6"),
    ({"OS-DCF:diskConfig": "SOME"}, "server.OS-DCF:diskConfig", "use one of AUTO, MANUAL"),
    ({"return_reservation_id": "maybe"}, "server.return_reservation_id", "use one of"),
])
def test_bad_create_fields_are_named_and_nothing_is_made(live: Live, image_id: str, extra: dict[str, Any],
                                                          field: str, reason: str) -> None:
    before = len(_call(live, "GET", "/servers").json()["servers"])
    resp = _create(live, image_id, "refused", **extra)
    message = resp.json()["badRequest"]["message"]
    assert resp.status_code == 400 and names_field(message, field) and reason in message, message
    assert len(resp.content) < 400
    assert len(_call(live, "GET", "/servers").json()["servers"]) == before


def test_requested_security_groups_are_kept(live: Live, image_id: str) -> None:
    group = live.osc("alice", "security", "group", "create", "web", "-f", "json")
    resp = _create(live, image_id, "guarded", security_groups=[{"name": "web"}, {"name": group["id"]}])
    assert resp.status_code == 202, resp.text
    assert resp.json()["server"]["security_groups"] == [{"name": "web"}]
    server_id = resp.json()["server"]["id"]
    assert _call(live, "GET", f"/servers/{server_id}").json()["server"]["security_groups"] == [{"name": "web"}]
    shown = live.osc("alice", "server", "show", server_id, "-f", "json")
    assert "web" in str(shown["security_groups"])
    ports = live.osc("alice", "port", "list", "--server", server_id, "--long", "-f", "json")
    assert [p["Security Groups"] for p in ports] == [[group["id"]]], "its NIC is a port in its groups"
    _wait_active(live, server_id)
    plan = (live.layout.domain_dir(f"srv-{server_id}") / "terraform" / "main.tf").read_text()
    assert f'filter_ref = {{ filter = "provisioner-port-{ports[0]["ID"]}" }}' in plan, "its NIC's filter"
    # A renamed group keeps its servers (a Neutron port holds its groups by id): Nova shows the new name.
    live.osc("alice", "security", "group", "set", "--name", "web-renamed", group["id"])
    assert _call(live, "GET", f"/servers/{server_id}").json()["server"]["security_groups"] == [
        {"name": "web-renamed"}]
    ports = live.osc("alice", "port", "list", "--server", server_id, "--long", "-f", "json")
    assert [p["Security Groups"] for p in ports] == [[group["id"]]]
    neutron = requests.delete(f"{live.url}/network/v2.0/security-groups/{group['id']}", timeout=30,
                              headers={"X-Auth-Token": live.token("alice")})
    assert neutron.status_code == 409 and "in use" in neutron.text, neutron.text
    in_use = _call(live, "DELETE", f"/os-security-groups/{group['id']}")
    assert in_use.status_code == 400 and "in use" in in_use.json()["badRequest"]["message"]
    action = f"/servers/{server_id}/action"
    assert _call(live, "POST", action, {"addSecurityGroup": {"name": "default"}}).status_code == 202
    assert _call(live, "POST", action, {"addSecurityGroup": {"name": "default"}}).status_code == 400
    assert _call(live, "POST", action, {"removeSecurityGroup": {"name": "web-renamed"}}).status_code == 202
    assert _call(live, "POST", action, {"removeSecurityGroup": {"name": "web-renamed"}}).status_code == 400
    assert _call(live, "POST", action, {"addSecurityGroup": {"name": "nope"}}).status_code == 404
    groups = _call(live, "GET", f"/servers/{server_id}/os-security-groups").json()["security_groups"]
    assert [g["name"] for g in groups] == ["default"]
    assert _call(live, "POST", action, {"removeSecurityGroup": {"name": "default"}}).status_code == 202
    assert "security_groups" not in _call(live, "GET", f"/servers/{server_id}").json()["server"], \
        "Nova leaves the key out for a server in no group"


def test_rename_metadata_and_ips(live: Live, image_id: str) -> None:
    resp = _create(live, image_id, "meta", metadata={"a": "1"})
    server_id = resp.json()["server"]["id"]
    _wait_active(live, server_id)
    renamed = _call(live, "PUT", f"/servers/{server_id}", {"server": {"name": "meta-renamed"}})
    assert renamed.status_code == 200 and renamed.json()["server"]["name"] == "meta-renamed"
    assert "key_name" not in renamed.json()["server"], "2.1's update view"
    described = _call(live, "PUT", f"/servers/{server_id}", {"server": {"description": "d"}}, V279)
    assert described.json()["server"]["description"] == "d" and "key_name" in described.json()["server"]
    assert _call(live, "PUT", f"/servers/{server_id}", {"server": {"name": ""}}).status_code == 400
    assert _call(live, "PUT", f"/servers/{server_id}", {"server": {"flavorRef": "2"}}).status_code == 400

    path = f"/servers/{server_id}/metadata"
    assert _call(live, "GET", path).json() == {"metadata": {"a": "1"}}
    assert _call(live, "POST", path, {"metadata": {"b": "2"}}).json() == {"metadata": {"a": "1", "b": "2"}}
    assert _call(live, "PUT", path, {"metadata": {"c": "3"}}).json() == {"metadata": {"c": "3"}}
    assert _call(live, "PUT", f"{path}/d", {"meta": {"d": "4"}}).json() == {"meta": {"d": "4"}}
    assert _call(live, "GET", f"{path}/d").json() == {"meta": {"d": "4"}}
    assert _call(live, "PUT", f"{path}/d", {"meta": {"e": "5"}}).status_code == 400, "URI and body mismatch"
    assert _call(live, "POST", path, {"metadata": {"k": 1}}).status_code == 400
    assert _call(live, "POST", path, {"metadata": {"k" * 256: "v"}}).status_code == 400
    assert _call(live, "DELETE", f"{path}/d").status_code == 204
    assert _call(live, "GET", f"{path}/d").status_code == 404
    assert _call(live, "GET", path, user="bob").status_code == 404, "another project's server"
    conn = live.sdk("alice")
    conn.compute.set_server_metadata(server_id, f="6")
    assert conn.compute.get_server_metadata(server_id).metadata == {"c": "3", "f": "6"}

    ips = _call(live, "GET", f"/servers/{server_id}/ips").json()["addresses"]
    assert ips["default"] and set(ips["default"][0]) == {"version", "addr"}
    assert _call(live, "GET", f"/servers/{server_id}/ips/default").json() == {"default": ips["default"]}
    assert _call(live, "GET", f"/servers/{server_id}/ips/nowhere").status_code == 404


def test_list_filters_and_pagination(live: Live, image_id: str) -> None:
    for name in ("page-a", "page-b", "page-c"):
        assert _create(live, image_id, name).status_code == 202
    newest_first = _names(_call(live, "GET", "/servers?name=^page-"))
    assert newest_first == ["page-c", "page-b", "page-a"]
    first = _call(live, "GET", "/servers?name=^page-&limit=2").json()
    assert [s["name"] for s in first["servers"]] == ["page-c", "page-b"]
    following = requests.get(first["servers_links"][0]["href"], timeout=60,
                             headers={"X-Auth-Token": live.token("alice")}).json()
    assert [s["name"] for s in following["servers"]] == ["page-a"] and "servers_links" not in following
    assert _call(live, "GET", "/servers?marker=nope").status_code == 400
    assert _call(live, "GET", "/servers?limit=-1").status_code == 400
    assert _names(_call(live, "GET", "/servers?name=^page-&flavor=2")) == []
    assert len(_names(_call(live, "GET", f"/servers?name=^page-&image={image_id}&flavor=1"))) == 3
    assert _names(_call(live, "GET", "/servers?name=^page-&changes-since=2999-01-01T00:00:00Z")) == []
    assert len(_names(_call(live, "GET", "/servers?name=^page-&changes-since=2000-01-01T00:00:00"))) == 3
    assert _call(live, "GET", "/servers?changes-since=yesterday").status_code == 400
    assert len(list(live.sdk("alice").compute.servers(name="^page-", limit=1))) == 3, "the SDK follows links"


def test_list_filtered_by_ip(live: Live, image_id: str) -> None:
    """Nova's `ip` filter: a regular expression matched at the start of a fixed IPv4 address."""
    net = requests.post(f"{live.url}/network/v2.0/networks", json={"network": {"name": "ip-filter"}}, timeout=120,
                        headers={"X-Auth-Token": live.token("alice")}).json()["network"]
    subnet = requests.post(f"{live.url}/network/v2.0/subnets", timeout=120, headers={"X-Auth-Token": live.token(
        "alice")}, json={"subnet": {"network_id": net["id"], "cidr": "10.78.0.0/24", "ip_version": 4}})
    assert subnet.status_code == 201, subnet.text
    made = []
    for name, fixed in (("ipf-5", "10.78.0.5"), ("ipf-50", "10.78.0.50"), ("ipf-6", "10.78.0.6")):
        resp = _call(live, "POST", "/servers", {"server": {"name": name, "imageRef": image_id, "flavorRef": "1",
                                                           "networks": [{"uuid": net["id"], "fixed_ip": fixed}]}})
        assert resp.status_code == 202, resp.text
        made.append(resp.json()["server"]["id"])
    for query, names in (("ip=10.78.0.5", ["ipf-50", "ipf-5"]), ("ip=10.78.0.50", ["ipf-50"]),
                         ("ip=10.78.0.6", ["ipf-6"]), ("ip=78", []), ("ip=10%5C.78%5C.0%5C.%5B56%5D%24", ["ipf-6", "ipf-5"]),
                         ("ip6=10.78", [])):
        assert _names(_call(live, "GET", f"/servers?name=^ipf-&{query}")) == names, query
    for server_id in made:  # the module's project has the default quota of 10 instances
        _wait_active(live, server_id)
        live.osc("alice", "server", "delete", "--wait", server_id)


def test_server_body_follows_the_version(live: Live, image_id: str) -> None:
    created = _create(live, image_id, "versioned")
    assert created.status_code == 202, created.text
    server_id = created.json()["server"]["id"]
    old = _call(live, "GET", f"/servers/{server_id}").json()["server"]
    assert set(old["flavor"]) == {"id", "links"} and "locked" not in old and "tags" not in old
    embedded = _call(live, "GET", f"/servers/{server_id}", headers=V247).json()["server"]
    assert embedded["flavor"] == {"original_name": "m1.tiny", "disk": 1, "ephemeral": 0, "ram": 512, "swap": 0,
                                  "vcpus": 1, "extra_specs": {}}
    new = _call(live, "GET", f"/servers/{server_id}", headers=V279).json()["server"]
    assert (new["locked"], new["description"], new["tags"], new["server_groups"]) == (False, None, [], [])
    assert new["trusted_image_certificates"] is None and new["locked_reason"] is None
    listed = _call(live, "GET", "/servers/detail?name=^versioned$", headers=V279).json()["servers"][0]
    assert "server_groups" not in listed and listed["tags"] == []


def _volume_status(live: Live, volume_id: str, wanted: str) -> None:
    for _ in range(600):  # bounded: 600 polls of 0.2 s
        resp = requests.get(f"{live.url}/volume/v3/volumes/{volume_id}", timeout=60,
                            headers={"X-Auth-Token": live.token("alice")})
        if resp.json()["volume"]["status"] == wanted:
            return
        time.sleep(0.2)
    raise AssertionError(f"volume {volume_id} did not become {wanted}")


def test_volume_attachment_body_follows_the_version(live: Live, image_id: str) -> None:
    server_id = _create(live, image_id, "attaching").json()["server"]["id"]
    _wait_active(live, server_id)
    volume = requests.post(f"{live.url}/volume/v3/volumes", json={"volume": {"size": 1, "name": "att"}},
                           headers={"X-Auth-Token": live.token("alice")}, timeout=60).json()["volume"]
    _volume_status(live, volume["id"], "available")
    path = f"/servers/{server_id}/os-volume_attachments"
    made = _call(live, "POST", path, {"volumeAttachment": {"volumeId": volume["id"]}}, V279)
    assert made.status_code == 200, made.text
    assert made.json()["volumeAttachment"]["delete_on_termination"] is False
    assert made.json()["volumeAttachment"]["tag"] is None
    _volume_status(live, volume["id"], "in-use")
    old = _call(live, "GET", f"{path}/{volume['id']}").json()["volumeAttachment"]
    assert "delete_on_termination" not in old and "tag" not in old
    listed = _call(live, "GET", path, headers=V279).json()["volumeAttachments"]
    assert [a["delete_on_termination"] for a in listed] == [False]
    swap = {"volumeAttachment": {"volumeId": volume["id"]}}
    assert _call(live, "PUT", f"{path}/{volume['id']}", swap).status_code == 403, "an admin's or a service's"
    missing = f"{path}/00000000-0000-4000-8000-000000000000"
    assert _call(live, "PUT", missing, swap, user="admin").status_code == 404, "no such attachment"
    refused = _call(live, "PUT", f"{path}/{volume['id']}", swap, user="admin")
    assert refused.status_code == 409 and "not supported" in refused.text, "no swap under a running guest"
    bad = _call(live, "PUT", f"{path}/{volume['id']}", {"volumeAttachment": {}}, user="admin")
    assert bad.status_code == 400 and "volumeId" in bad.json()["badRequest"]["message"]


def test_admin_reset_state_and_host_fields(live: Live, image_id: str) -> None:
    server_id = _create(live, image_id, "resettable").json()["server"]["id"]
    _wait_active(live, server_id)
    assert not any(k.startswith("OS-EXT-SRV-ATTR:") for k in _call(live, "GET", f"/servers/{server_id}").json()
                   ["server"]), "host fields are an admin's"
    shown = _call(live, "GET", f"/servers/{server_id}", user="admin").json()["server"]
    assert shown["OS-EXT-SRV-ATTR:host"] and shown["OS-EXT-SRV-ATTR:instance_name"] == f"srv-{server_id}"
    action = f"/servers/{server_id}/action"
    assert _call(live, "POST", action, {"os-resetState": {"state": "error"}}).status_code == 403
    bad = _call(live, "POST", action, {"os-resetState": {"state": "x" * 500}}, user="admin")
    assert bad.status_code == 400 and len(bad.content) < 400
    assert _call(live, "POST", action, {"os-resetState": {"state": "error"}}, user="admin").status_code == 202
    assert _call(live, "GET", f"/servers/{server_id}").json()["server"]["status"] == "ERROR"
    assert _call(live, "POST", action, {"os-resetState": {"state": "active"}}, user="admin").status_code == 202
    assert _call(live, "GET", f"/servers/{server_id}").json()["server"]["status"] == "ACTIVE"
    assert _call(live, "POST", action, {"injectNetworkInfo": None}).status_code == 403
    assert _call(live, "POST", action, {"injectNetworkInfo": None}, user="admin").status_code == 202
    for never_soft_deleted in ("restore", "forceDelete"):
        refused = _call(live, "POST", action, {never_soft_deleted: None}, user="admin")
        assert refused.status_code == 409 and "vm_state active" in refused.text, refused.text

    def listed(query: str) -> list[str]:
        return [s["id"] for s in _call(live, "GET", f"/servers?{query}", user="admin").json()["servers"]]
    project = shown["tenant_id"]
    assert server_id in listed(f"all_tenants=1&tenant_id={project}")
    assert server_id in listed(f"all_tenants&project_id={project}"), "all_tenants without a value counts"
    assert server_id not in listed("all_tenants=1&tenant_id=another-project")
    assert server_id not in listed(f"tenant_id={project}"), "without all_tenants: the admin's own project"
    assert server_id in listed(f"all_tenants=1&host={shown['OS-EXT-SRV-ATTR:host']}")
    assert server_id not in listed("all_tenants=1&host=nonexistent_host")
    assert server_id in [s["id"] for s in _call(live, "GET", "/servers?host=nonexistent_host").json()["servers"]], \
        "host is an admin's filter: dropped for others, as Nova drops it"


def test_access_ips_are_kept(live: Live, image_id: str) -> None:
    bad = _create(live, image_id, "access-bad", accessIPv4="::1")
    assert bad.status_code == 400 and names_field(bad.json()["badRequest"]["message"], "server.accessIPv4")
    server_id = _create(live, image_id, "access", accessIPv4="192.0.2.7").json()["server"]["id"]
    assert _call(live, "GET", f"/servers/{server_id}").json()["server"]["accessIPv4"] == "192.0.2.7"
    updated = _call(live, "PUT", f"/servers/{server_id}", {"server": {"accessIPv6": "0:0:0:0:0:babe:220.12.22.2",
                                                                       "OS-DCF:diskConfig": "AUTO"}})
    assert updated.status_code == 200 and updated.json()["server"]["accessIPv6"] == "::babe:dc0c:1602"
    assert _call(live, "GET", f"/servers/{server_id}").json()["server"]["OS-DCF:diskConfig"] == "AUTO"
    assert _call(live, "PUT", f"/servers/{server_id}", {"server": {"OS-DCF:diskConfig": "x"}}).status_code == 400
    assert _call(live, "PUT", f"/servers/{server_id}", {"server": {"accessIPv6": "x" * 300}}).status_code == 400
    assert _call(live, "DELETE", f"/servers/{server_id}").status_code == 204


def test_a_locked_server_takes_no_action_but_an_admins(live: Live, image_id: str) -> None:
    server_id = _create(live, image_id, "lockable").json()["server"]["id"]
    _wait_active(live, server_id)
    action = f"/servers/{server_id}/action"
    reason = _call(live, "POST", action, {"lock": {"locked_reason": "r"}})
    assert reason.status_code == 400, "a reason needs 2.73"
    assert _call(live, "POST", action, {"lock": {"locked_reason": "maintenance"}}, V279).status_code == 202
    shown = _call(live, "GET", f"/servers/{server_id}", headers=V279).json()["server"]
    assert (shown["locked"], shown["locked_reason"]) == (True, "maintenance")
    assert _call(live, "POST", action, {"os-stop": None}).status_code == 409
    assert _call(live, "DELETE", f"/servers/{server_id}").status_code == 409
    assert _call(live, "POST", action, {"os-getConsoleOutput": {}}).status_code == 200
    assert _call(live, "POST", action, {"unlock": None}).status_code == 202
    assert _call(live, "POST", action, {"os-stop": None}).status_code == 202
    assert _call(live, "GET", f"/servers/{server_id}", headers=V279).json()["server"]["locked"] is False


def test_flavor_below_the_images_min_ram_is_refused(live: Live, qcow2_file: Path) -> None:  # noqa: F811
    image = live.osc("alice", "image", "create", "--file", str(qcow2_file), "--disk-format", "qcow2",
                     "--min-ram", "100000", "needs-ram", "-f", "json")["id"]
    before = len(_call(live, "GET", "/servers").json()["servers"])
    resp = _create(live, image, "too-small")
    message = resp.json()["badRequest"]["message"]
    assert resp.status_code == 400 and message.startswith("server.flavorRef") and "min_ram" in message, message
    assert len(_call(live, "GET", "/servers").json()["servers"]) == before


def test_an_action_nova_has_and_this_api_does_not_perform_is_a_400_naming_it(live: Live, image_id: str) -> None:
    """migrate, shelve, rescue …: the schema lets them through (a missing server is a 404, as Nova), the
    responder refuses them for an existing server, which stays as it was."""
    server_id = _create(live, image_id, "not-migrated").json()["server"]["id"]
    try:
        _wait_active(live, server_id)
        for action in ("migrate", "shelve", "rescue"):
            refused = _call(live, "POST", f"/servers/{server_id}/action", {action: None})
            assert refused.json() == {"badRequest": {"code": 400, "message": f"body: action '{action}' is not "
                                                                            "supported"}}, refused.text
        assert _call(live, "GET", f"/servers/{server_id}").json()["server"]["status"] == "ACTIVE"
    finally:
        _call(live, "DELETE", f"/servers/{server_id}")
