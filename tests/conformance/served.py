"""`provision serve` over a fresh root for the tier: its accounts, two images, and what it advertises."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import requests

from api.accounts import set_user
from api.config import config_path, read_document, write_document
from conformance.orphans import die_with_parent
from conformance.tempest_conf import PASSWORD, QUOTAS, Account
from provisioner.layout import Layout

REPO = Path(__file__).resolve().parents[2]
START_TIMEOUT = 120  # seconds for serve to print its settings (it binds first, then builds the app)
AUTH_URL = re.compile(r"export OS_AUTH_URL=http://127\.0\.0\.1:(\d+)/identity")


class ServeFailed(RuntimeError):
    """`provision serve` exited or printed nothing usable; the message names its log."""


@dataclass(frozen=True)
class Served:
    """A running server: its base URL and the log its stderr goes to."""

    url: str
    log: Path


def configure(root: Path, users: list[Account]) -> None:
    """Write the tier's users (hashed, as `provision users set` does) and quotas into the root's API
    configuration."""
    path = config_path(Layout(root))
    for user in users:
        set_user(path, user.username, PASSWORD, user.project, list(user.roles))
    document = read_document(path)
    document["quotas"] = QUOTAS
    write_document(path, document)


@contextmanager
def serving(root: Path, logs: Path, source: Path = REPO) -> Iterator[Served]:
    """`bin/provision serve --port 0` over `root` in its own session until the block ends, then SIGTERM to it all.

    `source` is the tree whose code serves (this checkout, or an exported commit for a
    before/after measurement). stdout (the settings it prints) goes to logs/serve.out,
    stderr (its log) to logs/server.log.
    """
    out, err = logs / "serve.out", logs / "server.log"
    env = {**os.environ, "PYTHONPATH": str(source)}  # ahead of the venv's editable install of this checkout
    with out.open("w") as stdout, err.open("w") as stderr:
        process = subprocess.Popen([str(REPO / "bin" / "provision"), "serve", "--root", str(root), "--port", "0"],
                                   stdout=stdout, stderr=stderr, stdin=subprocess.DEVNULL, start_new_session=True,
                                   cwd=source, env=env, preexec_fn=die_with_parent)
    try:
        yield Served(f"http://127.0.0.1:{_port(process, out, err)}", err)
    finally:
        os.killpg(process.pid, signal.SIGTERM)
        process.wait(60)


def _port(process: subprocess.Popen, out: Path, err: Path) -> int:
    deadline = time.monotonic() + START_TIMEOUT
    while time.monotonic() < deadline:
        text = out.read_text()
        if "then run" in text:  # the last line of the settings: the socket is listening
            match = AUTH_URL.search(text)
            if match:
                return int(match.group(1))
            raise ServeFailed(f"provision serve printed no auth URL: see {out}")
        if process.poll() is not None:
            raise ServeFailed(f"provision serve exited ({process.returncode}) before serving: see {err}")
        time.sleep(0.2)
    raise ServeFailed(f"provision serve printed no settings in {START_TIMEOUT} s: see {out} and {err}")


def token(url: str, user: Account) -> str:
    """A project-scoped token for `user`."""
    body = {"auth": {"identity": {"methods": ["password"], "password": {"user": {
        "name": user.username, "domain": {"name": "Default"}, "password": PASSWORD}}},
        "scope": {"project": {"name": user.project, "domain": {"name": "Default"}}}}}
    resp = requests.post(f"{url}/identity/v3/auth/tokens", json=body, timeout=60)
    resp.raise_for_status()
    return resp.headers["X-Subject-Token"]


def upload_image(url: str, auth: str, name: str, qcow2: Path) -> str:
    """A public qcow2 image through Glance (create, then upload its data); its id."""
    headers = {"X-Auth-Token": auth}
    created = requests.post(f"{url}/image/v2/images", headers=headers, timeout=60, json={
        "name": name, "disk_format": "qcow2", "container_format": "bare", "visibility": "public"})
    created.raise_for_status()
    image_id = created.json()["id"]
    with qcow2.open("rb") as data:
        done = requests.put(f"{url}/image/v2/images/{image_id}/file", data=data, timeout=300,
                            headers={**headers, "Content-Type": "application/octet-stream"})
    done.raise_for_status()
    return image_id


PUBLIC_CIDR = "172.24.4.0/24"  # devstack's public range; on the simulator its libvirt network is never reached
FIXED_NETWORK = "default"  # tempest.conf's fixed_network_name: the configured network servers boot on
# devstack's private range; the API leaves the default network's bridge alone (api/network/applier.py), a /22
# holds every server the tier's concurrent tests boot.
FIXED_CIDR = "10.0.0.0/22"


def public_network(url: str, auth: str) -> str:
    """The deployment's external network, as an operator makes it (docs/api.md, External network): an
    admin's `public` network with router:external and one IPv4 subnet; its id. As devstack's `router1` joins
    its `private` network to `public`, the tier's fixed network (`default`, which servers boot on) gets a
    subnet and a router with its gateway on `public`: Neutron (and Nova's addFloatingIp proxy) associates a
    floating IP only with a fixed IP whose subnet a router joins to the floating IP's network."""
    network_id = _created(url, auth, "networks", {"network": {"name": "public", "router:external": True}})
    _created(url, auth, "subnets", {"subnet": {"name": "public-subnet", "network_id": network_id,
                                               "cidr": PUBLIC_CIDR, "ip_version": 4}})
    listed = requests.get(f"{url}/network/v2.0/networks?name={FIXED_NETWORK}", headers={"X-Auth-Token": auth},
                          timeout=120)
    listed.raise_for_status()
    (fixed,) = listed.json()["networks"]
    subnet_id = _created(url, auth, "subnets", {"subnet": {"name": f"{FIXED_NETWORK}-subnet", "network_id": fixed["id"],
                                                           "cidr": FIXED_CIDR, "ip_version": 4}})
    router_id = _created(url, auth, "routers", {"router": {"name": "router1",
                                                           "external_gateway_info": {"network_id": network_id}}})
    joined = requests.put(f"{url}/network/v2.0/routers/{router_id}/add_router_interface", timeout=120,
                          headers={"X-Auth-Token": auth}, json={"subnet_id": subnet_id})
    joined.raise_for_status()
    return network_id


def _created(url: str, auth: str, collection: str, body: dict) -> str:
    """POST a Neutron record as the admin; its id."""
    created = requests.post(f"{url}/network/v2.0/{collection}", headers={"X-Auth-Token": auth}, json=body,
                            timeout=120)
    created.raise_for_status()
    (record,) = created.json().values()
    return str(record["id"])


def max_microversion(url: str, service_path: str) -> str:
    """The highest microversion the server advertises at a service root (`version` of its CURRENT entry)."""
    resp = requests.get(f"{url}{service_path}", timeout=60)
    versions = resp.json().get("versions") or [resp.json().get("version")]
    current = [v for v in versions if v and v.get("status") == "CURRENT"] or versions
    return current[0].get("version") or current[0].get("min_version") or "latest"
