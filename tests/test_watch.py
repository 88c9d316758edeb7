"""atdata.Watcher on a local directory with a SQLite ledger: the pure plan, completeness rules,
retries and parking, rewritten shards, a slow writer, a killed watcher and the CLI."""

from __future__ import annotations

import dataclasses
import os
import shutil
import signal
import subprocess
import threading
import time
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import atdata
from atdata.providers._sqlite import SQLiteProvider
from atdata.watch import LedgerRecord, WatchEntry, Watcher, list_local, plan
from tests._process_helpers import Num
from tests._watch_helpers import (
    counted_triple,
    counts,
    fail_on_7,
    outputs,
    poll_until,
    run_watch,
    sha,
    triple,
    watch_cmd,
    write_shards,
)


class Clock:
    """An injected clock: time moves only when the test says so."""

    def __init__(self, t: float = 1000.0) -> None:
        self.t = t

    def __call__(self) -> float:
        return self.t

    def advance(self, s: float) -> None:
        self.t += s


def make(tmp_path: Path, fn=triple, **kw) -> Watcher:
    kw.setdefault("ledger", SQLiteProvider(str(tmp_path / "ledger.db")))
    kw.setdefault("name", "w")
    return Watcher(tmp_path / "in", fn, tmp_path / "out", sample_type=Num, **kw)


def samples_of(path: Path) -> list[tuple[int, str]]:
    return [(s.x, s.name) for s in atdata.Dataset(str(path), Num).ordered()]


# -- the pure plan --------------------------------------------------------------------------------
E = WatchEntry("d/a.tar", 10, "10:1")


@pytest.mark.parametrize(
    ("record", "entry", "now", "expected"),
    [
        (None, E, 0.0, ("observe", "waiting")),
        (None, E._replace(complete=True), 0.0, ("claim", "")),
        (LedgerRecord("d/a.tar", "waiting", "9:1", 0.0, rev=1), E, 50.0, ("observe", "waiting")),
        (LedgerRecord("d/a.tar", "waiting", "10:1", 41.0, rev=1), E, 50.0, ("wait", "")),
        (LedgerRecord("d/a.tar", "waiting", "10:1", 20.0, rev=1), E, 50.0, ("claim", "")),
        (LedgerRecord("d/a.tar", "running", "10:1", lease_until=51.0, rev=2), E, 50.0, ("busy", "")),
        (LedgerRecord("d/a.tar", "running", "10:1", attempts=1, lease_until=50.0, rev=2), E, 50.0,
         ("claim", "")),
        (LedgerRecord("d/a.tar", "running", "10:1", attempts=3, lease_until=10.0, rev=2), E, 50.0,
         ("park", "")),
        (LedgerRecord("d/a.tar", "failed", "10:1", attempts=2, rev=3), E, 50.0, ("claim", "")),
        (LedgerRecord("d/a.tar", "failed", "9:0", attempts=2, rev=3), E, 50.0, ("observe", "waiting")),
        (LedgerRecord("d/a.tar", "done", "10:1", rev=3), E, 50.0, None),
        (LedgerRecord("d/a.tar", "done", "11:2", rev=3), E, 50.0, ("observe", "changed")),
        (LedgerRecord("d/a.tar", "changed", "10:1", 45.0, rev=4), E, 50.0, ("wait", "")),
        (LedgerRecord("d/a.tar", "changed", "10:1", 10.0, rev=4), E, 50.0, ("verify", "")),
        (LedgerRecord("d/a.tar", "refused", "10:1", rev=5), E, 50.0, None),
        (LedgerRecord("d/a.tar", "parked", "10:1", rev=5), E, 50.0, None),
        (LedgerRecord("d/a.tar", "parked", "8:8", rev=5), E, 50.0, ("observe", "waiting")),
    ],
)  # fmt: skip
def test_plan_rules(record, entry, now, expected):
    records = {} if record is None else {record.shard: record}
    got = plan([entry], records, now, settle=10.0, max_attempts=3)
    if expected is None:  # settled: no action at all
        assert got == []
        return
    (a,) = got
    assert (a.kind, a.status) == expected
    assert a.record == record and a.entry == entry


