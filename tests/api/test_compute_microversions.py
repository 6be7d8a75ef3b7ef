"""Nova microversions (issue #12): the range advertised, the request and response headers, the refusals,
and the behaviour that changes with the version (keypairs, flavors, servers)."""

from __future__ import annotations

import pytest
import requests
from apitest import Live, live, names_field  # noqa: F401 (fixture)

NEW = {"OpenStack-API-Version": "compute 2.79"}


def _get(live: Live, path: str, user: str = "alice", headers: dict[str, str] | None = None) -> requests.Response:
    return requests.get(f"{live.url}/compute/v2.1{path}", timeout=30,
                        headers={"X-Auth-Token": live.token(user), **(headers or {})})


def test_version_documents_advertise_the_range(live: Live) -> None:
    root = requests.get(f"{live.url}/compute", timeout=30)
    assert root.status_code == 200, "Nova's version list is a 200 (Tempest's list_versions schema)"
    assert [v["id"] for v in root.json()["versions"]] == ["v2.0", "v2.1"], "Nova lists v2.0 first"
    assert root.json()["versions"][1]["version"] == "2.79"
    version = requests.get(f"{live.url}/compute/v2.1", timeout=30).json()["version"]
    assert (version["min_version"], version["version"]) == ("2.1", "2.79")


@pytest.mark.parametrize(("headers", "served"), [
    ({}, "2.1"),
    ({"OpenStack-API-Version": "compute 2.47"}, "2.47"),
    ({"OpenStack-API-Version": "volume 3.5, compute 2.10"}, "2.10"),
    ({"OpenStack-API-Version": "COMPUTE latest"}, "2.79"),
    ({"X-OpenStack-Nova-API-Version": "2.26"}, "2.26"),
    ({"OpenStack-API-Version": "volume 3.5", "X-OpenStack-Nova-API-Version": "2.3"}, "2.3"),
])
def test_the_version_served_is_named_in_both_headers(live: Live, headers: dict[str, str], served: str) -> None:
    resp = _get(live, "/flavors", headers=headers)
    assert resp.status_code == 200
    assert resp.headers["OpenStack-API-Version"] == f"compute {served}"
    assert resp.headers["X-OpenStack-Nova-API-Version"] == served
    assert "OpenStack-API-Version" in resp.headers["Vary"]
    assert "X-OpenStack-Nova-API-Version" in resp.headers["Vary"]


@pytest.mark.parametrize(("value", "status"), [
    ("compute 2.80", 406), ("compute 3.0", 406), ("compute 2.0", 406), ("compute 2.x", 400),
    ("compute 2.01", 400), ("compute " + "9" * 500, 400), ("compute 2.1.1", 400),
])
def test_unsupported_or_malformed_versions_are_refused(live: Live, value: str, status: int) -> None:
    resp = _get(live, "/flavors", headers={"OpenStack-API-Version": value})
    assert resp.status_code == status
    kind = "notAcceptable" if status == 406 else "badRequest"
    message = resp.json()[kind]["message"]
    assert ("Minimum is 2.1 and maximum is 2.79" in message) if status == 406 else ("invalid format" in message)
    assert len(resp.content) < 400, "the refused value is cut, not echoed whole"


def test_keypair_answers_follow_the_version(live: Live) -> None:
    token = {"X-Auth-Token": live.token("alice")}
    url = f"{live.url}/compute/v2.1/os-keypairs"
    old = requests.post(url, json={"keypair": {"name": "mv-old"}}, headers=token, timeout=30)
    assert old.status_code == 200 and "type" not in old.json()["keypair"]
    new = requests.post(url, json={"keypair": {"name": "mv-new"}}, headers={**token, **NEW}, timeout=30)
    assert new.status_code == 201 and new.json()["keypair"]["type"] == "ssh"
    listed = requests.get(url, headers=token, timeout=30).json()["keypairs"]
    assert all(set(k["keypair"]) == {"name", "public_key", "fingerprint"} for k in listed)
    shown = requests.get(f"{url}/mv-old", headers=token, timeout=30).json()["keypair"]
    assert isinstance(shown["id"], int) and shown["updated_at"] is None and "type" not in shown
    assert requests.delete(f"{url}/mv-old", headers=token, timeout=30).status_code == 202
    assert requests.delete(f"{url}/mv-new", headers={**token, **NEW}, timeout=30).status_code == 204


def test_flavor_fields_follow_the_version(live: Live) -> None:
    old = _get(live, "/flavors/detail").json()["flavors"][0]
    assert "description" not in old and "extra_specs" not in old
    new = _get(live, "/flavors/detail", headers=NEW).json()["flavors"][0]
    assert new["description"] is None and new["extra_specs"] == {}
    assert "description" in _get(live, "/flavors", headers=NEW).json()["flavors"][0]


def test_stock_clients_negotiate_the_new_range(live: Live) -> None:
    conn = live.sdk("alice")
    created = conn.compute.create_keypair(name="mv-sdk")
    assert created.type == "ssh" and created.private_key
    assert conn.compute.get_keypair("mv-sdk").fingerprint == created.fingerprint
    conn.compute.delete_keypair("mv-sdk")
    assert live.osc("alice", "flavor", "show", "m1.tiny", "-f", "json")["name"] == "m1.tiny"


