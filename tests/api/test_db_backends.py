"""Every user of api/db.py, on both backends: SQLite under the root and PostgreSQL (`database:` in config.yaml).

The SQL is written once (SQLite's spelling, Dialect.translate rewrites what PostgreSQL spells otherwise):
these run each store's statements on both, the upserts, the insertion-ordered listings and the
named placeholders included.
"""

from __future__ import annotations

import dataclasses
import multiprocessing
import multiprocessing.synchronize
import os
import time
from pathlib import Path

import pytest

from api.change_counter import ChangeCounters
from api.compute.models import ComputeStore, Server
from api.compute.placement import Hosts, NoValidHost
from api.config import DefaultNetwork, Flavor, User, parse_config
from api.db import Database, Table
from api.errors import Conflict
from api.identity.access_rules import AccessRule
from api.identity.app_credentials import AppCredential, AppCredentials
from api.identity.revocation import RevokedTokens
from api.identity.throttle import FailureThrottle, Limits, Throttled
from api.jobs.queue import Claimer, JobQueue, QueuedJob
from api.jobs.records import DeleteServer
from api.quota.models import QuotaDefaults
from api.quota.store import QuotaStore
from api.network.models import Network
from api.network.store import NetworkStore
from api.volume.models import Snapshot, Volume
from api.volume.placement import VolumePlacement
from api.volume.store import VolumeStore
from api.web.sessions import SessionStore, WebSettings
from provisioner.claimer import Worker
from provisioner.layout import Layout


@pytest.fixture(params=["sqlite", "postgresql"])
def db(request: pytest.FixtureRequest, tmp_path: Path) -> Database:
    uri = request.getfixturevalue("postgres_uri") if request.param == "postgresql" else None
    database = Database(tmp_path / "root" / "state.db", uri)
    assert database.dialect.name == request.param
    return database


@pytest.fixture
def counters(tmp_path: Path) -> ChangeCounters:
    return ChangeCounters(tmp_path / "root" / "api" / "changes")


@dataclasses.dataclass(frozen=True)
class Thing:
    id: str
    project_id: str
    name: str
    tags: tuple[str, ...] = ()
    size: float = 0.0


def test_a_table_round_trips_records_in_creation_order(db: Database) -> None:
    table = Table(db, "things", Thing)
    for index in range(12):
        table.insert(Thing(f"t{index:02}", "p" if index % 2 else "q", f"n{index % 3}", ("a", "b"), index / 3))
    assert [t.id for t in table.list()] == [f"t{i:02}" for i in range(12)]
    assert table.get("t04") == Thing("t04", "q", "n1", ("a", "b"), 4 / 3)  # a float kept to its last digit
    assert [t.id for t in table.list(projects=["p"], name="n1")] == ["t01", "t07"]
    assert table.list(projects=[]) == []
    assert table.count("p") == 6
    table.update(Thing("t04", "p", "renamed"))
    assert table.get("t04") == Thing("t04", "p", "renamed") and table.count("p") == 7
    with pytest.raises(db.errors):
        table.insert(Thing("t04", "p", "again"))
    assert table.delete("t04") and not table.delete("t04") and table.get("t04") is None


def test_ids_and_names_with_nul_are_stored_and_found_apart(db: Database) -> None:
    # PostgreSQL's text holds no NUL; names (kept as text by the API) and ids from URL paths may carry one.
    table = Table(db, "things", Thing)
    nul = Thing("a\x00b", "p\x00", "n\x00\x01", ("\x00",))
    look_alike = Thing("a\x01\x02b", "p\x01\x02", "n\x01\x02\x01\x01")  # what an escape could confuse it with
    table.insert(nul)
    table.insert(look_alike)
    assert table.get("a\x00b") == nul and table.get("a\x01\x02b") == look_alike
    assert table.list(projects=["p\x00"], name="n\x00\x01") == [nul]
    assert table.count("p\x01\x02") == 1 and table.get("a\x00") is None
    assert table.delete("a\x00b") and table.list() == [look_alike]


def test_a_claimer_started_after_248_days_up_claims(db: Database) -> None:
    # Its start time in clock ticks (100 a second) is past 2**31: SQLite's INTEGER holds it, PostgreSQL's would not.
    queue = JobQueue(db, max_running=1)
    queued = queue.add(DeleteServer("s1", "srv-s1"))
    claimer = Claimer("node", Worker(os.getpid(), 2**31 + 1))
    assert queue.claim(claimer) == QueuedJob(queued.id, queued.job, 1)
    assert db.connect().execute("SELECT worker_start FROM api_jobs").fetchone() == (2**31 + 1,)


