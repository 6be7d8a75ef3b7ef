"""Keystone through the real openstack CLI, and the auth matrix over HTTP."""

from __future__ import annotations

import requests

from api.identity.tokens import TokenSigner, load_key

from apitest import live  # noqa: F401 (fixtures)


def test_discovery_needs_no_token(live) -> None:
    root = requests.get(f"{live.url}/identity", timeout=10)
    assert root.status_code == 300 and root.json()["versions"]["values"][0]["id"].startswith("v3")
    assert requests.get(f"{live.url}/identity/v3", timeout=10).json()["version"]["status"] == "stable"
    assert requests.get(f"{live.url}/image", timeout=10).status_code == 300
    assert requests.get(f"{live.url}/compute/v2.1", timeout=10).json()["version"]["min_version"] == "2.1"


def test_token_catalog_projects_users(live) -> None:
    token = live.osc("admin", "token", "issue", "-f", "json")
    assert token["id"] and token["project_id"] and token["user_id"]
    types = {entry["Type"] for entry in live.osc("admin", "catalog", "list", "-f", "json")}
    assert {"identity", "compute", "image", "network", "volumev3"} <= types
    assert {"admin", "demo", "other"} <= {p["Name"] for p in live.osc("admin", "project", "list", "-f", "json")}
    assert {"admin", "alice", "bob"} <= {u["Name"] for u in live.osc("admin", "user", "list", "-f", "json")}
    created = live.osc("admin", "project", "create", "extra", "-f", "json")
    assert created["name"] == "extra"
    assert "extra" in {p["Name"] for p in live.osc("admin", "project", "list", "-f", "json")}


def test_password_is_never_stored(live) -> None:
    text = (live.layout.root / "api" / "config.yaml").read_text()
    assert "s3cret-pass" not in text and "scrypt$" in text


def test_auth_matrix(live) -> None:
    url = f"{live.url}/compute/v2.1/servers"
    missing = requests.get(url, timeout=10)
    assert missing.status_code == 401 and missing.json()["unauthorized"]["code"] == 401
    assert requests.get(url, headers={"X-Auth-Token": "forged.token"}, timeout=10).status_code == 401
    expired_signer = TokenSigner(load_key(live.layout.root / "api" / "token.key"), ttl=-1)
    expired, _ = expired_signer.issue("u", "alice", "p", "demo", ("member",))
    resp = requests.get(url, headers={"X-Auth-Token": expired}, timeout=10)
    assert resp.status_code == 401 and "expired" in resp.text
    bad = requests.post(f"{live.url}/identity/v3/auth/tokens", timeout=10, json={"auth": {"identity": {
        "methods": ["password"], "password": {"user": {"name": "alice", "domain": {"name": "Default"},
                                                       "password": "wrong-password"}}}}})
    assert bad.status_code == 401 and bad.json()["error"]["code"] == 401

    alice = {"X-Auth-Token": live.token("alice")}
    for path in ("/identity/v3/users", "/identity/v3/projects"):
        resp = requests.get(live.url + path, headers=alice, timeout=10)
        assert resp.status_code == 403 and resp.json()["error"]["code"] == 403
    resp = requests.post(f"{live.url}/identity/v3/projects", headers=alice, json={"project": {"name": "x"}},
                         timeout=10)
    assert resp.status_code == 403
    check = requests.get(f"{live.url}/identity/v3/auth/tokens", timeout=10,
                         headers={**alice, "X-Subject-Token": alice["X-Auth-Token"]})
    assert check.status_code == 200 and check.json()["token"]["user"]["name"] == "alice"