_STATUS = st.sampled_from(["waiting", "running", "done", "failed", "parked", "changed", "refused"])
_RECORD = st.builds(
    LedgerRecord, shard=st.sampled_from(["a", "b", "c"]), status=_STATUS,
    stamp=st.sampled_from(["1:1", "2:2"]), since=st.floats(0, 100), attempts=st.integers(0, 4),
    lease_until=st.floats(0, 100), rev=st.integers(1, 9),
)  # fmt: skip
_ENTRY = st.builds(WatchEntry, url=st.sampled_from(["a", "b", "c"]), size=st.just(1),
                   stamp=st.sampled_from(["1:1", "2:2"]), complete=st.booleans())  # fmt: skip


@settings(max_examples=300, deadline=None)
@given(st.lists(_ENTRY, max_size=6), st.lists(_RECORD, max_size=3), st.floats(0, 100))
def test_plan_is_pure_and_never_steals_a_live_lease(entries, recs, now):
    records = {r.shard: r for r in recs}
    before = dict(records)
    first = plan(entries, records, now, settle=5.0, max_attempts=3)
    assert first == plan(entries, records, now, settle=5.0, max_attempts=3)
    assert records == before
    acted = [a.entry for a in first]
    assert acted == [e for e in entries if e in acted]  # listing order
    for e in entries:
        r = records.get(e.url)
        settled = r is not None and r.status in ("done", "refused", "parked") and r.stamp == e.stamp
        assert (e not in acted) == settled  # every shard needing anything gets an action
    for a in first:
        r = a.record
        assert r == records.get(a.entry.url)
        if r is not None and r.status == "running" and r.lease_until > now:
            assert a.kind == "busy"
        if a.kind == "claim" and r is not None and r.status != "waiting":
            assert r.attempts < 3


def test_poll_once_is_a_pure_function_of_listing_ledger_and_clock(tmp_path):
    write_shards(tmp_path / "in", 3)
    listing = list_local(tmp_path / "in")
    runs = []
    for i in range(2):
        clock = Clock()
        w = Watcher(tmp_path / "in", triple, tmp_path / f"out{i}", sample_type=Num, name="w",
                    ledger=SQLiteProvider(str(tmp_path / f"l{i}.db")), owner="me", clock=clock,
                    lister=lambda: listing)  # fmt: skip
        planned = w.plan()
        assert planned == w.plan() and w.list_records() == []  # planning writes nothing
        reps = []
        for _ in range(3):
            rep = w.poll_once()
            reps.append(dataclasses.replace(rep, seconds=0.0))
            clock.advance(1.0)
        recs = [dataclasses.replace(r, output=os.path.basename(r.output)) for r in w.list_records()]
        runs.append((planned, reps, recs))
    assert runs[0] == runs[1]
    planned, reps, recs = runs[0]
    assert [a.kind for a in planned] == ["observe"] * 3
    assert [(r.waiting, r.processed) for r in reps] == [
        (3, []), (0, ["s-000000.tar", "s-000001.tar", "s-000002.tar"]), (0, [])]  # fmt: skip
    assert [(r.status, r.attempts, r.rev, r.since, r.updated, r.output) for r in recs] == [
        ("done", 1, 3, 1000.0, 1001.0, f"s-00000{i}.tar") for i in range(3)]  # fmt: skip
    assert [r.checksum for r in recs] == [sha(e.url) for e in listing]


# -- completeness ---------------------------------------------------------------------------------
def test_manifest_makes_a_shard_complete_at_once_and_settle_waits(tmp_path):
    write_shards(tmp_path / "in", 2, manifest=True)
    (tmp_path / "in" / "raw.tar").write_bytes((tmp_path / "in" / "s-000000.tar").read_bytes())
    clock = Clock()
    w = make(tmp_path, clock=clock, settle=30.0)
    rep = w.poll_once()
    assert rep.processed == ["s-000000.tar", "s-000001.tar"] and rep.waiting == 1
    clock.advance(29.0)
    assert w.poll_once().processed == []  # raw.tar has no manifest: 30 s of stillness first
    clock.advance(1.0)
    assert w.poll_once().processed == ["raw.tar"]
    assert samples_of(tmp_path / "out" / "raw.tar") == [(3 * i, f"n{i}!") for i in range(5)]


