"""`provision install-service` under a real systemd (tests/service/systemd_ns.py): socket activation, restarts
that lose no task, the post-boot worker's queue across stop/start, the image sync timer and service, bad input."""

from __future__ import annotations

import shutil
import socket
import sqlite3
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import requests

from provisioner.images import ImageStore
from provisioner.layout import Layout
from provisioner.postboot.params import SETUP, JobParams
from provisioner.postboot.queue import JobQueue
from provisioner.service.units import UNIT_NAMES, ServiceSettings, render_units

sys.path.insert(0, str(Path(__file__).parent))
from systemd_ns import Systemd, booted, unavailable  # noqa: E402

REPO = Path(__file__).resolve().parents[2]
PROVISION = str(REPO / "bin" / "provision")
UNIT_DIR = Path("/etc/systemd/system")  # inside the namespace: a tmpfs of its own
pytestmark = pytest.mark.skipif(unavailable() is not None, reason=f"no namespaced systemd: {unavailable()}")


@dataclass(frozen=True)
class Installed:
    """The manager, the root the units serve and the API's port."""

    systemd: Systemd
    root: Path
    port: int

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Installed]:
    """install-service into a booted systemd, over a root outside /tmp (the units have PrivateTmp=yes)."""
    base = Path(tempfile.mkdtemp(prefix="provision-test-", dir="/var/lib"))
    try:
        with booted(tmp_path_factory.mktemp("systemd") / "systemd.log") as systemd:
            port = free_port()
            root = base / "root"
            done = systemd.run(PROVISION, "install-service", "--root", str(root), "--port", str(port))
            assert "wrote provision-api.socket" in done.stdout, done.stdout
            yield Installed(systemd, root, port)
            systemd.run(PROVISION, "uninstall-service")
    finally:
        shutil.rmtree(base)


def qcow2(directory: Path) -> Path:
    path = directory / "tiny.qcow2"
    subprocess.run(["qemu-img", "create", "-q", "-f", "qcow2", str(path), "64M"], check=True, timeout=60)
    return path


def admin_session(live: Installed) -> requests.Session:
    """A token for admin, whose password the API's first start wrote (a first connection starts it)."""
    assert requests.get(f"{live.url}/identity/v3", timeout=120).status_code == 200
    password = (live.root / "api" / "admin-password").read_text().strip()
    body = {"auth": {"identity": {"methods": ["password"], "password": {"user": {
        "name": "admin", "domain": {"name": "Default"}, "password": password}}},
        "scope": {"project": {"name": "admin", "domain": {"name": "Default"}}}}}
    resp = requests.post(f"{live.url}/identity/v3/auth/tokens", json=body, timeout=60)
    assert resp.status_code == 201, resp.text
    session = requests.Session()
    session.headers["X-Auth-Token"] = resp.headers["X-Subject-Token"]
    return session


def wait_for(what: str, check: Callable[[], bool], seconds: float = 300) -> None:
    """Poll `check` every 0.1 s until true; fail naming `what` after `seconds`."""
    deadline = time.monotonic() + seconds
    while not check():
        assert time.monotonic() < deadline, f"{what}: not within {seconds}s"
        time.sleep(0.1)


