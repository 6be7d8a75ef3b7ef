"""Versions, use by domains, prune and delete."""

from __future__ import annotations

import io
import json
import os
from concurrent.futures import ThreadPoolExecutor

import pytest

from imagetest import _no_proxy, layout, snapshot, store, use_image  # noqa: F401
from provisioner.images import ImageInputError, ImageInUse, ImageNotFound, ImageStore, UsageUnknown


def versions(store: ImageStore, name: str, count: int) -> list:
    """Import `count` different contents as successive versions of `name`."""
    return [store.import_stream(name, io.BytesIO(b"\xeb" + os.urandom(4096)), f"upload {i}") for i in range(count)]


def test_versions_are_listed_in_order(store: ImageStore) -> None:
    a = versions(store, "a", 3)
    b = versions(store, "b", 1)
    listed = store.list()
    assert [(r.name, r.version, r.current) for r in listed] == [
        ("a", 1, False), ("a", 2, False), ("a", 3, True), ("b", 1, True)]
    assert [r.id for r in listed] == [r.id for r in a + b]
    assert len({r.path for r in listed}) == 4 and all(r.path.exists() for r in listed)
    assert store.versions("a") == listed[:3] and store.versions("zzz") == []


def test_in_use_by_digest_or_by_path(store: ImageStore, layout) -> None:
    v1, v2, v3 = versions(store, "a", 3)
    use_image(layout, "one.example", v1)
    # A domain whose provision.conf named the `<name>.<fmt>` link, resolved when it was rendered.
    use_image(layout, "two.example", v2, source=str(v2.path))
    use_image(layout, "three.example", v3, source=str(store.directory / "a.raw"))
    assert store.in_use() == {v1.sha256, v2.sha256, v3.sha256}
    assert store.used_by() == {v1.id: ["one.example"], v2.id: ["two.example"], v3.id: ["three.example"]}


def test_prune_keeps_n_and_every_version_in_use(store: ImageStore, layout) -> None:
    v = versions(store, "a", 5)
    other = versions(store, "b", 2)
    use_image(layout, "web.example", v[1])
    removed = store.prune("a", keep=2)
    assert [r.version for r in removed] == [1, 3]
    assert not any(r.path.exists() for r in removed)
    assert [r.version for r in store.versions("a")] == [2, 4, 5]
    assert [r.id for r in store.versions("b")] == [r.id for r in other]
    assert [r.id for r in store.prune("a", keep=1)] == [v[3].id]
    assert [r.version for r in store.versions("a")] == [2, 5]
    assert store.prune("a", keep=1) == []


def test_prune_refuses_nonsense(store: ImageStore) -> None:
    versions(store, "a", 2)
    with pytest.raises(ImageInputError, match="image 'a'.*--keep 0: keep at least 1"):
        store.prune("a", keep=0)
    with pytest.raises(ImageNotFound, match="image 'nope': no such image"):
        store.prune("nope", keep=1)
    with pytest.raises(ImageInputError, match="image name '../a'"):
        store.prune("../a", keep=1)


def test_delete_is_refused_while_in_use(store: ImageStore, layout) -> None:
    v1, v2 = versions(store, "a", 2)
    use_image(layout, "db.example", v1)
    before = snapshot(store.directory)
    with pytest.raises(ImageInUse, match=rf"image 'a': in use, not deleted: version 1 \({v1.id}\) backs db.example"):
        store.delete(v1.id)
    with pytest.raises(ImageInUse):
        store.delete("a")
    assert snapshot(store.directory) == before


def test_delete_current_version_then_the_image(store: ImageStore) -> None:
    v1, v2 = versions(store, "a", 2)
    assert store.delete(v2.id) == [v2]
    assert not v2.path.exists() and store.get("a").id == v1.id
    assert (store.directory / "a.raw").resolve() == v1.path
    current = store.get("a")
    assert store.delete("a") == [current]
    assert store.list() == [] and not (store.directory / "a.raw").is_symlink()
    with pytest.raises(ImageNotFound, match="image 'a': no image name or version id"):
        store.delete("a")


def test_unreadable_spec_blocks_deletion(store: ImageStore, layout) -> None:
    (v1,) = versions(store, "a", 1)
    spec = layout.domain_dir("broken.example") / "spec.json"
    spec.parent.mkdir(parents=True)
    spec.write_text("{not json")
    with pytest.raises(UsageUnknown, match=f"cannot tell which images are in use: {spec} is unreadable"):
        store.delete("a")
    assert v1.path.exists()


def test_corrupt_index_is_reported(store: ImageStore) -> None:
    versions(store, "a", 1)
    store.index_path.write_text(json.dumps({"images": [{"name": "a"}]}))
    with pytest.raises(Exception, match=r"index.json': unreadable image index"):
        store.list()


def test_concurrent_imports_all_land_in_the_index(store: ImageStore) -> None:
    contents = [b"\xeb" + os.urandom(300_000) for _ in range(6)]
    with ThreadPoolExecutor(6) as pool:
        records = list(pool.map(lambda c: store.import_stream("a", io.BytesIO(c), "upload"), contents))
    listed = store.versions("a")
    assert sorted(r.version for r in listed) == [1, 2, 3, 4, 5, 6]
    assert {r.id for r in listed} == {r.id for r in records}
    assert {r.path.read_bytes() for r in listed} == set(contents)
    assert [p.name for p in store.directory.iterdir() if ".partial-" in p.name] == []


def test_stale_partial_files_are_swept(store: ImageStore) -> None:
    versions(store, "a", 1)
    stale = store.directory / ".a.partial-dead"
    stale.write_bytes(b"left by a killed import")
    os.utime(stale, (1, 1))
    fresh = store.directory / ".b.partial-live"
    fresh.write_bytes(b"an import in progress")
    versions(store, "a", 1)
    assert not stale.exists() and fresh.exists()
