"""The job queue (api/jobs): typed records, their failure paths, and roots made with the old `api_server_tasks`.

A claimer that died is simulated by a claim naming the pid of a child process
that has exited. Volume and snapshot jobs are seeded in the old table shape
(the one every root had before api_jobs), so the same test reads the same on
the code before the job queue: there a dropped volume job left it `creating`.
The engine is a stand-in (no Terraform): the handlers' engine calls are not
what is tested here. Every test of a root (`setup`) runs on SQLite and on
PostgreSQL (`database:`), where rows are seeded straight into api_jobs: the
old table never existed there.
"""

from __future__ import annotations

import ipaddress
import json
import logging
import multiprocessing
import multiprocessing.synchronize
import sqlite3
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from apitest import qcow2_file  # noqa: F401 (fixtures)
from test_server_tasks import StubEngine, backend, database, setup  # noqa: F401 (fixtures)

from api.compute.models import ERROR, ComputeStore, Server
from api.db import SQLITE, Database
from api.jobs.queue import Claimer, JobQueue, _subject_kind
from api.jobs.records import (RECORDS, BuildServer, ConvergeVolumes, CreateSnapshot, CreateVolume, DeleteServer,
                              DeleteSnapshot, DeleteVolume, ImageServer, JobFormatError, PowerAction, RebuildServer,
                              ResizeServer, SyncFirewall, UploadVolumeImage, decode)
from api.volume.models import AVAILABLE, CREATING, Snapshot, Volume
from api.volume.store import VolumeStore
from provisioner.claimer import Worker
from provisioner.layout import Layout
from provisioner.spec.model import Address, DomainSpec, ImageRef, Nic

# The table as every root held it before the job queue (api/compute/task_queue.py).
OLD_SCHEMA = """
CREATE TABLE api_server_tasks (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    server_id TEXT NOT NULL,
    kind TEXT NOT NULL,
    args TEXT NOT NULL,
    state TEXT NOT NULL CHECK (state IN ('queued', 'running')),
    attempts INTEGER NOT NULL DEFAULT 0,
    worker_pid INTEGER,
    worker_start INTEGER,
    created REAL NOT NULL
);
CREATE INDEX api_server_tasks_server ON api_server_tasks (server_id, state);
"""
MAX_ATTEMPTS = 3


def _dead_worker() -> Worker:
    """A process that has exited (start time 1: not a later process given the same pid either)."""
    child = multiprocessing.get_context("fork").Process(target=lambda: None)
    child.start()
    child.join()
    assert child.pid is not None
    return Worker(child.pid, 1)


def _old_tasks(layout: Layout, *rows: tuple[str, str, dict, Worker | None, int]) -> None:
    """Queue (subject id, kind, args, claimer or None, attempts) rows: on SQLite in the old table, created here
    (their move to api_jobs is then part of each test); on PostgreSQL, which never had it, in api_jobs."""
    db = database(layout)
    if db.dialect is not SQLITE:
        JobQueue(db, max_running=1)  # creates api_jobs
        for subject_id, kind, args, claimer, attempts in rows:
            db.connect().execute(
                "INSERT INTO api_jobs (subject_kind, subject_id, kind, args, state, attempts, worker_pid,"
                " worker_start, created) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (_subject_kind(kind), subject_id, kind, json.dumps(args), "running" if claimer else "queued",
                 attempts, claimer.pid if claimer else None, claimer.start if claimer else None, time.time()))
        return
    with sqlite3.connect(layout.state_db) as db:
        db.executescript(OLD_SCHEMA)
        for subject_id, kind, args, claimer, attempts in rows:
            db.execute("INSERT INTO api_server_tasks (server_id, kind, args, state, attempts, worker_pid,"
                       " worker_start, created) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                       (subject_id, kind, json.dumps(args), "running" if claimer else "queued", attempts,
                        claimer.pid if claimer else None, claimer.start if claimer else None, time.time()))


def _volume(store: VolumeStore, volume_id: str, status: str = CREATING) -> Volume:
    return store.volumes.insert(Volume(volume_id, "v", "p", "u", 1, status=status))


