"""An image deleted while a server's disk is backed by it (issue #12, Tempest's ImageDependencyTests): Glance
deletes it at once; here its store version stays, hidden, until no server uses it, then goes at the next image
delete (as Glance's scrubber reclaims delayed deletes)."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import requests
from apitest import Live, live, qcow2_file  # noqa: F401 (fixtures)

from provisioner.images import ImageStore


def _headers(live: Live) -> dict[str, str]:
    return {"X-Auth-Token": live.token("alice")}


def _image(live: Live, name: str, data: bytes) -> str:
    created = requests.post(f"{live.url}/image/v2/images", headers=_headers(live), timeout=30,
                            json={"name": name, "disk_format": "qcow2", "container_format": "bare"})
    assert created.status_code == 201, created.text
    image_id = created.json()["id"]
    resp = requests.put(f"{live.url}/image/v2/images/{image_id}/file", data=data, timeout=60,
                        headers={**_headers(live), "Content-Type": "application/octet-stream"})
    assert resp.status_code == 204, resp.text
    return image_id


def _server_status(live: Live, server_id: str, wanted: str | None) -> dict[str, Any] | None:
    """The server once it is `wanted` (None: once it is gone), 120 s at most."""
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        resp = requests.get(f"{live.url}/compute/v2.1/servers/{server_id}", headers=_headers(live), timeout=30)
        if wanted is None and resp.status_code == 404:
            return None
        if resp.status_code == 200 and resp.json()["server"]["status"] == wanted:
            return resp.json()["server"]
        time.sleep(0.3)
    raise AssertionError(f"server {server_id} never became {wanted}")


def test_an_image_in_use_is_deleted_and_its_version_kept_until_the_server_goes(live: Live,
                                                                               qcow2_file: Path) -> None:
    image_id = _image(live, "in-use", qcow2_file.read_bytes())
    store = ImageStore(live.layout)
    version = next(r.id for r in store.list() if r.name == "in-use")
    resp = requests.post(f"{live.url}/compute/v2.1/servers", headers=_headers(live), timeout=30, json={
        "server": {"name": "user-of-image", "imageRef": image_id, "flavorRef": "1", "networks": "none"}})
    assert resp.status_code == 202, resp.text
    server_id = resp.json()["server"]["id"]
    _server_status(live, server_id, "ACTIVE")

    resp = requests.delete(f"{live.url}/image/v2/images/{image_id}", headers=_headers(live), timeout=30)
    assert resp.status_code == 204, resp.text
    assert requests.get(f"{live.url}/image/v2/images/{image_id}", headers=_headers(live),
                        timeout=30).status_code == 404
    listed = requests.get(f"{live.url}/image/v2/images", headers=_headers(live), timeout=30).json()["images"]
    assert image_id not in [i["id"] for i in listed] and version not in [i["id"] for i in listed]
    assert version in [r.id for r in store.list()], "the server's disk is backed by it"
    again = requests.post(f"{live.url}/compute/v2.1/servers", headers=_headers(live), timeout=30, json={
        "server": {"name": "late", "imageRef": image_id, "flavorRef": "1", "networks": "none"}})
    assert again.status_code == 400, again.text  # deleted: no new server from it

    # Another delete while the server still runs keeps the version.
    other = _image(live, "other", qcow2_file.read_bytes() + b"\0" * 512)
    assert requests.delete(f"{live.url}/image/v2/images/{other}", headers=_headers(live),
                           timeout=30).status_code == 204
    assert version in [r.id for r in store.list()]

    assert requests.delete(f"{live.url}/compute/v2.1/servers/{server_id}", headers=_headers(live),
                           timeout=30).status_code == 204
    _server_status(live, server_id, None)
    third = _image(live, "third", qcow2_file.read_bytes() + b"\0" * 1024)
    assert requests.delete(f"{live.url}/image/v2/images/{third}", headers=_headers(live),
                           timeout=30).status_code == 204
    assert version not in [r.id for r in store.list()], "reclaimed once no server used it"


def test_the_id_of_an_image_awaiting_reclaim_is_taken(live: Live, qcow2_file: Path) -> None:
    """Its row keeps the id until the version goes: a new image with that id is a 409, not a crash."""
    image_id = _image(live, "held", qcow2_file.read_bytes() + b"\0" * 2048)
    resp = requests.post(f"{live.url}/compute/v2.1/servers", headers=_headers(live), timeout=30, json={
        "server": {"name": "holder", "imageRef": image_id, "flavorRef": "1", "networks": "none"}})
    assert resp.status_code == 202, resp.text
    server_id = resp.json()["server"]["id"]
    _server_status(live, server_id, "ACTIVE")
    assert requests.delete(f"{live.url}/image/v2/images/{image_id}", headers=_headers(live),
                           timeout=30).status_code == 204
    again = requests.post(f"{live.url}/image/v2/images", headers=_headers(live), timeout=30,
                          json={"name": "held", "id": image_id})
    assert again.status_code == 409, again.text
    requests.delete(f"{live.url}/compute/v2.1/servers/{server_id}", headers=_headers(live), timeout=30)
    _server_status(live, server_id, None)
