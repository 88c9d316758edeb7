"""process_shards and Dataset.map(out=...): parallel, resumable shard processing."""

from __future__ import annotations

import functools
import glob
import hashlib
import os
import pathlib
import signal
import subprocess
import sys
import textwrap

import pytest

import atdata
from atdata import ConfigError, PartialFailureError, ShardFailure
from atdata._events import subscribe
from atdata.dataset._commit import commit_path, read_commit
from tests._process_helpers import (
    Feat,
    Num,
    count_and_square,
    die_on_x,
    hold_shard_one,
    hold_zero_fail_one,
    shard_sum,
    sleep_on_x,
    square,
    to_feat,
)

N_SHARDS, PER = 20, 10
REPO = pathlib.Path(__file__).resolve().parents[1]


def make_input(tmp_path: pathlib.Path, shards: int = N_SHARDS, per: int = PER) -> atdata.Dataset:
    samples = [Num(x=i, name=f"n{i}") for i in range(shards * per)]
    return atdata.write_samples(
        samples, tmp_path / "in" / "d.tar", maxcount=per, key="index", sample_type=Num
    )


def sha(path: str) -> str:
    return hashlib.sha256(pathlib.Path(path).read_bytes()).hexdigest()


def out_hashes(ds: atdata.Dataset) -> list[str]:
    return [sha(p) for p in ds.list_shards()]


def hidden_temps(d: pathlib.Path) -> list[str]:
    return sorted(p.name for p in d.iterdir() if ".tmp-" in p.name)


def counted(path: pathlib.Path) -> list[int]:
    return [int(x) for x in path.read_text().split()] if path.exists() else []


@pytest.fixture
def counter(tmp_path, monkeypatch):
    p = tmp_path / "calls.txt"
    monkeypatch.setenv("ATDATA_TEST_COUNTER", str(p))
    return p


# -- PartialFailureError ----------------------------------------------------------------------
def test_partial_failure_error_fields_and_message():
    err = PartialFailureError(
        ["a.tar"],
        [f"f{i}.tar" for i in range(7)],
        {f"f{i}.tar": KeyError(i) for i in range(7)},
        {"a.tar": 1},
    )
    text = str(err)
    assert text.splitlines()[0] == "7/8 shards failed during processing"
    assert "  ... and 2 more" in text
    assert err.failures["f3.tar"] == ShardFailure("f3.tar", "exception", "3", exc_type="KeyError")
    assert isinstance(err, atdata.AtdataError) and isinstance(err, RuntimeError)
    with pytest.raises(ConfigError, match="nothing to retry"):
        err.retry()


# -- process_shards ---------------------------------------------------------------------------
def test_process_shards_in_order_sequential_and_parallel(tmp_path):
    ds = make_input(tmp_path, shards=5, per=4)
    want = {p: sum(range(i * 4, i * 4 + 4)) for i, p in enumerate(ds.list_shards())}
    assert ds.process_shards(shard_sum) == want
    got = ds.process_shards(shard_sum, num_proc=2)
    assert got == want and list(got) == list(want)


def test_process_shards_empty_shard_list_processes_nothing(tmp_path):
    ds = make_input(tmp_path, shards=3, per=2)
    calls = []
    assert ds.process_shards(lambda ss: calls.append(len(ss)), shards=[]) == {}
    assert calls == []
    first = ds.list_shards()[0]
    assert ds.process_shards(shard_sum, shards=[first, first]) == {first: 1}


def test_process_shards_applies_filters(tmp_path):
    ds = make_input(tmp_path, shards=2, per=4).filter(lambda s: s.x % 2 == 0)
    assert list(ds.process_shards(lambda ss: [s.x for s in ss]).values()) == [[0, 2], [4, 6]]