def test_slow_writer_never_has_a_partial_shard_read(tmp_path, monkeypatch):
    """A writer copies 10 shards into the watched directory in small chunks, in place, with
    pauses; the watcher polls meanwhile. Every shard is processed once, from its final bytes."""
    staging, watched = tmp_path / "staging", tmp_path / "in"
    write_shards(staging, 10)
    watched.mkdir()
    counter = tmp_path / "counter"
    monkeypatch.setenv("ATDATA_WATCH_COUNTER", str(counter))
    w = make(tmp_path, fn=counted_triple, settle=0.4, interval=0.02)

    def writer() -> None:
        for src in sorted(staging.glob("*.tar")):
            data = src.read_bytes()
            with open(watched / src.name, "wb") as f:
                for i in range(0, len(data), 512):
                    f.write(data[i : i + 512])
                    f.flush()
                    time.sleep(0.01)

    t = threading.Thread(target=writer)
    t.start()
    processed = poll_until(w, 10, pause=0.02)
    t.join()
    assert sorted(processed) == [f"s-{i:06d}.tar" for i in range(10)]
    assert counts(counter) == {x: 1 for x in range(50)}
    for r in w.list_records():
        assert (r.status, r.attempts, r.checksum) == ("done", 1, sha(r.shard))
        name = os.path.basename(r.shard)
        i = int(name[2:8])
        assert samples_of(tmp_path / "out" / name) == [
            (3 * x, f"n{x}!") for x in range(5 * i, 5 * i + 5)]  # fmt: skip


# -- failures, parking, rewrites ------------------------------------------------------------------
def test_failing_shard_is_retried_then_parked_with_its_error(tmp_path):
    write_shards(tmp_path / "in", 2, manifest=True)
    clock = Clock()
    w = make(tmp_path, fn=fail_on_7, clock=clock, max_attempts=2)
    rep = w.poll_once()
    assert rep.processed == ["s-000000.tar"] and rep.failed == ["s-000001.tar"]
    assert rep.errors["s-000001.tar"] == "ValueError: x == 7 is not allowed"
    rep = w.poll_once()
    assert rep.parked == ["s-000001.tar"] and rep.failed == []
    rec = {os.path.basename(r.shard): r for r in w.list_records()}["s-000001.tar"]
    assert (rec.status, rec.attempts, rec.error) == (
        "parked",
        2,
        "ValueError: x == 7 is not allowed",
    )
    assert w.poll_once().parked == []  # parked stays parked
    assert not (tmp_path / "out" / "s-000001.tar").exists()
    assert [p.name for p in (tmp_path / "out").iterdir() if ".tmp" in p.name] == []
    assert w.forget(rec.shard) is True
    assert w.poll_once().failed == ["s-000001.tar"]  # seen as new again


def test_dead_watchers_lease_expires_then_parks_after_max_attempts(tmp_path):
    write_shards(tmp_path / "in", 1, manifest=True)
    clock = Clock()
    w = make(tmp_path, clock=clock, max_attempts=2, lease=60.0)
    shard = str(tmp_path / "in" / "s-000000.tar")
    stamp = list_local(tmp_path / "in")[0].stamp
    dead = LedgerRecord(shard, "running", stamp, 0.0, attempts=2, owner="ghost",
                        lease_until=1030.0, rev=4)  # fmt: skip
    assert w.ledger.put(dead, expect_rev=0)
    assert w.poll_once().busy == ["s-000000.tar"]
    clock.advance(30.0)
    rep = w.poll_once()
    assert rep.parked == ["s-000000.tar"]
    assert rep.errors["s-000000.tar"] == (
        "the lease of ghost expired on attempt 2 of 2: the watcher died or hung while processing "
        "the shard")  # fmt: skip


