"""The watch ledger on all three index providers (SQLite, PostgreSQL, Redis on loopback, each
under a namespace of its own that is removed afterwards): the compare-and-set contract, racing
claims from several processes, two watcher processes on one ledger, a killed watcher."""

from __future__ import annotations

import dataclasses
import multiprocessing
import os
import signal
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

import atdata
from atdata.watch import LedgerRecord, Watcher, ledger_for
from atdata.watch._ledger import provider_from_spec
from tests._index_backends import REDIS_URL, pg_dsn, port_open
from tests._process_helpers import Num
from tests._services import require_service
from tests._watch_helpers import counts, outputs, run_watch, triple, unique, watch_cmd, write_shards


@dataclasses.dataclass
class Backend:
    kind: str
    spec: str  # what `atdata watch --ledger` takes
    prefix: str | None  # --prefix (Redis key prefix / PostgreSQL schema)

    def provider(self) -> Any:
        return provider_from_spec(self.spec, self.prefix)


@pytest.fixture(params=["sqlite", "postgres", "redis"])
def backend(request, tmp_path):
    kind, run = request.param, unique()
    if kind == "sqlite":
        yield Backend(kind, str(tmp_path / "ledger.db"), None)
        return
    if kind == "postgres":
        b = Backend(kind, pg_dsn(), f"atdata_watchtest_{run}")
        yield b
        b.provider().drop()
        return
    if not port_open(6379):
        require_service("Redis", "nothing listens on 127.0.0.1:6379")
    b = Backend(kind, REDIS_URL, f"atdata-watchtest-{run}:")
    yield b
    client = b.provider()._client
    for key in client.scan_iter(match=f"{b.prefix}*"):
        client.delete(key)


def test_compare_and_set_contract(backend):
    led = ledger_for(backend.provider(), "w1")
    other = ledger_for(backend.provider(), "w2")
    r1 = LedgerRecord("s3://b/in/a.tar", "waiting", stamp="10:e1", since=5.5, rev=1)
    assert led.put(r1, expect_rev=0) is True
    assert led.put(r1, expect_rev=0) is False  # already there
    r2 = r1.next(status="running", owner="me", lease_until=99.0, attempts=1)
    assert led.put(r2, expect_rev=1) is True
    assert led.put(r2.next(owner="you"), expect_rev=1) is False  # stale revision loses
    assert led.get(r1.shard) == r2
    assert led.get("nope") is None
    b = LedgerRecord("/d/b.tar", "done", checksum="ab" * 32, output="/o/b.tar", samples=3, rev=1)
    assert led.put(b, expect_rev=0)
    assert [r.shard for r in led.list_records()] == ["/d/b.tar", "s3://b/in/a.tar"]
    assert led.list_records()[0] == b
    assert other.list_records() == []  # watches do not see each other
    assert led.delete("/d/b.tar") is True and led.delete("/d/b.tar") is False
    assert [r.shard for r in led.records] == ["s3://b/in/a.tar"]


def _race(spec: str, prefix: str | None, shards: list[str], barrier: Any, q: Any) -> None:
    led = ledger_for(provider_from_spec(spec, prefix), "race")
    me = f"pid{os.getpid()}"
    barrier.wait()
    won = []
    for s in shards:
        rec = led.get(s)
        assert rec is not None
        if rec.status == "waiting" and led.put(rec.next(status="running", owner=me),
                                               expect_rev=rec.rev):  # fmt: skip
            won.append(s)
    q.put(won)


def test_racing_claims_from_four_processes_have_one_winner_each(backend):
    led = ledger_for(backend.provider(), "race")
    shards = [f"/d/s-{i:06d}.tar" for i in range(60)]
    for s in shards:
        assert led.put(LedgerRecord(s, "waiting", "1:1", rev=1), expect_rev=0)
    ctx = multiprocessing.get_context("fork")
    barrier, q = ctx.Barrier(4), ctx.Queue()
    procs = [ctx.Process(target=_race, args=(backend.spec, backend.prefix, shards, barrier, q))
             for _ in range(4)]  # fmt: skip
    for p in procs:
        p.start()
    wins = [q.get(timeout=120) for _ in procs]
    for p in procs:
        p.join(timeout=60)
        assert p.exitcode == 0
    flat = [s for w in wins for s in w]
    assert sorted(flat) == shards  # every shard claimed exactly once
    owners = {r.shard: r.owner for r in led.list_records()}
    assert all(r.status == "running" and r.rev == 2 for r in led.list_records())
    assert len(set(owners.values())) >= 1 and all(o.startswith("pid") for o in owners.values())


def test_two_watcher_processes_on_one_ledger_never_duplicate(backend, tmp_path):
    write_shards(tmp_path / "in", 10)
    counter = tmp_path / "counter"
    env = {"ATDATA_WATCH_COUNTER": str(counter), "ATDATA_WATCH_SLOW": "0.01"}
    name = f"two-{unique()}"
    cmd = watch_cmd(str(tmp_path / "in"), tmp_path / "out", "tests._watch_helpers:counted_triple",
                    backend.spec, backend.prefix, name, "--polls", "4", "--interval", "0.2")  # fmt: skip
    procs = [run_watch(cmd, env) for _ in range(2)]
    logs = [p.communicate(timeout=180)[0] for p in procs]
    assert [p.returncode for p in procs] == [0, 0], logs
    done = [line.split()[1] for log in logs for line in log.splitlines()
            if line.startswith("processed ")]  # fmt: skip
    assert sorted(done) == [f"s-{i:06d}.tar" for i in range(10)]  # each by exactly one of them
    assert counts(counter) == {x: 1 for x in range(50)}
    w = Watcher(tmp_path / "in", triple, tmp_path / "out", sample_type=Num, name=name,
                ledger=backend.provider())  # fmt: skip
    assert {(r.status, r.attempts) for r in w.list_records()} == {("done", 1)}
    assert w.poll_once().processed == []
    assert sorted(outputs(tmp_path / "out")) == sorted(done)