def test_process_shards_worker_exception_carries_traceback_and_retry(tmp_path):
    ds = make_input(tmp_path, shards=4, per=3)
    bad = ds.list_shards()[2]
    state = {"broken": True}

    def fn(samples):
        if state["broken"] and samples[0].x == 6:
            raise ValueError("bad row 6")
        return len(samples)

    with pytest.raises(PartialFailureError) as ei:
        ds.process_shards(fn, num_proc=2)
    err = ei.value
    assert err.failed_shards == [bad]
    assert err.succeeded_shards == [s for s in ds.list_shards() if s != bad]
    f = err.failures[bad]
    assert (f.kind, f.exc_type, f.attempts, f.exit_code) == ("exception", "ValueError", 1, None)
    assert f.message == "ValueError: bad row 6"
    assert 'raise ValueError("bad row 6")' in f.traceback
    assert isinstance(err.errors[bad], atdata.RemoteShardError)
    assert err.errors[bad].exc_type == "ValueError"
    state["broken"] = False  # workers fork anew on retry, so they see the fix
    assert err.retry() == dict.fromkeys(ds.list_shards(), 3)


def test_process_shards_result_that_cannot_travel_is_a_failure(tmp_path):
    ds = make_input(tmp_path, shards=2, per=2)
    with pytest.raises(PartialFailureError) as ei:
        ds.process_shards(lambda ss: object(), num_proc=1)
    assert len(ei.value.failed_shards) == 2
    assert (
        "cannot travel back from the worker as msgpack"
        in ei.value.failures[ds.list_shards()[0]].message
    )
    # numpy results are converted
    import numpy as np

    got = ds.process_shards(lambda ss: np.int64(len(ss)), num_proc=1)
    assert list(got.values()) == [2, 2]


@pytest.mark.timeout(120)
def test_worker_killed_is_worker_died_with_exit_code_and_no_hang(tmp_path, monkeypatch):
    ds = make_input(tmp_path, shards=6, per=3)
    monkeypatch.setenv("ATDATA_TEST_DIE_X", "7")  # in shard 2
    seen = []
    with subscribe(seen.append), pytest.raises(PartialFailureError) as ei:
        ds.map(die_on_x, out=tmp_path / "out", num_proc=2, retries=1)
    bad = ds.list_shards()[2]
    err = ei.value
    assert err.failed_shards == [bad]
    f = err.failures[bad]
    assert (f.kind, f.exit_code, f.attempts) == ("worker_died", -signal.SIGKILL, 2)
    assert "killed by signal 9" in f.message
    assert [e.shard for e in seen if e.name == "shard_retry"] == [bad]
    assert sorted(e.shard for e in seen if e.name == "shard_commit") == sorted(
        s for s in ds.list_shards() if s != bad
    )
    assert hidden_temps(tmp_path / "out") == []
    assert not os.path.exists(tmp_path / "out" / os.path.basename(bad))


@pytest.mark.timeout(120)
def test_interrupt_stops_workers_and_removes_their_half_written_output(tmp_path, monkeypatch):
    import multiprocessing

    ds = make_input(tmp_path, shards=3, per=2)
    monkeypatch.setenv("ATDATA_TEST_MARK", str(tmp_path / "mark"))

    def interrupt(e):
        if e.name == "shard_commit":  # shard 0 is done while shard 1 is half-written
            raise KeyboardInterrupt

    with subscribe(interrupt), pytest.raises(KeyboardInterrupt):
        ds.map(hold_shard_one, out=tmp_path / "out", num_proc=2)
    assert (tmp_path / "mark").exists()
    assert multiprocessing.active_children() == []
    assert hidden_temps(tmp_path / "out") == []
    assert sorted(p.name for p in (tmp_path / "out").glob("*.tar")) == ["d-000000.tar"]
    resumed = ds.map(square, out=tmp_path / "out", num_proc=2)  # shard 0 (x 0, 1) is kept
    assert [s.x for s in resumed] == [i * i for i in range(6)]
    # Ctrl-C reaches the whole process group: only the parent acts on it (no worker tracebacks)
    got = ds.process_shards(lambda ss: signal.getsignal(signal.SIGINT).name, num_proc=1)
    assert set(got.values()) == {"SIG_IGN"}