@pytest.mark.parametrize("on_change", ["reprocess", "refuse"])
def test_rewritten_shard_is_reprocessed_or_refused(tmp_path, on_change):
    write_shards(tmp_path / "in", 2, manifest=True)
    clock = Clock()
    w = make(tmp_path, clock=clock, on_change=on_change)
    assert len(w.poll_once().processed) == 2
    first = outputs(tmp_path / "out")
    target = tmp_path / "in" / "s-000001.tar"
    os.utime(target, ns=(1, 1))  # touched, same bytes: verified unchanged, nothing redone
    assert w.poll_once().waiting == 1  # seen changed (its manifest is newer: no settling)
    assert w.poll_once().unchanged == ["s-000001.tar"]
    write_shards(tmp_path / "new", 1, start=100)
    shutil.copyfile(tmp_path / "new" / "s-000000.tar", target)
    rec0 = {r.shard: r for r in w.list_records()}[str(target)]
    rep = w.poll_once()  # a manifest exists but is now older than the shard: wait to settle
    assert rep.waiting == 1 and rep.processed == rep.refused == []
    clock.advance(1.0)
    rep = w.poll_once()
    rec = {r.shard: r for r in w.list_records()}[str(target)]
    if on_change == "reprocess":
        assert rep.processed == ["s-000001.tar"]
        assert samples_of(tmp_path / "out" / "s-000001.tar")[0] == (300, "n100!")
        assert (rec.status, rec.checksum, rec.attempts) == ("done", sha(target), 1)
    else:
        assert rep.refused == ["s-000001.tar"]
        assert "rewritten in place" in rec.error and "on_change='refuse'" in rec.error
        assert (rec.status, rec.checksum) == ("refused", rec0.checksum)
        assert outputs(tmp_path / "out") == first
        assert w.poll_once().refused == []  # reported once


# -- a killed watcher -----------------------------------------------------------------------------
def test_killed_watcher_is_recovered_after_the_lease_with_identical_output(tmp_path):
    write_shards(tmp_path / "in", 6)
    ref = atdata.Dataset(str(tmp_path / "in" / "s-{000000..000005}.tar"), Num).map(
        triple, out=str(tmp_path / "ref")
    )
    env = {"ATDATA_WATCH_DIE_X": "12", "ATDATA_WATCH_DIE_MARKER": str(tmp_path / "died")}
    ledger = str(tmp_path / "ledger.db")
    cmd = watch_cmd(str(tmp_path / "in"), tmp_path / "out", "tests._watch_helpers:die_once",
                    ledger, None, "w", "--polls", "3", "--interval", "0.05", "--lease", "600")  # fmt: skip
    p = run_watch(cmd, env)
    out, _ = p.communicate(timeout=120)
    assert p.returncode == -signal.SIGKILL, out
    w = Watcher(tmp_path / "in", triple, tmp_path / "out", sample_type=Num, name="w",
                ledger=SQLiteProvider(ledger), clock=lambda: time.time() + 601)  # fmt: skip
    stuck = {os.path.basename(r.shard): r for r in w.list_records()}["s-000002.tar"]
    assert (stuck.status, stuck.attempts) == ("running", 1)
    rep = w.poll_once()
    assert rep.processed == [f"s-{i:06d}.tar" for i in range(2, 6)]
    assert outputs(tmp_path / "out") == outputs(tmp_path / "ref")
    assert len(ref.list_shards()) == 6
    assert [p.name for p in (tmp_path / "out").iterdir() if ".tmp" in p.name] == []
    recs = {os.path.basename(r.shard): r for r in w.list_records()}
    assert recs["s-000002.tar"].attempts == 2 and recs["s-000000.tar"].attempts == 1


# -- the CLI --------------------------------------------------------------------------------------
def test_cli_watch_once_prints_readable_lines_when_piped(tmp_path):
    write_shards(tmp_path / "in", 2, manifest=True)
    cmd = watch_cmd(str(tmp_path / "in"), tmp_path / "out", "tests._watch_helpers:triple",
                    str(tmp_path / "l.db"), None, "cli", "--once")  # fmt: skip
    p = run_watch(cmd, {})
    out, _ = p.communicate(timeout=120)
    assert p.returncode == 0, out
    assert out.splitlines() == [
        "processed s-000000.tar",
        "processed s-000001.tar",
        "ledger: done 2",
    ]
    assert sorted(outputs(tmp_path / "out")) == ["s-000000.tar", "s-000001.tar"]