def test_killed_watcher_recovered_after_lease_with_identical_output(backend, tmp_path):
    write_shards(tmp_path / "in", 4)
    atdata.Dataset(str(tmp_path / "in" / "s-{000000..000003}.tar"), Num).map(
        triple, out=str(tmp_path / "ref")
    )
    env = {"ATDATA_WATCH_DIE_X": "7", "ATDATA_WATCH_DIE_MARKER": str(tmp_path / "died")}
    name = f"kill-{unique()}"
    cmd = watch_cmd(str(tmp_path / "in"), tmp_path / "out", "tests._watch_helpers:die_once",
                    backend.spec, backend.prefix, name, "--polls", "3", "--interval", "0.05",
                    "--lease", "600")  # fmt: skip
    p = run_watch(cmd, env)
    log = p.communicate(timeout=120)[0]
    assert p.returncode == -signal.SIGKILL, log
    assert log.splitlines()[0].startswith("watching ")
    assert log.splitlines()[1:] == ["processed s-000000.tar"]  # flushed before the kill
    clock: Callable[[], float] = time.time
    w = Watcher(tmp_path / "in", triple, tmp_path / "out", sample_type=Num, name=name,
                ledger=backend.provider(), clock=lambda: clock())  # fmt: skip
    rep = w.poll_once()
    assert rep.busy == ["s-000001.tar"] and rep.processed == ["s-000002.tar", "s-000003.tar"]
    clock = lambda: time.time() + 601  # noqa: E731 - the dead watcher's lease is over
    rep = w.poll_once()
    assert rep.processed == ["s-000001.tar"]
    assert outputs(tmp_path / "out") == outputs(tmp_path / "ref")
    recs = {Path(r.shard).name: r for r in w.list_records()}
    assert [(recs[n].status, recs[n].attempts) for n in sorted(recs)] == [
        ("done", 1), ("done", 2), ("done", 1), ("done", 1)]  # fmt: skip


def test_snapshot_sees_every_change_made_through_another_connection(backend):
    a = ledger_for(backend.provider(), "snap")
    b = ledger_for(backend.provider(), "snap")
    for i in range(5):
        assert a.put(LedgerRecord(f"/d/s{i}.tar", "waiting", rev=1), expect_rev=0)
    assert sorted(b.snapshot()) == [f"/d/s{i}.tar" for i in range(5)]
    r = a.get("/d/s2.tar")
    assert r is not None and a.put(r.next(status="done", checksum="cd" * 32), expect_rev=1)
    assert a.delete("/d/s4.tar")
    assert a.put(LedgerRecord("/d/s9.tar", "waiting", rev=1), expect_rev=0)
    snap = b.snapshot()
    assert sorted(snap) == ["/d/s0.tar", "/d/s1.tar", "/d/s2.tar", "/d/s3.tar", "/d/s9.tar"]
    assert (snap["/d/s2.tar"].status, snap["/d/s2.tar"].rev) == ("done", 2)
    assert b.snapshot() == snap == {r.shard: r for r in a.list_records()}


def _count_reads(led: Any) -> list[int]:
    """Wrap ``led``'s way to its backend so each call adds the number of rows/items it returned."""
    got: list[int] = []

    def counted(real: Callable[..., Any]) -> Callable[..., Any]:
        def call(*args: Any, **kw: Any) -> Any:
            out = real(*args, **kw)
            got.append(len(out) if isinstance(out, (list, tuple)) else int(out is not None))
            return out

        return call

    if isinstance(led, atdata.watch._ledger.SQLiteLedger):
        led._rows = counted(led._rows)
    elif led.provider.kind == "redis":
        led._c = counted(led._c)
    else:
        led.provider._run = counted(led.provider._run)
    return got


def test_a_poll_over_settled_shards_reads_only_what_changed(backend):
    """The PostgreSQL ledger read every (shard, rev) row of the watch at each poll (200 rows
    for 200 settled shards); a poll now reads the rows changed since the last one, as the SQLite
    and Redis ledgers do, and still sees inserts, changes and deletes."""
    writer = ledger_for(backend.provider(), "settled")
    for i in range(200):
        assert writer.put(LedgerRecord(f"/d/s{i:03d}.tar", "done", rev=1), expect_rev=0)
    led = ledger_for(backend.provider(), "settled")
    assert len(led.snapshot()) == 200
    reads = _count_reads(led)
    assert len(led.snapshot()) == 200
    assert sum(reads) <= 2, reads  # a settled watch: a counter or two
    reads.clear()
    r = writer.get("/d/s007.tar")
    assert r is not None and writer.put(r.next(status="changed"), expect_rev=1)
    snap = led.snapshot()
    assert snap["/d/s007.tar"].status == "changed" and len(snap) == 200
    assert sum(reads) <= 3, reads
    reads.clear()
    assert writer.delete("/d/s100.tar")
    assert writer.put(LedgerRecord("/d/new.tar", "waiting", rev=1), expect_rev=0)
    snap = led.snapshot()
    assert "/d/s100.tar" not in snap and snap["/d/new.tar"].status == "waiting"
    assert len(snap) == 200
