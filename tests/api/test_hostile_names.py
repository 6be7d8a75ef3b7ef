"""Names checked with `^...$` took a trailing newline (`$` matches before a final "\\n"): each is now refused.

Keypair names, user names in user_data and provider-network bridge names go
through the live API; nothing named that way may be stored.
"""

from __future__ import annotations

import base64
from pathlib import Path

import pytest
import requests

from apitest import live, names_field, nova_refusal, qcow2_file  # noqa: F401 (fixtures)


def _headers(live, user: str) -> dict[str, str]:
    return {"X-Auth-Token": live.token(user)}


@pytest.mark.parametrize("public_key", [None, "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIN0dkx3isMvky47klZ+VCnvfUtxDAxpoWy"
                                              "HDLtFXb/nl k@example.test"], ids=["generated", "imported"])
def test_a_keypair_name_with_a_trailing_newline_is_refused(live, public_key: str | None) -> None:
    keypair = {"name": "nl-key\n", **({"public_key": public_key} if public_key else {})}
    resp = requests.post(f"{live.url}/compute/v2.1/os-keypairs", headers=_headers(live, "alice"), timeout=30,
                         json={"keypair": keypair})
    assert resp.status_code == 400, resp.text
    assert names_field(resp.json()["badRequest"]["message"], "keypair.name")
    listed = requests.get(f"{live.url}/compute/v2.1/os-keypairs", headers=_headers(live, "alice"), timeout=30)
    assert not [k for k in listed.json()["keypairs"] if k["keypair"]["name"].startswith("nl-key")]


@pytest.fixture(scope="module")
def image_id(live, qcow2_file: Path) -> str:
    """An active image of alice's: user_data is read once the image is found."""
    headers = _headers(live, "alice")
    created = requests.post(f"{live.url}/image/v2/images", headers=headers, timeout=30, json={
        "name": "hostile-names-base", "disk_format": "qcow2", "container_format": "bare"})
    assert created.status_code == 201, created.text
    image = created.json()["id"]
    uploaded = requests.put(f"{live.url}/image/v2/images/{image}/file", data=qcow2_file.read_bytes(),
                            headers={**headers, "Content-Type": "application/octet-stream"}, timeout=60)
    assert uploaded.status_code == 204, uploaded.text
    return image


@pytest.mark.parametrize("name", ["root\n", "ops\n"])
def test_a_user_data_user_name_with_a_trailing_newline_is_refused(live, image_id: str, name: str) -> None:
    cloud_config = f'#cloud-config\nusers:\n  - name: "{name.rstrip()}\\n"\n    shell: /bin/sh\n'
    resp = requests.post(f"{live.url}/compute/v2.1/servers", headers=_headers(live, "alice"), timeout=30,
                         json={"server": {"name": "nl-user", "flavorRef": "1", "imageRef": image_id,
                                          "user_data": base64.b64encode(cloud_config.encode()).decode()}})
    assert resp.status_code == 400, resp.text
    assert resp.json()["badRequest"]["message"] == (
        f"server.user_data: users[0]: 'name' {name!r} is not a valid user name ([a-z_][a-z0-9_-]*, at most 32)")
    servers = requests.get(f"{live.url}/compute/v2.1/servers", params={"name": "^nl-user$"}, timeout=30,
                           headers=_headers(live, "alice")).json()["servers"]
    assert servers == []


def test_a_bridge_name_with_a_trailing_newline_is_refused(live) -> None:
    resp = requests.post(f"{live.url}/network/v2.0/networks", headers=_headers(live, "admin"), timeout=30,
                         json={"network": {"name": "nl-bridge", "provider:network_type": "flat",
                                           "provider:physical_network": "br0\n"}})
    assert resp.status_code == 400, resp.text
    assert "network.provider:physical_network" in resp.text
    listed = requests.get(f"{live.url}/network/v2.0/networks", params={"name": "nl-bridge"}, timeout=30,
                          headers=_headers(live, "admin")).json()["networks"]
    assert listed == []


LONG = "Z" * 100_000
# (user, path, body, the error message's start): each value used to come back whole, repr()'d
ECHOES = [
    ("alice", "/compute/v2.1/servers", {"server": {"name": [LONG], "flavorRef": "1", "imageRef": "x"}},
     "server.name: a list is not a str"),
    ("alice", "/compute/v2.1/servers", {"server": {"name": "x", "flavorRef": LONG, "imageRef": "x"}},
     "server.flavorRef: is longer than 255 characters"),
    ("alice", "/compute/v2.1/servers", {"server": {"name": "x", "flavorRef": "Z" * 255, "imageRef": "x"}},
     f"server.flavorRef: flavor '{'Z' * 40}'… does not exist"),
    ("alice", "/compute/v2.1/os-keypairs", {"keypair": {"name": {"k": LONG}}}, "keypair.name: a mapping is not a str"),
    ("alice", "/volume/v3/volumes", {"volume": {"size": LONG}}, f"volume.size: '{'Z' * 40}'… does not match"),
    ("alice", "/volume/v3/volumes", {"volume": {"size": 1, "metadata": {LONG: 1}}},
     f"volume.metadata: the member name '{'Z' * 40}'… does not match"),
    ("alice", "/image/v2/images", {"name": "i", LONG: 5}, f"'{'Z' * 40}'…: 5 is not a string"),
    ("alice", "/image/v2/images", {"name": "i", "disk_format": LONG}, f"disk_format: '{'Z' * 40}'…: use one of"),
    ("admin", "/network/v2.0/networks", {"network": {"provider:network_type": LONG}},
     f"network.provider:network_type: '{'Z' * 40}'…: only 'flat'"),
]


@pytest.mark.parametrize(("user", "path", "body", "message"), ECHOES, ids=[f"{e[1]} {e[3][:20]}" for e in ECHOES])
def test_a_refused_value_is_named_not_echoed(live, user: str, path: str, body: dict, message: str) -> None:
    resp = requests.post(f"{live.url}{path}", headers=_headers(live, user), timeout=30, json=body)
    assert resp.status_code == 400, resp.text[:300]
    assert len(resp.content) < 1024, resp.text[:300]
    # Nova's badRequest, Cinder's, Glance's error and Neutron's NeutronError all hold a message
    (error,) = resp.json().values()
    assert error["message"].startswith(message) or nova_refusal(error["message"], message), error["message"]
