"""Keystone against password guessing and stale or revoked tokens, on real servers over real roots.

Throttling: failed password authentications per user and per client address
(a second loopback address, 127.0.0.2, is a second client). Revocation: a
password or role change refuses the user's older tokens, DELETE auth/tokens
refuses one token; both on every worker (two apps over one root, each with its
own verified-token cache, and `provision serve --workers 2`).
"""

from __future__ import annotations

import base64
import hashlib
import http.client
import json
import os
import re
import signal
import sqlite3
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
import requests

from api.accounts import set_user
from api.config import config_path, parse_config, read_document, write_document
from api.identity.revocation import token_digest
from provisioner.errors import InputError
from provisioner.layout import Layout

from apitest import ACCOUNTS, PASSWORD, Live, serve_layout, serve_root

REPO = Path(__file__).resolve().parents[2]
TOKENS = "/identity/v3/auth/tokens"
# Small limits; a window and lockout of 2 s, so a test can wait for them to pass.
THROTTLE = "auth_failures_per_user: 3\nauth_failures_per_address: 100\nauth_failure_window: 2\nauth_lockout: 2\n"


def _auth_body(user: str, password: str, by: str = "name") -> dict[str, Any]:
    project = ACCOUNTS[user][0] if user in ACCOUNTS else "demo"
    return {"auth": {"identity": {"methods": ["password"], "password": {"user": {
        by: user, "domain": {"name": "Default"}, "password": password}}},
        "scope": {"project": {"name": project, "domain": {"name": "Default"}}}}}


def _login(url: str, user: str, password: str, source: str = "127.0.0.1",
           by: str = "name") -> tuple[int, dict[str, str], dict]:
    """POST auth/tokens from the loopback address `source`: (status, headers, body)."""
    host, port = url.removeprefix("http://").split(":")
    conn = http.client.HTTPConnection(host, int(port), timeout=60, source_address=(source, 0))
    try:
        conn.request("POST", TOKENS, json.dumps(_auth_body(user, password, by)),
                     {"Content-Type": "application/json"})
        resp = conn.getresponse()
        return resp.status, dict(resp.getheaders()), json.loads(resp.read() or b"{}")
    finally:
        conn.close()


def _assert_throttled(status: int, headers: dict[str, str], body: dict) -> int:
    """A Keystone-style 429 with Retry-After; the seconds it says."""
    assert status == 429, (status, body)
    assert body["error"]["code"] == 429 and body["error"]["title"] == "Too Many Requests", body
    retry = int(headers["Retry-After"])
    assert 1 <= retry <= 2, headers
    return retry


def _wait_out(retry_after: int) -> None:
    time.sleep(retry_after + 0.1)


def test_wrong_passwords_lock_the_user_even_for_the_right_one_until_the_lockout_passes(tmp_path: Path) -> None:
    with serve_root(tmp_path / "root", THROTTLE) as live:
        for _ in range(3):
            status, _, body = _login(live.url, "alice", "wrong-password")
            assert status == 401, body
        retry = _assert_throttled(*_login(live.url, "alice", PASSWORD))
        alice_id = requests.get(f"{live.url}/identity/v3/users", params={"name": "alice"}, timeout=30,
                                headers={"X-Auth-Token": live.token("admin")}).json()["users"][0]["id"]
        _assert_throttled(*_login(live.url, alice_id, PASSWORD, by="id"))  # her id is the same user
        assert _login(live.url, "bob", PASSWORD)[0] == 201, "another user from the same address"
        _wait_out(retry)
        assert _login(live.url, "alice", PASSWORD)[0] == 201
        # A success forgets her failures: three more are allowed before the next lock.
        for _ in range(3):
            assert _login(live.url, "alice", "wrong-password")[0] == 401
        _assert_throttled(*_login(live.url, "alice", "wrong-password"))


