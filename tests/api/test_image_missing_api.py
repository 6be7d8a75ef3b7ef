"""Glance shows an image whose store file was deleted by hand as "killed" (Glance's "the image is not readable"),
refuses its data with a 409 instead of failing on the missing file, and shows it active again once reimported."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import requests
from apitest import Live, serve_root

from provisioner.images import ImageStore

PROVISION = Path(__file__).resolve().parents[2] / "bin" / "provision"
LOST = b"\xeb\x63\x90" + os.urandom(40000)
KEPT = b"\xeb\x63\x90" + os.urandom(30000)


def _import(live: Live, source: Path, name: str) -> None:
    done = subprocess.run([str(PROVISION), "image", "import", str(source), "--name", name,
                           "--root", str(live.layout.root)], capture_output=True, text=True, timeout=300, check=False)
    assert done.returncode == 0, done.stderr


def _statuses(live: Live, token: str) -> dict[str, str]:
    resp = requests.get(f"{live.url}/image/v2/images", headers={"X-Auth-Token": token}, timeout=30)
    assert resp.status_code == 200, resp.text
    return {image["name"]: image["status"] for image in resp.json()["images"]}


def test_an_image_whose_file_is_gone_is_killed_until_reimported(tmp_path: Path) -> None:
    (tmp_path / "lost.img").write_bytes(LOST)
    (tmp_path / "kept.img").write_bytes(KEPT)
    with serve_root(tmp_path / "root") as live:
        _import(live, tmp_path / "lost.img", "lost")
        _import(live, tmp_path / "kept.img", "kept")
        token = live.token("alice")
        # An image uploaded through Glance (a row of the API's own) loses its file too.
        headers = {"X-Auth-Token": token}
        created = requests.post(f"{live.url}/image/v2/images", json={"name": "uploaded", "disk_format": "raw",
                                "container_format": "bare"}, headers=headers, timeout=30).json()
        resp = requests.put(f"{live.url}/image/v2/images/{created['id']}/file", data=LOST[:20000] + b"u",
                            headers={**headers, "Content-Type": "application/octet-stream"}, timeout=30)
        assert resp.status_code == 204, resp.text
        store = ImageStore(live.layout)
        store.get("lost").path.unlink()
        store.get("uploaded").path.unlink()

        assert _statuses(live, token) == {"lost": "killed", "kept": "active", "uploaded": "killed"}
        lost_id = store.get("lost").id
        for image_id in (lost_id, created["id"]):
            resp = requests.get(f"{live.url}/image/v2/images/{image_id}/file", headers=headers, timeout=30)
            assert resp.status_code == 409, resp.text
            assert f"Image {image_id} is killed: its data is gone from the image store" in resp.text
            assert str(live.layout.root) not in resp.text  # no host path for a tenant
        resp = requests.get(f"{live.url}/image/v2/images?status=killed", headers=headers, timeout=30)
        assert sorted(i["name"] for i in resp.json()["images"]) == ["lost", "uploaded"]
        # A server of a killed image: Nova's 400 "not active", saying why.
        resp = requests.post(f"{live.url}/compute/v2.1/servers", headers=headers, timeout=30, json={
            "server": {"name": "vm", "imageRef": lost_id, "flavorRef": "1"}})
        assert resp.status_code == 400, resp.text
        assert f"image {lost_id!r} is not active: Image {lost_id} is killed" in resp.text

        _import(live, tmp_path / "lost.img", "lost")
        assert _statuses(live, token)["lost"] == "active"
        resp = requests.get(f"{live.url}/image/v2/images/{lost_id}/file", headers=headers, timeout=30)
        assert resp.status_code == 200 and resp.content == LOST