@pytest.mark.timeout(120)
def test_an_error_raised_by_the_run_loop_stops_the_workers_at_once(tmp_path):
    import multiprocessing

    ds = make_input(tmp_path, shards=3, per=2)
    out = tmp_path / "out"
    out.mkdir()

    def interrupt(e):
        if e.name == "shard_fail":  # emitted by the run's own loop, not inside the worker pool
            raise KeyboardInterrupt

    fn = functools.partial(hold_zero_fail_one, str(tmp_path / "mark"))
    with subscribe(interrupt), pytest.raises(KeyboardInterrupt) as ei:
        ds.map(fn, out=out, num_proc=2, retries=0)
    # the traceback (and so the run's frame) is still held, as a notebook keeps the last one:
    # the workers are stopped all the same, and the held shard's temporary output removed
    assert (tmp_path / "mark").exists()
    assert multiprocessing.active_children() == []
    assert hidden_temps(out) == []
    assert list(out.glob("*.tar")) == []
    assert ei.type is KeyboardInterrupt


def test_temps_of_a_writer_killed_while_writing_a_manifest_or_commit_are_removed(tmp_path):
    from atdata.dataset._shardjobs import MapJob

    ds = make_input(tmp_path, shards=2, per=2)
    out = tmp_path / "out"
    out.mkdir()
    left = [  # a shard's, its commit record's and its manifest's temporaries
        ".d-000000.tar.tmp-4242-0badf00d",
        ".d-000000.commit.json.tmp-4242-0badf00d",
        ".d-000001.manifest.parquet.tmp-0badf00d",
        ".d-000001.manifest.json.tmp-0badf00d",
    ]
    for name in left:
        (out / name).write_bytes(b"half")
    ds.map(square, out=out)
    assert hidden_temps(out) == []
    # a worker that died (pid 4242) loses its own temporaries, not another process's
    job = MapJob(ds, square, {ds.list_shards()[0]: str(out / "d-000000.tar")}, version="",
                 batched=False, manifest=True, sample_type=None, run="r")  # fmt: skip
    for name in [*left[:2], ".d-000000.tar.tmp-77-0badf00d", ".d-000000.manifest.json.tmp-1"]:
        (out / name).write_bytes(b"half")
    job.cleanup(ds.list_shards()[0], 4242)
    assert hidden_temps(out) == [".d-000000.tar.tmp-77-0badf00d"]


@pytest.mark.timeout(120)
def test_timeout_kills_the_attempt(tmp_path, monkeypatch):
    ds = make_input(tmp_path, shards=3, per=2)
    monkeypatch.setenv("ATDATA_TEST_SLEEP_X", "2")
    with pytest.raises(PartialFailureError) as ei:
        ds.process_shards(sleep_on_x, num_proc=2, timeout=6, retries=0)
    f = ei.value.failures[ds.list_shards()[1]]
    assert (f.kind, f.attempts) == ("timeout", 1)
    assert ei.value.results == {ds.list_shards()[0]: 2, ds.list_shards()[2]: 2}


def test_unpicklable_function_under_spawn_fails_before_any_work(tmp_path):
    ds = make_input(tmp_path, shards=2, per=2)
    calls = []
    with pytest.raises(
        ConfigError, match="cannot be sent to worker processes started with 'spawn'"
    ):
        ds.map(lambda s: calls.append(1) or s, out=tmp_path / "o", num_proc=2, start_method="spawn")
    assert calls == [] and not list((tmp_path / "o").glob("*.tar"))
    with pytest.raises(ConfigError, match="module level"):
        ds.process_shards(lambda ss: len(ss), num_proc=1, start_method="spawn")


@pytest.mark.timeout(120)
def test_spawn_workers_run_module_level_functions(tmp_path):
    ds = make_input(tmp_path, shards=3, per=2)
    got = ds.map(square, out=tmp_path / "o", num_proc=2, start_method="spawn")
    assert [s.x for s in got] == [i * i for i in range(6)]


def test_bad_options():
    ds = atdata.Dataset(["x.tar"])
    with pytest.raises(ConfigError, match="need out="):
        ds.map(square, num_proc=2)
    with pytest.raises(ConfigError, match="num_proc must be"):
        ds.process_shards(len, num_proc=0)
    with pytest.raises(ConfigError, match="timeout needs worker processes"):
        ds.process_shards(len, timeout=3)