def test_a_transaction_rolls_back_what_it_wrote_when_it_raises(db: Database) -> None:
    table = Table(db, "things", Thing)
    with pytest.raises(RuntimeError):
        with db.transaction():
            table.insert(Thing("t1", "p", "n"))
            assert db.connect().in_transaction
            raise RuntimeError("undo")
    assert table.get("t1") is None and not db.connect().in_transaction


def test_placement_reads_each_servers_hypervisor_back(db: Database, counters: ChangeCounters, tmp_path: Path) -> None:
    store = ComputeStore(db, counters)
    hosts = Hosts(parse_config({"hypervisors": [{"name": "a", "uri": "simulator:a", "memory_mb": 4096, "cpus": 4},
                                                {"name": "b", "uri": "simulator:b", "memory_mb": 3072, "cpus": 4}]},
                               "config.yaml").hypervisors, Layout(tmp_path / "root"))
    hosts.prepare()  # their node files
    flavor = Flavor(id="2", name="m1.small", ram=2048, vcpus=1, disk=0)
    for index in range(3):
        host = hosts.choose(flavor, None, store.servers.list, [flavor])
        store.servers.insert(Server(id=f"s{index}", name=f"s{index}", project_id="p", user_id="u", domain=f"d{index}",
                                    flavor_id="2", image_id="i", ports=(), hypervisor=host.name,
                                    availability_zone=host.zone))
    assert [s.hypervisor for s in store.servers.list()] == ["a", "b", "a"], "4096 free, then 3072 > 2048"
    assert hosts.usage(hosts.hosts[0], store.servers.list(), [flavor]).memory_mb == 4096
    with pytest.raises(NoValidHost, match="a: 0 MiB RAM"):
        hosts.choose(flavor, None, store.servers.list, [flavor])


def test_volume_placement_counts_the_disk_each_hypervisor_holds(db: Database, counters: ChangeCounters,
                                                                  tmp_path: Path) -> None:
    compute, volumes = ComputeStore(db, counters), VolumeStore(db)
    hosts = Hosts(parse_config({"hypervisors": [
        {"name": "a", "uri": "simulator:a", "memory_mb": 4096, "cpus": 4, "disk_gb": 100},
        {"name": "b", "uri": "simulator:b", "memory_mb": 4096, "cpus": 4, "disk_gb": 80}]},
        "config.yaml").hypervisors, Layout(tmp_path / "root"))
    hosts.prepare()
    flavor = Flavor(id="2", name="m1.small", ram=2048, vcpus=1, disk=20)
    placement = VolumePlacement(hosts, volumes.volumes.list, volumes.snapshots.list, compute.servers.list,
                                lambda: [flavor])
    compute.servers.insert(Server(id="s", name="s", project_id="p", user_id="u", domain="d", flavor_id="2",
                                  image_id="i", ports=(), hypervisor="a", availability_zone="nova"))
    placed = []
    for index, size in enumerate((10, 30, 30)):  # free a 80 / b 80 (first listed), then a 70 / b 80, then a 70 / b 50
        host = placement.choose(None, size).host
        assert host is not None
        volumes.volumes.insert(Volume(id=f"v{index}", name="", project_id="p", user_id="u", size=size,
                                      hypervisor=host.name))
        placed.append(host.name)
    assert placed == ["a", "b", "a"]
    volumes.snapshots.insert(Snapshot(id="s0", name="", project_id="p", user_id="u", volume_id="v1", size=30,
                                      hypervisor="b"))
    assert (placement.used_gb(hosts.hosts[0]), placement.used_gb(hosts.hosts[1])) == (60, 60)
    refused = placement.choose(None, 41)
    assert refused.host is None and "a: 40 GiB disk free; b: 20 GiB disk free" in (refused.reason or "")
    # A record from before volumes had a hypervisor is on the first listed one.
    volumes.volumes.insert(Volume(id="old", name="", project_id="p", user_id="u", size=5))
    assert placement.host_of("") is hosts.hosts[0] and placement.used_gb(hosts.hosts[0]) == 65