def test_cli_watch_once_waits_one_interval_for_shards_without_manifest(tmp_path):
    write_shards(tmp_path / "in", 2)
    cmd = watch_cmd(str(tmp_path / "in"), tmp_path / "out", "tests._watch_helpers:triple",
                    str(tmp_path / "l.db"), None, "cli", "--once", "--interval", "0.2")  # fmt: skip
    p = run_watch(cmd, {})
    out, _ = p.communicate(timeout=120)
    assert p.returncode == 0, out
    assert out.splitlines() == [
        "processed s-000000.tar",
        "processed s-000001.tar",
        "ledger: done 2",
    ]


def test_cli_watch_reports_parked_and_exits_1(tmp_path):
    write_shards(tmp_path / "in", 2, manifest=True)
    cmd = watch_cmd(str(tmp_path / "in"), tmp_path / "out", "tests._watch_helpers:fail_on_7",
                    str(tmp_path / "l.db"), None, "cli", "--once", "--max-attempts", "1")  # fmt: skip
    p = subprocess.run(cmd, cwd=Path(__file__).parent.parent, capture_output=True, text=True,
                       env={**os.environ, "PYTHONPATH": str(Path(__file__).parent.parent)},
                       timeout=120)  # fmt: skip
    assert p.returncode == 1, p.stdout + p.stderr
    assert p.stdout.splitlines() == [
        "processed s-000000.tar",
        "parked s-000001.tar: ValueError: x == 7 is not allowed",
        "ledger: done 1, parked 1",
        "fix the cause (or rewrite the shard), then rerun with --retry",
    ]
    cmd[cmd.index("tests._watch_helpers:fail_on_7")] = "tests._watch_helpers:triple"
    p = subprocess.run([*cmd, "--retry"], cwd=Path(__file__).parent.parent, capture_output=True,
                       text=True, env={**os.environ, "PYTHONPATH": str(Path(__file__).parent.parent)},
                       timeout=120)  # fmt: skip
    assert p.returncode == 0, p.stdout + p.stderr
    assert p.stdout.splitlines() == [
        "retrying s-000001.tar",
        "processed s-000001.tar",
        "ledger: done 2",
    ]


def test_bad_options_are_config_errors(tmp_path):
    (tmp_path / "in").mkdir()
    led = SQLiteProvider(str(tmp_path / "l.db"))
    with pytest.raises(atdata.ConfigError, match="on_change must be"):
        Watcher(tmp_path / "in", triple, tmp_path / "out", ledger=led, on_change="ignore")
    with pytest.raises(atdata.ConfigError, match="needs out="):
        Watcher(tmp_path / "in", triple, ledger=led)
    with pytest.raises(atdata.ConfigError, match="does not exist"):
        Watcher(tmp_path / "nope", triple, tmp_path / "out", ledger=led)
    with pytest.raises(atdata.ConfigError, match="max_attempts"):
        Watcher(tmp_path / "in", triple, tmp_path / "out", ledger=led, max_attempts=0)


@settings(max_examples=200, deadline=None)
@given(
    st.builds(
        LedgerRecord, shard=st.text(min_size=1), status=_STATUS, stamp=st.text(),
        since=st.floats(allow_nan=False, allow_infinity=False), checksum=st.text(),
        attempts=st.integers(0, 10**6), owner=st.text(),
        lease_until=st.floats(allow_nan=False, allow_infinity=False), error=st.text(),
        output=st.text(), samples=st.integers(0, 10**9), rev=st.integers(0, 2**53),
    )
)  # fmt: skip
def test_ledger_record_json_round_trip(rec):
    assert LedgerRecord.loads(rec.dumps()) == rec
    assert LedgerRecord.loads(rec.dumps().encode()) == rec