def test_an_unknown_user_is_throttled_like_a_known_one(tmp_path: Path) -> None:
    with serve_root(tmp_path / "root", THROTTLE) as live:
        known, unknown = [], []
        for _ in range(3):
            known.append(_login(live.url, "alice", "wrong-password"))
            unknown.append(_login(live.url, "nobody", "wrong-password"))
        for (k_status, _, k_body), (u_status, _, u_body) in zip(known, unknown):
            assert k_status == u_status == 401 and k_body == u_body, (k_body, u_body)
        _assert_throttled(*_login(live.url, "nobody", "wrong-password"))
        _assert_throttled(*_login(live.url, "alice", "wrong-password"))


def test_the_address_limit_locks_that_address_only(tmp_path: Path) -> None:
    config = "auth_failures_per_user: 100\nauth_failures_per_address: 3\nauth_failure_window: 2\nauth_lockout: 2\n"
    with serve_root(tmp_path / "root", config) as live:
        for name in ("ghost-1", "ghost-2", "ghost-3"):  # each user once: only the address reaches its limit
            assert _login(live.url, name, "guess")[0] == 401
        retry = _assert_throttled(*_login(live.url, "alice", PASSWORD))
        status, _, body = _login(live.url, "alice", PASSWORD, source="127.0.0.2")
        assert status == 201, body
        _wait_out(retry)
        assert _login(live.url, "alice", PASSWORD)[0] == 201


