"""Fixtures (imported by the test modules, like tests/images/imagetest.py): a live API server on a free 127.0.0.1 port over a temporary root, and helpers to drive the stock clients."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator

import pytest
import requests

from api.accounts import set_user
from api.config import config_path
from api.server import bind, make_server
from provisioner.layout import Layout

BIN = Path(sys.executable).parent
PASSWORD = "s3cret-pass"
# user -> (project, roles)
ACCOUNTS = {"admin": ("admin", ["admin"]), "alice": ("demo", ["member"]), "bob": ("other", ["member"])}


@dataclass(frozen=True)
class Live:
    """The running server: its root and base URL."""

    layout: Layout
    url: str

    def env(self, user: str) -> dict[str, str]:
        """OS_* settings for `user` in its project."""
        project = ACCOUNTS[user][0]
        return {**os.environ, "OS_AUTH_URL": f"{self.url}/identity", "OS_USERNAME": user, "OS_PASSWORD": PASSWORD,
                "OS_PROJECT_NAME": project, "OS_USER_DOMAIN_NAME": "Default", "OS_PROJECT_DOMAIN_NAME": "Default",
                "OS_IDENTITY_API_VERSION": "3", "OS_REGION_NAME": "RegionOne", "OS_CLOUD": "",
                "HOME": str(self.layout.root)}

    def osc(self, user: str, *args: str, check: bool = True) -> Any:
        """Run the real `openstack` CLI as `user`; JSON output parsed when there is some."""
        done = subprocess.run([str(BIN / "openstack"), *args], env=self.env(user), capture_output=True,
                              text=True, timeout=300)
        if check and done.returncode != 0:
            raise AssertionError(f"openstack {' '.join(args)} failed ({done.returncode}):\n{done.stderr}")
        if not check:
            return done
        return json.loads(done.stdout) if done.stdout.strip().startswith(("{", "[")) else done.stdout

    def sdk(self, user: str) -> Any:
        """An openstacksdk connection as `user` in its project."""
        import openstack
        return openstack.connect(auth_url=f"{self.url}/identity", username=user, password=PASSWORD,
                                 project_name=ACCOUNTS[user][0], user_domain_name="Default",
                                 project_domain_name="Default", region_name="RegionOne")

    def token(self, user: str, password: str = PASSWORD) -> str:
        """A token for `user` in its project (the first project of a user made by a test)."""
        project = ACCOUNTS[user][0] if user in ACCOUNTS else "demo"
        body = {"auth": {"identity": {"methods": ["password"], "password": {"user": {
            "name": user, "domain": {"name": "Default"}, "password": password}}},
            "scope": {"project": {"name": project, "domain": {"name": "Default"}}}}}
        resp = requests.post(f"{self.url}/identity/v3/auth/tokens", json=body, timeout=30)
        assert resp.status_code == 201, resp.text
        return resp.headers["X-Subject-Token"]


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Live]:
    """One server per test module (the stock clients start a process per command: keep the server warm).
    Each module imports this fixture, so each gets its own anyway: module scope stops it when the module
    ends (as a session fixture, every module's server ran until the session's end, with its threads and
    database connections: over 1,024 descriptors by the later modules)."""
    with serve_root(tmp_path_factory.mktemp("api") / "root") as server:
        yield server


@contextmanager
def serve_root(root: Path, config: str = "") -> Iterator[Live]:
    """A server over a new root at `root`, with the ACCOUNTS users and `config` (more config.yaml lines),
    until the block ends."""
    layout = Layout(root)
    for user, (project, roles) in ACCOUNTS.items():
        set_user(config_path(layout), user, PASSWORD, project, roles)
    with config_path(layout).open("a") as out:
        out.write(config)
    with serve_layout(layout) as url:
        yield Live(layout, url)


@contextmanager
def serve_layout(layout: Layout) -> Iterator[str]:
    """An app serving the existing root `layout` on 127.0.0.1 until the block ends (its URL). A second one
    over the same root stands for another worker process: its own caches."""
    sock = bind(0)
    server, api = make_server(layout, sock)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{sock.getsockname()[1]}"
    finally:
        api.tasks.shutdown()
        server.task_dispatcher.shutdown()  # its threads would keep their database connections open
        server.close()
        api.close()


@pytest.fixture(scope="session")
def qcow2_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A small real qcow2 image."""
    path = tmp_path_factory.mktemp("img") / "cirros.qcow2"
    subprocess.run(["qemu-img", "create", "-q", "-f", "qcow2", str(path), "64M"], check=True)
    return path


NOVA_INVALID = "Invalid input for field/attribute "  # Nova's words for a body its schema refuses


def names_field(message: str, field: str) -> bool:
    """Whether a Nova 400's message names `field` first: the code's `field: why`, or the schema's refusal in Nova's
    words (`Invalid input for field/attribute field. Value: …`)."""
    return message.removeprefix(NOVA_INVALID).startswith(field)


def nova_refusal(message: str, expected: str) -> bool:
    """Whether `message` is Nova's schema refusal saying `expected` (`field: why`): `Invalid input for
    field/attribute field. Value: <the value>. why`."""
    field, why = expected.split(": ", 1)
    return message.startswith(f"{NOVA_INVALID}{field}. Value: ") and f". {why}" in message


def poll(live: Live, path: str, key: str, done: Any, user: str = "alice") -> dict[str, Any]:
    """GET `path` as `user` until done(item), item being the body's `key` (None: a 404); bounded, 600 × 0.2 s."""
    item: Any = None
    for _ in range(600):
        resp = requests.get(f"{live.url}{path}", headers={"X-Auth-Token": live.token(user)}, timeout=60)
        item = resp.json()[key] if resp.status_code == 200 else None
        if done(item):
            return item or {}
        time.sleep(0.2)
    raise AssertionError(f"{path}: not done: {item}")

