"""Work done once rather than per request stays correct: flavor bodies per base URL, remembered verified tokens."""

from __future__ import annotations

import time
from pathlib import Path

from falcon import testing

from api.accounts import set_user
from api.app import create_api
from api.config import config_path
from provisioner.layout import Layout


def _client(tmp_path: Path, extra_config: str = "") -> tuple[testing.TestClient, str]:
    layout = Layout(tmp_path / "root")
    set_user(config_path(layout), "alice", "alice-password", "demo", ["member"])
    if extra_config:
        path = config_path(layout)
        path.write_text(path.read_text() + extra_config)
    client = testing.TestClient(create_api(layout).app)
    resp = client.simulate_post("/identity/v3/auth/tokens", json={"auth": {"identity": {
        "methods": ["password"], "password": {"user": {"name": "alice", "domain": {"name": "Default"},
                                                       "password": "alice-password"}}}}})
    return client, resp.headers["X-Subject-Token"]


def test_flavor_links_follow_the_base_url_of_each_request(tmp_path: Path) -> None:
    client, token = _client(tmp_path)
    for path in ("/compute/v2.1/flavors", "/compute/v2.1/flavors/detail"):
        for host in ("a.example:5000", "b.example:5000", "a.example:5000"):
            flavors = client.simulate_get(path, headers={"X-Auth-Token": token, "Host": host}).json["flavors"]
            hrefs = {link["href"] for f in flavors for link in f["links"]}
            assert hrefs and all(h.startswith(f"http://{host}/compute/") for h in hrefs), (host, hrefs)
        detail = client.simulate_get(path, headers={"X-Auth-Token": token}).json["flavors"][0]
        assert ("ram" in detail) == path.endswith("/detail")


def test_a_remembered_token_is_still_refused_once_expired(tmp_path: Path) -> None:
    client, token = _client(tmp_path, "token_ttl: 1\n")
    assert client.simulate_get("/compute/v2.1/flavors", headers={"X-Auth-Token": token}).status_code == 200
    time.sleep(1.1)
    resp = client.simulate_get("/compute/v2.1/flavors", headers={"X-Auth-Token": token})
    assert resp.status_code == 401 and "expired" in resp.text


def test_a_forged_token_is_refused_after_the_genuine_one_was_remembered(tmp_path: Path) -> None:
    client, token = _client(tmp_path)
    assert client.simulate_get("/compute/v2.1/flavors", headers={"X-Auth-Token": token}).status_code == 200
    payload, _, signature = token.partition(".")
    forged = f"{payload}.{signature[:-1]}{'B' if signature.endswith('A') else 'A'}"
    resp = client.simulate_get("/compute/v2.1/flavors", headers={"X-Auth-Token": forged})
    assert resp.status_code == 401 and "not valid" in resp.text
