"""What the API benches share: `python -m api serve` over a root, in its own process group, and a JSON client."""

from __future__ import annotations

import http.client
import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any, Self

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from api.accounts import set_user
from api.config import config_path
from provisioner.images import ImageStore
from provisioner.layout import Layout

USER = "admin"
PASSWORD = "bench-password"


def free_port() -> int:
    """A TCP port free on 127.0.0.1 right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def auth_body(user: str = USER, password: str = PASSWORD) -> dict[str, Any]:
    """A Keystone password authentication scoped to the user's project (`admin`)."""
    return {"auth": {"identity": {"methods": ["password"], "password": {"user": {
        "name": user, "domain": {"name": "Default"}, "password": password}}},
        "scope": {"project": {"name": "admin", "domain": {"name": "Default"}}}}}


def import_image(root: Path) -> str:
    """A small real qcow2 image in the root's store; its id."""
    path = root / "bench.qcow2"
    if not path.exists():
        subprocess.run(["qemu-img", "create", "-q", "-f", "qcow2", str(path), "64M"], check=True)
    return ImageStore(Layout(root)).import_source(str(path), "bench").id


class Client:
    """Keep-alive JSON requests with a token."""

    def __init__(self, port: int, token: str | None = None):
        self.conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
        self.token = token

    def request(self, method: str, path: str, body: Any = None) -> tuple[int, Any, http.client.HTTPResponse]:
        """(status, parsed JSON body or None, response)."""
        headers = {"Content-Type": "application/json"}
        if self.token:
            headers["X-Auth-Token"] = self.token
        self.conn.request(method, path, None if body is None else json.dumps(body), headers)
        resp = self.conn.getresponse()
        raw = resp.read()
        return resp.status, (json.loads(raw) if raw.strip().startswith(b"{") else None), resp


class ApiServer:
    """`python -m api serve` on a free port over `root` (an admin user is set); stopped on exit."""

    def __init__(self, root: Path, workers: int | None = None):
        self.root = root
        self.port = free_port()
        self.workers = workers
        self.process: subprocess.Popen | None = None

    def __enter__(self) -> Self:
        set_user(config_path(Layout(self.root)), USER, PASSWORD, "admin", ["admin"])
        command = [sys.executable, "-m", "api", "--root", str(self.root), "serve", "--port", str(self.port)]
        if self.workers is not None:
            command += ["--workers", str(self.workers)]
        log = (self.root / "serve.log").open("ab")
        self.process = subprocess.Popen(command, cwd=REPO, stdout=log, stderr=log, start_new_session=True)
        deadline = time.monotonic() + 60
        while True:
            try:
                self.token = self.new_token()
                return self
            except OSError:
                if time.monotonic() > deadline or self.process.poll() is not None:
                    raise SystemExit(f"the API server did not start: see {self.root / 'serve.log'}") from None
                time.sleep(0.1)

    def new_token(self) -> str:
        """A fresh admin token."""
        status, _, resp = Client(self.port).request("POST", "/identity/v3/auth/tokens", auth_body())
        if status != 201:
            raise SystemExit(f"token request failed: {status}")
        return resp.getheader("X-Subject-Token")

    def client(self) -> Client:
        """A keep-alive client with the admin token."""
        return Client(self.port, self.token)

    def __exit__(self, *exc: object) -> None:
        assert self.process is not None
        os.killpg(self.process.pid, signal.SIGTERM)
        self.process.wait(60)
