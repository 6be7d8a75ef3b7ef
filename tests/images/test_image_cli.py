"""`provision image …` through its parser and handlers (as cli.py will call them)."""

from __future__ import annotations

import argparse
import json
import os
from pathlib import Path

import pytest

from imagetest import Route, _no_proxy, digests_of, layout, server, store, use_image, write  # noqa: F401
from provisioner.errors import InputError
from provisioner.images import DigestMismatch, ImageInUse, ImageStore
from provisioner.images.commands import add_image_parser, run
from provisioner.layout import Layout

RAW = b"\xeb\x63\x90" + os.urandom(70000)


def provision(layout: Layout, *argv: str) -> int:
    """Parse `provision image …` with a parser built like cli.py's, and run it."""

    def common(parser: argparse.ArgumentParser) -> None:
        parser.add_argument("--root", type=Path, default=argparse.SUPPRESS)

    parser = argparse.ArgumentParser(prog="provision")
    add_image_parser(parser.add_subparsers(dest="command"), common)
    return run(parser.parse_args(["image", *argv]), layout)


def test_import_list_and_reimport(layout: Layout, tmp_path: Path, capsys) -> None:
    source = str(write(tmp_path / "disk.img", RAW))
    sha = digests_of(RAW)["sha256"]
    assert provision(layout, "import", source, "--sha256", sha, "--md5", digests_of(RAW)["md5"]) == 0
    record = ImageStore(layout).get("disk")
    assert capsys.readouterr().out == (f"disk: imported version 1 (raw, 68.4 KiB, sha256 {sha[:12]}…) "
                                       f"as {record.path}, id {record.id}\n")
    assert provision(layout, "import", source, "--name", "disk") == 0
    assert capsys.readouterr().out.startswith("disk: unchanged, version 1 already has this content")
    assert provision(layout, "list") == 0
    header, row = capsys.readouterr().out.splitlines()
    assert header.split()[:3] == ["NAME", "VERSION", "FORMAT"]
    assert row.split()[:4] == ["disk", "1*", "raw", "68.4"] and record.id in row and row.endswith(" -")
    assert provision(layout, "list", "disk", "--json") == 0
    (listed,) = json.loads(capsys.readouterr().out)
    assert (listed["id"], listed["current"], listed["used_by"], listed["md5"]) == (
        record.id, True, [], digests_of(RAW)["md5"])


def test_import_dry_run_and_errors(layout: Layout, tmp_path: Path, capsys) -> None:
    source = str(write(tmp_path / "disk.img", RAW))
    assert provision(layout, "import", source, "--dry-run") == 0
    assert "disk: verified raw, 68.4 KiB" in capsys.readouterr().out
    assert not layout.root.exists()
    with pytest.raises(DigestMismatch) as info:
        provision(layout, "import", source, "--sha1", "0" * 40)
    assert info.value.exit_code == 1
    with pytest.raises(InputError, match="image name"):
        provision(layout, "import", source, "--name", "a/b")


def test_prune_and_delete(layout: Layout, tmp_path: Path, capsys) -> None:
    store = ImageStore(layout)
    v1, v2, v3 = (store.import_source(str(write(tmp_path / f"{i}/disk.img", RAW + bytes([i])))) for i in range(3))
    use_image(layout, "web.example", v1)
    assert provision(layout, "prune", "disk", "--keep", "1") == 0
    assert capsys.readouterr().out.splitlines() == [
        f"disk: removed version 2 ({v2.path.name}, id {v2.id})",
        "disk: kept version 1: in use by web.example",
    ]
    with pytest.raises(ImageInUse):
        provision(layout, "delete", "disk")
    assert provision(layout, "delete", v3.id) == 0
    assert capsys.readouterr().out == f"disk: deleted version 3 ({v3.path.name}, id {v3.id})\n"
    assert provision(layout, "prune", "disk", "--keep", "1") == 0
    assert capsys.readouterr().out == "disk: nothing to prune (1 version(s) kept)\n"


def test_sync_reports_one_line_per_image(layout: Layout, tmp_path: Path, server, capsys) -> None:
    local = write(tmp_path / "alpine.img", RAW)
    remote = RAW + b"remote"
    good = server.serve("/debian-12.qcow2", Route(remote))
    missing = server.serve("/gone.img", Route(status=404))
    listing = write(tmp_path / "images.list", f"""
# base images, refreshed nightly
{local}
{good}   sha256={digests_of(remote)["sha256"]}  # pinned
{missing}
{local} name=alpine
{local} name=other sha3=abc
{local} name=bad/name
{local} name=short md5=1234
""".encode())
    assert provision(layout, "sync", str(listing)) == 1
    lines = capsys.readouterr().out.splitlines()
    assert [line.split()[:2] for line in lines] == [
        ["ok", "alpine:"], ["ok", "debian-12:"], ["FAILED", "gone:"], ["FAILED", "alpine:"],
        ["FAILED", "other:"], ["FAILED", "bad/name:"], ["FAILED", "short:"]]
    assert "imported version 1" in lines[0] and "imported version 1" in lines[1]
    assert lines[2].endswith(f"HTTP error 404 Not Found from {missing}")
    assert lines[3].endswith(f"images.list:6: image 'alpine' is already listed at {listing}:3")
    assert "images.list:7: 'sha3=abc': expected KEY=VALUE with KEY one of name, md5" in lines[4]
    assert "images.list:8: image name 'bad/name': is not a valid image name" in lines[5]
    assert "images.list:9: image 'short': md5 '1234' is not a md5 digest" in lines[6]
    assert [r.name for r in ImageStore(layout).list()] == ["alpine", "debian-12"]

    hits = server.routes["/debian-12.qcow2"].hits
    write(listing, f"{local}\n{good} sha256={digests_of(remote)['sha256']}\n".encode())
    assert provision(layout, "sync", str(listing)) == 0
    lines = capsys.readouterr().out.splitlines()
    assert [line.split()[:3] for line in lines] == [["ok", "alpine:", "unchanged"], ["ok", "debian-12:", "unchanged"]]
    assert server.routes["/debian-12.qcow2"].hits == hits, "a pinned digest already held is not downloaded"


def test_sync_unreadable_list(layout: Layout, tmp_path: Path) -> None:
    with pytest.raises(InputError, match="missing.list: cannot read the image list"):
        provision(layout, "sync", str(tmp_path / "missing.list"))


def test_image_without_action_prints_help(layout: Layout, capsys) -> None:
    assert provision(layout) == 2
    assert "import (checksum-verified), list, prune, sync, delete" in " ".join(capsys.readouterr().out.split())