def test_a_networks_hypervisors_and_status_are_kept_apart(db: Database) -> None:
    store = NetworkStore(db, DefaultNetwork())
    store.networks.insert(Network(id="n", name="n", project_id="p", managed=True, libvirt_network="net-n"))
    store.set_hypervisors("n", ("a", "b"))
    store.set_status("n", "ACTIVE")
    assert (store.networks.get("n").hypervisors, store.networks.get("n").status) == (("a", "b"), "ACTIVE")


def test_revocation_keeps_one_row_per_token(db: Database, counters: ChangeCounters) -> None:
    revoked = RevokedTokens(db, counters)
    revoked.add("digest", time.time() + 60)
    revoked.add("digest", time.time() + 60)  # the same token revoked twice: no error
    assert "digest" in revoked and "other" not in revoked


def test_the_throttle_counts_failures_and_locks(db: Database, counters: ChangeCounters) -> None:
    throttle = FailureThrottle(db, Limits(per_user=2, per_address=0, window=300.0, lockout=300.0), counters)
    assert throttle.check("user:alice", "addr:127.0.0.1") is False
    throttle.failed("user:alice", "addr:127.0.0.1")
    assert throttle.check("user:alice", "addr:127.0.0.1") is True  # failures on record, not locked yet
    throttle.failed("user:alice", "addr:127.0.0.1")
    with pytest.raises(Throttled):
        throttle.check("user:alice", "addr:127.0.0.1")
    throttle.succeeded("user:alice")
    assert throttle.check("user:alice", "addr:127.0.0.1") is False


def _credential(name: str, rules: tuple[AccessRule, ...] = ()) -> AppCredential:
    return AppCredential(f"id-{name}", "u1", "p1", name, "", "hash", ("member",), None, False, rules)


def test_app_credentials_and_access_rules_list_in_creation_order(db: Database, counters: ChangeCounters) -> None:
    credentials = AppCredentials(db, counters)
    for name in ("zeta", "alpha", "mid"):
        rules = credentials.rules.ensure("u1", [("compute", f"/v2.1/{name}", "GET")])
        credentials.create(_credential(name, rules))
    assert [c.name for c in credentials.of_user("u1")] == ["zeta", "alpha", "mid"]
    assert [r.path for r in credentials.rules.of_user("u1")] == ["/v2.1/zeta", "/v2.1/alpha", "/v2.1/mid"]
    with pytest.raises(Conflict):
        credentials.create(_credential("alpha"))
    credentials.delete("u1", "id-alpha")
    assert not credentials.exists("id-alpha") and credentials.exists("id-mid")


def test_web_sessions_are_created_found_and_ended(db: Database) -> None:
    user = User(id="u1", name="alice", password_hash="x", roles={})
    sessions = SessionStore(db, WebSettings(), lambda: (user,), lambda u: "stamp")
    session_id = sessions.create(user)
    found = sessions.find(session_id)
    assert found is not None and found.user == user
    sessions.end(session_id)
    assert sessions.find(session_id) is None


def test_quota_limits_are_upserted(db: Database) -> None:
    quotas = QuotaStore(db, QuotaDefaults(), {"compute": lambda project, user: {}})
    quotas.set_limits("compute", "p1", {"instances": 3})
    quotas.set_limits("compute", "p1", {"instances": 5, "cores": 7})
    limits = quotas.limits("compute", "p1")
    assert (limits["instances"], limits["cores"]) == (5, 7)
    assert quotas.overridden("compute") == ["p1"]
    quotas.reset("compute", "p1")
    assert quotas.limits("compute", "p1")["instances"] == QuotaDefaults().of("compute")["instances"]


def _create_tables(db: Database, start: multiprocessing.synchronize.Barrier) -> None:
    """In a child process: create the same 30 tables as its siblings, all starting at once."""
    db.connect()
    start.wait()
    for index in range(30):
        Table(db, f"things{index}", Thing)


def test_processes_creating_the_tables_at_once_do_not_collide(db: Database) -> None:
    # As roots (or a root's --workers) starting together on a new database do.
    context = multiprocessing.get_context("fork")
    start = context.Barrier(4)
    children = [context.Process(target=_create_tables, args=(db, start)) for _ in range(4)]
    for child in children:
        child.start()
    for child in children:
        child.join(120)
    assert [child.exitcode for child in children] == [0, 0, 0, 0]
