"""Application credentials on a real server: the secret shown once and stored hashed, the auth method, who may
manage which, and what deleting one (or its user) does to the tokens it gave."""

from __future__ import annotations

import sqlite3
from datetime import datetime, timedelta, timezone
from typing import Any, Iterator

import pytest
import requests

from api.config import stable_id

from apitest import Live, serve_root

TIMEOUT = 30


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Live]:
    with serve_root(tmp_path_factory.mktemp("app-creds") / "root") as server:
        yield server


def call(live: Live, method: str, path: str, token: str, body: Any = None) -> requests.Response:
    return requests.request(method, f"{live.url}/identity/v3{path}", json=body, timeout=TIMEOUT,
                            headers={"X-Auth-Token": token})


def whoami(live: Live, token: str) -> dict[str, Any]:
    resp = requests.get(f"{live.url}/identity/v3/auth/tokens", timeout=TIMEOUT,
                        headers={"X-Auth-Token": token, "X-Subject-Token": token})
    assert resp.status_code == 200, resp.text
    return resp.json()["token"]


def user_id(live: Live, token: str) -> str:
    return whoami(live, token)["user"]["id"]


def app_login(live: Live, spec: dict[str, Any]) -> requests.Response:
    return requests.post(f"{live.url}/identity/v3/auth/tokens", timeout=TIMEOUT, json={"auth": {"identity": {
        "methods": ["application_credential"], "application_credential": spec}}})


def create(live: Live, token: str, **fields: Any) -> requests.Response:
    return call(live, "POST", f"/users/{user_id(live, token)}/application_credentials", token,
                {"application_credential": fields})


def flavors(live: Live, token: str) -> int:
    return requests.get(f"{live.url}/compute/v2.1/flavors", headers={"X-Auth-Token": token},
                        timeout=TIMEOUT).status_code


def test_create_show_list_authenticate_delete(live: Live) -> None:
    alice = live.token("alice")
    me = user_id(live, alice)
    created = create(live, alice, name="ci", description="for CI")
    assert created.status_code == 201, created.text
    credential = created.json()["application_credential"]
    secret = credential["secret"]
    assert len(secret) >= 32 and credential["roles"][0]["name"] == "member" and credential["unrestricted"] is False
    shown = call(live, "GET", f"/users/{me}/application_credentials/{credential['id']}", alice).json()
    assert "secret" not in shown["application_credential"]
    create(live, alice, name="other")
    listed = call(live, "GET", f"/users/{me}/application_credentials", alice).json()["application_credentials"]
    assert sorted(c["name"] for c in listed) == ["ci", "other"]
    named = call(live, "GET", f"/users/{me}/application_credentials?name=ci", alice).json()
    assert [c["id"] for c in named["application_credentials"]] == [credential["id"]]

    # Stored hashed: the secret is nowhere in state.db.
    with sqlite3.connect(live.layout.state_db) as db:
        rows = db.execute("SELECT data FROM api_application_credentials").fetchall()
    assert rows and all(secret not in data for (data,) in rows)

    by_id = app_login(live, {"id": credential["id"], "secret": secret})
    assert by_id.status_code == 201, by_id.text
    body = by_id.json()["token"]
    assert body["methods"] == ["application_credential"] and body["project"]["name"] == "demo"
    assert body["application_credential"] == {"id": credential["id"], "name": "ci", "restricted": True}
    token = by_id.headers["X-Subject-Token"]
    assert flavors(live, token) == 200
    by_name = app_login(live, {"name": "ci", "user": {"name": "alice", "domain": {"id": "default"}},
                               "secret": secret})
    assert by_name.status_code == 201
    assert app_login(live, {"id": credential["id"], "secret": secret + "x"}).status_code == 401
    assert app_login(live, {"id": "nope", "secret": secret}).status_code == 401

    # A restricted credential's token cannot make or delete credentials.
    assert create(live, token, name="more").status_code == 403
    assert call(live, "DELETE", f"/users/{me}/application_credentials/{credential['id']}", token).status_code == 403

    assert call(live, "DELETE", f"/users/{me}/application_credentials/{credential['id']}", alice).status_code == 204
    assert flavors(live, token) == 401
    assert app_login(live, {"id": credential["id"], "secret": secret}).status_code == 401
    assert call(live, "GET", f"/users/{me}/application_credentials/{credential['id']}", alice).status_code == 404


