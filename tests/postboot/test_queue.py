"""The SQLite job queue: claiming, dead workers, cancelling (no guest needed)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from provisioner.postboot.errors import JobNotFound, JobStateError
from provisioner.postboot.params import SETUP, JobParams
from provisioner.postboot.queue import JobQueue, Worker

PARAMS = JobParams(workspace="/w", user="root", alias="a.test", identity="/w/keys/id", known_hosts="/w/ssh/kh",
                   static_ips=("192.0.2.10",))


def dead_worker() -> Worker:
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    worker = Worker(child.pid, Worker.current().start)
    child.wait()
    return worker


def test_params_round_trip(tmp_path: Path) -> None:
    queue = JobQueue(tmp_path / "state.db")
    job = queue.add("a.test", SETUP, PARAMS)
    assert queue.get(job.id).params == PARAMS
    assert job.state == "queued" and job.attempts == 0 and len(job.token) == 16


def test_claim_takes_oldest_and_one_job_per_domain(tmp_path: Path) -> None:
    queue = JobQueue(tmp_path / "state.db")
    first = queue.add("a.test", SETUP, PARAMS)
    second = queue.add("a.test", SETUP, PARAMS)
    other = queue.add("b.test", SETUP, PARAMS)
    me = Worker.current()
    assert queue.claim(me).id == first.id
    # a.test already has a running job: its next one waits, b.test's goes first.
    assert queue.claim(me).id == other.id
    assert queue.claim(me) is None
    assert queue.claim(me, second.id) is None
    queue.finish(first.id, me, "done", "ok", exit_code=0)
    claimed = queue.claim(me, second.id)
    assert claimed.state == "running" and claimed.worker_pid == me.pid and claimed.attempts == 1


def test_dead_worker_job_is_requeued_then_failed_after_max_attempts(tmp_path: Path) -> None:
    queue = JobQueue(tmp_path / "state.db", max_attempts=2)
    job = queue.add("a.test", SETUP, PARAMS)
    for attempt in (1, 2):
        dead = dead_worker()
        assert queue.claim(dead).id == job.id
        queue.set_step(job.id, dead, "run")
        queue.reap()
        record = queue.get(job.id)
        if attempt == 1:
            assert record.state == "queued" and "died in step run" in record.message
    assert record.state == "failed"
    assert "died 2 time(s)" in record.message and "not retried again" in record.message


def test_a_live_worker_keeps_its_job(tmp_path: Path) -> None:
    queue = JobQueue(tmp_path / "state.db")
    job = queue.add("a.test", SETUP, PARAMS)
    me = Worker.current()
    queue.claim(me)
    queue.reap()
    assert queue.get(job.id).state == "running"
    with pytest.raises(JobStateError):
        queue.set_step(job.id, dead_worker(), "run")


def test_recycled_pid_is_not_the_same_worker() -> None:
    me = Worker.current()
    assert me.alive()
    assert not Worker(me.pid, me.start + 1).alive()


def test_cancel(tmp_path: Path) -> None:
    queue = JobQueue(tmp_path / "state.db")
    queued = queue.add("a.test", SETUP, PARAMS)
    running = queue.add("b.test", SETUP, PARAMS)
    queue.claim(Worker.current(), running.id)
    assert queue.cancel(queued.id).state == "cancelled"
    assert queue.claim(Worker.current(), queued.id) is None
    with pytest.raises(JobStateError, match="already finished"):
        queue.cancel(queued.id)
    with pytest.raises(JobStateError, match="is running"):
        queue.cancel(running.id)
    with pytest.raises(JobNotFound, match="no post-boot job 99"):
        queue.cancel(99)


def test_concurrent_claims_never_share_a_job(tmp_path: Path) -> None:
    db = tmp_path / "state.db"
    queue = JobQueue(db)
    ids = [queue.add(f"d{i}.test", SETUP, PARAMS).id for i in range(20)]
    script = (
        "import sys; from pathlib import Path\n"
        "from provisioner.postboot.queue import JobQueue, Worker\n"
        "q = JobQueue(Path(sys.argv[1])); me = Worker.current(); got = []\n"
        "while (job := q.claim(me)) is not None:\n"
        "    got.append(job.id); q.finish(job.id, me, 'done', 'ok')\n"
        "print(' '.join(map(str, got)))\n"
    )
    workers = [subprocess.Popen([sys.executable, "-c", script, str(db)], stdout=subprocess.PIPE, text=True)
               for _ in range(4)]
    claimed = [int(i) for w in workers for i in w.communicate()[0].split()]
    assert sorted(claimed) == ids
