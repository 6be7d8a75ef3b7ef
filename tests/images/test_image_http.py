"""Importing over HTTP from a server on 127.0.0.1: good, truncated, cut, lying, failing."""

from __future__ import annotations

import os

import pytest

from imagetest import Route, _no_proxy, digests_of, layout, qcow2, server, snapshot, store  # noqa: F401
from provisioner.images import FetchError, ImageStore, UnsupportedFormat
from provisioner.images.transfer import CHUNK

BIG = b"\xeb\x63\x90" + os.urandom(2 * CHUNK + 12345)  # several chunks, the last one short


def test_import_from_url(store: ImageStore, server, qcow2) -> None:
    content = qcow2("cloud.qcow2").read_bytes()
    url = server.serve("/images/cloud%2Dimage.qcow2", Route(content))
    record = store.import_source(url, digests={"sha256": digests_of(content)["sha256"]})
    assert (record.name, record.format, record.source) == ("cloud-image", "qcow2", url)
    assert record.path.read_bytes() == content


def test_import_big_url_with_all_digests(store: ImageStore, server) -> None:
    url = server.serve("/big.img", Route(BIG))
    record = store.import_source(url, "big", digests_of(BIG))
    assert record.digests() == digests_of(BIG) and record.path.read_bytes() == BIG


def test_chunked_response_of_unknown_length(store: ImageStore, server) -> None:
    url = server.serve("/chunked.img", Route(BIG, chunked=True))
    with pytest.raises(FetchError, match=r"image 'chunked': reading http://127.0.0.1:\d+/chunked.img failed"):
        # The route never sends the closing zero-length chunk: the body is incomplete.
        store.import_source(url)
    assert store.list() == []


@pytest.fixture
def previous(store: ImageStore, server) -> dict:
    """An image 'disk' already imported, and the store's state before the next attempt."""
    store.import_source(server.serve("/v1.img", Route(BIG[:CHUNK])), "disk")
    return snapshot(store.directory)


@pytest.mark.parametrize("route, reason", [
    (Route(BIG, cut_after=CHUNK + 100), rf"truncated download from .*: got {CHUNK + 100} of {len(BIG)} bytes"),
    (Route(BIG, length=len(BIG) + 4096), rf"truncated download from .*: got {len(BIG)} of {len(BIG) + 4096} bytes"),
    (Route(BIG, cut_after=CHUNK + 100, reset=True), r"(truncated download from|reading .* failed after \d+ bytes:) "),
    (Route(status=404), r"HTTP error 404 Not Found from http://127.0.0.1:\d+/disk.img"),
    (Route(status=500), r"HTTP error 500 Internal Server Error from"),
    (Route(b"\x1f\x8b" + BIG), r"unknown/unsupported format: gzip-compressed data"),
])
def test_failed_download_leaves_the_previous_version_intact(store: ImageStore, server, previous, route,
                                                            reason: str) -> None:
    url = server.serve("/disk.img", route)
    with pytest.raises((FetchError, UnsupportedFormat), match=f"image 'disk': {reason}"):
        store.import_source(url)
    assert snapshot(store.directory) == previous
    assert [r.version for r in store.list()] == [1]


def test_unknown_host_and_refused_connection(store: ImageStore, server) -> None:
    port = server.httpd.server_address[1]
    server.httpd.shutdown()
    server.httpd.server_close()
    with pytest.raises(FetchError, match=rf"image 'x': cannot fetch http://127.0.0.1:{port}/x.img: .*refused"):
        store.import_source(f"http://127.0.0.1:{port}/x.img")
    with pytest.raises(FetchError, match="image 'x': 'http:///x.img' is a URL without a host"):
        store.import_source("http:///x.img")