# -- map(out=...) -----------------------------------------------------------------------------
def test_map_out_equals_lazy_map_and_bytes_do_not_depend_on_num_proc(tmp_path):
    ds = make_input(tmp_path, shards=4, per=5)
    want = [(s.__key__, to_feat(s)) for s in ds]
    runs = {}
    for n in (None, 1, 2):
        out = ds.map(to_feat, out=tmp_path / f"o{n}", num_proc=n)
        got = list(out)
        assert [s.__key__ for s in got] == [k for k, _ in want]
        assert [(s.x, s.vec.tolist()) for s in got] == [(w.x, w.vec.tolist()) for _, w in want]
        assert out.sample_type is Feat
        assert len(out) == 20 and [i.num_samples for i in out.list_shard_infos()] == [5] * 4
        runs[n] = out_hashes(out)
    assert runs[None] == runs[1] == runs[2]
    assert [os.path.basename(p) for p in out.list_shards()] == [
        os.path.basename(p) for p in ds.list_shards()
    ]
    assert sorted(os.listdir(tmp_path / "o2"))[:4] == [
        ".atdata-map.lock",
        "d-000000.commit.json",
        "d-000000.manifest.json",
        "d-000000.manifest.parquet",
    ]


def test_map_one_shard_raising_then_fixed_rerun_calls_only_that_shard(tmp_path, counter):
    ds = make_input(tmp_path)
    bad = ds.list_shards()[13]
    fixed = {"ok": False}

    def fn(s):
        if not fixed["ok"] and s.x == 13 * PER + 4:
            raise RuntimeError("cannot map sample 134")
        return count_and_square(s)

    with pytest.raises(PartialFailureError) as ei:
        ds.map(fn, out=tmp_path / "out")
    err = ei.value
    assert (len(err.succeeded_shards), err.failed_shards) == (19, [bad])
    assert isinstance(err.errors[bad], RuntimeError)
    assert err.failures[bad].message == "RuntimeError: cannot map sample 134"
    assert hidden_temps(tmp_path / "out") == []
    assert not os.path.exists(tmp_path / "out" / os.path.basename(bad))
    assert err.results[ds.list_shards()[0]] == str(tmp_path / "out" / "d-000000.tar")
    counter.unlink()
    fixed["ok"] = True
    out = err.retry()
    assert counted(counter) == list(range(13 * PER, 14 * PER))
    assert [s.x for s in out] == [i * i for i in range(N_SHARDS * PER)]
    counter.unlink()
    again = ds.map(fn, out=tmp_path / "out")  # same call again: nothing left to do
    assert counted(counter) == [] and out_hashes(again) == out_hashes(out)


def test_map_parallel_rerun_counts_calls_across_workers(tmp_path, counter):
    ds = make_input(tmp_path, shards=6, per=4)
    first = ds.map(count_and_square, out=tmp_path / "out", num_proc=2)
    assert sorted(counted(counter)) == list(range(24))
    os.unlink(commit_path(first.list_shards()[4]))
    counter.unlink()
    second = ds.map(count_and_square, out=tmp_path / "out", num_proc=2)
    assert sorted(counted(counter)) == list(range(16, 20))
    assert out_hashes(second) == out_hashes(first)


def test_flipped_output_byte_is_redone_under_sha256_but_not_size(tmp_path, counter):
    ds = make_input(tmp_path, shards=5, per=4)
    first = ds.map(count_and_square, out=tmp_path / "out")
    good = out_hashes(first)
    victim = first.list_shards()[3]
    data = bytearray(pathlib.Path(victim).read_bytes())
    data[600] ^= 0xFF
    pathlib.Path(victim).write_bytes(bytes(data))
    counter.unlink()
    ds.map(count_and_square, out=tmp_path / "out", verify="size")
    assert counted(counter) == []  # same size: "size" cannot see it
    again = ds.map(count_and_square, out=tmp_path / "out")
    assert counted(counter) == list(range(12, 16))
    assert out_hashes(again) == good


