"""`provision serve` on an empty root: it bootstraps `admin`, and the settings it prints work with the real openstack CLI."""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import sqlite3
import stat
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest
import requests
from apitest import BIN, qcow2_file  # noqa: F401 (fixtures)

from api.cli import NO_IMAGE_HINT
from provisioner.images import ImageStore
from provisioner.layout import Layout
from provisioner.provider.simulator import open_readonly

REPO = Path(__file__).resolve().parents[2]


@dataclass(frozen=True)
class Served:
    """What `provision serve` printed before serving, and the port it listens on (from the printed OS_AUTH_URL)."""

    lines: list[str]
    port: int

    @property
    def exports(self) -> list[str]:
        return [line for line in self.lines if line.startswith("export ")]


def _as_from_a_terminal() -> None:
    """In the child: Ctrl-C as from a shell's foreground, even when the tests run with SIGINT ignored (nohup, `&`).

    An ignored SIGINT is inherited through exec, and serve then keeps ignoring it
    (by design: started in the background); the Ctrl-C test must reach it.
    """
    os.setsid()
    signal.signal(signal.SIGINT, signal.SIG_DFL)


@contextmanager
def serving(root: Path, stop: signal.Signals = signal.SIGTERM) -> Iterator[Served]:
    """`bin/provision serve --port 0` in its own session until the block ends (then `stop` to all its processes).

    Whatever happens, nothing it started outlives the block: if `stop` does not end it, SIGKILL does.
    """
    process = subprocess.Popen([str(REPO / "bin" / "provision"), "serve", "--root", str(root), "--port", "0"],
                               stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
                               preexec_fn=_as_from_a_terminal)
    try:
        assert process.stdout is not None
        lines = []
        while not lines or not lines[-1].startswith("then run"):
            line = process.stdout.readline()
            assert line, f"serve exited ({process.wait()}) after printing: {lines}"
            lines.append(line.rstrip("\n"))
        url = next(line for line in lines if line.startswith("export OS_AUTH_URL="))
        match = re.fullmatch(r"export OS_AUTH_URL=http://127\.0\.0\.1:(\d+)/identity", url)
        assert match, url
        # The socket is bound (and listening) before anything is printed.
        yield Served(lines, int(match.group(1)))
    finally:
        _stop_group(process, stop)