def test_a_dropped_volume_create_leaves_the_volume_error_with_the_reason(setup) -> None:
    make, _, layout = setup
    store = VolumeStore(database(layout))
    _volume(store, "vol1")
    _old_tasks(layout, ("vol1", "volume-create", {}, _dead_worker(), MAX_ATTEMPTS))
    api, _, _ = make(StubEngine())
    api.tasks.recover()
    volume = store.volumes.get("vol1")
    assert volume is not None and volume.status == "error", volume
    assert volume.fault and "died 3 times" in volume.fault
    assert api.context.db.connect().execute("SELECT COUNT(*) FROM api_jobs").fetchone() == (0,)


def test_a_dropped_volume_delete_leaves_it_error_deleting(setup) -> None:
    make, _, layout = setup
    store = VolumeStore(database(layout))
    _volume(store, "vol1", status="deleting")
    _old_tasks(layout, ("vol1", "volume-delete", {}, _dead_worker(), MAX_ATTEMPTS))
    api, _, _ = make(StubEngine())
    api.tasks.recover()
    volume = store.volumes.get("vol1")
    assert volume is not None and volume.status == "error_deleting" and "died" in (volume.fault or "")


def test_a_dropped_snapshot_create_leaves_the_snapshot_error_with_the_reason(setup) -> None:
    make, _, layout = setup
    store = VolumeStore(database(layout))
    _volume(store, "vol1", status=AVAILABLE)
    store.snapshots.insert(Snapshot("snap1", "s", "p", "u", "vol1", 1))
    _old_tasks(layout, ("snap1", "snapshot-create", {}, _dead_worker(), MAX_ATTEMPTS))
    api, _, _ = make(StubEngine())
    api.tasks.recover()
    snapshot = store.snapshots.get("snap1")
    assert snapshot is not None and snapshot.status == "error", snapshot
    assert snapshot.fault and "died 3 times" in snapshot.fault
    assert store.volumes.get("vol1").status == AVAILABLE  # type: ignore[union-attr]


def test_volumes_and_snapshots_left_busy_without_a_job_are_error_after_restart(setup) -> None:
    make, _, layout = setup
    store = VolumeStore(database(layout))
    _volume(store, "creating")
    _volume(store, "deleting", status="deleting")
    _volume(store, "queued")  # its job is queued: it is left to run
    store.snapshots.insert(Snapshot("snap1", "s", "p", "u", "available", 1))
    _old_tasks(layout, ("queued", "volume-create", {}, None, 0))
    api, _, _ = make(StubEngine())
    api.tasks.recover()
    statuses = {v.id: (v.status, v.fault) for v in store.volumes.list()}
    assert statuses["creating"] == ("error", "creating interrupted by an API server restart")
    assert statuses["deleting"] == ("error_deleting", "deleting interrupted by an API server restart")
    assert statuses["queued"] == (CREATING, None)
    assert store.snapshots.get("snap1").status == "error"  # type: ignore[union-attr]


def test_a_dropped_server_build_is_error_with_a_fault(setup) -> None:
    make, image_id, _ = setup
    engine = StubEngine(fail=True)  # Ctrl-C fails Terraform: the build is queued again
    engine.gate.clear()
    api, client, headers = make(engine)
    server_id = client.simulate_post("/compute/v2.1/servers", headers=headers, json={"server": {
        "name": "vm", "flavorRef": "1", "imageRef": image_id}}).json["server"]["id"]
    assert engine.entered.wait(30), "the build never reached the engine"
    api.tasks.stop()
    engine.gate.set()
    api.tasks.shutdown()
    # The build's last claimer died, as the two before it did.
    dead = _dead_worker()
    api.context.db.connect().execute("UPDATE api_jobs SET state = 'running', worker_pid = ?, worker_start = ?,"
                                     " attempts = ?", (dead.pid, dead.start, MAX_ATTEMPTS))
    restarted, client2, headers2 = make(StubEngine())
    restarted.tasks.recover()
    server = client2.simulate_get(f"/compute/v2.1/servers/{server_id}", headers=headers2).json["server"]
    assert server["status"] == ERROR
    assert "build interrupted" in server["fault"]["message"] and "died 3 times" in server["fault"]["message"]