def test_flavor_filters_pagination_and_extra_specs(live: Live) -> None:
    ids = lambda resp: [f["id"] for f in resp.json()["flavors"]]  # noqa: E731
    assert ids(_get(live, "/flavors?minRam=2048&minDisk=40")) == ["3", "4"]
    first = _get(live, "/flavors/detail?limit=2")
    assert ids(first) == ["1", "2"] and first.json()["flavors_links"][0]["rel"] == "next"
    following = requests.get(first.json()["flavors_links"][0]["href"], timeout=30,
                             headers={"X-Auth-Token": live.token("alice")})
    assert ids(following) == ["3", "4"] and "flavors_links" not in following.json()
    assert _get(live, "/flavors?marker=nope").status_code == 400
    assert _get(live, "/flavors?minRam=-1").json()["badRequest"]["message"].startswith("minRam")
    assert _get(live, "/flavors/1/os-extra_specs").json() == {"extra_specs": {}}
    assert _get(live, "/flavors/1/os-extra_specs/hw:cpu_policy").status_code == 404
    assert _get(live, "/flavors/9/os-extra_specs").status_code == 404
    assert live.sdk("alice").compute.get_flavor("1").name == "m1.tiny"


def test_x509_keypairs_and_other_users_keypairs(live: Live) -> None:
    url = f"{live.url}/compute/v2.1/os-keypairs"
    alice = {"X-Auth-Token": live.token("alice")}
    made = requests.post(url, json={"keypair": {"name": "cert", "type": "x509"}}, headers={**alice, **NEW},
                         timeout=30)
    assert made.status_code == 201, made.text
    body = made.json()["keypair"]
    assert body["type"] == "x509" and body["public_key"].startswith("-----BEGIN CERTIFICATE-----")
    assert "PRIVATE KEY" in body["private_key"] and len(body["fingerprint"].split(":")) == 20
    old = requests.post(url, json={"keypair": {"name": "cert2", "type": "x509"}}, headers=alice, timeout=30)
    assert old.status_code == 400 and "2.2" in old.json()["badRequest"]["message"]
    bad = requests.post(url, json={"keypair": {"name": "c3", "type": "x509", "public_key": "junk"}},
                        headers={**alice, **NEW}, timeout=30)
    assert bad.status_code == 400 and bad.json()["badRequest"]["message"].startswith("keypair.public_key")

    admin = {"X-Auth-Token": live.token("admin"), **NEW}
    users = {u["Name"]: u["ID"] for u in live.osc("admin", "user", "list", "-f", "json")}
    for_alice = requests.post(url, json={"keypair": {"name": "given", "user_id": users["alice"]}}, headers=admin,
                              timeout=30)
    assert for_alice.status_code == 201 and for_alice.json()["keypair"]["user_id"] == users["alice"]
    assert "given" in {k["keypair"]["name"] for k in requests.get(url, headers=alice, timeout=30).json()["keypairs"]}
    listed = requests.get(url, params={"user_id": users["alice"]}, headers=admin, timeout=30).json()["keypairs"]
    assert "given" in {k["keypair"]["name"] for k in listed}
    refused = requests.get(url, params={"user_id": users["bob"]}, headers={**alice, **NEW}, timeout=30)
    assert refused.status_code == 403
    assert requests.delete(f"{url}/given", params={"user_id": users["alice"]}, headers=admin,
                           timeout=30).status_code == 204


def test_admins_create_and_delete_flavors(live: Live) -> None:
    url = f"{live.url}/compute/v2.1/flavors"
    admin = {"X-Auth-Token": live.token("admin")}
    body = {"flavor": {"name": "made.1", "ram": 256, "vcpus": 1, "disk": 2, "id": "made-1"}}
    assert requests.post(url, json=body, headers={"X-Auth-Token": live.token("alice")}, timeout=30
                         ).status_code == 403
    made = requests.post(url, json=body, headers=admin, timeout=30)
    assert made.status_code == 200 and made.json()["flavor"]["ram"] == 256, made.text
    assert requests.post(url, json=body, headers=admin, timeout=30).status_code == 409
    assert "made-1" in {f["id"] for f in _get(live, "/flavors").json()["flavors"]}
    assert live.osc("alice", "flavor", "show", "made.1", "-f", "json")["disk"] == 2
    private = requests.post(url, json={"flavor": {**body["flavor"], "id": "private", "name": "private",
                                                  "os-flavor-access:is_public": "False"}}, headers=admin, timeout=30)
    assert private.status_code == 200 and private.json()["flavor"]["os-flavor-access:is_public"] is False
    assert requests.delete(f"{url}/private", headers=admin, timeout=30).status_code == 202
    for bad, field in (({"os-flavor-access:is_public": "maybe"}, "flavor.os-flavor-access:is_public"),
                       ({"ram": 0}, "flavor.ram"), ({"vcpus": "x" * 90}, "flavor.vcpus"), ({"name": " "}, "flavor.name"),
                       ({"disk": None}, "flavor.disk")):
        resp = requests.post(url, json={"flavor": {**body["flavor"], "id": "other", **bad}}, headers=admin, timeout=30)
        assert resp.status_code == 400 and names_field(resp.json()["badRequest"]["message"], field), resp.text
        assert len(resp.content) < 400
    assert _get(live, "/flavors/other").status_code == 404, "nothing written"
    assert requests.delete(f"{url}/1", headers=admin, timeout=30).status_code == 409, "config.yaml's stay"
    assert requests.delete(f"{url}/made-1", headers=admin, timeout=30).status_code == 202
    assert _get(live, "/flavors/made-1").status_code == 404
    sdk = live.sdk("admin").compute.create_flavor(name="made.sdk", ram=128, vcpus=1, disk=1)
    assert live.sdk("alice").compute.get_flavor(sdk.id).name == "made.sdk"
    live.sdk("admin").compute.delete_flavor(sdk.id)