def _stop_group(process: subprocess.Popen, stop: signal.Signals) -> None:
    """Send `stop` to the process group; SIGKILL it if the leader is still there after a grace time (then fail)."""
    os.killpg(process.pid, stop)
    try:
        process.wait(60)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait()
        raise AssertionError(f"serve did not stop on {stop.name}: killed") from None
    finally:
        if process.stdout is not None:
            process.stdout.close()
    # Workers and Terraform that outlive the leader are in its group too.
    try:
        os.killpg(process.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass


def _token_issue(exports: list[str], root: Path) -> subprocess.CompletedProcess:
    """`openstack token issue` in a shell that ran the printed export lines (and nothing else of ours)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("OS_")}
    env["HOME"] = str(root)
    script = "\n".join([*exports, f"exec {BIN / 'openstack'} token issue -f value -c project_id -c user_id"])
    return subprocess.run(["sh", "-c", script], env=env, capture_output=True, text=True, timeout=300, check=False)


def test_serve_bootstraps_admin_once_and_prints_working_settings(tmp_path: Path) -> None:
    root = tmp_path / "root"
    with serving(root) as served:
        lines = served.lines
        password_file = root / "api" / "admin-password"
        assert f"created API user admin (role admin on project admin); its password is in {password_file}" in lines
        assert stat.S_IMODE(password_file.stat().st_mode) == 0o600
        assert NO_IMAGE_HINT in lines, "an empty image store: serve says how to import the first image"
        password = password_file.read_text()
        assert password.strip() not in (root / "api" / "config.yaml").read_text()
        issued = _token_issue(served.exports, root)
        assert issued.returncode == 0, issued.stderr
        assert len(issued.stdout.split()) == 2

    # Served again: nothing is created, the same password still works.
    with serving(root) as served:
        assert not any(line.startswith("created") for line in served.lines)
        assert password_file.read_text() == password
        issued = _token_issue(served.exports, root)
        assert issued.returncode == 0, issued.stderr


def test_rotating_admin_removes_the_generated_password(tmp_path: Path) -> None:
    root = tmp_path / "root"
    with serving(root):
        pass
    done = subprocess.run([str(REPO / "bin" / "provision"), "users", "set", "admin", "--root", str(root),
                           "--project", "admin", "--role", "admin", "--password-stdin"],
                          input="a-new-password\n", capture_output=True, text=True, check=True)
    assert "removed" in done.stdout and not (root / "api" / "admin-password").exists()
    openrc = subprocess.run([str(REPO / "bin" / "provision"), "openrc", "--root", str(root)],
                            capture_output=True, text=True, check=True).stdout
    assert "# export OS_PASSWORD=" in openrc and "admin-password" not in openrc


def _admin_session(root: Path, port: int) -> requests.Session:
    password = (root / "api" / "admin-password").read_text().strip()
    body = {"auth": {"identity": {"methods": ["password"], "password": {"user": {
        "name": "admin", "domain": {"name": "Default"}, "password": password}}},
        "scope": {"project": {"name": "admin", "domain": {"name": "Default"}}}}}
    resp = requests.post(f"http://127.0.0.1:{port}/identity/v3/auth/tokens", json=body, timeout=30)
    assert resp.status_code == 201, resp.text
    session = requests.Session()
    session.headers["X-Auth-Token"] = resp.headers["X-Subject-Token"]
    return session


@pytest.mark.parametrize("stop", [signal.SIGKILL, signal.SIGINT], ids=["killed", "ctrl-c"])
def test_build_interrupted_by_stopping_serve_resumes_on_restart(tmp_path: Path, qcow2_file: Path,
                                                                stop: signal.Signals) -> None:
    """SIGKILL: the claim is left by a dead process; Ctrl-C (to the whole group, Terraform too): the build
    stops, and is queued again instead of recorded as failed (or left claimed if it outlives the grace time)."""
    root = tmp_path / "root"
    layout = Layout(root)
    image = ImageStore(layout).import_source(str(qcow2_file), "cirros")
    with serving(root, stop=stop) as served:
        assert NO_IMAGE_HINT not in served.lines
        created = _admin_session(root, served.port).post(
            f"http://127.0.0.1:{served.port}/compute/v2.1/servers", json={"server": {
            "name": "vm", "flavorRef": "1", "imageRef": image.id}}, timeout=30)
        assert created.status_code == 202, created.text
        server_id = created.json()["server"]["id"]
        workspace = layout.domain_dir(f"srv-{server_id}")
        # Killed (with Terraform and its provider) once the build has got as far as its own workspace's plan.
        deadline = time.monotonic() + 120
        while not (workspace / "terraform" / "main.tf").exists():
            assert time.monotonic() < deadline, "the build never wrote its plan"
            time.sleep(0.05)
    with sqlite3.connect(layout.state_db) as db:
        left = db.execute("SELECT kind, state FROM api_jobs WHERE subject_id = ?", (server_id,)).fetchall()
        record = json.loads(db.execute("SELECT data FROM api_servers WHERE id = ?", (server_id,)).fetchone()[0])
    if stop == signal.SIGKILL:
        assert left == [("build", "running")], "the build was interrupted, its claim left behind"
    elif not left:
        # Terraform finishes what it is doing on Ctrl-C: the build may have completed in the grace time.
        assert record["status"] == "ACTIVE", record["fault"]
    else:
        assert left in ([("build", "running")], [("build", "queued")]) and record["status"] == "BUILD", record

    with serving(root) as served:
        session = _admin_session(root, served.port)
        url = f"http://127.0.0.1:{served.port}/compute/v2.1/servers/{server_id}"
        deadline = time.monotonic() + 300
        while (server := session.get(url, timeout=30).json()["server"])["status"] == "BUILD":
            assert time.monotonic() < deadline, "the build never finished after the restart"
            time.sleep(0.2)
        assert server["status"] == "ACTIVE", server.get("fault")
    conn = open_readonly(layout.simulator_uri)
    try:
        assert f"srv-{server_id}" in {d.name() for d in conn.listAllDomains()}
    finally:
        conn.close()


def test_serve_on_a_port_in_use_says_so_and_creates_nothing(tmp_path: Path) -> None:
    root = tmp_path / "root"
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        done = subprocess.run([str(REPO / "bin" / "provision"), "serve", "--root", str(root), "--port", str(port)],
                              capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode == 1
    assert f"cannot listen on 127.0.0.1:{port}: Address already in use" in done.stderr
    assert not (root / "api" / "admin-password").exists() and done.stdout == ""
