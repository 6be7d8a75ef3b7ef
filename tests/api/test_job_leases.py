"""Job leases (api/jobs/queue.py): another node's claim is reaped when its lease runs out, never by its pid.

A node is an API root; its pids mean nothing on another host, so a claim of
another node carries a lease its process renews. Claims are made here with a
pid that has exited (tests/api/test_job_queue.py's `_dead_worker`): a node
reaping by pid would requeue them at once. Every test runs on SQLite and on
PostgreSQL (the `setup` fixture's `database:`), where leases matter most.
"""

from __future__ import annotations

import time
from collections.abc import Callable

import pytest
from test_job_queue import _dead_worker
from test_server_tasks import StubEngine, backend, database, setup  # noqa: F401 (fixtures)
from apitest import qcow2_file  # noqa: F401 (fixtures)

from api.db import Database
from api.jobs.queue import Claimer, JobQueue
from api.jobs.records import DeleteServer
from api.jobs.runner import LEASE_VARIABLE, job_lease
from provisioner.errors import ProvisionError


def _rows(db: Database) -> list[tuple]:
    return db.connect().execute("SELECT subject_id, state, attempts, claimed_by FROM api_jobs ORDER BY id").fetchall()


def _db_now(db: Database, queue: JobQueue) -> float:
    return float(db.connect().execute(f"SELECT {queue._now}").fetchone()[0])


def _until(condition: Callable[[], bool], what: str) -> None:
    deadline = time.monotonic() + 60
    while not condition():
        assert time.monotonic() < deadline, what
        time.sleep(0.1)


def test_another_nodes_claim_is_reaped_when_its_lease_expires_not_before(setup) -> None:
    _, _, layout = setup
    db = database(layout)
    long, short = JobQueue(db, max_running=10, lease=3600), JobQueue(db, max_running=10, lease=1)
    for name in ("held", "lapsing"):
        long.add(DeleteServer(name, f"srv-{name}"))
    gone = Claimer("node-b", _dead_worker())  # node b's process: on its own host, whatever this pid is here
    held, lapsing = long.claim(gone), short.claim(gone)
    assert held is not None and lapsing is not None
    # Node a does not know b's pids: b's live lease keeps its job, b's expired one is queued again.
    _until(lambda: long.reap("node-a") == [] and _rows(db)[1][1] == "queued", "the short lease never expired")
    assert _rows(db) == [("held", "running", 1, "node-b"), ("lapsing", "queued", 1, None)]
    # Node b itself knows the pid is dead: its own job is queued again at once, lease or not.
    assert long.reap("node-b") == []
    assert _rows(db) == [("held", "queued", 1, None), ("lapsing", "queued", 1, None)]


def test_a_claim_reaped_and_claimed_again_is_the_new_claimers(setup) -> None:
    _, _, layout = setup
    db = database(layout)
    short = JobQueue(db, max_running=10, lease=1)
    short.add(DeleteServer("s", "srv-s"))
    node_b = Claimer("node-b", _dead_worker())
    stalled = short.claim(node_b)
    assert stalled is not None
    _until(lambda: (short.reap("node-a"), _rows(db))[1][0][1] == "queued", "the lease never expired")
    taken = JobQueue(db, max_running=10, lease=3600).claim(Claimer.current("node-a"))
    assert taken is not None and taken.attempts == 2
    # The stalled claimer wakes up: neither its renewal, its done nor its release touches the new claim.
    assert short.renew(node_b) == 0
    short.done(stalled)
    short.release(stalled)
    assert _rows(db) == [("s", "running", 2, "node-a")]
    short.done(taken)
    assert _rows(db) == []


def test_renew_extends_only_its_own_claims(setup) -> None:
    _, _, layout = setup
    db = database(layout)
    short, long = JobQueue(db, max_running=10, lease=5), JobQueue(db, max_running=10, lease=3600)
    for name in ("mine", "theirs"):
        short.add(DeleteServer(name, f"srv-{name}"))
    me, them = Claimer.current("node-a"), Claimer.current("node-b")
    short.claim(me), short.claim(them)
    assert long.renew(me) == 1
    expiries = dict(db.connect().execute("SELECT subject_id, lease_expires FROM api_jobs").fetchall())
    now = _db_now(db, long)
    assert expiries["mine"] - now > 3000 and expiries["theirs"] - now < 10, expiries


def test_a_running_jobs_lease_is_renewed_by_its_process(setup, monkeypatch: pytest.MonkeyPatch) -> None:
    make, image_id, _ = setup
    monkeypatch.setenv(LEASE_VARIABLE, "6")  # renewed every 2 s: a renewal may come 4 s late
    engine = StubEngine()
    engine.gate.clear()
    api, client, headers = make(engine)
    assert api.tasks.queue.lease == 6
    client.simulate_post("/compute/v2.1/servers", headers=headers, json={"server": {
        "name": "vm", "flavorRef": "1", "imageRef": image_id}})
    assert engine.entered.wait(30), "the build never reached the engine"
    db = api.context.db
    (first_expiry,) = db.connect().execute("SELECT lease_expires FROM api_jobs").fetchone()
    # Well past the lease it was claimed with, the job is still this node's: its process renewed the lease.
    _until(lambda: _db_now(db, api.tasks.queue) > first_expiry + 3, "the database's clock stood still")
    assert api.tasks.queue.reap("another-node") == []
    assert [row[1:] for row in _rows(db)] == [("running", 1, api.tasks.node)]
    engine.gate.set()
    _until(lambda: _rows(db) == [], "the build never finished")
    api.tasks.shutdown()


@pytest.mark.parametrize("value", ["2", "0", "-5", "ten", "1.5", "86401"])
def test_a_bad_lease_is_refused_naming_the_variable(value: str) -> None:
    with pytest.raises(ProvisionError) as raised:
        job_lease({LEASE_VARIABLE: value})
    assert str(raised.value) == f"{LEASE_VARIABLE}: use a whole number of seconds from 3 to 86400"


def test_the_lease_defaults_to_30_seconds_and_takes_whole_seconds() -> None:
    assert job_lease({}) == 30 and job_lease({LEASE_VARIABLE: " 45 "}) == 45
