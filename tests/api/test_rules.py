"""Visibility and ownership rules, account management, and bad input that needs no server build."""

from __future__ import annotations

import base64
import subprocess
import sys
import time
from pathlib import Path

import pytest
import requests

from api.accounts import set_user
from api.config import config_path, load_config, parse_config
from api.identity.passwords import hash_password, verify_password
from api.identity.tokens import TokenSigner
from api.errors import Unauthorized
from apitest import live, qcow2_file  # noqa: F401 (fixtures)
from provisioner.errors import InputError


def _auth(live, user: str) -> dict[str, str]:
    return {"X-Auth-Token": live.token(user)}


def test_public_and_private_images(live, qcow2_file: Path) -> None:
    public = live.osc("admin", "image", "create", "--public", "--file", str(qcow2_file), "--disk-format", "qcow2",
                      "base", "-f", "json")
    assert public["visibility"] == "public"
    assert "base" in {i["Name"] for i in live.osc("bob", "image", "list", "-f", "json")}
    refused = requests.delete(f"{live.url}/image/v2/images/{public['id']}", headers=_auth(live, "bob"), timeout=10)
    assert refused.status_code == 403
    forbidden = requests.post(f"{live.url}/image/v2/images", headers=_auth(live, "alice"), timeout=10,
                              json={"name": "mine", "visibility": "public"})
    assert forbidden.status_code == 403

    queued = requests.post(f"{live.url}/image/v2/images", headers=_auth(live, "alice"), timeout=10,
                           json={"name": "priv", "disk_format": "qcow2", "container_format": "bare",
                                 "owner_specified.openstack.md5": ""}).json()
    assert queued["status"] == "queued" and queued["owner_specified.openstack.md5"] == ""
    hidden = requests.get(f"{live.url}/image/v2/images/{queued['id']}", headers=_auth(live, "bob"), timeout=10)
    assert hidden.status_code == 404
    both = requests.get(f"{live.url}/image/v2/images", headers=_auth(live, "alice"), timeout=10,
                        params={"id": f"in:{public['id']},{queued['id']}"}).json()["images"]
    assert {i["id"] for i in both} == {public["id"], queued["id"]}
    raw = requests.put(f"{live.url}/image/v2/images/{queued['id']}/file", data=b"\0" * 4096, timeout=10,
                       headers={**_auth(live, "alice"), "Content-Type": "application/octet-stream"})
    assert raw.status_code == 400 and "disk_format" in raw.text, "declared qcow2, uploaded raw"
    live.osc("admin", "image", "delete", "base")


def test_keypair_generated_and_per_user(live) -> None:
    created = requests.post(f"{live.url}/compute/v2.1/os-keypairs", headers=_auth(live, "alice"), timeout=10,
                            json={"keypair": {"name": "gen"}}).json()["keypair"]
    assert created["private_key"].startswith("-----BEGIN OPENSSH PRIVATE KEY-----")
    assert created["public_key"].startswith("ssh-ed25519 ")
    theirs = requests.get(f"{live.url}/compute/v2.1/os-keypairs/gen", headers=_auth(live, "bob"), timeout=10)
    assert theirs.status_code == 404
    bad = requests.post(f"{live.url}/compute/v2.1/os-keypairs", headers=_auth(live, "alice"), timeout=10,
                        json={"keypair": {"name": "bad", "public_key": "ssh-ed25519 not-base64!"}})
    assert bad.status_code == 400 and "keypair.public_key" in bad.text
    requests.delete(f"{live.url}/compute/v2.1/os-keypairs/gen", headers=_auth(live, "alice"), timeout=10)


def test_server_request_errors(live) -> None:
    headers = _auth(live, "alice")
    images = requests.get(f"{live.url}/image/v2/images", headers=headers, timeout=10).json()["images"]
    body = {"name": "x", "flavorRef": "1", "imageRef": images[0]["id"] if images else "none"}
    script = base64.b64encode(b"#include\nhttp://127.0.0.1/cc\n").decode()  # a format the API refuses
    resp = requests.post(f"{live.url}/compute/v2.1/servers", headers=headers, timeout=10,
                         json={"server": {**body, "user_data": script}})
    assert resp.status_code == 400 and "server." in resp.json()["badRequest"]["message"]
    resp = requests.post(f"{live.url}/compute/v2.1/servers", headers=headers, timeout=10,
                         json={"server": {**body, "networks": [{"uuid": "nope"}]}})
    assert resp.status_code == 400 and "server." in resp.json()["badRequest"]["message"]


