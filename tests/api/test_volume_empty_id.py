"""Cinder item URLs with an empty id (`/volume/v3/volumes/`) are a 404 as in Cinder, not the collection
(issue 12: Tempest's *_without_passing_volume_id tests); the collection itself is unchanged."""

from __future__ import annotations

import pytest
import requests

from apitest import Live, live  # noqa: F401 (fixture)


@pytest.mark.parametrize("method", ["GET", "PUT", "DELETE"])
@pytest.mark.parametrize("collection", ["volumes", "snapshots", "types"])
def test_empty_id_is_not_found(live: Live, method: str, collection: str) -> None:
    resp = requests.request(method, f"{live.url}/volume/v3/{collection}/", json={"volume": {"name": "x"}},
                            headers={"X-Auth-Token": live.token("alice")}, timeout=30)
    assert resp.status_code == 404, resp.text
    assert "empty id" in resp.json()["itemNotFound"]["message"]
    listed = requests.get(f"{live.url}/volume/v3/{collection}", headers={"X-Auth-Token": live.token("alice")},
                          timeout=30)
    assert listed.status_code == 200, "the collection without the slash is still the collection"

