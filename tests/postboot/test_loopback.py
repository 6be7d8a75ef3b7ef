"""Post-boot jobs against the real loopback guest: sshd + atd on 127.0.0.1 and a test user
(see loopback.py; the guest's `cloud-init` is a stand-in, the only mock)."""

from __future__ import annotations

import io
import os
import signal
import subprocess
import sys
import tarfile
import threading
import time
from dataclasses import fields, replace
from pathlib import Path

import pytest

# The loopback guest's fixtures, imported so pytest finds them (no conftest.py here: other test
# modules import the top-level conftest by name).
from loopback import Env, atd, domain_keys, env, free_port, guest_user, needs_root, session_dir, sshd  # noqa: F401
from provisioner.keys import ensure_keys
from provisioner.postboot.errors import PostbootFailed
from provisioner.postboot.queue import JobRecord, queue_for
from provisioner.postboot.schedule import schedule_postboot
from provisioner.postboot.worker import run_worker


def archive(path: Path, files: dict[str, str]) -> Path:
    """A data.tar.gz holding `files` (names are taken as they are, hostile or not).

    Written inside the domain directory: the engine refuses an archive outside it.
    """
    with tarfile.open(path, "w:gz") as tar:
        for name, text in files.items():
            data = text.encode()
            info = tarfile.TarInfo(name)
            info.size = len(data)
            info.mode = 0o644
            tar.addfile(info, io.BytesIO(data))
    return path


def run(env: Env, wait: bool = True, **settings: float) -> JobRecord:
    return schedule_postboot(env.layout, env.spec, env.workspace, wait=wait, progress=env.progress,
                             address=env.address, settings=replace(env.settings, **settings))


def guest_jobs(env: Env) -> list[Path]:
    return sorted((env.user.home / ".provisioner" / "jobs").glob("example.test-*"))


def test_success_with_example_archive(env: Env) -> None:
    job = run(env)
    assert (job.state, job.step, job.exit_code, job.attempts) == ("done", "fetch", 0, 1)
    marker = env.user.home / "www/example.test/.provisioned"
    assert marker.read_text().startswith("example.test site installed: ")
    assert marker.stat().st_uid == os.stat(env.user.home).st_uid
    log = Path(job.log_path).read_text()
    assert job.log_path == str(env.workspace / "logs" / f"postboot-{job.id}.log")
    assert "install -m 0644 index.html" in log and "DONE: make succeeded" in log
    [directory] = guest_jobs(env)
    assert directory.name == f"example.test-{job.token}"
    assert (directory / "exit-status").read_text() == "make 0\n"
    known_hosts = (env.workspace / "ssh" / "known_hosts").read_text()
    assert known_hosts.startswith("example.test ssh-ed25519 ")


def test_make_failure_is_recorded_with_status_and_log(env: Env) -> None:
    bad = archive(env.spec.input_dir / "data.tar.gz", {"Makefile": "all:\n\techo about to fail\n\texit 7\n"})
    env = replace(env, spec=replace(env.spec, data_archive=bad))
    with pytest.raises(PostbootFailed, match=r"job 1 failed: make failed on the guest with exit status 2; log: "):
        run(env)
    job = queue_for(env.layout, env.settings).get(1)
    assert (job.state, job.exit_code) == ("failed", 2)
    log = Path(job.log_path).read_text()
    assert "about to fail" in log and "Error 7" in log


def test_cloud_init_error_names_the_failed_modules(env: Env) -> None:
    env.user.set_cloud_init("error")
    with pytest.raises(PostbootFailed, match="cloud-init reported an error in: locale, package_update_upgrade_install"):
        run(env)
    job = queue_for(env.layout, env.settings).get(1)
    assert (job.state, job.step) == ("failed", "cloud-init")
    assert "status: error" in Path(job.log_path).read_text()
    assert guest_jobs(env) == []


def test_cloud_init_still_running_is_waited_for(env: Env) -> None:
    env.user.set_cloud_init("running")
    timer = threading.Timer(0.8, env.user.set_cloud_init, ("done",))
    timer.start()
    try:
        assert run(env).state == "done"
    finally:
        timer.cancel()


def test_finished_cloud_init_is_judged_by_result_json(env: Env) -> None:
    # `cloud-init status` would say running forever: result.json alone must decide.
    env.user.set_cloud_init("running")
    env.user.finish_cloud_init([])
    assert run(env, cloud_init_timeout=3).state == "done"


def test_errors_in_result_json_fail_the_job(env: Env) -> None:
    env.user.set_cloud_init("running")
    env.user.finish_cloud_init(["('locale', ProcessExecutionError('no locales'))"])
    with pytest.raises(PostbootFailed, match=r"cloud-init reported an error in: locale; first error: .*no locales"):
        run(env, cloud_init_timeout=3)


def test_the_guest_waits_for_result_json(env: Env) -> None:
    env.user.set_cloud_init("running")
    env.user.start_cloud_init()
    timer = threading.Timer(0.8, env.user.finish_cloud_init, ([],))
    timer.start()
    try:
        job = run(env, cloud_init_timeout=5)
    finally:
        timer.cancel()
    assert job.state == "done"


def test_cloud_init_that_never_finishes_times_out(env: Env) -> None:
    env.user.set_cloud_init("running")
    with pytest.raises(PostbootFailed, match=r"cloud-init had not finished after 1s \(setting cloud_init_timeout\)"):
        run(env, cloud_init_timeout=1)


