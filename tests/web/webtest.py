"""Helpers of the status page tests: a populated server (alice's server on the simulator) and a browser-like login."""

from __future__ import annotations

import re
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

import requests

from apitest import PASSWORD, Live

REPO = Path(__file__).resolve().parents[2]
CLI_DOMAIN = "example.test"  # provisioned with bin/provision: no project, so admins only
# A console line a guest could print: markup, a terminal escape, and a quote that would close an attribute.
HOSTILE = '<script>alert("pwned")</script><img src=x onerror=alert(1)> \x1b[31mred\x1b[0m "quoted" & done'


@dataclass(frozen=True)
class Site:
    """The live server and what the tests made on it."""

    live: Live
    server_id: str
    server_name: str
    image_name: str

    @property
    def domain(self) -> str:
        return f"srv-{self.server_id}"


def populate(live: Live, qcow2: Path) -> Site:
    """alice's image and ACTIVE server (project demo), built through the API and Terraform on the simulator,
    a hostile line in its console log, and example.test provisioned from the CLI on the same root."""
    headers = {"X-Auth-Token": live.token("alice")}
    image = requests.post(f"{live.url}/image/v2/images", headers=headers, timeout=30, json={
        "name": "web-image", "disk_format": "qcow2", "container_format": "bare"}).json()
    uploaded = requests.put(f"{live.url}/image/v2/images/{image['id']}/file", data=qcow2.read_bytes(), timeout=60,
                            headers={**headers, "Content-Type": "application/octet-stream"})
    assert uploaded.status_code == 204, uploaded.text
    created = requests.post(f"{live.url}/compute/v2.1/servers", headers=headers, timeout=30, json={"server": {
        "name": "web-vm", "flavorRef": "1", "imageRef": image["id"]}})
    assert created.status_code == 202, created.text
    server_id = created.json()["server"]["id"]
    deadline = time.monotonic() + 120
    status = ""
    while time.monotonic() < deadline:
        status = requests.get(f"{live.url}/compute/v2.1/servers/{server_id}", headers=headers,
                              timeout=30).json()["server"]["status"]
        if status in ("ACTIVE", "ERROR"):
            break
        time.sleep(0.3)
    assert status == "ACTIVE", status
    logs = live.layout.domain_dir(f"srv-{server_id}") / "logs"
    logs.mkdir(parents=True, exist_ok=True)
    (logs / "console.log").write_text("booting\n" + HOSTILE + "\nlogin:\n")
    done = subprocess.run([str(REPO / "bin" / "provision"), "--root", str(live.layout.root), "--domains", str(REPO),
                           "-q", CLI_DOMAIN], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    return Site(live, server_id, "web-vm", "web-image")


def csrf_of(html: str) -> str:
    """The CSRF token of the (first) form in a page."""
    found = re.search(r'name="csrf" value="([^"]+)"', html)
    assert found, html[:500]
    return found.group(1)


def login(live: Live, user: str, password: str = PASSWORD) -> tuple[requests.Session, requests.Response]:
    """A session logged in as `user` the way a browser does it: the form, then its POST with Origin."""
    session = requests.Session()
    form = session.get(f"{live.url}/login", timeout=30)
    resp = session.post(f"{live.url}/login", timeout=60, allow_redirects=False,
                        data={"csrf": csrf_of(form.text), "username": user, "password": password},
                        headers={"Origin": live.url})
    return session, resp
