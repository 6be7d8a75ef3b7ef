"""Fixtures and helpers for the image store tests: images, a loopback HTTP server, domains.

Not a conftest.py: nested conftest modules without packages shadow tests/conftest.py
(`from conftest import …`) for the whole run. Test modules import from here.
"""

from __future__ import annotations

import hashlib
import http.server
import json
import socket
import struct
import subprocess
import threading
from dataclasses import asdict
from pathlib import Path
from typing import Callable, Iterator

import pytest

from provisioner.images import ImageRecord, ImageStore
from provisioner.layout import Layout

QEMU_IMG = "/usr/bin/qemu-img"


@pytest.fixture(autouse=True)
def _no_proxy(monkeypatch: pytest.MonkeyPatch) -> None:
    """Traffic goes to 127.0.0.1 only: never through a proxy from the environment."""
    for var in ("http_proxy", "https_proxy", "HTTP_PROXY", "HTTPS_PROXY", "all_proxy", "ALL_PROXY"):
        monkeypatch.delenv(var, raising=False)


@pytest.fixture
def layout(tmp_path: Path) -> Layout:
    return Layout(tmp_path / "root")


@pytest.fixture
def store(layout: Layout) -> ImageStore:
    return ImageStore(layout)


@pytest.fixture
def qcow2(tmp_path: Path) -> Callable[..., Path]:
    """Make a real (small) qcow2 file with qemu-img; each virtual size gives other content."""

    def make(name: str = "disk.qcow2", size: str = "64M", *options: str) -> Path:
        path = tmp_path / "src" / name
        path.parent.mkdir(exist_ok=True)
        subprocess.run([QEMU_IMG, "create", "-q", "-f", "qcow2", *options, path, size], check=True, cwd=path.parent)
        return path

    return make


def write(path: Path, content: bytes) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(content)
    return path


def digests_of(content: bytes) -> dict[str, str]:
    return {a: hashlib.new(a, content).hexdigest() for a in ("md5", "sha1", "sha256", "sha512")}


def snapshot(path: Path) -> dict[str, bytes | str]:
    """Every entry below `path` (but the store lock) with its content or link target."""
    if not path.exists():
        return {}
    result: dict[str, bytes | str] = {}
    for item in sorted(path.rglob("*")):
        if item.name == ".lock":
            continue
        key = str(item.relative_to(path))
        result[key] = f"-> {item.readlink()}" if item.is_symlink() else item.read_bytes() if item.is_file() else "dir"
    return result


def use_image(layout: Layout, domain: str, record: ImageRecord, source: str | None = None) -> None:
    """Record `domain` as rendered on `record` (its spec.json's `image`, as DomainSpec writes it)."""
    image = asdict(record.to_image_ref())
    if source is not None:
        image["source"] = source
    spec = layout.domain_dir(domain) / "spec.json"
    spec.parent.mkdir(parents=True, exist_ok=True)
    spec.write_text(json.dumps({"name": domain, "image": image}))


# -- the loopback HTTP server ---------------------------------------------------

class Route:
    """What the server does for one path: status, body, and how it misbehaves."""

    def __init__(self, body: bytes = b"", status: int = 200, length: int | None = None,
                 cut_after: int | None = None, reset: bool = False, chunked: bool = False):
        self.body = body
        self.status = status
        self.length = len(body) if length is None else length
        self.cut_after = cut_after
        self.reset = reset
        self.chunked = chunked
        self.hits = 0


class _Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    routes: dict[str, Route]

    def do_GET(self) -> None:  # noqa: N802 (http.server's naming)
        route = self.routes.get(self.path)
        if route is None:
            self.send_error(404)
            return
        route.hits += 1
        if route.status != 200:
            self.send_error(route.status)
            return
        self.send_response(200)
        if route.chunked:
            self.send_header("Transfer-Encoding", "chunked")
        else:
            self.send_header("Content-Length", str(route.length))
        self.send_header("Connection", "close")
        self.end_headers()
        body = route.body if route.cut_after is None else route.body[:route.cut_after]
        if route.chunked:
            self.wfile.write(b"%x\r\n" % len(route.body) + body)
        else:
            self.wfile.write(body)
        self.wfile.flush()
        if route.reset:
            # SO_LINGER 0: close with a RST, as a dropped connection looks to the client.
            self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        self.close_connection = True

    def log_message(self, format: str, *args: object) -> None:
        pass


class Server:
    """A threaded HTTP server on 127.0.0.1 serving `routes`."""

    def __init__(self) -> None:
        handler = type("Handler", (_Handler,), {"routes": {}})
        self.routes: dict[str, Route] = handler.routes
        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self.thread = threading.Thread(target=self.httpd.serve_forever, args=(0.02,), daemon=True)

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.httpd.server_address[1]}{path}"

    def serve(self, path: str, route: Route) -> str:
        self.routes[path] = route
        return self.url(path)


@pytest.fixture
def server() -> Iterator[Server]:
    srv = Server()
    srv.thread.start()
    try:
        yield srv
    finally:
        srv.httpd.shutdown()
        srv.httpd.server_close()
