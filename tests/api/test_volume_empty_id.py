"""Cinder item URLs with an empty id (`/volume/v3/volumes/`) and a snapshot of volume_id null are a 404 as in
Cinder (issue 12: Tempest's *_without_passing_volume_id tests); the collection itself is unchanged."""

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



def test_snapshot_of_no_volume_is_not_found(live: Live) -> None:
    before = requests.get(f"{live.url}/volume/v3/snapshots", headers={"X-Auth-Token": live.token("alice")},
                          timeout=30).json()["snapshots"]
    resp = requests.post(f"{live.url}/volume/v3/snapshots", json={"snapshot": {"volume_id": None, "name": "x"}},
                         headers={"X-Auth-Token": live.token("alice")}, timeout=30)
    assert resp.status_code == 404 and "could not be found" in resp.json()["itemNotFound"]["message"], resp.text
    assert requests.get(f"{live.url}/volume/v3/snapshots", headers={"X-Auth-Token": live.token("alice")},
                        timeout=30).json()["snapshots"] == before