# -- leases, handlers, run() ----------------------------------------------------------------------
def test_lease_is_renewed_while_a_slow_shard_is_processed(tmp_path, monkeypatch):
    """Lease 0.6 s, shard ~1.25 s: the heartbeat keeps it, so a second watcher polling all the
    while only ever sees it busy and never processes it."""
    from tests._watch_helpers import slow_triple

    write_shards(tmp_path / "in", 1, manifest=True)
    counter = tmp_path / "counter"
    monkeypatch.setenv("ATDATA_WATCH_COUNTER", str(counter))
    a = make(tmp_path, fn=slow_triple, lease=0.6, owner="a")
    b = make(tmp_path, fn=slow_triple, lease=0.6, owner="b")
    reps = []
    t = threading.Thread(target=lambda: reps.append(a.poll_once()))
    t.start()
    shard = str(tmp_path / "in" / "s-000000.tar")
    while (r := a.ledger.get(shard)) is None or r.status != "running":
        time.sleep(0.005)  # a has claimed it; now b polls until a is done
    seen_busy = 0
    while t.is_alive():
        rep = b.poll_once()
        assert rep.processed == [] and rep.lost == []
        seen_busy += rep.busy == ["s-000000.tar"]
        time.sleep(0.05)
    t.join()
    assert reps[0].processed == ["s-000000.tar"] and seen_busy >= 1
    assert counts(counter) == {x: 1 for x in range(5)}
    (rec,) = a.list_records()
    assert (rec.status, rec.attempts, rec.owner) == ("done", 1, "")
    assert rec.rev > 3  # claim + at least one renewal + finish


class CountingHandler:
    """A ShardHandler: counts each shard's samples into a text file of its own."""

    def __init__(self, out: Path) -> None:
        self.out = out

    def handle(self, shard: str, dataset: atdata.Dataset) -> str:
        path = self.out / (Path(shard).stem + ".count")
        path.write_text(str(sum(1 for _ in dataset.ordered())))
        return str(path)


def test_shard_handler_and_an_index_as_ledger(tmp_path):
    write_shards(tmp_path / "in", 2, per=3, manifest=True)
    (tmp_path / "counts").mkdir()
    index = atdata.Index(path=str(tmp_path / "index.db"))
    w = Watcher(tmp_path / "in", CountingHandler(tmp_path / "counts"), sample_type=Num,
                ledger=index)  # fmt: skip
    assert w.poll_once().processed == ["s-000000.tar", "s-000001.tar"]
    assert sorted(p.read_text() for p in (tmp_path / "counts").iterdir()) == ["3", "3"]
    recs = w.list_records()
    assert [Path(r.output).name for r in recs] == ["s-000000.count", "s-000001.count"]
    assert [r.checksum for r in recs] == [sha(r.shard) for r in recs]
    again = Watcher(tmp_path / "in", CountingHandler(tmp_path / "counts"), sample_type=Num,
                    ledger=atdata.Index(path=str(tmp_path / "index.db")))  # fmt: skip
    assert again.name == w.name and again.poll_once().processed == []
    by_path = Watcher(
        tmp_path / "in",
        CountingHandler(tmp_path / "counts"),
        sample_type=Num,
        ledger=str(tmp_path / "index.db"),
    )  # a string, as `atdata watch --ledger`
    assert by_path.poll_once().processed == [] and len(by_path.list_records()) == 2


def test_run_polls_until_max_polls_and_reports_each(tmp_path):
    write_shards(tmp_path / "in", 2)
    clock = Clock()
    w = make(tmp_path, clock=clock, interval=0.0)
    seen: list[tuple[str, str, str]] = []
    w.on_shard = lambda *a: seen.append(a)
    reps = []
    w.run(max_polls=3, on_poll=reps.append)
    assert [(r.waiting, r.processed) for r in reps] == [
        (2, []), (0, ["s-000000.tar", "s-000001.tar"]), (0, [])]  # fmt: skip
    assert seen == [("processed", "s-000000.tar", ""), ("processed", "s-000001.tar", "")]


def test_relative_paths_give_the_same_watch_and_ledger_keys(tmp_path, monkeypatch):
    write_shards(tmp_path / "in", 1, manifest=True)
    led = str(tmp_path / "l.db")
    monkeypatch.chdir(tmp_path)
    w = Watcher("in", triple, "out", sample_type=Num, ledger=SQLiteProvider(led))
    assert w.poll_once().processed == ["s-000000.tar"]
    monkeypatch.chdir(tmp_path / "in")
    w2 = Watcher(".", triple, "../out", sample_type=Num, ledger=SQLiteProvider(led))
    assert w2.name == w.name and w2.poll_once().processed == []
    assert [r.shard for r in w2.list_records()] == [str(tmp_path / "in" / "s-000000.tar")]