def test_wrong_host_key_is_refused_at_once(env: Env) -> None:
    # Keys of another guest: the loopback sshd presents a host key other than the pinned one.
    for key in (env.workspace / "keys").iterdir():
        key.unlink()
    ensure_keys(env.workspace / "keys", "example.test")
    started = time.monotonic()
    with pytest.raises(PostbootFailed, match="did not present the pinned host key for 'example.test'.*never disable"):
        run(env, ssh_timeout=30)
    assert time.monotonic() - started < 10
    assert queue_for(env.layout, env.settings).get(1).step == "ssh"


def test_unreachable_guest_times_out(env: Env) -> None:
    env = replace(env, address=f"127.0.0.1:{free_port()}")
    started = time.monotonic()
    with pytest.raises(PostbootFailed, match=r"did not accept SSH within 2s \(setting ssh_timeout\).*Connection refused"):
        run(env, ssh_timeout=2)
    assert time.monotonic() - started < 6


def test_unsafe_archive_is_refused_on_the_guest(env: Env) -> None:
    # Past the engine's own archive check (bypassed here), the guest script still refuses it.
    bad = archive(env.spec.input_dir / "data.tar.gz", {"Makefile": "all:\n\ttrue\n", "../escaped": "x\n"})
    env = replace(env, spec=replace(env.spec, data_archive=bad))
    with pytest.raises(PostbootFailed, match="unpacking data.tar.gz failed on the guest with exit status 125"):
        run(env)
    log = Path(queue_for(env.layout, env.settings).get(1).log_path).read_text()
    assert "refusing data.tar.gz" in log and "../escaped" in log
    [directory] = guest_jobs(env)
    assert not (directory / "escaped").exists() and not (directory / "site").exists()


def test_hostile_member_names_are_not_executed(env: Env) -> None:
    names = ["$(touch pwned1)", "`touch pwned2`", ";touch pwned3", "a'b\"c $HOME"]
    files = {"Makefile": "all:\n\tls > listing\n", **{name: "x\n" for name in names}}
    env = replace(env, spec=replace(env.spec, data_archive=archive(env.spec.input_dir / "data.tar.gz", files)))
    assert run(env).state == "done"
    [directory] = guest_jobs(env)
    assert set(names) <= set((directory / "site" / "listing").read_text().splitlines())
    assert list(env.user.home.rglob("pwned*")) == []


def test_simulated_hypervisor_is_skipped(env: Env) -> None:
    env = replace(env, spec=replace(env.spec, libvirt_uri="test:///default"))
    job = run(env, ssh_timeout=1)
    assert job.state == "skipped" and "simulated hypervisor" in job.message
    assert guest_jobs(env) == []


def test_without_archive_only_cloud_init_is_awaited(env: Env) -> None:
    env = replace(env, spec=replace(env.spec, data_archive=None))
    job = run(env)
    assert (job.state, job.step, job.exit_code) == ("done", "cloud-init", None)
    assert "no data.tar.gz" in job.message


def test_no_wait_queues_then_worker_runs_and_cancel_removes(env: Env) -> None:
    first = run(env, wait=False)
    second = run(env, wait=False)
    assert (first.state, second.state) == ("queued", "queued")
    queue = queue_for(env.layout, env.settings)
    assert queue.cancel(second.id).state == "cancelled"
    assert run_worker(env.layout, env.settings, env.progress, drain=True) == 1
    assert queue.get(first.id).state == "done"
    assert queue.get(second.id).state == "cancelled"
    assert len(guest_jobs(env)) == 1


SLOW_MAKEFILE = "all:\n\techo run >> $(HOME)/runs\n\tsleep 2\n\techo finished\n"


def test_worker_killed_mid_job_resumes_without_running_make_twice(env: Env) -> None:
    env = replace(env, spec=replace(env.spec, data_archive=archive(env.spec.input_dir / "data.tar.gz",
                                                                   {"Makefile": SLOW_MAKEFILE})))
    (env.user.home / "runs").unlink(missing_ok=True)
    job = run(env, wait=False)
    variables = {f"PROVISION_POSTBOOT_{f.name.upper()}": str(getattr(env.settings, f.name))
                 for f in fields(env.settings)}
    worker = subprocess.Popen(
        [sys.executable, "-c",
         "import sys; from pathlib import Path\n"
         "from provisioner.layout import Layout\n"
         "from provisioner.postboot.settings import PostbootSettings\n"
         "from provisioner.postboot.worker import run_worker\n"
         "from provisioner.progress import Progress\n"
         "run_worker(Layout(Path(sys.argv[1])), PostbootSettings.from_env(), Progress(quiet=True), drain=True)\n",
         str(env.layout.root)],
        env={**os.environ, **variables})
    queue = queue_for(env.layout, env.settings)
    try:
        deadline = time.monotonic() + 20
        while not (guest_jobs(env) and (guest_jobs(env)[0] / "started").exists()):
            assert time.monotonic() < deadline and worker.poll() is None, "the worker never started make"
            time.sleep(0.05)
        assert queue.get(job.id).state == "running"
    finally:
        worker.send_signal(signal.SIGKILL)
        worker.wait()
    assert run_worker(env.layout, env.settings, env.progress, drain=True) == 1
    record = queue.get(job.id)
    assert (record.state, record.attempts, record.exit_code) == ("done", 2, 0)
    assert (env.user.home / "runs").read_text() == "run\n"
    log = Path(record.log_path).read_text()
    assert "not copying or submitting it again" in log and "finished" in log