def test_default_network_cannot_be_deleted(live) -> None:
    headers = _auth(live, "admin")
    network = requests.get(f"{live.url}/network/v2.0/networks", params={"name": "default"}, headers=headers,
                           timeout=10).json()["networks"][0]
    resp = requests.delete(f"{live.url}/network/v2.0/networks/{network['id']}", headers=headers, timeout=10)
    assert resp.status_code == 409 and resp.json()["NeutronError"]["type"] == "Conflict"


def test_user_created_and_rotated_without_restart(live) -> None:
    set_user(config_path(live.layout), "carol", "first-password", "demo", ["member"])
    assert live.token("carol", "first-password")
    set_user(config_path(live.layout), "carol", "second-password", "demo", ["member"])
    assert live.token("carol", "second-password")
    old = requests.post(f"{live.url}/identity/v3/auth/tokens", timeout=10, json={"auth": {"identity": {
        "methods": ["password"], "password": {"user": {"name": "carol", "domain": {"name": "Default"},
                                                       "password": "first-password"}}}}})
    assert old.status_code == 401
    assert not verify_password("first-password", load_config(config_path(live.layout)).user_by_name("carol")
                               .password_hash)


def test_hashes_are_salted_and_tokens_expire() -> None:
    assert hash_password("same-password") != hash_password("same-password")
    signer = TokenSigner(b"k" * 32, ttl=1)
    text, _ = signer.issue("u", "user", "p", "project", ("member",))
    assert signer.verify(text).user_name == "user"
    with pytest.raises(Unauthorized):
        TokenSigner(b"other-key" * 4, ttl=1).verify(text)
    time.sleep(1.1)
    with pytest.raises(Unauthorized, match="expired"):
        signer.verify(text)


def test_config_errors_name_the_key() -> None:
    with pytest.raises(InputError, match="tokn_ttl"):
        parse_config({"tokn_ttl": 5}, "config.yaml")
    with pytest.raises(InputError, match="no project 'ghost'"):
        parse_config({"projects": [], "users": [{"name": "a", "password_hash": "x", "roles": {"ghost": ["m"]}}]},
                     "config.yaml")
    for key, value in (("stop_timeout", "soon"), ("stop_timeout", -1), ("max_volume_size", 1.5),
                       ("build_workers", True), ("network_forward", "bridge")):
        with pytest.raises(InputError, match=f"key '{key}': {value!r}"):
            parse_config({key: value}, "config.yaml")
    with pytest.raises(InputError, match="8 characters"):
        set_user(Path("/nonexistent/config.yaml"), "a", "short", "p", ["member"])


def test_cli_creates_users_and_prints_client_settings(tmp_path: Path) -> None:
    root = tmp_path / "root"
    run = [sys.executable, "-m", "api", "--root", str(root)]
    done = subprocess.run([*run, "users", "set", "ops", "--project", "infra", "--role", "admin", "--password-stdin"],
                          input="ops-password\n", capture_output=True, text=True, check=True)
    assert "created user ops" in done.stdout
    user = load_config(root / "api" / "config.yaml").user_by_name("ops")
    assert user.roles == {"infra": ("admin",)} and verify_password("ops-password", user.password_hash)
    short = subprocess.run([*run, "users", "set", "ops", "--project", "infra", "--password-stdin"],
                           input="short\n", capture_output=True, text=True)
    assert short.returncode == 2 and "8 characters" in short.stderr
    rc = subprocess.run([*run, "openrc", "--port", "5123"], capture_output=True, text=True, check=True).stdout
    assert "OS_AUTH_URL=http://127.0.0.1:5123/identity" in rc and "\nexport OS_PASSWORD" not in rc