def test_a_chosen_secret_expiry_and_roles(live: Live) -> None:
    alice = live.token("alice")
    expires = (datetime.now(timezone.utc) + timedelta(hours=1)).replace(tzinfo=None)
    created = create(live, alice, name="timed", secret="my-own-secret", expires_at=expires.isoformat(),
                     roles=[{"name": "member"}])
    assert created.status_code == 201, created.text
    credential = created.json()["application_credential"]
    assert credential["expires_at"] == expires.isoformat() and credential["secret"] == "my-own-secret"
    login = app_login(live, {"id": credential["id"], "secret": "my-own-secret"})
    assert login.status_code == 201
    token_expiry = datetime.fromisoformat(login.json()["token"]["expires_at"].replace("Z", "+00:00"))
    assert token_expiry <= expires.replace(tzinfo=timezone.utc)


@pytest.mark.parametrize("fields, status, field", [
    ({}, 400, "application_credential.name"),
    ({"name": ""}, 400, "application_credential.name"),
    ({"name": "n" * 256}, 400, "application_credential.name"),
    ({"name": "x", "secret": "short"}, 400, "application_credential.secret"),
    ({"name": "x", "expires_at": "2001-01-01T00:00:00"}, 400, "application_credential.expires_at"),
    ({"name": "x", "expires_at": "tomorrow"}, 400, "application_credential.expires_at"),
    ({"name": "x", "unrestricted": "yes"}, 400, "application_credential.unrestricted"),
    ({"name": "x", "roles": [{"name": "admin"}]}, 403, "application_credential.roles[0]"),
    ({"name": "x", "roles": "member"}, 400, "application_credential.roles"),
    ({"name": "x", "access_rules": "all"}, 400, "application_credential.access_rules"),
    ({"name": "x", "access_rules": [{"path": "/", "method": "FETCH", "service": "compute"}]}, 400,
     "application_credential.access_rules[0].method"),
    ({"name": "x", "access_rules": [{"path": "servers", "method": "GET", "service": "compute"}]}, 400,
     "application_credential.access_rules[0].path"),
    ({"name": "x", "access_rules": [{"path": "/", "method": "GET"}]}, 400,
     "application_credential.access_rules[0].service"),
    ({"name": "x", "access_rules": [{"path": "/", "method": "GET", "service": "compute", "x": 1}]}, 400,
     "application_credential.access_rules[0]: unknown field 'x'"),
])
def test_bad_bodies_name_the_field_and_store_nothing(live: Live, fields: dict, status: int, field: str) -> None:
    bob = live.token("bob")
    me = user_id(live, bob)
    resp = create(live, bob, **fields)
    assert resp.status_code == status, resp.text
    assert field in resp.json()["error"]["message"]
    assert call(live, "GET", f"/users/{me}/application_credentials", bob).json()["application_credentials"] == []


def test_a_duplicate_name_conflicts(live: Live) -> None:
    bob = live.token("bob")
    assert create(live, bob, name="twice").status_code == 201
    assert create(live, bob, name="twice").status_code == 409


def test_users_manage_their_own_and_admins_see_all(live: Live) -> None:
    alice, bob, admin = live.token("alice"), live.token("bob"), live.token("admin")
    credential = create(live, alice, name="mine").json()["application_credential"]
    me = user_id(live, alice)
    item = f"/users/{me}/application_credentials/{credential['id']}"
    assert call(live, "GET", item, bob).status_code == 403
    assert call(live, "GET", f"/users/{me}/application_credentials", bob).status_code == 403
    assert call(live, "POST", f"/users/{me}/application_credentials", bob,
                {"application_credential": {"name": "theirs"}}).status_code == 403
    assert call(live, "DELETE", item, bob).status_code == 403
    assert call(live, "GET", f"/users/{user_id(live, bob)}/application_credentials/{credential['id']}",
                bob).status_code == 404  # not bob's
    assert call(live, "GET", item, admin).status_code == 200


