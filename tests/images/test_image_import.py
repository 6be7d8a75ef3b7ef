"""Importing images from files and streams: digests, formats, names, versions."""

from __future__ import annotations

import gzip
import io
import os
import subprocess
from pathlib import Path

import pytest

from imagetest import QEMU_IMG, _no_proxy, digests_of, layout, qcow2, snapshot, store, write  # noqa: F401
from provisioner.errors import InputError
from provisioner.images import (
    DigestMismatch, FetchError, ImageInputError, ImageNotFound, ImageStore, UnsupportedFormat,
)
from provisioner.images.formats import HEAD_SIZE

RAW = b"\xeb\x63\x90" + os.urandom(3 * HEAD_SIZE)


def test_import_qcow2_file(store: ImageStore, qcow2) -> None:
    source = qcow2("debian-12.qcow2", "64M")
    record = store.import_source(str(source))
    content = source.read_bytes()
    assert (record.name, record.version, record.format, record.current) == ("debian-12", 1, "qcow2", True)
    assert record.size == len(content) and record.virtual_size == 64 << 20
    assert record.sha256 == digests_of(content)["sha256"] and record.md5 is None
    assert record.source == str(source)
    assert record.path.read_bytes() == content
    assert record.path.name == f"debian-12@{record.imported_at.replace('-', '').replace(':', '')}.qcow2"
    assert (store.directory / "debian-12.qcow2").resolve() == record.path
    assert store.get("debian-12") == record == store.get_by_id(record.id)
    ref = record.to_image_ref()
    assert (ref.source, ref.format, ref.digest, ref.slug) == (str(record.path), "qcow2", record.sha256, "debian-12")


def test_format_comes_from_content_not_file_name(store: ImageStore, qcow2, tmp_path: Path) -> None:
    disguised = qcow2("really-qcow2.img")
    raw = write(tmp_path / "really-raw.qcow2", RAW)
    assert store.import_source(str(disguised)).format == "qcow2"
    record = store.import_source(str(raw))
    assert (record.name, record.format, record.virtual_size) == ("really-raw", "raw", len(RAW))


@pytest.mark.parametrize("algorithm", ["md5", "sha1", "sha256", "sha512"])
def test_each_digest_is_verified_and_recorded(store: ImageStore, tmp_path: Path, algorithm: str) -> None:
    source = write(tmp_path / "disk.img", RAW)
    expected = digests_of(RAW)[algorithm]
    record = store.import_source(str(source), "disk", {algorithm: expected.upper()})
    assert getattr(record, algorithm) == expected
    assert store.get("disk").digests()[algorithm] == expected


def test_all_digests(store: ImageStore, tmp_path: Path) -> None:
    record = store.import_source(str(write(tmp_path / "disk.img", RAW)), None, digests_of(RAW))
    assert record.digests() == digests_of(RAW)
    assert (record.checksum, record.os_hash_algo, record.os_hash_value) == (
        digests_of(RAW)["md5"], "sha512", digests_of(RAW)["sha512"])


def test_mismatch_keeps_nothing_and_names_the_image(store: ImageStore, tmp_path: Path) -> None:
    old = store.import_source(str(write(tmp_path / "disk.img", RAW)))
    before = snapshot(store.directory)
    changed = write(tmp_path / "new/disk.img", RAW + b"x")
    wrong = {**digests_of(RAW + b"x"), "sha1": "0" * 40}
    with pytest.raises(DigestMismatch, match=r"image 'disk': digest mismatch .* sha1 is [0-9a-f]{40}, "
                                             r"expected 0{40}; nothing imported"):
        store.import_source(str(changed), digests=wrong)
    assert snapshot(store.directory) == before
    assert store.get("disk") == old


def test_bad_digest_arguments(store: ImageStore, tmp_path: Path) -> None:
    source = str(write(tmp_path / "disk.img", RAW))
    with pytest.raises(ImageInputError, match=r"image 'disk'.*sha256 'abc' is not a sha256 digest \(64 hex"):
        store.import_source(source, digests={"sha256": "abc"})
    with pytest.raises(ImageInputError, match="unknown digest algorithm 'crc32'"):
        store.import_source(source, digests={"crc32": "0" * 8})
    assert not store.directory.exists()


@pytest.mark.parametrize("bad", ["../x", "a/b", "", "with space", "@x", ".hidden", "a@b", "x" * 101])
def test_bad_names_are_refused(store: ImageStore, tmp_path: Path, bad: str) -> None:
    source = str(write(tmp_path / "disk.img", RAW))
    with pytest.raises(InputError, match="image name") as info:
        store.import_source(source, bad)
    assert info.value.exit_code == 2
    assert not store.directory.exists()
    assert store.lookup(bad) is None