def test_changed_input_or_version_is_redone(tmp_path, counter):
    ds = make_input(tmp_path, shards=4, per=3)
    ds.map(count_and_square, out=tmp_path / "out", version="v1")
    shard1 = ds.list_shards()[1]
    atdata.write_samples(
        [Num(x=100 + i, name="new") for i in range(3)], shard1, key="index", sample_type=Num
    )
    counter.unlink()
    out = ds.map(count_and_square, out=tmp_path / "out", version="v1")
    assert counted(counter) == [100, 101, 102]
    assert [s.x for s in out][3:6] == [10000, 10201, 10404]
    counter.unlink()
    ds.map(count_and_square, out=tmp_path / "out", version="v2")
    assert len(counted(counter)) == 12
    assert read_commit(out.list_shards()[0]).version == "v2"


def test_shard_filtered_to_nothing_still_commits(tmp_path, counter):
    ds = make_input(tmp_path, shards=3, per=4)

    def keep_small(s):
        count_and_square(s)
        return s if s.x < 4 else None

    out = ds.map(keep_small, out=tmp_path / "out")
    assert [len(list(atdata.Dataset[Num](p))) for p in out.list_shards()] == [4, 0, 0]
    rec = read_commit(out.list_shards()[2])
    assert (rec.num_samples, rec.output_size) == (0, 1024)
    counter.unlink()
    ds.map(keep_small, out=tmp_path / "out")
    assert counted(counter) == []


def test_batched_map_keeps_keys_when_lengths_match(tmp_path):
    ds = make_input(tmp_path, shards=2, per=3)
    out = ds.map(lambda ss: [square(s) for s in reversed(ss)], out=tmp_path / "o", batched=True)
    assert [(s.__key__, s.x) for s in out] == [  # new samples: keys by position
        ("00000000", 4),
        ("00000001", 1),
        ("00000002", 0),
        ("00000003", 25),
        ("00000004", 16),
        ("00000005", 9),
    ]
    out = ds.map(lambda ss: [ss[0]], out=tmp_path / "o2", batched=True)
    assert [(s.__key__, s.x) for s in out] == [("00000000", 0), ("00000003", 3)]


def test_output_names_must_not_collide_or_overwrite_inputs(tmp_path):
    ds = make_input(tmp_path, shards=2, per=2)
    with pytest.raises(ConfigError, match="would overwrite the input shard"):
        ds.map(square, out=tmp_path / "in")
    (tmp_path / "b").mkdir()
    other = tmp_path / "b" / "d-000000.tar"
    other.write_bytes(pathlib.Path(ds.list_shards()[0]).read_bytes())
    with pytest.raises(ConfigError, match="would both be written"):
        atdata.Dataset[Num]([ds.list_shards()[0], str(other)]).map(square, out=tmp_path / "o")


def test_events_totals_are_right_under_num_proc(tmp_path):
    ds = make_input(tmp_path, shards=6, per=5)
    for n in (None, 2):
        seen = []
        with subscribe(seen.append):
            ds.map(square, out=tmp_path / f"o{n}", num_proc=n)
            ds.map(square, out=tmp_path / f"o{n}", num_proc=n)
        names = [e.name for e in seen]
        assert names.count("run_start") == 2 and names.count("run_end") == 2
        assert sum(e.samples for e in seen if e.name == "shard_commit") == 30
        assert sum(e.samples for e in seen if e.name == "shard_read") == 30
        assert sum(e.samples for e in seen if e.name == "shard_skip") == 30
        assert [e.samples for e in seen if e.name == "run_end"] == [30, 0]
        pids = {e.pid for e in seen if e.name == "shard_commit"}
        assert (os.getpid() in pids) is (n is None)


_KILL_SCRIPT = textwrap.dedent(
    """
    import os, sys
    sys.path.insert(0, {repo!r})
    import atdata
    from tests._process_helpers import Num, die_on_x
    os.environ["ATDATA_TEST_DIE_X"] = "75"
    ds = atdata.Dataset[Num]({pattern!r})
    ds.map(die_on_x, out={out!r}, num_proc={num_proc})
    """
)