def test_deleting_the_user_ends_its_credentials(live: Live) -> None:
    admin = live.token("admin")
    user = call(live, "POST", "/users", admin, {"user": {"name": "temp", "password": "temp-password"}}).json()["user"]
    demo = call(live, "GET", "/projects?name=demo", admin).json()["projects"][0]["id"]
    call(live, "PUT", f"/projects/{demo}/users/{user['id']}/roles/{stable_id('role', 'member')}", admin)
    token = live.token("temp", "temp-password")
    credential = create(live, token, name="temp-cred").json()["application_credential"]
    app_token = app_login(live, {"id": credential["id"], "secret": credential["secret"]}).headers["X-Subject-Token"]
    assert flavors(live, app_token) == 200
    assert call(live, "DELETE", f"/users/{user['id']}", admin).status_code == 204
    assert flavors(live, app_token) == 401
    assert app_login(live, {"id": credential["id"], "secret": credential["secret"]}).status_code == 401


def test_openstack_cli_application_credential(live: Live) -> None:
    created = live.osc("alice", "application", "credential", "create", "cli-cred", "-f", "json")
    assert created["Secret"] and created["Name"] == "cli-cred"
    listed = live.osc("alice", "application", "credential", "list", "-f", "json")
    assert "cli-cred" in {c["Name"] for c in listed}
    live.osc("alice", "application", "credential", "delete", "cli-cred")
    assert "cli-cred" not in {c["Name"] for c in live.osc("alice", "application", "credential", "list", "-f",
                                                              "json")}


def test_access_rules_limit_what_the_credential_token_may_do(live: Live) -> None:
    alice = live.token("alice")
    me = user_id(live, alice)
    rules = [{"service": "compute", "method": "GET", "path": "/v2.1/flavors"},
             {"service": "compute", "method": "GET", "path": "/v2.1/flavors/*"},
             {"service": "image", "method": "GET", "path": "/v2/**"}]
    created = create(live, alice, name="limited", access_rules=rules)
    assert created.status_code == 201, created.text
    credential = created.json()["application_credential"]
    assert [{k: r[k] for k in ("service", "method", "path")} for r in credential["access_rules"]] == rules
    token = app_login(live, {"id": credential["id"], "secret": credential["secret"]}).headers["X-Subject-Token"]
    headers = {"X-Auth-Token": token}
    assert flavors(live, token) == 200
    assert requests.get(f"{live.url}/compute/v2.1/flavors/1", headers=headers, timeout=TIMEOUT).status_code == 200
    assert requests.get(f"{live.url}/image/v2/images", headers=headers, timeout=TIMEOUT).status_code == 200
    refused = requests.get(f"{live.url}/compute/v2.1/servers", headers=headers, timeout=TIMEOUT)
    assert refused.status_code == 401 and "access rules" in refused.text
    assert requests.get(f"{live.url}/compute/v2.1/flavors/1/os-extra_specs", headers=headers,
                        timeout=TIMEOUT).status_code == 401  # * is one segment
    assert requests.delete(f"{live.url}/compute/v2.1/flavors/1", headers=headers,
                           timeout=TIMEOUT).status_code == 401
    assert call(live, "GET", "/auth/catalog", token).status_code == 401

    # The same rule in a second credential is the same rule; one in use cannot be deleted.
    again = create(live, alice, name="limited-2", access_rules=rules[:1]).json()["application_credential"]
    assert again["access_rules"][0]["id"] == credential["access_rules"][0]["id"]
    listed = call(live, "GET", f"/users/{me}/access_rules", alice).json()["access_rules"]
    assert len(listed) == 3
    rule_id = credential["access_rules"][2]["id"]
    assert call(live, "GET", f"/users/{me}/access_rules/{rule_id}", alice).json()["access_rule"]["service"] == "image"
    assert call(live, "DELETE", f"/users/{me}/access_rules/{rule_id}", alice).status_code == 403
    assert call(live, "DELETE", f"/users/{me}/application_credentials/{credential['id']}", alice).status_code == 204
    assert call(live, "DELETE", f"/users/{me}/access_rules/{rule_id}", alice).status_code == 204
    assert call(live, "GET", f"/users/{me}/access_rules/{rule_id}", alice).status_code == 404
    assert call(live, "GET", f"/users/{me}/access_rules", live.token("bob")).status_code == 403
