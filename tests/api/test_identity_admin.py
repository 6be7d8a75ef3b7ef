"""Keystone's admin API on a real server: domains, the catalog, users, projects, role grants, and what each change
does to tokens already issued; the same config.yaml `provision users set` writes."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any, Iterator

import pytest
import requests

from api.config import Project, config_path, load_config, read_document, stable_id
from api.db import Database, Table

from apitest import PASSWORD, Live, serve_root

TIMEOUT = 30


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Live]:
    """A server of its own: these tests add and remove users and projects."""
    with serve_root(tmp_path_factory.mktemp("identity-admin") / "root") as server:
        yield server


def call(live: Live, method: str, path: str, token: str, body: Any = None) -> requests.Response:
    return requests.request(method, f"{live.url}/identity/v3{path}", json=body, timeout=TIMEOUT,
                            headers={"X-Auth-Token": token})


def login(live: Live, name: str, password: str, project: str | None = None) -> requests.Response:
    auth: dict[str, Any] = {"identity": {"methods": ["password"], "password": {"user": {
        "name": name, "domain": {"id": "default"}, "password": password}}}}
    if project:
        auth["scope"] = {"project": {"name": project, "domain": {"id": "default"}}}
    return requests.post(f"{live.url}/identity/v3/auth/tokens", json={"auth": auth}, timeout=TIMEOUT)


def token_of(live: Live, name: str, password: str, project: str | None = None) -> str:
    resp = login(live, name, password, project)
    assert resp.status_code == 201, resp.text
    return resp.headers["X-Subject-Token"]


def flavors(live: Live, token: str) -> int:
    return requests.get(f"{live.url}/compute/v2.1/flavors", headers={"X-Auth-Token": token},
                        timeout=TIMEOUT).status_code


def role_id(name: str) -> str:
    return stable_id("role", name)


def test_the_default_domain_and_the_catalog(live: Live) -> None:
    alice, admin = live.token("alice"), live.token("admin")
    listed = call(live, "GET", "/domains?name=Default", admin)
    assert listed.status_code == 200 and [d["id"] for d in listed.json()["domains"]] == ["default"]
    assert call(live, "GET", "/domains?name=Other", admin).json()["domains"] == []
    assert call(live, "GET", "/domains", alice).status_code == 403  # listing is an admin's, as in Keystone
    shown = call(live, "GET", "/domains/default", alice).json()["domain"]  # her project's domain
    assert shown["name"] == "Default" and shown["enabled"] is True
    assert call(live, "GET", "/domains/nope", alice).status_code == 404
    assert call(live, "GET", "/auth/domains", alice).json()["domains"] == []  # no domain-scoped roles
    types = {s["type"] for s in call(live, "GET", "/auth/catalog", alice).json()["catalog"]}
    assert {"identity", "compute", "image", "network", "volumev3"} <= types
    assert requests.get(f"{live.url}/identity/v3/auth/catalog", timeout=TIMEOUT).status_code == 401


def test_roles_list_and_show(live: Live) -> None:
    admin = live.token("admin")
    names = {r["name"] for r in call(live, "GET", "/roles", admin).json()["roles"]}
    assert {"admin", "member", "reader"} <= names
    assert [r["name"] for r in call(live, "GET", "/roles?name=reader", admin).json()["roles"]] == ["reader"]
    assert call(live, "GET", f"/roles/{role_id('member')}", admin).json()["role"]["name"] == "member"
    assert call(live, "GET", "/roles/nope", admin).status_code == 404
    alice = live.token("alice")
    assert call(live, "GET", "/roles", alice).status_code == 403
    assert call(live, "GET", f"/roles/{role_id('member')}", alice).status_code == 403


def test_admin_creates_grants_changes_and_deletes_a_user(live: Live) -> None:
    admin = live.token("admin")
    created = call(live, "POST", "/users", admin, {"user": {"name": "carol", "password": "carol-password",
                                                             "email": "carol@example.test"}})
    assert created.status_code == 201, created.text
    carol = created.json()["user"]
    assert carol["name"] == "carol" and carol["enabled"] is True and "password" not in carol
    # The store `provision users set` writes: hashed, never the password itself.
    text = config_path(live.layout).read_text()
    assert "carol-password" not in text and load_config(config_path(live.layout)).user_by_name("carol")

    assert login(live, "carol", "carol-password", "demo").status_code == 401  # no role there yet
    demo = call(live, "GET", "/projects?name=demo", admin).json()["projects"][0]["id"]
    grant = f"/projects/{demo}/users/{carol['id']}/roles/{role_id('member')}"
    assert call(live, "PUT", grant, admin).status_code == 204
    assert call(live, "PUT", grant, admin).status_code == 204  # idempotent
    assert call(live, "HEAD", grant, admin).status_code == 204
    token = token_of(live, "carol", "carol-password", "demo")
    assert flavors(live, token) == 200

    # Another grant leaves carol's token good; a new password refuses it.
    reader = f"/projects/{demo}/users/{carol['id']}/roles/{role_id('reader')}"
    assert call(live, "PUT", reader, admin).status_code == 204
    assert flavors(live, token) == 200
    changed = call(live, "PATCH", f"/users/{carol['id']}", admin, {"user": {"password": "carol-password-2"}})
    assert changed.status_code == 200, changed.text
    assert flavors(live, token) == 401
    assert login(live, "carol", "carol-password", "demo").status_code == 401
    token = token_of(live, "carol", "carol-password-2", "demo")

    # Disabled: no login, no earlier token; enabled again: both work.
    assert call(live, "PATCH", f"/users/{carol['id']}", admin, {"user": {"enabled": False}}).json()["user"][
        "enabled"] is False
    assert flavors(live, token) == 401 and login(live, "carol", "carol-password-2", "demo").status_code == 401
    call(live, "PATCH", f"/users/{carol['id']}", admin, {"user": {"enabled": True}})
    token = token_of(live, "carol", "carol-password-2", "demo")

    assert call(live, "DELETE", f"/users/{carol['id']}", admin).status_code == 204
    assert flavors(live, token) == 401
    assert login(live, "carol", "carol-password-2", "demo").status_code == 401
    assert call(live, "GET", f"/users/{carol['id']}", admin).status_code == 404
    assert load_config(config_path(live.layout)).user_by_name("carol") is None


def test_an_unscoped_login_gets_the_default_project(live: Live) -> None:
    admin = live.token("admin")
    other = call(live, "GET", "/projects?name=other", admin).json()["projects"][0]["id"]
    user = call(live, "POST", "/users", admin, {"user": {"name": "hal", "password": "hal-password",
                                                          "default_project_id": other}}).json()["user"]
    assert user["default_project_id"] == other
    for name in ("demo", "other"):  # demo first in the file: without the default, the unscoped token is demo's
        project = call(live, "GET", f"/projects?name={name}", admin).json()["projects"][0]["id"]
        call(live, "PUT", f"/projects/{project}/users/{user['id']}/roles/{role_id('member')}", admin)
    assert login(live, "hal", "hal-password").json()["token"]["project"]["id"] == other
    bad = call(live, "POST", "/users", admin, {"user": {"name": "hal2", "password": "hal-password",
                                                         "default_project_id": "nope"}})
    assert bad.status_code == 400 and "user.default_project_id" in bad.json()["error"]["message"]


def test_a_revoked_role_refuses_tokens_that_carry_it(live: Live) -> None:
    admin = live.token("admin")
    user = call(live, "POST", "/users", admin, {"user": {"name": "dan", "password": "dan-password"}}).json()["user"]
    demo = call(live, "GET", "/projects?name=demo", admin).json()["projects"][0]["id"]
    for role in ("member", "reader"):
        call(live, "PUT", f"/projects/{demo}/users/{user['id']}/roles/{role_id(role)}", admin)
    token = token_of(live, "dan", "dan-password", "demo")
    assignments = call(live, "GET", f"/role_assignments?user.id={user['id']}&include_names=true", admin).json()
    assert sorted(a["role"]["name"] for a in assignments["role_assignments"]) == ["member", "reader"]
    assert {a["scope"]["project"]["id"] for a in assignments["role_assignments"]} == {demo}
    only_reader = call(live, "GET", f"/role_assignments?role.id={role_id('reader')}&scope.project.id={demo}", admin)
    assert [a["user"]["id"] for a in only_reader.json()["role_assignments"]] == [user["id"]]
    # A user may list its own assignments, not another's.
    assert call(live, "GET", f"/role_assignments?user.id={user['id']}", token).status_code == 200
    assert call(live, "GET", "/role_assignments", token).status_code == 403

    assert call(live, "DELETE", f"/projects/{demo}/users/{user['id']}/roles/{role_id('reader')}",
                admin).status_code == 204
    assert flavors(live, token) == 401
    assert call(live, "DELETE", f"/projects/{demo}/users/{user['id']}/roles/{role_id('reader')}",
                admin).status_code == 404
    assert call(live, "HEAD", f"/projects/{demo}/users/{user['id']}/roles/{role_id('reader')}",
                admin).status_code == 404
    assert flavors(live, token_of(live, "dan", "dan-password", "demo")) == 200


def test_projects_update_and_delete_keep_grants_consistent(live: Live) -> None:
    admin = live.token("admin")
    project = call(live, "POST", "/projects", admin, {"project": {"name": "team", "domain_id": "default"}}).json()[
        "project"]
    user = call(live, "POST", "/users", admin, {"user": {"name": "erin", "password": "erin-password"}}).json()["user"]
    call(live, "PUT", f"/projects/{project['id']}/users/{user['id']}/roles/{role_id('member')}", admin)
    renamed = call(live, "PATCH", f"/projects/{project['id']}", admin, {"project": {"name": "team-2",
                                                                                   "description": "d"}})
    assert renamed.status_code == 200 and renamed.json()["project"]["name"] == "team-2"
    token = token_of(live, "erin", "erin-password", "team-2")
    assert call(live, "DELETE", f"/projects/{project['id']}", token).status_code == 403  # not an admin
    assert call(live, "DELETE", f"/projects/{project['id']}", admin).status_code == 204
    assert call(live, "GET", f"/projects/{project['id']}", admin).status_code == 404
    assert flavors(live, token) == 401
    erin = next(u for u in read_document(config_path(live.layout))["users"] if u["name"] == "erin")
    assert erin["roles"] == {}
    assert call(live, "DELETE", f"/projects/{project['id']}", admin).status_code == 404
    own = call(live, "GET", "/projects?name=admin", admin).json()["projects"][0]["id"]
    assert call(live, "DELETE", f"/projects/{own}", admin).status_code == 403  # the token's own project


def test_a_project_only_the_database_has_moves_into_the_file_when_granted(live: Live) -> None:
    """Projects created through the API before this change live in api_projects: a grant still works."""
    legacy = Project(id="0123456789abcdef0123456789abcdef", name="legacy")
    Table(Database(live.layout.state_db), "projects", Project, scope="domain_id").insert(legacy)
    admin = live.token("admin")
    bob = call(live, "GET", "/users?name=bob", admin).json()["users"][0]["id"]
    assert call(live, "PUT", f"/projects/{legacy.id}/users/{bob}/roles/{role_id('member')}",
                admin).status_code == 204
    assert [p["id"] for p in call(live, "GET", "/projects?name=legacy", admin).json()["projects"]] == [legacy.id]
    token_of(live, "bob", PASSWORD, "legacy")


@pytest.mark.parametrize("body, status, field", [
    ({"user": {"password": "long-enough"}}, 400, "user.name"),
    ({"user": {"name": "x", "password": "short"}}, 400, "user.password"),
    ({"user": {"name": "x"}}, 400, "user.password"),
    ({"user": {"name": "x" * 256, "password": "long-enough"}}, 400, "user.name"),
    ({"user": {"name": "x\n", "password": "long-enough"}}, 400, "user.name"),
    ({"user": {"name": "x", "password": "p" * 4097}}, 400, "user.password"),
    ({"user": {"name": "x", "password": "long-enough", "enabled": "yes"}}, 400, "user.enabled"),
    ({"user": {"name": "x", "password": "long-enough", "domain_id": "other"}}, 400, "user.domain_id"),
    ({"user": {"name": "x", "password": "long-enough", "email": 5}}, 400, "user.email"),
    ({"user": {"name": "alice", "password": "long-enough"}}, 409, "user.name"),
    ({"user": "x"}, 400, "user"),
])
def test_bad_user_bodies_are_refused_naming_the_field_and_write_nothing(live: Live, body: dict, status: int,
                                                                      field: str) -> None:
    before = config_path(live.layout).read_bytes()
    resp = call(live, "POST", "/users", live.token("admin"), body)
    assert resp.status_code == status, resp.text
    assert field in resp.json()["error"]["message"]
    assert config_path(live.layout).read_bytes() == before


def test_only_admins_manage_users_and_grants(live: Live) -> None:
    alice, admin = live.token("alice"), live.token("admin")
    bob = call(live, "GET", "/users?name=bob", admin).json()["users"][0]["id"]
    demo = call(live, "GET", "/projects?name=demo", admin).json()["projects"][0]["id"]
    assert call(live, "POST", "/users", alice, {"user": {"name": "m", "password": "long-enough"}}).status_code == 403
    assert call(live, "PATCH", f"/users/{bob}", alice, {"user": {"password": "long-enough"}}).status_code == 403
    assert call(live, "DELETE", f"/users/{bob}", alice).status_code == 403
    assert call(live, "PUT", f"/projects/{demo}/users/{bob}/roles/{role_id('admin')}", alice).status_code == 403
    assert call(live, "PATCH", f"/projects/{demo}", alice, {"project": {"name": "z"}}).status_code == 403
    me = call(live, "GET", "/users?name=admin", admin).json()["users"][0]["id"]
    assert call(live, "DELETE", f"/users/{me}", admin).status_code == 403  # not oneself
    assert call(live, "PATCH", f"/users/{bob}", admin, {"user": {"colour": "red"}}).status_code == 400
    assert call(live, "PUT", f"/projects/{demo}/users/{bob}/roles/nope", admin).status_code == 404
    assert call(live, "PUT", f"/projects/nope/users/{bob}/roles/{role_id('admin')}", admin).status_code == 404


def test_the_cli_and_the_api_write_the_same_users(live: Live) -> None:
    """`provision users set` rotates a user the API created; the API sees the change at once."""
    admin = live.token("admin")
    created = call(live, "POST", "/users", admin, {"user": {"name": "frank", "password": "frank-password"}})
    user_id = created.json()["user"]["id"]
    done = subprocess.run([sys.executable, "-m", "api", "--root", str(live.layout.root), "users", "set", "frank",
                           "--project", "demo", "--role", "member", "--password-stdin"],
                          input="frank-cli-password\n", capture_output=True, text=True, timeout=120,
                          env={**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[2])})
    assert done.returncode == 0, done.stderr
    token = token_of(live, "frank", "frank-cli-password", "demo")
    assert call(live, "GET", f"/users/{user_id}", admin).json()["user"]["name"] == "frank"  # the same id
    assert flavors(live, token) == 200
    assert call(live, "DELETE", f"/users/{user_id}", admin).status_code == 204
    assert flavors(live, token) == 401


def test_openstack_cli_user_and_role_commands(live: Live) -> None:
    live.osc("admin", "user", "create", "gina", "--password", "gina-password", "-f", "json")
    live.osc("admin", "role", "add", "--project", "demo", "--user", "gina", "member")
    listed = live.osc("admin", "role", "assignment", "list", "--user", "gina", "--names", "-f", "json")
    assert [(a["Role"], a["Project"]) for a in listed] == [("member", "demo@Default")]
    live.osc("admin", "user", "set", "--password", "gina-password-2", "gina")
    assert login(live, "gina", "gina-password-2", "demo").status_code == 201
    live.osc("admin", "user", "delete", "gina")
    assert login(live, "gina", "gina-password-2", "demo").status_code == 401


def test_a_user_changes_its_own_password_proving_the_old_one(live: Live) -> None:
    admin = live.token("admin")
    user = call(live, "POST", "/users", admin, {"user": {"name": "ivy", "password": "ivy-password"}}).json()["user"]
    demo = call(live, "GET", "/projects?name=demo", admin).json()["projects"][0]["id"]
    call(live, "PUT", f"/projects/{demo}/users/{user['id']}/roles/{role_id('member')}", admin)
    token = token_of(live, "ivy", "ivy-password", "demo")
    url = f"{live.url}/identity/v3/users/{user['id']}/password"
    wrong = requests.post(url, json={"user": {"original_password": "not-it-at-all", "password": "ivy-password-2"}},
                          timeout=TIMEOUT)
    assert wrong.status_code == 401 and flavors(live, token) == 200
    short = requests.post(url, json={"user": {"original_password": "ivy-password", "password": "short"}},
                          timeout=TIMEOUT)
    assert short.status_code == 400 and "user.password" in short.json()["error"]["message"]
    missing = requests.post(url, json={"user": {"password": "ivy-password-2"}}, timeout=TIMEOUT)
    assert missing.status_code == 400 and "user.original_password" in missing.json()["error"]["message"]
    done = requests.post(url, json={"user": {"original_password": "ivy-password", "password": "ivy-password-2"}},
                         timeout=TIMEOUT)
    assert done.status_code == 204, done.text
    assert flavors(live, token) == 401
    assert login(live, "ivy", "ivy-password", "demo").status_code == 401
    token_of(live, "ivy", "ivy-password-2", "demo")
    live_env = {**live.env("alice"), "OS_USERNAME": "ivy", "OS_PASSWORD": "ivy-password-2"}
    changed = subprocess.run([str(Path(sys.executable).parent / "openstack"), "user", "password", "set",
                              "--original-password", "ivy-password-2", "--password", "ivy-password-3"],
                             env=live_env, capture_output=True, text=True, timeout=120)
    assert changed.returncode == 0, changed.stderr
    token_of(live, "ivy", "ivy-password-3", "demo")


def test_a_disabled_project_refuses_logins_and_earlier_tokens(live: Live) -> None:
    admin = live.token("admin")
    project = call(live, "POST", "/projects", admin, {"project": {"name": "paused"}}).json()["project"]
    user = call(live, "POST", "/users", admin, {"user": {"name": "jo", "password": "jo-password"}}).json()["user"]
    call(live, "PUT", f"/projects/{project['id']}/users/{user['id']}/roles/{role_id('member')}", admin)
    token = token_of(live, "jo", "jo-password", "paused")
    off = call(live, "PATCH", f"/projects/{project['id']}", admin, {"project": {"enabled": False}})
    assert off.status_code == 200 and off.json()["project"]["enabled"] is False
    assert flavors(live, token) == 401
    assert login(live, "jo", "jo-password", "paused").status_code == 401
    assert call(live, "PATCH", f"/projects/{project['id']}", admin, {"project": {"enabled": "no"}}).status_code == 400
    call(live, "PATCH", f"/projects/{project['id']}", admin, {"project": {"enabled": True}})
    assert flavors(live, token_of(live, "jo", "jo-password", "paused")) == 200
    own = call(live, "GET", "/projects?name=admin", admin).json()["projects"][0]["id"]
    assert call(live, "PATCH", f"/projects/{own}", admin, {"project": {"enabled": False}}).status_code == 403
