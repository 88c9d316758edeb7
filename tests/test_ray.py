"""atdata.ray on a local Ray cluster (``ray.init(num_cpus=2)``): read, map and write back give
the same samples (and the same output bytes) as the local path. Marked slow: starting Ray takes
a while, so one cluster serves the whole module."""

from __future__ import annotations

import functools
import os
import pathlib

import numpy as np
import pytest

import atdata
from atdata import PartialFailureError
from atdata._events import subscribe
from tests._process_helpers import (
    Feat,
    KillOnce,
    count_and_square,
    die_on_x2,
    fails_on_x3,
    hold_shard_one_at,
    square,
    to_feat,
)
from tests.test_process import counted, hidden_temps, make_input, out_hashes

pytestmark = pytest.mark.slow

REPO = pathlib.Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def ray_cluster():
    ray = pytest.importorskip("ray", reason="atdata[ray] is not installed")
    ray.init(
        num_cpus=2,
        include_dashboard=False,
        log_to_driver=False,
        configure_logging=False,
        runtime_env={"env_vars": {"PYTHONPATH": str(REPO)}},
    )
    import ray.data

    ray.data.DataContext.get_current().enable_progress_bars = False
    yield ray
    ray.shutdown()


@pytest.mark.timeout(600)
def test_read_gives_the_local_samples_with_exact_counts(ray_cluster, tmp_path):
    import atdata.ray as ar

    ds = make_input(tmp_path, shards=3, per=4).map(to_feat, sample_type=Feat)
    tasks = ar.AtdataDatasource(ds).get_read_tasks(1)
    assert [t.metadata.num_rows for t in tasks] == [4, 4, 4]
    rd = ar.read(ds)
    assert rd.count() == 12
    rows = sorted(rd.take_all(), key=lambda r: r["__key__"])
    local = list(ds)
    assert [r["__key__"] for r in rows] == [s.__key__ for s in make_input(tmp_path / "k", 3, 4)]
    assert [int(r["x"]) for r in rows] == [s.x for s in local]
    assert all(np.array_equal(r["vec"], s.vec) for r, s in zip(rows, local, strict=True))
    assert rows[0]["vec"].dtype == np.float32

    # write back: the same samples, keys kept
    back = ar.write(rd, tmp_path / "back", Feat)
    got = sorted(back, key=lambda s: s.__key__)
    assert [(s.__key__, s.x, s.vec.tolist()) for s in got] == [
        (r["__key__"], int(r["x"]), r["vec"].tolist()) for r in rows
    ]
    assert len(back) == 12 and back.sample_type is Feat
    with pytest.raises(atdata.ConfigError, match="already holds part"):
        ar.write(rd, tmp_path / "back", Feat)

    # with an index: one entry naming every written shard
    idx = atdata.Index(path=str(tmp_path / "idx" / "index.db"))
    ar.write(rd, tmp_path / "indexed", Feat, index=idx, name="feats")
    entry = idx.get_entry_by_name("feats")
    assert sorted(s.url for s in entry.shards) == sorted(
        str(p) for p in (tmp_path / "indexed").glob("part-*.tar")
    )
    assert sum(s.num_samples for s in entry.shards) == 12


@pytest.mark.timeout(600)
def test_map_on_ray_matches_local_bytes_and_shares_commits(ray_cluster, tmp_path, monkeypatch):
    import atdata.ray as ar

    ds = make_input(tmp_path, shards=4, per=3)
    local = ds.map(square, out=tmp_path / "local")
    remote = ar.map(ds, square, tmp_path / "ray")
    assert out_hashes(remote) == out_hashes(local)
    assert [s.x for s in remote] == [i * i for i in range(12)]
    counter = tmp_path / "calls.txt"
    monkeypatch.setenv("ATDATA_TEST_COUNTER", str(counter))
    again = ds.map(count_and_square, out=tmp_path / "ray")  # committed on Ray: nothing to redo
    assert counted(counter) == [] and out_hashes(again) == out_hashes(local)


@pytest.mark.timeout(600)
def test_map_on_ray_reports_a_failing_shard(ray_cluster, tmp_path):
    import atdata.ray as ar

    ds = make_input(tmp_path, shards=3, per=2)
    with pytest.raises(PartialFailureError) as ei:
        ar.map(ds, fails_on_x3, tmp_path / "o")
    bad = ds.list_shards()[1]
    f = ei.value.failures[bad]
    assert (ei.value.failed_shards, f.kind, f.exc_type) == ([bad], "exception", "ValueError")
    assert "x == 3" in f.message and "fails_on_x3" in f.traceback
    assert sorted(os.listdir(tmp_path / "o")).count("d-000001.tar") == 0


@pytest.mark.timeout(300)
def test_interrupt_cancels_the_ray_tasks_and_removes_their_temporaries(ray_cluster, tmp_path):
    import atdata.ray as ar

    ray = ray_cluster
    ds = make_input(tmp_path, shards=3, per=2)  # on 2 CPUs: shards 0 and 1 run, 2 waits
    out = tmp_path / "out"
    mark = out / "held.txt"

    def interrupt(e):
        if e.name == "shard_commit":  # shard 0 is done while shard 1 is half-written
            raise KeyboardInterrupt

    with subscribe(interrupt), pytest.raises(KeyboardInterrupt):
        ar.map(ds, functools.partial(hold_shard_one_at, str(mark)), out, retries=0)
    held = mark.read_text().split()
    assert len(held) == 1 and held[0].startswith(".d-000001.tar.tmp-")  # it was mid-write
    assert hidden_temps(out) == []
    assert sorted(p.name for p in out.glob("*.tar")) == ["d-000000.tar"]
    # both CPUs are free again: shards 1 and 2 (60 s of sleep each; 2 waiting for a CPU or
    # just started) were cancelled
    probe = ray.remote(num_cpus=2)(lambda: "ran")
    assert ray.get(probe.remote(), timeout=30) == "ran"
    resumed = ar.map(ds, square, out)  # shard 0 is kept, the others are done now
    assert [s.x for s in resumed] == [i * i for i in range(6)]


@pytest.mark.timeout(300)
def test_a_ray_task_whose_worker_died_leaves_no_temporaries(ray_cluster, tmp_path):
    import atdata.ray as ar

    ds = make_input(tmp_path, shards=2, per=2)
    with pytest.raises(PartialFailureError) as ei:
        ar.map(ds, die_on_x2, tmp_path / "out", retries=0)
    bad = ds.list_shards()[1]
    assert (ei.value.failed_shards, ei.value.failures[bad].kind) == ([bad], "worker_died")
    assert hidden_temps(tmp_path / "out") == []
    assert sorted(p.name for p in (tmp_path / "out").glob("*.tar")) == ["d-000000.tar"]


@pytest.mark.timeout(300)
def test_write_removes_the_temporary_of_a_write_task_whose_worker_was_killed(ray_cluster, tmp_path):
    import atdata.ray as ar

    ray = ray_cluster
    mark = tmp_path / "killed"  # the first worker to make the row x == 1 is SIGKILLed
    rows = ray.data.from_items([{"x": i, "mark": str(mark)} for i in range(4)]).repartition(1)
    ds = ar.write(rows, tmp_path / "out", KillOnce)  # Ray retries the write task
    assert mark.exists() and [s.x for s in ds] == [0, 1, 2, 3]
    assert sorted(os.listdir(tmp_path / "out")) == ["part-000000.tar"]