def _spec(name: str, image: Path) -> DomainSpec:
    return DomainSpec(
        name=name, image=ImageRef(str(image), "qcow2", "ab" * 32, "cirros"), size=1 << 30, memory=512, cpus=1,
        cpu_mode="maximum", domain_type="qemu", libvirt_uri="test:///x",
        nics=(Nic(mac="52:54:00:00:00:01", bridge="br0",
                  addresses=(Address(ipaddress.IPv4Address("10.0.0.5"), 24),),
                  gateway=ipaddress.IPv4Address("10.0.0.1"), resolvers=()),), users=("root",))


@pytest.mark.parametrize("backend", ["sqlite"], indirect=True)  # the old table only ever existed in state.db
def test_an_old_table_moves_to_api_jobs_and_its_queued_tasks_run(setup, qcow2_file: Path) -> None:
    make, _, layout = setup
    compute = ComputeStore(database(layout))
    for server_id in ("a", "b"):
        compute.servers.insert(Server(server_id, server_id, "p", "u", f"srv-{server_id}", "1", "img", ()))
    spec_a, spec_b = _spec("srv-a", qcow2_file), _spec("srv-b", qcow2_file)
    # a: queued; b: claimed by a process that died (once): queued again; then a's delete, after its build.
    _old_tasks(layout, ("a", "build", {"spec": spec_a.to_json()}, None, 0),
               ("b", "build", {"spec": spec_b.to_json()}, _dead_worker(), 1),
               ("a", "delete", {"domain": "srv-a"}, None, 0))
    engine = StubEngine()
    api, client, headers = make(engine)
    db = api.context.db.connect()
    assert db.execute("SELECT name FROM sqlite_master WHERE name = 'api_server_tasks'").fetchone() is None
    assert db.execute("SELECT subject_kind, subject_id, kind, state, attempts FROM api_jobs ORDER BY id").fetchall() \
        == [("server", "a", "build", "queued", 0), ("server", "b", "build", "running", 1),
            ("server", "a", "delete", "queued", 0)]
    api.tasks.recover()
    api.tasks.start()
    deadline = time.monotonic() + 30
    while db.execute("SELECT COUNT(*) FROM api_jobs").fetchone() != (0,):
        assert time.monotonic() < deadline, "the moved tasks never ran"
        time.sleep(0.05)
    api.tasks.shutdown()
    assert compute.servers.get("b").status == "ACTIVE"  # type: ignore[union-attr]
    assert compute.servers.get("a") is None  # built, then deleted
    assert sorted(engine.calls) == [("destroy", "srv-a", None), ("provision", "srv-a"), ("provision", "srv-b")]
    assert engine.calls.index(("provision", "srv-a")) < engine.calls.index(("destroy", "srv-a", None))


def test_a_row_that_is_no_job_is_deleted_and_does_not_block_the_queue(setup, caplog) -> None:
    make, _, layout = setup
    compute = ComputeStore(database(layout))
    compute.servers.insert(Server("a", "a", "p", "u", "srv-a", "1", "img", (), status="ACTIVE",
                                  task_state="powering-off"))
    _old_tasks(layout, ("a", "power", {"uri": "test:///x", "domain": "srv-a", "action": "x" * 1000}, None, 0),
               ("a", "teleport", {}, None, 0),
               ("a", "delete", {"domain": "srv-a"}, None, 0))
    engine = StubEngine()
    api, _, _ = make(engine)
    with caplog.at_level(logging.ERROR, logger="api.jobs"):
        api.tasks.start()
        deadline = time.monotonic() + 30
        while compute.servers.get("a") is not None:
            assert time.monotonic() < deadline, "the delete behind the bad rows never ran"
            time.sleep(0.05)
        api.tasks.shutdown()
    assert engine.calls == [("destroy", "srv-a", None)]
    messages = [r.getMessage() for r in caplog.records]
    assert any("unknown action 'xxxxx" in m for m in messages) and all("x" * 100 not in m for m in messages)
    assert any("unknown job kind 'teleport'" in m for m in messages)