@pytest.mark.timeout(180)
@pytest.mark.parametrize("num_proc", [None, 2])
def test_run_killed_after_some_commits_resumes_with_identical_bytes(
    tmp_path, counter, num_proc, monkeypatch
):
    ds = make_input(tmp_path)
    pattern = str(tmp_path / "in" / "d-{000000..000019}.tar")
    script = _KILL_SCRIPT.format(
        repo=str(REPO), pattern=pattern, out=str(tmp_path / "out"), num_proc=num_proc
    )
    if num_proc is not None:  # kill the parent itself once shard 7 is committed
        script = script.replace(
            "ds.map(die_on_x",
            "from atdata._events import subscribe\n"
            "subscribe(lambda e: e.name == 'shard_commit' and e.shard.endswith('07.tar') and "
            "os.kill(os.getpid(), 9))\nds.map(square",
        ).replace("import Num, die_on_x", "import Num, die_on_x, square")
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, timeout=150)
    assert proc.returncode == -signal.SIGKILL, proc.stderr.decode()[-2000:]
    committed = sorted(glob.glob(str(tmp_path / "out" / "*.commit.json")))
    assert len(committed) >= 7 and len(committed) < N_SHARDS
    if num_proc is None:  # killed inside shard 7: only whole, committed shards are visible
        assert len(committed) == 7
        visible = sorted(glob.glob(str(tmp_path / "out" / "*.tar")))
        assert [commit_path(p) for p in visible] == committed
    done = {read_commit(p[: -len(".commit.json")] + ".tar").input for p in committed}
    reference = ds.map(square, out=tmp_path / "ref")
    resumed = ds.map(count_and_square, out=tmp_path / "out")
    calls = counted(counter)
    redo = [p for p in ds.list_shards() if p not in done]
    assert sorted(calls) == sorted(
        x
        for i, p in enumerate(ds.list_shards())
        if p in redo
        for x in range(i * PER, i * PER + PER)
    )
    assert out_hashes(resumed) == out_hashes(reference)
    assert hidden_temps(tmp_path / "out") == []


def test_map_records_the_output_in_an_index_and_logs_through_configure_logging(tmp_path):
    ds = make_input(tmp_path, shards=3, per=2)
    lines = []

    class Rec:
        def debug(self, m, *a, **k):
            lines.append(("debug", m % a))

        def info(self, m, *a, **k):
            lines.append(("info", m % a))

        def warning(self, m, *a, **k):
            lines.append(("warning", m % a))

        def error(self, m, *a, **k):
            lines.append(("error", m % a))

    idx = atdata.Index(path=str(tmp_path / "idx" / "i.db"))
    atdata.configure_logging(Rec())
    try:
        out = ds.map(square, out=tmp_path / "o", index=idx, name="squares")
    finally:
        import logging

        atdata.configure_logging(logging.getLogger("atdata"))
    entry = idx.get_entry_by_name("squares")
    assert [s.url for s in entry.shards] == out.list_shards()
    assert [s.num_samples for s in entry.shards] == [2, 2, 2]
    assert [s.sha256 for s in entry.shards] == out_hashes(out)
    assert [lv for lv, m in lines if "run_" in m] == ["info", "info"]
    assert sum(" shard_commit " in m for _, m in lines) == 3
    assert lines[-1][1].startswith("map run_end: 6 samples in ")
    with pytest.raises(ConfigError, match="pass both index= and name="):
        ds.map(square, out=tmp_path / "o2", index=idx)


def test_map_output_that_could_not_be_read_back_fails_its_shard(tmp_path):
    ds = make_input(tmp_path, shards=2, per=3)

    def fn(s):
        return {"x": s.x, "by_id": {s.x: s.name}} if s.x == 4 else {"x": s.x}

    with pytest.raises(PartialFailureError) as ei:
        ds.map(fn, out=tmp_path / "out")
    err = ei.value
    bad = ds.list_shards()[1]
    assert err.failed_shards == [bad]
    assert isinstance(err.errors[bad], atdata.SchemaError)
    assert "field 'by_id': map key 4 is an int" in err.failures[bad].message
    assert "sample '00000004'" in err.failures[bad].message
    assert hidden_temps(tmp_path / "out") == []
    assert not os.path.exists(tmp_path / "out" / "d-000001.tar")
    assert [s.x for s in atdata.Dataset(str(tmp_path / "out" / "d-000000.tar"))] == [0, 1, 2]
