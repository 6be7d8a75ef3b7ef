"""A URL image whose store file was deleted by hand: provision.conf's `image` URL stands for the URL again,
so `provision` downloads it anew (from a server on 127.0.0.1), and the download puts the version's file back."""

from __future__ import annotations

import os
from pathlib import Path

from imagetest import Route, _no_proxy, layout, server, store  # noqa: F401

from provisioner.images import ImageStore
from provisioner.spec.image import resolve_image

CONTENT = b"\xeb\x63\x90" + os.urandom(60000)


def test_a_url_image_whose_file_is_gone_is_fetched_again(store: ImageStore, server, tmp_path: Path) -> None:
    url = server.serve("/cloud.img", Route(CONTENT))
    record = store.import_source(url)
    assert resolve_image(url, "auto", tmp_path, "provision.conf", store).source == str(record.path)
    record.path.unlink()

    ref = resolve_image(url, "auto", tmp_path, "provision.conf", store)
    assert ref.source == url  # not the missing file: the pipeline imports the URL before a real apply
    again = store.import_source(url, digests={"sha256": record.sha256})
    assert (again.id, again.version, again.missing) == (record.id, 1, False)
    assert record.path.read_bytes() == CONTENT
    assert resolve_image(url, "auto", tmp_path, "provision.conf", store).source == str(record.path)