def test_name_from_an_unusable_file_name_asks_for_one(store: ImageStore, tmp_path: Path) -> None:
    source = write(tmp_path / "my disk.img", RAW)
    with pytest.raises(InputError, match="give a name with --name"):
        store.import_source(str(source))


def test_reimporting_the_same_content_adds_no_version(store: ImageStore, tmp_path: Path) -> None:
    source = str(write(tmp_path / "disk.img", RAW))
    first = store.import_source(source)
    before = snapshot(store.directory)
    assert store.import_source(source) == first
    assert store.import_source(source, digests={"sha256": first.sha256}) == first
    assert snapshot(store.directory) == before and len(store.list()) == 1


def test_reimport_records_newly_computed_digests(store: ImageStore, tmp_path: Path) -> None:
    source = str(write(tmp_path / "disk.img", RAW))
    first = store.import_source(source)
    again = store.import_source(source, digests={"md5": digests_of(RAW)["md5"]})
    assert again.id == first.id and again.md5 == digests_of(RAW)["md5"]
    assert store.get("disk").md5 == again.md5


def test_changed_content_keeps_the_previous_version(store: ImageStore, qcow2) -> None:
    v1 = store.import_source(str(qcow2("disk.qcow2", "64M")))
    v1_content = v1.path.read_bytes()
    v2 = store.import_source(str(qcow2("disk.qcow2", "128M")))
    assert (v2.version, v2.current) == (2, True) and v2.path != v1.path
    assert v1.path.read_bytes() == v1_content
    assert [(r.version, r.current) for r in store.list()] == [(1, False), (2, True)]
    assert store.get("disk").id == v2.id
    assert (store.directory / "disk.qcow2").resolve() == v2.path
    v3 = store.import_source(str(write(qcow2("x").parent / "disk.img", RAW)), "disk")
    assert v3.format == "raw" and (store.directory / "disk.raw").resolve() == v3.path
    assert not (store.directory / "disk.qcow2").exists()


def test_dry_run_writes_nothing(store: ImageStore, tmp_path: Path, layout) -> None:
    source = str(write(tmp_path / "disk.img", RAW))
    record = store.import_source(source, dry_run=True, digests={"sha512": digests_of(RAW)["sha512"]})
    assert (record.version, record.format, record.sha512) == (1, "raw", digests_of(RAW)["sha512"])
    assert not layout.root.exists()
    with pytest.raises(DigestMismatch):
        store.import_source(source, dry_run=True, digests={"md5": "0" * 32})
    with pytest.raises(ImageNotFound, match="image 'disk': no such image"):
        store.get("disk")


def test_stream_of_unknown_length_with_metadata(store: ImageStore) -> None:
    class ReadOnly:
        """Only `read`, in small uneven pieces, like some WSGI inputs."""

        def __init__(self, data: bytes):
            self.data = io.BytesIO(data)

        def read(self, size: int) -> bytes:
            return self.data.read(min(size, 7919))

    record = store.import_stream("uploaded", ReadOnly(RAW), "glance upload", compute=["md5", "sha512"],
                                 image_id="0b1a7b1c-5f31-4b5e-9a35-2f7a4a1d9e10",
                                 visibility="public", owner="demo", os_distro="debian")
    assert record.id == "0b1a7b1c-5f31-4b5e-9a35-2f7a4a1d9e10"
    assert record.path.read_bytes() == RAW and record.size == len(RAW)
    assert (record.md5, record.sha512, record.sha1) == (digests_of(RAW)["md5"], digests_of(RAW)["sha512"], None)
    assert (record.visibility, record.owner, dict(record.properties)) == ("public", "demo", {"os_distro": "debian"})
    assert store.get_by_id(record.id) == record


def test_stream_with_known_length_reads_no_further(store: ImageStore) -> None:
    stream = io.BytesIO(RAW + b"next request")
    record = store.import_stream("exact", stream, "upload", size_hint=len(RAW))
    assert record.size == len(RAW) and stream.read() == b"next request"
    with pytest.raises(FetchError, match=r"image 'short': truncated download from upload: got \d+ of \d+ bytes"):
        store.import_stream("short", io.BytesIO(RAW), "upload", size_hint=len(RAW) + 1)
    assert [r.name for r in store.list()] == ["exact"]