def test_a_dropped_attach_puts_the_volume_back_and_the_server_in_error(setup) -> None:
    make, _, layout = setup
    db = database(layout)
    ComputeStore(db).servers.insert(Server("a", "a", "p", "u", "srv-a", "1", "img", (), status="ACTIVE",
                                           task_state=None))
    store = VolumeStore(db)
    store.volumes.insert(Volume("vol1", "v", "p", "u", 1, status="attaching", server_id="a", device="/dev/vdb"))
    _old_tasks(layout, ("a", "volumes", {}, _dead_worker(), MAX_ATTEMPTS))
    api, _, _ = make(StubEngine())
    api.tasks.recover()
    volume = store.volumes.get("vol1")
    assert volume is not None and (volume.status, volume.server_id) == (AVAILABLE, None), volume
    assert volume.fault and volume.fault.startswith("attach failed: volumes interrupted")
    server = ComputeStore(db).servers.get("a")
    assert server is not None and server.status == ERROR and "died 3 times" in (server.fault or "")


def test_every_record_round_trips_through_its_args_json(qcow2_file: Path) -> None:
    jobs = [BuildServer("s", _spec("srv-s", qcow2_file)), DeleteServer("s", "srv-s"), DeleteServer("s", "srv-s", "test:///x"),
            PowerAction("s", "test:///x", "srv-s", "hard-reboot"), ConvergeVolumes("s"), CreateVolume("v"),
            DeleteVolume("v"), CreateSnapshot("n"), DeleteSnapshot("n"), ResizeServer("s", "2", revert=True),
            RebuildServer("s", ImageRef(str(qcow2_file), "qcow2", "0" * 64, "cirros"), "$6$salt$hash", stopped=True),
            ImageServer("s", "img", "daily", 2), UploadVolumeImage("v", "img", "raw"), SyncFirewall("s")]
    assert {type(job) for job in jobs} == set(RECORDS.values())
    for job in jobs:
        assert decode(job.kind, job.subject.id, json.loads(json.dumps(job.to_args()))) == job


@pytest.mark.parametrize(("kind", "args", "message"), [
    ("teleport" + "x" * 100, {}, "unknown job kind 'teleportxxx"),
    ("build", [], "build job: args must be an object, not list"),
    ("build", {}, "build job: args.spec must be an object"),
    ("build", {"spec": {"name": "x"}}, "build job: args.spec is not a domain spec"),
    ("delete", {"domain": 5}, "delete job: args.domain must be a string, not int"),
    ("power", {"uri": "u", "domain": "d"}, "power job: args.action must be a string, not NoneType"),
    ("power", {"uri": "u", "domain": "d", "action": "y" * 1000}, "power job: unknown action 'yyy"),
])
def test_a_row_that_does_not_fit_its_record_is_named_not_echoed(kind: str, args, message: str) -> None:
    with pytest.raises(JobFormatError) as raised:
        decode(kind, "s", args)
    assert str(raised.value).startswith(message) and len(str(raised.value)) < 120


def _claim_all(db_of: Callable[[], Database], out: Path, start: multiprocessing.synchronize.Event) -> None:
    """In a child process: claim jobs from the queue until none is left, writing each claimed id to `out`."""
    queue = JobQueue(db_of(), max_running=1000)
    me = Claimer.current("node")
    start.wait()
    with out.open("w") as claimed:
        while (queued := queue.claim(me)) is not None:
            claimed.write(f"{queued.id}\n")
            claimed.flush()
            queue.done(queued)


def test_two_processes_claiming_at_once_never_get_the_same_job(setup, tmp_path: Path) -> None:
    _, _, layout = setup
    db = database(layout)
    queue = JobQueue(db, max_running=1000)
    added = {queue.add(DeleteServer(f"s{i}", f"srv-{i}")).id for i in range(200)}
    context = multiprocessing.get_context("fork")
    start = context.Event()
    outs = [tmp_path / f"claimed-{n}" for n in range(2)]
    claimers = [context.Process(target=_claim_all, args=(lambda: database(layout), out, start)) for out in outs]
    for claimer in claimers:
        claimer.start()
    start.set()
    for claimer in claimers:
        claimer.join(120)
        assert claimer.exitcode == 0, "a claimer failed"
    first, second = ([int(line) for line in out.read_text().split()] for out in outs)
    assert not set(first) & set(second), "both processes claimed the same job"
    assert sorted(first + second) == sorted(added)  # each job once, none left behind
    assert not queue.pending()
