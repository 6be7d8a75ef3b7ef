"""The shared workspace's image registry forgets an image whose file was deleted before any apply created
its volume (issue #12: one such image made every later server build fail on "Volume content file is not
readable"); an image whose volume exists, or a URL source, stays."""

from __future__ import annotations

import json
from pathlib import Path

from provisioner.layout import Layout
from provisioner.shared import register_image
from provisioner.spec.model import ImageRef


def _image(tmp_path: Path, slug: str, digest: str) -> ImageRef:
    source = tmp_path / f"{slug}.qcow2"
    source.write_bytes(b"QFI\xfb")
    return ImageRef(source=str(source), format="qcow2", digest=digest * 64, slug=slug)


def test_a_vanished_image_never_applied_leaves_the_plan(tmp_path: Path) -> None:
    layout = Layout(tmp_path / "root")
    uri = layout.simulator_uri
    gone, created, kept = _image(tmp_path, "gone", "a"), _image(tmp_path, "created", "b"), _image(tmp_path, "kept", "c")
    remote = ImageRef(source="https://images.example/x.qcow2", format="qcow2", digest="d" * 64, slug="remote")
    for image in (gone, created, remote):
        directory = register_image(uri, layout, image)
    state = directory / "terraform" / "terraform.tfstate"
    state.write_text(json.dumps({"resources": [{"mode": "managed", "type": "libvirt_volume", "name": "base_created",
                                                "instances": [
        {"attributes": {"name": created.volume_name}}]}]}))
    Path(gone.source).unlink()
    Path(created.source).unlink()

    register_image(uri, layout, kept)
    registry = json.loads((directory / "images.json").read_text())
    assert set(registry) == {created.volume_name, kept.volume_name, remote.volume_name}
    plan = (directory / "terraform" / "main.tf").read_text()
    assert gone.volume_name not in plan and gone.source not in plan
    assert created.volume_name in plan and kept.volume_name in plan
