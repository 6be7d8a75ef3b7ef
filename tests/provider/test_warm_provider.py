"""The warm provider: one provider process serving many Terraform runs (TF_REATTACH_PROVIDERS).

Real terraform, the real CLI (bin/provision) on the simulated hypervisor
(libvirt's test driver), real processes killed with real signals.
"""

from __future__ import annotations

import fcntl
import json
import os
import resource
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Iterator

import pytest

from provisioner.provider.mirror import install_mirror
from provisioner.terraform import reattach

from .tfrun import Workspace, domain_plan, shared_plan, terraform_env

REPO = Path(__file__).resolve().parents[2]
EXAMPLE = REPO / "example.test"
NOBODY = 65534


def _bin(root: Path, domains: Path, *args: str) -> list[str]:
    return [str(REPO / "bin/provision"), "--root", str(root), "--domains", str(domains), "-q", *args]


def _run(root: Path, domains: Path, *args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(_bin(root, domains, *args), capture_output=True, text=True, timeout=300,
                          env={**os.environ, **(env or {})})


def _run_dir(root: Path) -> Path:
    return root / "run" / f"provider-{os.getuid()}"


def _info(root: Path) -> dict:
    return json.loads((_run_dir(root) / "provider.json").read_text())


def _alive(pid: int) -> bool:
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except FileNotFoundError:
        return False
    return "zombie" not in status.lower()


def _wait(predicate, timeout: float = 60.0) -> bool:
    """Poll until `predicate()` (bounded); its last value."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.05)
    return bool(predicate())


def _warm_pids(log: Path) -> list[int]:
    """The warm provider pids a workspace's terraform.log names, one per attached command."""
    return [int(line.rsplit("pid ", 1)[1].rstrip(")")) for line in log.read_text().splitlines()
            if line.startswith("### ") and "(warm provider pid " in line]


@pytest.fixture
def site(tmp_path: Path) -> Iterator[tuple[Path, Path]]:
    """(root, domains with example.test); every warm provider it started is stopped afterwards."""
    root, domains = tmp_path / "root", tmp_path / "domains"
    shutil.copytree(EXAMPLE, domains / "example.test")
    yield root, domains
    for info in _run_dir(root).glob("provider.json"):
        pid = json.loads(info.read_text())["pid"]
        if _alive(pid):
            os.kill(pid, signal.SIGTERM)
            _wait(lambda: not _alive(pid), 10)


def _add(domains: Path, name: str) -> None:
    shutil.copytree(EXAMPLE, domains / name)


def test_one_provider_process_serves_every_run(site: tuple[Path, Path]) -> None:
    root, domains = site
    _add(domains, "second.test")
    env = {"TF_LOG": "debug"}  # Terraform's own account of where its provider came from
    first = _run(root, domains, "example.test", env=env)
    assert first.returncode == 0, first.stderr
    second = _run(root, domains, "second.test", env=env)
    assert second.returncode == 0, second.stderr
    assert "warning" not in first.stderr + second.stderr
    pid = _info(root)["pid"]
    assert _alive(pid)
    for name in ("example.test", "second.test"):
        log = root / "domains" / name / "logs" / "terraform.log"
        assert set(_warm_pids(log)) == {pid}
        text = log.read_text()
        # With reattach, Terraform never starts a plugin process of its own for libvirt.
        assert "plugin started" not in text and "starting plugin" not in text
        assert "unmanaged.provider" in text
    # Both domains are there, created through the same process.
    unchanged = _run(root, domains, "second.test")
    assert unchanged.returncode == 0 and "unchanged" in unchanged.stdout
    assert _info(root)["pid"] == pid
    modes = {p.name: p.stat().st_mode & 0o777 for p in (_run_dir(root), _run_dir(root) / "provider.sock")}
    assert modes == {_run_dir(root).name: 0o700, "provider.sock": 0o600}


def test_off_switch_starts_the_provider_per_run(site: tuple[Path, Path]) -> None:
    root, domains = site
    result = _run(root, domains, "example.test", env={"PROVISION_WARM_PROVIDER": "0", "TF_LOG": "debug"})
    assert result.returncode == 0, result.stderr
    assert not (root / "run").exists()
    log = (root / "domains/example.test/logs/terraform.log").read_text()
    assert _warm_pids(root / "domains/example.test/logs/terraform.log") == []
    assert "plugin started" in log


def test_idle_provider_exits_and_the_next_run_starts_another(site: tuple[Path, Path]) -> None:
    root, domains = site
    result = _run(root, domains, "example.test", env={"PROVISION_WARM_PROVIDER_IDLE": "1"})
    assert result.returncode == 0, result.stderr
    pid = _info(root)["pid"]
    assert _wait(lambda: not _alive(pid))
    assert not (_run_dir(root) / "provider.sock").exists()
    assert not (_run_dir(root) / "provider.json").exists()
    assert "exiting (idle)" in (_run_dir(root) / "provider.log").read_text()
    again = _run(root, domains, "example.test")
    assert again.returncode == 0 and "unchanged" in again.stdout, again.stderr
    assert _info(root)["pid"] != pid


def test_provider_exits_when_its_socket_goes_away(site: tuple[Path, Path]) -> None:
    """The root removed (or the socket, to unmount the root's filesystem): the provider leaves."""
    root, domains = site
    assert _run(root, domains, "example.test").returncode == 0
    pid = _info(root)["pid"]
    (_run_dir(root) / "provider.sock").unlink()
    assert _wait(lambda: not _alive(pid))
    assert "exiting (socket removed or replaced)" in (_run_dir(root) / "provider.log").read_text()


def test_bad_idle_setting_warns_and_uses_the_default(site: tuple[Path, Path]) -> None:
    root, domains = site
    result = _run(root, domains, "example.test", env={"PROVISION_WARM_PROVIDER_IDLE": "soon" * 30})
    assert result.returncode == 0, result.stderr
    assert "PROVISION_WARM_PROVIDER_IDLE must be a number of seconds" in result.stderr
    assert "soon" * 11 not in result.stderr  # the value is cut, not echoed whole
    assert _alive(_info(root)["pid"])


def test_stale_socket_and_dead_pid_are_replaced(site: tuple[Path, Path]) -> None:
    root, domains = site
    assert _run(root, domains, "example.test").returncode == 0
    old = _info(root)["pid"]
    os.kill(old, signal.SIGKILL)  # leaves provider.sock and provider.json behind
    assert _wait(lambda: not _alive(old))
    assert (_run_dir(root) / "provider.sock").exists()
    result = _run(root, domains, "example.test")
    assert result.returncode == 0 and "unchanged" in result.stdout, result.stderr
    assert "warning" not in result.stderr
    new = _info(root)["pid"]
    assert new != old and _alive(new)
    # Garbage where the record should be: replaced too.
    os.kill(new, signal.SIGKILL)
    assert _wait(lambda: not _alive(new))
    (_run_dir(root) / "provider.json").write_text("{not json")
    result = _run(root, domains, "example.test")
    assert result.returncode == 0 and "warning" not in result.stderr, result.stderr
    assert _info(root)["pid"] not in (old, new)


def test_provider_that_cannot_start_falls_back_with_one_warning(site: tuple[Path, Path]) -> None:
    root, domains = site
    _run_dir(root).parent.mkdir(parents=True)
    _run_dir(root).write_text("a file where the run directory goes")
    result = _run(root, domains, "example.test")
    assert result.returncode == 0 and "created" in result.stdout, result.stderr
    warnings = [line for line in result.stderr.splitlines() if "warm provider" in line]
    assert len(warnings) == 1 and "starting the provider per run" in warnings[0]


def _lock_held(lock: Path) -> bool:
    """True while another process holds the simulated hypervisor's commit lock."""
    if not lock.exists():
        return False
    fd = os.open(lock, os.O_RDWR)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return True
    finally:
        os.close(fd)
    return False


def test_provider_killed_mid_apply_falls_back_and_the_next_run_recovers(site: tuple[Path, Path]) -> None:
    root, domains = site
    _add(domains, "second.test")
    # The warm provider keeps the environment it started with: each simulated commit then
    # holds the node's lock for a second, long enough to kill the provider inside one.
    slow = {"PROVISIONER_SIM_COMMIT_DELAY": "1.0"}
    assert _run(root, domains, "example.test", env=slow).returncode == 0
    pid = _info(root)["pid"]
    log = root / "domains/second.test/logs/terraform.log"
    proc = subprocess.Popen(_bin(root, domains, "second.test"), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True)
    lock = root / "hypervisor" / "node.xml.lock"
    assert _wait(lambda: log.exists() and pid in _warm_pids(log) and _lock_held(lock)), "no commit seen"
    os.kill(pid, signal.SIGKILL)
    out, err = proc.communicate(timeout=300)
    assert proc.returncode == 0, err
    assert "created" in out
    warnings = [line for line in err.splitlines() if "warning" in line]
    assert len(warnings) == 1 and f"warm provider (pid {pid}) stopped during terraform apply" in warnings[0]
    again = _run(root, domains, "second.test")
    assert again.returncode == 0 and "unchanged" in again.stdout, again.stderr
    assert _info(root)["pid"] != pid
    assert pid not in _warm_pids(log)[-1:]


def test_provider_killed_while_applying_a_saved_plan_plans_again(site: tuple[Path, Path]) -> None:
    """A saved plan made with the warm provider cannot be applied by another: the run plans again and finishes."""
    root, domains = site
    slow = {"PROVISIONER_SIM_COMMIT_DELAY": "1.0"}
    assert _run(root, domains, "example.test", env=slow).returncode == 0
    conf = domains / "example.test/provision.conf"
    conf.write_text(conf.read_text().replace("memory = 1024", "memory = 2048"))
    pid = _info(root)["pid"]
    log = root / "domains/example.test/logs/terraform.log"
    proc = subprocess.Popen(_bin(root, domains, "example.test"), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True)
    lock = root / "hypervisor" / "node.xml.lock"

    def applying_the_plan() -> bool:
        lines = [line for line in log.read_text().splitlines() if line.startswith("### ")]
        return "apply" in lines[-1] and "plan.tfplan" in lines[-1] and _lock_held(lock)

    assert _wait(applying_the_plan), "no commit of the saved plan seen"
    os.kill(pid, signal.SIGKILL)
    out, err = proc.communicate(timeout=300)
    assert proc.returncode == 0, err
    assert "updated" in out
    assert f"warm provider (pid {pid}) stopped during terraform apply: planning again" in err
    again = _run(root, domains, "example.test")
    assert again.returncode == 0 and "unchanged" in again.stdout, again.stderr
    from provisioner.provider.simulator import open_readonly
    conn = open_readonly(f"test://{root / 'hypervisor/node.xml'}")
    try:
        assert conn.lookupByName("example.test").maxMemory() == 2048 * 1024
    finally:
        conn.close()


def test_a_replaced_provider_exits_without_breaking_its_successor(site: tuple[Path, Path]) -> None:
    # The run directory removed under a running provider (a root restored, a hand clean-up): the next run
    # starts another there; the old one notices and exits, and gRPC's clean-up of its socket must not take
    # the new one's with it (they were both grpc.sock): every later run would fail on the new provider.
    root, domains = site
    _add(domains, "second.test")
    assert _run(root, domains, "example.test").returncode == 0
    old = _info(root)["pid"]
    shutil.rmtree(_run_dir(root))
    assert _run(root, domains, "second.test").returncode == 0
    new = _info(root)["pid"]
    assert new != old and _wait(lambda: not _alive(old), 10)
    again = _run(root, domains, "second.test")
    assert again.returncode == 0 and "unchanged" in again.stdout, again.stderr
    assert "warning" not in again.stderr and _info(root)["pid"] == new
    assert sorted(p.name for p in _run_dir(root).iterdir() if "-" in p.name) == [f"conn-{new}", f"grpc-{new}.sock"]


def test_two_runs_at_once_keep_their_own_provider_configuration(tmp_path: Path) -> None:
    """Each connection has its own `uri`: another run configuring meanwhile changes nothing for this one."""
    cli_config = install_mirror(tmp_path / "terraform")
    provider = reattach.ensure(tmp_path / "terraform")
    assert provider is not None
    try:
        env = {**terraform_env(cli_config), "TF_REATTACH_PROVIDERS": provider.reattach()}
        nodes = {side: tmp_path / side / "node.xml" for side in ("a", "b")}
        seed = tmp_path / "seed.iso"
        seed.write_bytes(b"\0" * 4096)
        workspaces = {}
        for side, node in nodes.items():
            shared = Workspace(tmp_path / side / "shared", terraform_env(cli_config))
            shared.dir.mkdir(parents=True)
            (shared.dir / "main.tf").write_text(shared_plan(f"test://{node}", tmp_path / side / "pool",
                                                            "https://example.invalid/base.qcow2"))
            shared.init()
            shared.apply()
            ws = Workspace(tmp_path / side / "domain", terraform_env(cli_config))
            ws.dir.mkdir(parents=True)
            (ws.dir / "main.tf").write_text(domain_plan(f"test://{node}", "example.test", tmp_path / side / "pool",
                                                        seed))
            ws.init()
            ws.env = env
            workspaces[side] = ws
        # Hold a's node lock: a's apply stops inside its first commit while b configures the
        # same provider process with its own uri and plans; then a's later resources must
        # still go to a's node.
        lock = nodes["a"].with_name("node.xml.lock")
        fd = os.open(lock, os.O_RDWR | os.O_CREAT, 0o600)
        fcntl.flock(fd, fcntl.LOCK_EX)
        try:
            apply_a = workspaces["a"].popen("apply", "-auto-approve", "-input=false")
            code, out = workspaces["b"].plan_exitcode()  # ConfigureProvider(uri of b) on its own connection
            assert code == 2, out
        finally:
            os.close(fd)  # a's commits go ahead now
        out_a, _ = apply_a.communicate(timeout=120)
        assert apply_a.returncode == 0, out_a
        from provisioner.provider.simulator import open_readonly
        for side, expected in (("a", ["example.test"]), ("b", [])):
            conn = open_readonly(f"test://{nodes[side]}")
            try:
                assert [d.name() for d in conn.listAllDomains()] == expected, side
            finally:
                conn.close()
    finally:
        os.kill(provider.pid, signal.SIGTERM)
        _wait(lambda: not _alive(provider.pid), 10)


def test_another_uid_cannot_use_the_provider(site: tuple[Path, Path]) -> None:
    root, domains = site
    python = "/usr/bin/python3"  # the system's: another user cannot run one under /root
    if os.getuid() != 0 or not shutil.which("setpriv") or not os.access(python, os.X_OK):
        pytest.skip("needs root, setpriv and /usr/bin/python3 to act as another uid")
    assert _run(root, domains, "example.test").returncode == 0
    sock = _run_dir(root) / "provider.sock"
    probe = ("import socket,sys\n"
             "s=socket.socket(socket.AF_UNIX)\n"
             "try:\n s.connect(sys.argv[1])\nexcept OSError as e:\n print('connect', e.errno); sys.exit(0)\n"
             "s.settimeout(10)\n"
             "try:\n s.sendall(b'PRI * HTTP/2.0\\r\\n\\r\\nSM\\r\\n\\r\\n'); answer = s.recv(100)\n"
             "except OSError:\n answer = b''\n"
             "print('answered' if answer else 'closed')\n")

    def as_nobody(path: Path) -> str:
        return subprocess.run(["setpriv", f"--reuid={NOBODY}", f"--regid={NOBODY}", "--clear-groups",
                               python, "-c", probe, str(path)],
                              capture_output=True, text=True, timeout=30, check=True).stdout.strip()

    # The modes: the socket is 0600 in a 0700 directory.
    assert as_nobody(sock) == "connect 13"  # EACCES
    # Past the modes (a hard link in an open directory, the socket made 0666): SO_PEERCRED refuses it.
    with tempfile.TemporaryDirectory(dir="/tmp") as open_dir:
        os.chmod(open_dir, 0o755)
        link = Path(open_dir) / "s"
        try:
            os.link(sock, link)
        except OSError as exc:  # another filesystem than /tmp's
            pytest.skip(f"cannot hard-link the socket into /tmp: {exc}")
        os.chmod(link, 0o666)
        try:
            assert as_nobody(link) == "closed"  # accepted, then closed unanswered
        finally:
            os.chmod(sock, 0o600)
    assert f"refused a connection from uid {NOBODY}" in (_run_dir(root) / "provider.log").read_text()
    # The owner is still served.
    again = _run(root, domains, "example.test")
    assert again.returncode == 0 and "unchanged" in again.stdout, again.stderr



_DEFINE = ("import sys\n"
           "from provisioner.provider.simulator import SimulatedNode\n"
           "with SimulatedNode(sys.argv[1]).transaction() as s:\n"
           "    s.conn.defineXML(sys.argv[2])\n")


def _domain_xml(name: str) -> str:
    return (f"<domain type='test'><name>{name}</name><memory>65536</memory><vcpu>1</vcpu>"
            "<os><type>hvm</type></os></domain>")


def _names(node: Path) -> list[str]:
    from provisioner.provider.simulator import open_readonly

    conn = open_readonly(f"test://{node}")
    try:
        return sorted(d.name() for d in conn.listAllDomains())
    finally:
        conn.close()


def test_a_long_lived_provider_sees_what_another_process_committed(tmp_path: Path) -> None:
    """The connection kept from a process's last transaction is not used once another process wrote the node."""
    import sys

    from provisioner.provider.simulator import SimulatedNode

    node = SimulatedNode(tmp_path / "node.xml")
    with node.transaction() as s:
        s.conn.defineXML(_domain_xml("mine"))
    subprocess.run([sys.executable, "-c", _DEFINE, str(node.path), _domain_xml("theirs")], check=True,
                   timeout=60, cwd=REPO, env={**os.environ, "PYTHONPATH": str(REPO)})
    with node.transaction() as s:
        assert sorted(d.name() for d in s.conn.listAllDomains()) == ["mine", "theirs"]
        s.conn.defineXML(_domain_xml("mine-too"))
    assert _names(node.path) == ["mine", "mine-too", "theirs"]


def test_a_failed_transaction_leaves_nothing_for_the_next(tmp_path: Path) -> None:
    from provisioner.provider.simulator import SimulatedNode

    node = SimulatedNode(tmp_path / "node.xml")
    with node.transaction() as s:
        s.conn.defineXML(_domain_xml("kept"))
    with pytest.raises(RuntimeError):
        with node.transaction() as s:
            s.conn.defineXML(_domain_xml("half-done"))
            raise RuntimeError("the operation failed after changing the connection")
    with node.transaction() as s:
        assert [d.name() for d in s.conn.listAllDomains()] == ["kept"]
    assert _names(node.path) == ["kept"]


def test_starts_from_a_process_holding_descriptors_above_1023(tmp_path: Path) -> None:
    """Regression: the ready line was awaited with select(), which refuses a descriptor above 1023 (an API
    process with many connections; the tests' own process once): every build then failed."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard != resource.RLIM_INFINITY and hard < 1200:
        pytest.skip(f"the hard limit of open files is {hard}: the pipe cannot be put above 1023")
    resource.setrlimit(resource.RLIMIT_NOFILE, (max(soft, 1200), hard))
    filler = [os.open(os.devnull, os.O_RDONLY) for _ in range(1100)]  # the pipe gets the next free number
    root = tmp_path / "root"
    root.mkdir(mode=0o700)
    try:
        provider = reattach.ensure(root / "terraform")
    finally:
        for fd in filler:
            os.close(fd)
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))
    assert provider is not None and _alive(provider.pid)
    os.kill(provider.pid, signal.SIGTERM)
    assert _wait(lambda: not _alive(provider.pid), 10)
