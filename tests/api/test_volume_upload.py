"""os-volume_upload_image (issue #12): a Glance image of a volume's data, converted to the disk_format asked for;
os-extend, which grows the volume in place, its data kept (read back through an upload); and a volume from a raw
image, converted to the qcow2 volume's format as Cinder converts it.

The simulated hypervisor's volumes have no files: a volume holds its recorded content (an image's file) or
zeros, which is what the image gets; the images' bytes are checked with qemu-img."""

from __future__ import annotations

import hashlib
import json
import subprocess
import time
from pathlib import Path

import pytest
import requests
from apitest import live, qcow2_file  # noqa: F401 (fixtures)
from test_cinder_conformance import _call, _volume, _wait

from provisioner.errors import ProvisionError
from provisioner.layout import POOL_NAME, Layout
from provisioner.provider.simulator import content_record
from provisioner.volumes import VolumeSpec, converted_path, convert_content

GIB = 1 << 30


def _upload(live, user: str, volume_id: str, version: str | None = None, **args) -> requests.Response:
    return _call(live, "POST", user, f"/volumes/{volume_id}/action", {"os-volume_upload_image": args},
                 version=version)


def _image(live, user: str, image_id: str, status: str = "active") -> dict:
    deadline = time.monotonic() + 120
    body: dict = {}
    while time.monotonic() < deadline:
        body = requests.get(f"{live.url}/image/v2/images/{image_id}", timeout=10,
                            headers={"X-Auth-Token": live.token(user)}).json()
        if body.get("status") == status:
            return body
        time.sleep(0.2)
    raise AssertionError(f"image {image_id} never reached {status}: {body}")


def _download(live, user: str, image_id: str, to: Path) -> bytes:
    data = requests.get(f"{live.url}/image/v2/images/{image_id}/file", timeout=60,
                        headers={"X-Auth-Token": live.token(user)}).content
    to.write_bytes(data)
    return data


def _info(path: Path) -> dict:
    return json.loads(subprocess.run(["qemu-img", "info", "--output=json", str(path)], check=True,
                                     capture_output=True, text=True).stdout)