def test_bad_metadata_and_ids(store: ImageStore) -> None:
    with pytest.raises(ImageInputError, match="visibility 'everyone'"):
        store.import_stream("x", io.BytesIO(RAW), "upload", visibility="everyone")
    with pytest.raises(ImageInputError, match="id 'nope' is not a UUID"):
        store.import_stream("x", io.BytesIO(RAW), "upload", image_id="nope")
    first = store.import_stream("x", io.BytesIO(RAW), "upload")
    with pytest.raises(ImageInputError, match=f"id {first.id} is already taken"):
        store.import_stream("y", io.BytesIO(RAW), "upload", image_id=first.id)


def test_complete_digests_fills_in_glance_checksums(store: ImageStore, tmp_path: Path) -> None:
    record = store.import_source(str(write(tmp_path / "disk.img", RAW)))
    assert record.os_hash_value is None
    completed = store.complete_digests(record.id)
    assert completed.digests() == digests_of(RAW) and store.get("disk") == completed


def test_zero_chunks_are_stored_as_holes(store: ImageStore, tmp_path: Path) -> None:
    content = RAW + bytes(16 << 20) + b"end"
    record = store.import_source(str(write(tmp_path / "sparse.img", content)))
    assert record.path.read_bytes() == content
    assert record.path.stat().st_blocks * 512 < 8 << 20


@pytest.mark.parametrize("kind, content, reason", [
    ("empty", b"", "the image is empty"),
    ("gzip", gzip.compress(RAW), "gzip-compressed data"),
    ("xz", b"\xfd7zXZ\x00" + RAW, "xz-compressed data"),
    ("zip", b"PK\x03\x04" + RAW, "a zip archive"),
    ("iso", bytes(0x8001) + b"CD001" + bytes(100), "an ISO 9660 image"),
    ("vmdk-descriptor", b"# Disk DescriptorFile\nversion=1\n", "a VMDK descriptor"),
])
def test_unsupported_formats_are_refused(store: ImageStore, tmp_path: Path, kind: str, content: bytes,
                                         reason: str) -> None:
    source = write(tmp_path / f"{kind}.img", content)
    with pytest.raises(UnsupportedFormat, match=f"image '{kind}': .*{reason}"):
        store.import_source(str(source))
    assert store.list() == [] and [p.name for p in store.directory.iterdir()] in ([], [".lock"])


@pytest.mark.parametrize("fmt, reason", [("vmdk", "a VMDK image"), ("vhdx", "a VHDX image"),
                                          ("vdi", "a VDI image"), ("qed", "a QED image")])
def test_other_qemu_formats_are_refused(store: ImageStore, tmp_path: Path, fmt: str, reason: str) -> None:
    source = tmp_path / f"disk.{fmt}"
    subprocess.run([QEMU_IMG, "create", "-q", "-f", fmt, source, "16M"], check=True)
    with pytest.raises(UnsupportedFormat, match=f"unknown/unsupported format: {reason}"):
        store.import_source(str(source), "disk")


def test_qcow2_with_a_backing_file_is_refused(store: ImageStore, qcow2) -> None:
    qcow2("base.qcow2")
    overlay = qcow2("overlay.qcow2", "64M", "-b", "base.qcow2", "-F", "qcow2")
    with pytest.raises(UnsupportedFormat, match="image 'overlay': qcow2 image has a backing file"):
        store.import_source(str(overlay))


def test_missing_or_odd_local_sources(store: ImageStore, tmp_path: Path) -> None:
    with pytest.raises(FetchError, match=r"image 'nothing': cannot read .*nothing.img: No such file"):
        store.import_source(str(tmp_path / "nothing.img"))
    with pytest.raises(FetchError, match="image 'dir': .* is not a regular file"):
        store.import_source(str(tmp_path), "dir")
    os.mkfifo(tmp_path / "fifo")
    with pytest.raises(FetchError, match="image 'fifo': .*fifo is not a regular file"):
        store.import_source(str(tmp_path / "fifo"))
    with pytest.raises(FetchError, match="image 'null': /dev/null is not a regular file"):
        store.import_source("/dev/null")


def test_lookup_tells_names_from_paths_and_urls(store: ImageStore, tmp_path: Path) -> None:
    record = store.import_source(str(write(tmp_path / "disk.img", RAW)))
    assert store.lookup("disk") == record
    assert store.lookup("other") is None
    assert store.lookup("./disk.img") is None and store.lookup("https://example.org/disk.img") is None