def test_rendered_units_pass_systemd_analyze_verify(tmp_path: Path) -> None:
    for name, text in render_units(ServiceSettings(root=Path("/var/lib/prov root%n"), port=5123)).items():
        (tmp_path / name).write_text(text)
    done = subprocess.run(["systemd-analyze", "verify", "--man=no", *(str(tmp_path / n) for n in UNIT_NAMES)],
                          capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode == 0 and done.stderr == "", done.stderr


def test_first_connection_starts_the_api_and_identity_answers(installed: Installed) -> None:
    systemd = installed.systemd
    assert systemd.show("provision-api.socket", "ActiveState") == "active"
    assert systemd.show("provision-api.service", "ActiveState") == "inactive", "started before any connection"
    resp = requests.get(f"{installed.url}/identity/v3", timeout=120)
    assert resp.status_code == 200 and resp.json()["version"]["id"].startswith("v3"), resp.text
    assert systemd.show("provision-api.service", "ActiveState") == "active"
    # The workers serve the socket systemd holds: the unit's processes listen on nothing of their own.
    assert systemd.show("provision-api.service", "NRestarts") == "0"


def test_install_again_changes_nothing(installed: Installed) -> None:
    units = installed.systemd.path(UNIT_DIR)
    before = {name: (units / name).stat().st_mtime_ns for name in UNIT_NAMES}
    done = installed.systemd.run(PROVISION, "install-service", "--root", str(installed.root),
                                 "--port", str(installed.port))
    assert "already current" in done.stdout, done.stdout
    assert {name: (units / name).stat().st_mtime_ns for name in UNIT_NAMES} == before
    assert all((units / name).stat().st_mode & 0o777 == 0o644 for name in UNIT_NAMES)


def test_restarting_the_api_loses_no_queued_build(installed: Installed) -> None:
    image = ImageStore(Layout(installed.root)).import_source(str(qcow2(installed.root)), "tiny")
    session = admin_session(installed)
    created = session.post(f"{installed.url}/compute/v2.1/servers", json={"server": {
        "name": "vm", "flavorRef": "1", "imageRef": image.id}}, timeout=60)
    assert created.status_code == 202, created.text
    server_id = created.json()["server"]["id"]
    before = installed.systemd.show("provision-api.service", "MainPID")
    with sqlite3.connect(Layout(installed.root).state_db) as db:
        pending = db.execute("SELECT state FROM api_jobs WHERE subject_id = ?", (server_id,)).fetchall()
    assert pending in ([("queued",)], [("running",)]), "the build must still be pending when the API restarts"
    installed.systemd.systemctl("restart", "provision-api.service")
    assert installed.systemd.show("provision-api.service", "MainPID") != before
    url = f"{installed.url}/compute/v2.1/servers/{server_id}"

    def built() -> bool:
        return session.get(url, timeout=60).json()["server"]["status"] != "BUILD"
    wait_for("the build after the restart", built)
    server = session.get(url, timeout=60).json()["server"]
    assert server["status"] == "ACTIVE", (pending, server.get("fault"))


def test_stopped_worker_resumes_its_queue_when_started(installed: Installed) -> None:
    systemd = installed.systemd
    # The API's first process runs queued post-boot jobs too: stop it (its socket stays) to watch the worker alone.
    systemd.systemctl("stop", "provision-worker.service", "provision-api.service")
    queue = JobQueue(Layout(installed.root).state_db)
    job = queue.add("unreachable.test", SETUP, JobParams(
        workspace=str(installed.root / "none"), user="root", alias="unreachable.test",
        identity=str(installed.root / "none" / "id"), known_hosts=str(installed.root / "none" / "kh"),
        address="127.0.0.1:9"))
    assert queue.get(job.id).state == "queued"
    systemd.systemctl("start", "provision-worker.service")
    first = int(systemd.show("provision-worker.service", "MainPID"))
    wait_for("the worker claiming the queued job", lambda: queue.get(job.id).state != "queued", 120)
    claimed = queue.get(job.id)
    assert (claimed.state, claimed.worker_pid) == ("running", first), "claimed by the service's process"
    # Stopped while the job runs (it waits for the guest's ssh): the next worker resumes it.
    systemd.systemctl("stop", "provision-worker.service")
    assert queue.get(job.id).state in ("running", "queued"), "an interrupted job stays in the queue"
    systemd.systemctl("start", "provision-worker.service")
    second = int(systemd.show("provision-worker.service", "MainPID"))
    wait_for("the new worker resuming the job", lambda: queue.get(job.id).worker_pid == second, 120)
    resumed = queue.get(job.id)
    assert resumed.state == "running" and resumed.attempts == claimed.attempts + 1, resumed
    systemd.systemctl("stop", "provision-worker.service")


def test_timer_is_listed_and_the_sync_service_imports_the_list(installed: Installed) -> None:
    timers = installed.systemd.systemctl("list-timers", "--all").stdout
    assert "provision-image-sync.timer" in timers and "provision-image-sync.service" in timers, timers
    image = qcow2(installed.root / "api")
    (installed.root / "images.list").write_text(f"{image} name=synced\n")
    installed.systemd.systemctl("start", "provision-image-sync.service")  # oneshot: returns when it finished
    assert installed.systemd.show("provision-image-sync.service", "Result") == "success"
    assert ImageStore(Layout(installed.root)).lookup("synced") is not None


def test_a_port_in_use_is_refused_and_nothing_is_written(installed: Installed) -> None:
    other_root = installed.root.parent / "other-root"
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        done = installed.systemd.run(PROVISION, "install-service", "--root", str(other_root),
                                     "--port", str(port), check=False)
    assert done.returncode == 1
    assert f"--port {port}: 127.0.0.1:{port} is already in use by another program" in done.stderr, done.stderr
    assert installed.systemd.show("provision-api.socket", "Listen") == f"127.0.0.1:{installed.port} (Stream)"
    assert f"--root {installed.root} " in installed.systemd.show("provision-api.service", "ExecStart")
    assert not other_root.exists()


def test_another_port_moves_the_socket_then_uninstall_removes_the_units(tmp_path: Path) -> None:
    base = Path(tempfile.mkdtemp(prefix="provision-test-", dir="/var/lib"))
    try:
        with booted(tmp_path / "systemd.log") as systemd:
            old = free_port()
            systemd.run(PROVISION, "install-service", "--root", str(base / "root"), "--port", str(old))
            assert requests.get(f"http://127.0.0.1:{old}/identity/v3", timeout=120).status_code == 200
            port = free_port()
            done = systemd.run(PROVISION, "install-service", "--root", str(base / "root"), "--port", str(port))
            assert done.stdout.startswith("wrote provision-api.socket in"), done.stdout
            assert requests.get(f"http://127.0.0.1:{port}/identity/v3", timeout=120).status_code == 200
            with pytest.raises(requests.ConnectionError):
                requests.get(f"http://127.0.0.1:{old}/identity/v3", timeout=30)
            done = systemd.run(PROVISION, "uninstall-service")
            assert done.stdout.startswith("removed provision-api.socket, provision-api.service"), done.stdout
            assert not any(systemd.path(UNIT_DIR / name).exists() for name in UNIT_NAMES)
            assert systemd.show("provision-api.service", "ActiveState") == "inactive"
            with pytest.raises(requests.ConnectionError):
                requests.get(f"http://127.0.0.1:{port}/identity/v3", timeout=30)
            again = systemd.run(PROVISION, "uninstall-service")
            assert again.stdout.startswith("no provisioner units in"), again.stdout
    finally:
        shutil.rmtree(base)


def test_a_missing_unit_dir_is_refused(tmp_path: Path) -> None:
    done = subprocess.run([PROVISION, "install-service", "--root", "/var/lib/provision-never", "--unit-dir",
                           str(tmp_path / "absent"), "--no-enable"], capture_output=True, text=True, timeout=60,
                          check=False)
    assert done.returncode == 1 and f"--unit-dir {tmp_path / 'absent'}"[:70] in done.stderr, done.stderr
    assert not Path("/var/lib/provision-never").exists()


@pytest.mark.parametrize("root, message", [
    ("/tmp/provision-root", "under /tmp, which the services see as a private, empty directory"),
    ("/var/tmp/x/root", "under /var/tmp, which the services see as a private, empty directory"),
    ("/nonexistent-parent/root", "its parent directory /nonexistent-parent does not exist"),
    ("relative/root", None),
])
def test_a_bad_root_is_refused_before_anything_is_written(tmp_path: Path, root: str, message: str | None) -> None:
    units = tmp_path / "units"
    units.mkdir()
    done = subprocess.run([PROVISION, "install-service", "--root", root, "--unit-dir", str(units), "--no-enable"],
                          capture_output=True, text=True, timeout=60, check=False, cwd=tmp_path)
    if message is None:  # made absolute from the current directory: under /tmp here
        message = "under /tmp"
    assert done.returncode == 1 and message in done.stderr, done.stderr
    assert list(units.iterdir()) == []


def test_a_root_that_is_a_file_is_refused(tmp_path: Path) -> None:
    base = Path(tempfile.mkdtemp(prefix="provision-test-", dir="/var/lib"))
    try:
        (base / "root").write_text("not a directory")
        units = tmp_path / "units"
        units.mkdir()
        done = subprocess.run([PROVISION, "install-service", "--root", str(base / "root"), "--unit-dir", str(units),
                               "--no-enable"], capture_output=True, text=True, timeout=60, check=False)
        assert done.returncode == 1 and "exists and is not a directory" in done.stderr, done.stderr
        assert list(units.iterdir()) == []
    finally:
        shutil.rmtree(base)