@pytest.fixture(scope="module")
def patterned(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A qcow2 image with 1 MiB of 0xab at 1 MiB (the rest zeros)."""
    path = tmp_path_factory.mktemp("patterned") / "data.qcow2"
    subprocess.run(["qemu-img", "create", "-q", "-f", "qcow2", str(path), "16M"], check=True)
    subprocess.run(["qemu-io", "-f", "qcow2", "-c", "write -q -P 0xab 1M 1M", str(path)], check=True)
    return path


def test_upload_a_volume_from_an_image_keeps_its_data(live, patterned: Path, tmp_path: Path) -> None:
    image = live.osc("alice", "image", "create", "--file", str(patterned), "--disk-format", "qcow2", "patterned",
                     "-f", "json")
    volume = _volume(live, "alice", "from-image", imageRef=image["id"])
    started = _upload(live, "alice", volume["id"], "3.1", image_name="copied", disk_format="qcow2",
                      visibility="private", protected=False)
    assert started.status_code == 202, started.text
    body = started.json()["os-volume_upload_image"]
    assert (body["status"], body["disk_format"], body["container_format"]) == ("uploading", "qcow2", "bare")
    assert (body["image_name"], body["visibility"], body["protected"], body["id"]) == (
        "copied", "private", False, volume["id"])
    copied = _image(live, "alice", body["image_id"])
    _wait(live, "alice", f"/volumes/{volume['id']}", "volume", "available")
    assert (copied["name"], copied["disk_format"], copied["visibility"]) == ("copied", "qcow2", "private")
    data = _download(live, "alice", body["image_id"], tmp_path / "copied.qcow2")
    assert copied["size"] == len(data) and copied["checksum"] == hashlib.md5(data).hexdigest()
    info = _info(tmp_path / "copied.qcow2")
    assert (info["format"], info["virtual-size"]) == ("qcow2", GIB), "the volume's size, not the image's"
    same = subprocess.run(["qemu-img", "compare", "-f", "qcow2", "-F", "qcow2", str(patterned),
                           str(tmp_path / "copied.qcow2")], capture_output=True, text=True)
    assert same.returncode == 0, same.stdout + same.stderr


def test_upload_a_blank_volume_as_raw(live) -> None:
    volume = _volume(live, "alice", "blank")
    started = _upload(live, "alice", volume["id"], image_name="blank-raw", visibility="public")
    assert started.status_code == 202, started.text
    body = started.json()["os-volume_upload_image"]
    # Before 3.1 visibility is not read: private, the default.
    assert (body["disk_format"], body["visibility"]) == ("raw", "private")
    assert _call(live, "GET", "alice", f"/volumes/{volume['id']}").json()["volume"]["status"] in (
        "uploading", "available")
    copied = _image(live, "alice", body["image_id"])
    zeros = hashlib.md5()
    block = bytes(1 << 20)
    for _ in range(GIB // len(block)):
        zeros.update(block)
    assert (copied["size"], copied["checksum"]) == (GIB, zeros.hexdigest())
    _wait(live, "alice", f"/volumes/{volume['id']}", "volume", "available")


def test_upload_refusals(live) -> None:
    volume = _volume(live, "alice", "refused-upload")
    for args, field in (({"image_name": "x", "disk_format": "vmdk"}, "os-volume_upload_image.disk_format"),
                        ({}, "os-volume_upload_image.image_name"),
                        ({"image_name": ""}, "os-volume_upload_image.image_name"),
                        ({"image_name": "x", "container_format": "ova"}, "os-volume_upload_image.container_format")):
        resp = _upload(live, "alice", volume["id"], "3.1", **args)
        assert resp.status_code == 400 and resp.json()["badRequest"]["message"].startswith(field), resp.text
    public = _upload(live, "alice", volume["id"], "3.1", image_name="x", visibility="public")
    assert public.status_code == 403 and "admin" in public.json()["forbidden"]["message"]
    assert _call(live, "POST", "admin", f"/volumes/{volume['id']}/action",
                 {"os-reset_status": {"status": "in-use"}}).status_code == 202
    busy = _upload(live, "alice", volume["id"], image_name="x", force=True)
    assert busy.status_code == 400 and "Invalid volume" in busy.json()["badRequest"]["message"]
    assert _upload(live, "bob", volume["id"], image_name="x").status_code == 404
    mine = requests.get(f"{live.url}/image/v2/images", headers={"X-Auth-Token": live.token("alice")},
                        timeout=10).json()["images"]
    assert "x" not in {i["name"] for i in mine}, "no image is left by a refused upload"


def test_extend_keeps_the_data(live, patterned: Path, tmp_path: Path) -> None:
    image = live.osc("alice", "image", "create", "--file", str(patterned), "--disk-format", "qcow2", "to-grow",
                     "-f", "json")
    volume = _volume(live, "alice", "grown", imageRef=image["id"])
    snapshot = _call(live, "POST", "alice", "/snapshots", {"snapshot": {"volume_id": volume["id"]}})
    _wait(live, "alice", f"/snapshots/{snapshot.json()['snapshot']['id']}", "snapshot", "available")
    state = live.layout.root / "volumes" / f"vol-{volume['id']}" / "terraform" / "terraform.tfstate"
    grown = _call(live, "POST", "alice", f"/volumes/{volume['id']}/action", {"os-extend": {"new_size": 2}})
    assert grown.status_code == 202, grown.text
    shown = _wait(live, "alice", f"/volumes/{volume['id']}", "volume", "available")
    assert shown["size"] == 2
    # The volume's apply refuses any replacement (provisioner.volumes.create_volume): this was an update.
    assert _state_capacity(state) == 2 * GIB
    started = _upload(live, "alice", volume["id"], image_name="grown", disk_format="qcow2")
    copied = _image(live, "alice", started.json()["os-volume_upload_image"]["image_id"])
    _download(live, "alice", copied["id"], tmp_path / "grown.qcow2")
    assert _info(tmp_path / "grown.qcow2")["virtual-size"] == 2 * GIB
    same = subprocess.run(["qemu-img", "compare", "-f", "qcow2", "-F", "qcow2", str(patterned),
                           str(tmp_path / "grown.qcow2")], capture_output=True, text=True)
    assert same.returncode == 0, same.stdout + same.stderr


def _state_capacity(state: Path) -> int:
    """The libvirt volume's capacity as its workspace's state has it."""
    resources = json.loads(state.read_text())["resources"]
    return next(r["instances"][0]["attributes"]["capacity"] for r in resources if r["type"] == "libvirt_volume")


def _first_bytes(path: Path, fmt: str, count: int, scratch: Path) -> bytes:
    """The first `count` bytes the guest sees of a disk file (qemu-img dd: the format given, never probed)."""
    out = scratch / "head.raw"
    subprocess.run(["qemu-img", "dd", "-f", fmt, "-O", "raw", "bs=4096", "count=1", f"if={path}", f"of={out}"],
                   check=True, capture_output=True)
    return out.read_bytes()[:count]


def test_a_volume_from_a_raw_image_holds_its_bytes(live, tmp_path: Path) -> None:
    data = bytes(range(256)) * 11 + b"raw-tail"  # 2824 bytes: not a whole sector, as Tempest's 1 KiB is not GiB
    raw = tmp_path / "data.raw"
    raw.write_bytes(data)
    image = live.osc("alice", "image", "create", "--file", str(raw), "--disk-format", "raw", "raw-bytes",
                     "-f", "json")
    volume = _volume(live, "alice", "from-raw", imageRef=image["id"])
    assert (volume["bootable"], volume["size"]) == ("true", 1)
    assert volume["volume_image_metadata"]["disk_format"] == "raw"
    # What the (test driver's) libvirt volume holds: the conversion, qcow2 at the volume's size.
    record = content_record(live.layout.simulator_uri, POOL_NAME, f"vol-{volume['id']}.qcow2")
    assert record is not None
    held = Path(record.url.removeprefix("file://"))
    assert (_info(held)["format"], _info(held)["virtual-size"]) == ("qcow2", GIB)
    assert _first_bytes(held, "qcow2", 4096, tmp_path) == data + bytes(4096 - len(data)), "the image, then zeros"
    # Read back through the API too: the volume uploaded as an image is the raw image's bytes, then zeros.
    started = _upload(live, "alice", volume["id"], image_name="raw-back", disk_format="qcow2")
    assert started.status_code == 202, started.text
    copied = _image(live, "alice", started.json()["os-volume_upload_image"]["image_id"])
    _download(live, "alice", copied["id"], tmp_path / "back.qcow2")
    same = subprocess.run(["qemu-img", "compare", "-f", "raw", "-F", "qcow2", str(raw), str(tmp_path / "back.qcow2")],
                          capture_output=True, text=True)
    assert same.returncode == 0, same.stdout + same.stderr
    _wait(live, "alice", f"/volumes/{volume['id']}", "volume", "available")


def test_a_raw_image_larger_than_the_volume_is_refused(live, tmp_path: Path) -> None:
    raw = tmp_path / "big.raw"
    with raw.open("wb") as out:  # sparse: 1 GiB and one sector, just over the smallest volume
        out.truncate(GIB + 512)
    image = live.osc("alice", "image", "create", "--file", str(raw), "--disk-format", "raw", "raw-big", "-f", "json")
    before = len(_call(live, "GET", "alice", "/volumes").json()["volumes"])
    refused = _call(live, "POST", "alice", "/volumes", {"volume": {"size": 1, "imageRef": image["id"]}})
    assert refused.status_code == 400, refused.text
    assert refused.json()["badRequest"]["message"] == (
        "volume.size: Invalid input received: Size of specified image 2GB is larger than volume size 1GB.")
    assert len(_call(live, "GET", "alice", "/volumes").json()["volumes"]) == before, "nothing recorded"
    fitted = _volume(live, "alice", "raw-big-fits", imageRef=image["id"], size=2)
    assert fitted["size"] == 2


def test_converting_a_raw_content_is_bounded_by_the_volume(tmp_path: Path) -> None:
    """The engine's own check behind the API's: a raw content bigger than the volume is never converted, and a
    format other than raw or qcow2 is refused by name."""
    raw = tmp_path / "big.raw"
    with raw.open("wb") as out:
        out.truncate(GIB + 512)
    layout = Layout(tmp_path / "root")
    with pytest.raises(ProvisionError, match=r"content is 1073742336 bytes, larger than the volume \(1073741824"):
        convert_content(VolumeSpec("vol-x", "test:///default", GIB, content=str(raw), content_format="raw"), layout)
    assert not converted_path(layout, "vol-x").exists()
    with pytest.raises(ProvisionError, match="content format 'vmdk' is not one of qcow2, raw"):
        convert_content(VolumeSpec("vol-y", "test:///default", GIB, content=str(raw), content_format="vmdk"), layout)
    small = tmp_path / "small.raw"
    small.write_bytes(b"\xab" * 1000)
    made = convert_content(VolumeSpec("vol-z", "test:///default", 2 * GIB, content=str(small), content_format="raw"),
                           layout)
    assert (made, _info(made)["virtual-size"]) == (converted_path(layout, "vol-z"), 2 * GIB)
    assert _first_bytes(made, "qcow2", 1024, tmp_path) == b"\xab" * 1000 + bytes(24)


def test_an_image_min_disk_bounds_the_volume(live, tmp_path: Path) -> None:
    raw = tmp_path / "small.raw"
    raw.write_bytes(b"\x01" * 1024)
    image = live.osc("alice", "image", "create", "--file", str(raw), "--disk-format", "raw", "--min-disk", "2",
                     "raw-min-disk", "-f", "json")
    refused = _call(live, "POST", "alice", "/volumes", {"volume": {"size": 1, "imageRef": image["id"]}})
    assert refused.status_code == 400, refused.text
    assert refused.json()["badRequest"]["message"] == (
        "volume.size: Invalid input received: Volume size 1GB cannot be smaller than the image minDisk size 2GB.")
    sized = _call(live, "POST", "alice", "/volumes", {"volume": {"imageRef": image["id"], "name": "min-disk"}})
    assert sized.status_code == 202 and sized.json()["volume"]["size"] == 2, "no size: the image's min_disk"
    _wait(live, "alice", f"/volumes/{sized.json()['volume']['id']}", "volume", "available")