def test_local_lister_reuses_unchanged_entries_and_sees_every_change(tmp_path):
    from atdata.watch._listing import LocalLister

    d = tmp_path / "in"
    write_shards(d, 3)
    lister = LocalLister(d)
    first = lister()
    assert first == list_local(d) and [e.complete for e in first] == [False] * 3
    again = lister()
    assert again == first and again is not first and again[0] is first[0]  # reused, fresh list
    (d / "s-000001.manifest.json").write_text("{}")
    assert [e.complete for e in lister()] == [False, True, False]
    (d / "s-000002.tar").write_bytes(b"\0" * 2048)
    (d / "s-000000.tar").unlink()
    (d / "s-000009.tar").write_bytes(b"\0" * 1024)
    got = lister()
    assert got == list_local(d)
    assert [(Path(e.url).name, e.size, e.complete) for e in got] == [
        ("s-000001.tar", (d / "s-000001.tar").stat().st_size, True),
        ("s-000002.tar", 2048, False), ("s-000009.tar", 1024, False)]  # fmt: skip


def test_sqlite_ledger_table_without_generations_is_upgraded(tmp_path):
    import sqlite3

    path = str(tmp_path / "old.db")
    rec = LedgerRecord("/d/a.tar", "done", "1:1", rev=2)
    with sqlite3.connect(path) as c:
        c.execute("CREATE TABLE atdata_watch_ledger (watch TEXT NOT NULL, shard TEXT NOT NULL, "
                  "rev INTEGER NOT NULL, status TEXT NOT NULL, record TEXT NOT NULL, "
                  "PRIMARY KEY (watch, shard))")  # fmt: skip
        c.execute("INSERT INTO atdata_watch_ledger VALUES ('w', '/d/a.tar', 2, 'done', ?)",
                  (rec.dumps(),))  # fmt: skip
    from atdata.watch import ledger_for

    led = ledger_for(SQLiteProvider(path), "w")
    assert led.snapshot() == {"/d/a.tar": rec}
    assert led.put(rec.next(status="changed"), expect_rev=2)
    assert led.snapshot()["/d/a.tar"].status == "changed"


def test_run_survives_a_storage_error_and_polls_again(tmp_path, caplog):
    write_shards(tmp_path / "in", 1, manifest=True)
    calls = [0]

    def flaky() -> list[WatchEntry]:
        calls[0] += 1
        if calls[0] == 1:
            raise atdata.StorageError("cannot list the watched directory: NFS went away")
        return list_local(tmp_path / "in")

    w = make(tmp_path, lister=flaky, interval=0.0)
    reps = []
    with caplog.at_level("WARNING", logger="atdata"):
        w.run(max_polls=2, on_poll=reps.append)
    assert [r.processed for r in reps] == [["s-000000.tar"]]
    assert "poll failed, retrying in 0 s: cannot list the watched directory: NFS went away" in (
        caplog.text)  # fmt: skip


def test_bad_durations_name_the_values(tmp_path):
    (tmp_path / "in").mkdir()
    with pytest.raises(atdata.ConfigError, match=r"got lease=300, interval=-1, settle=0"):
        Watcher(tmp_path / "in", triple, tmp_path / "out", interval=-1,
                ledger=str(tmp_path / "l.db"))  # fmt: skip


def test_ctrl_c_mid_shard_hands_it_back_at_once(tmp_path):
    write_shards(tmp_path / "in", 1, manifest=True)

    def interrupted(s: Num) -> Num:
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        make(tmp_path, fn=interrupted).poll_once()
    (rec,) = make(tmp_path).list_records()
    assert (rec.status, rec.attempts, rec.owner, rec.lease_until) == ("waiting", 0, "", 0.0)
    again = make(tmp_path)  # a rerun (another owner) takes it now, not after the 300 s lease
    assert again.poll_once().processed == ["s-000000.tar"]
    assert samples_of(tmp_path / "out" / "s-000000.tar") == [(3 * x, f"n{x}!") for x in range(5)]
