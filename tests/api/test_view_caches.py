"""Views each worker process caches until a shared change counter moves (api/change_counter.py): a change made
through one worker shows in the next GET of another. Two apps over one root stand for two worker processes:
each has its own caches, both map the same counters file."""

from __future__ import annotations

import threading
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

import requests

from api.server import bind, make_server
from provisioner.layout import Layout
from apitest import serve_root

FLAVORS = "/compute/v2.1/flavors"


@contextmanager
def _other_worker(layout: Layout) -> Iterator[str]:
    """Another app over the same root, as another worker process would be: its own caches."""
    sock = bind(0)
    server, api = make_server(layout, sock)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{sock.getsockname()[1]}"
    finally:
        api.tasks.shutdown()
        server.close()


def _flavor_names(url: str, token: str, path: str) -> set[str]:
    resp = requests.get(url + path, headers={"X-Auth-Token": token}, timeout=30)
    assert resp.status_code == 200, resp.text
    return {f["name"] for f in resp.json()["flavors"]}


def test_a_flavor_created_or_deleted_through_one_worker_is_listed_so_by_the_other_at_once(tmp_path: Path) -> None:
    with serve_root(tmp_path / "root") as live, _other_worker(live.layout) as other:
        admin, alice = live.token("admin"), live.token("alice")
        paths = (FLAVORS, FLAVORS + "/detail")
        for url in (live.url, other):  # both lists cached
            for path in paths:
                assert "cached.big" not in _flavor_names(url, alice, path)

        created = requests.post(live.url + FLAVORS, headers={"X-Auth-Token": admin}, timeout=30, json={
            "flavor": {"name": "cached.big", "ram": 4096, "vcpus": 2, "disk": 20}})
        assert created.status_code == 200, created.text
        flavor_id = created.json()["flavor"]["id"]
        for url in (live.url, other):
            for path in paths:
                assert "cached.big" in _flavor_names(url, alice, path), (url, path)

        deleted = requests.delete(f"{other}{FLAVORS}/{flavor_id}", headers={"X-Auth-Token": admin}, timeout=30)
        assert deleted.status_code == 202, deleted.text
        for url in (live.url, other):
            for path in paths:
                assert "cached.big" not in _flavor_names(url, alice, path), (url, path)