def test_an_unknown_user_costs_the_same_scrypt_as_a_wrong_password(tmp_path: Path,
                                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    """The server runs in this process: every scrypt it derives is seen, with its cost parameters."""
    derived: list[tuple[int, int, int, int]] = []
    real_scrypt = hashlib.scrypt

    def scrypt(password: bytes, *, salt: bytes, n: int, r: int, p: int, dklen: int, **kw: Any) -> bytes:
        derived.append((n, r, p, dklen))
        return real_scrypt(password, salt=salt, n=n, r=r, p=p, dklen=dklen, **kw)

    with serve_root(tmp_path / "root") as live:
        stored = read_document(config_path(live.layout))["users"][0]["password_hash"].split("$")
        cost = (int(stored[1]), int(stored[2]), int(stored[3]), len(base64.b64decode(stored[5])))
        monkeypatch.setattr(hashlib, "scrypt", scrypt)
        for user, by in (("alice", "name"), ("nobody", "name"), ("0123456789abcdef", "id")):
            derived.clear()
            status, _, _ = _login(live.url, user, "wrong-password", by=by)
            assert status == 401
            assert derived == [cost], (user, derived)


def test_throttle_keys_are_checked() -> None:
    for key, value in (("auth_failures_per_user", -1), ("auth_failures_per_address", "many"),
                       ("auth_failure_window", "1h"), ("auth_lockout", -5)):
        with pytest.raises(InputError, match=f"key '{key}'"):
            parse_config({key: value}, "config.yaml")
    config = parse_config({}, "config.yaml")
    assert (config.auth_failures_per_user, config.auth_failures_per_address, config.auth_failure_window,
            config.auth_lockout) == (5, 50, 300.0, 300.0)


# -- revocation -------------------------------------------------------------------------------

def _get(url: str, token: str, path: str = "/compute/v2.1/flavors") -> requests.Response:
    return requests.get(url + path, headers={"X-Auth-Token": token}, timeout=30)


def _delete(url: str, token: str, subject: str | None) -> requests.Response:
    headers = {"X-Auth-Token": token, **({"X-Subject-Token": subject} if subject is not None else {})}
    return requests.delete(url + TOKENS, headers=headers, timeout=30)


def test_a_revoked_token_is_refused_by_every_worker_and_others_still_work(tmp_path: Path) -> None:
    with serve_root(tmp_path / "root") as live, serve_layout(live.layout) as other:
        urls = (live.url, other)
        revoked, kept, bob = live.token("alice"), live.token("alice"), live.token("bob")
        for url in urls:  # both caches remember both tokens
            assert _get(url, revoked).status_code == 200 and _get(url, kept).status_code == 200

        assert _delete(other, bob, revoked).status_code == 403, "bob may not revoke alice's token"
        assert _delete(other, revoked, None).status_code == 400
        assert _delete(other, revoked, "not.a-token").status_code == 404
        resp = _delete(live.url, kept, revoked)
        assert resp.status_code == 204 and not resp.content

        for url in urls:
            refused = _get(url, revoked)
            assert refused.status_code == 401 and "revoked" in refused.json()["unauthorized"]["message"]
            assert _get(url, kept).status_code == 200, "alice's other token still works"
            for method in ("GET", "HEAD"):
                check = requests.request(method, url + TOKENS, timeout=30,
                                         headers={"X-Auth-Token": kept, "X-Subject-Token": revoked})
                assert check.status_code == 404, (method, check.text)
            assert _delete(url, kept, revoked).status_code == 404, "already revoked"
            assert _delete(url, revoked, kept).status_code == 401, "a revoked token authorizes nothing"

        admin = live.token("admin")
        assert _delete(other, admin, kept).status_code == 204, "an admin revokes anyone's token"
        assert _get(live.url, kept).status_code == 401

        own = live.token("bob")
        assert _delete(live.url, own, own).status_code == 204, "a token revokes itself"
        assert _get(other, own).status_code == 401


def test_openstack_token_revoke(tmp_path: Path) -> None:
    with serve_root(tmp_path / "root") as live:
        token = live.token("alice")
        live.osc("alice", "token", "revoke", token)
        assert _get(live.url, token).status_code == 401


@contextmanager
def _serve_workers(root: Path, workers: int) -> Iterator[str]:
    """`bin/provision serve --workers N --port 0` over `root` (users already set) until the block ends."""
    process = subprocess.Popen([str(REPO / "bin" / "provision"), "serve", "--root", str(root), "--port", "0",
                                "--workers", str(workers)], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                               text=True, start_new_session=True)
    try:
        assert process.stdout is not None
        port = None
        while port is None:
            line = process.stdout.readline()
            assert line, f"serve exited ({process.wait()})"
            match = re.fullmatch(r"export OS_AUTH_URL=http://127\.0\.0\.1:(\d+)/identity", line.strip())
            port = match and int(match.group(1))
        yield f"http://127.0.0.1:{port}"
    finally:
        os.killpg(process.pid, signal.SIGTERM)
        process.wait(60)


def _statuses(url: str, token: str, path: str, connections: int = 12) -> set[int]:
    """The statuses of `path` asked on `connections` new connections (each may land on either worker)."""
    statuses = set()
    for _ in range(connections):
        with requests.Session() as session:
            statuses.add(session.get(url + path, headers={"X-Auth-Token": token}, timeout=30).status_code)
    return statuses


def test_password_and_role_changes_refuse_older_tokens_on_every_worker(tmp_path: Path) -> None:
    root = tmp_path / "root"
    path = config_path(Layout(root))
    set_user(path, "alice", "alice-password", "demo", ["member"])
    set_user(path, "dave", "dave-password", "demo", ["admin"])
    with _serve_workers(root, 2) as url:
        live = Live(Layout(root), url)
        alice, dave = live.token("alice", "alice-password"), live.token("dave", "dave-password")
        assert _statuses(url, alice, "/compute/v2.1/flavors") == {200}
        assert _statuses(url, dave, "/identity/v3/users") == {200}

        set_user(path, "alice", "alice-new-password", "demo", ["member"])
        assert _statuses(url, alice, "/compute/v2.1/flavors") == {401}
        refused = _get(url, alice)
        assert "password or roles changed" in refused.json()["unauthorized"]["message"]
        assert _statuses(url, live.token("alice", "alice-new-password"), "/compute/v2.1/flavors") == {200}

        # dave is demoted by editing the file: his roles change, his password hash does not.
        data = read_document(path)
        entry = next(u for u in data["users"] if u["name"] == "dave")
        hash_before = entry["password_hash"]
        entry["roles"]["demo"] = ["member"]
        write_document(path, data)
        assert read_document(path)["users"][1]["password_hash"] == hash_before
        assert _statuses(url, dave, "/identity/v3/users") == {401}
        assert _statuses(url, live.token("dave", "dave-password"), "/identity/v3/users") == {403}

        other = live.token("alice", "alice-new-password")
        revoked = live.token("alice", "alice-new-password")
        assert _delete(url, other, revoked).status_code == 204
        assert _statuses(url, revoked, "/compute/v2.1/flavors") == {401}
        assert _statuses(url, other, "/compute/v2.1/flavors") == {200}


# -- what each worker remembers between changes ------------------------------------------------
# Every worker caches accounts, "not revoked" and "no failures on record" until the shared change
# counter (<root>/api/changes) moves: these fail if a writer forgets to bump it, or if a change
# made without a bump is never seen.

def test_failures_recorded_by_one_worker_lock_the_user_on_another_that_remembered_none(tmp_path: Path) -> None:
    with serve_root(tmp_path / "root", THROTTLE) as live, serve_layout(live.layout) as other:
        assert _login(other, "alice", PASSWORD)[0] == 201  # `other` now knows alice and 127.0.0.1 as clean
        for _ in range(3):
            assert _login(live.url, "alice", "wrong-password")[0] == 401
        _assert_throttled(*_login(other, "alice", PASSWORD))


def _until_refused(url: str, token: str, attempts: int = 50) -> int:
    """The status of GET flavors, asked every 0.1 s until a 401 or `attempts` are made (a bound, not a timing)."""
    status = 0
    for _ in range(attempts):
        status = _get(url, token).status_code
        if status == 401:
            break
        time.sleep(0.1)
    return status


def test_a_configuration_replaced_without_write_document_is_still_seen(tmp_path: Path) -> None:
    """As an editor saves: a new file renamed over config.yaml, no counter bump; a stat within a second sees it."""
    with serve_root(tmp_path / "root") as live:
        alice = live.token("alice")
        assert _get(live.url, alice).status_code == 200
        path = config_path(live.layout)
        data = read_document(path)
        entry = next(u for u in data["users"] if u["name"] == "alice")
        entry["roles"] = {project: ["reader"] for project in entry["roles"]}
        edited = path.with_name("config.yaml.edited")
        edited.write_text(json.dumps(data))  # JSON is YAML
        os.replace(edited, path)
        assert _until_refused(live.url, alice) == 401


def test_a_revocation_without_a_counter_bump_is_still_seen(tmp_path: Path) -> None:
    """A row written into the revocation table directly (no bump) is seen once the cached answer is a second old."""
    with serve_root(tmp_path / "root") as live:
        token = live.token("alice")
        assert _get(live.url, token).status_code == 200
        with sqlite3.connect(live.layout.state_db) as conn:
            conn.execute("INSERT INTO api_revoked_tokens (digest, expires_at) VALUES (?, ?)",
                         (token_digest(token), time.time() + 3600))
        assert _until_refused(live.url, token) == 401


def test_tokens_scoped_by_the_id_of_a_project_created_through_the_api(tmp_path: Path) -> None:
    """Projects are looked up in config.yaml first, then in state.db (the created ones)."""
    with serve_root(tmp_path / "root") as live:
        admin = {"X-Auth-Token": live.token("admin")}
        created = requests.post(f"{live.url}/identity/v3/projects", headers=admin, timeout=30,
                                json={"project": {"name": "made-here"}})
        assert created.status_code == 201, created.text
        project_id = created.json()["project"]["id"]
        set_user(config_path(live.layout), "carol", "carol-password", "made-here", ["member"])
        body = _auth_body("carol", "carol-password")
        body["auth"]["scope"]["project"] = {"id": project_id, "domain": {"name": "Default"}}
        resp = requests.post(live.url + TOKENS, json=body, timeout=30)
        assert resp.status_code == 201 and resp.json()["token"]["project"]["id"] == project_id, resp.text
        body["auth"]["scope"]["project"] = {"id": 12345}
        resp = requests.post(live.url + TOKENS, json=body, timeout=30)
        assert resp.status_code == 400 and "auth.scope.project.id" in resp.text, resp.text
