"""Size caps on the small caches under ``$ATDATA_CACHE_DIR`` (member indexes in ``members/``,
remembered shard hashes in ``verified/``): LRU by modification time, set on each use, trimmed by
``atdata local gc``; a write in progress (a temporary name) is never taken."""

from __future__ import annotations

import os
import time

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import atdata
from atdata._errors import ConfigError
from atdata._files import evict_lru, limit_from_env, remove_stale_temps
from atdata._shards import members
from atdata.cli import main as cli_main
from atdata.manifest import _fresh


def _plant(d, name, size, mtime):
    p = os.path.join(d, name)
    with open(p, "wb") as f:
        f.write(b"m" * size)
    os.utime(p, (mtime, mtime))
    return p


def test_evict_lru_goes_oldest_first_by_bytes_and_count_and_skips_temps_and_kept(tmp_path):
    d = str(tmp_path)
    a = _plant(d, "a.idx", 100, 3000)
    b = _plant(d, "b.idx", 100, 1000)  # least recently used
    c = _plant(d, "c.idx", 100, 2000)
    tmp = _plant(d, "c.idx.tmp-12-34", 500, 0)  # a write in progress: not an entry
    hidden = _plant(d, ".a.idx.tmp-1-x", 500, 0)
    other = _plant(d, "notes.txt", 900, 0)
    assert evict_lru(d, suffix=".idx", max_bytes=300) == []
    assert evict_lru(d, suffix=".idx", max_files=3) == []
    assert evict_lru(d, suffix=".idx", max_bytes=150, dry_run=True) == [(b, 100), (c, 100)]
    assert os.path.exists(b) and os.path.exists(c)
    assert evict_lru(d, suffix=".idx", max_bytes=150, keep={b}) == [(c, 100), (a, 100)]
    assert sorted(os.listdir(d)) == sorted(os.path.basename(p) for p in (b, tmp, hidden, other))
    _plant(d, "d.idx", 10, 5000)
    assert evict_lru(d, suffix=".idx", max_files=1) == [(b, 100)]
    assert evict_lru(str(tmp_path / "missing"), suffix=".idx", max_bytes=0) == []


@settings(max_examples=30, deadline=None)
@given(
    sizes=st.lists(st.integers(0, 50), min_size=0, max_size=8),
    cap=st.integers(0, 200),
    count=st.integers(0, 8),
)
def test_evict_lru_keeps_the_newest_entries_that_fit(tmp_path_factory, sizes, cap, count):
    d = str(tmp_path_factory.mktemp("lru"))
    paths = [_plant(d, f"{i}.json", n, 1000 + i) for i, n in enumerate(sizes)]
    removed = evict_lru(d, suffix=".json", max_bytes=cap, max_files=count)
    left = [p for p in paths if os.path.exists(p)]
    assert [p for p, _ in removed] == paths[: len(paths) - len(left)]  # oldest went first
    assert left == paths[len(paths) - len(left) :]
    assert sum(sizes[len(removed) :]) <= cap and len(left) <= count
    if removed:  # no more than needed: putting back the newest one removed breaks a cap
        back = sizes[len(removed) - 1]
        assert sum(sizes[len(removed) :]) + back > cap or len(left) + 1 > count


def test_remove_stale_temps_leaves_young_ones_and_entries(tmp_path):
    d = str(tmp_path)
    old = _plant(d, "x.idx.tmp-1-2", 7, time.time() - 7200)
    young = _plant(d, "y.idx.tmp-1-2", 7, time.time())
    entry = _plant(d, "z.idx", 7, time.time() - 7200)
    assert remove_stale_temps(d, min_age=3600, dry_run=True) == [(old, 7)]
    assert os.path.exists(old)
    assert remove_stale_temps(d, min_age=3600) == [(old, 7)]
    assert sorted(os.listdir(d)) == ["y.idx.tmp-1-2", "z.idx"] and os.path.exists(young)
    assert os.path.exists(entry)


def test_limit_from_env(monkeypatch):
    monkeypatch.setenv("ATDATA_MEMBERS_CACHE_LIMIT", "123")
    assert limit_from_env("ATDATA_MEMBERS_CACHE_LIMIT", 5, "x") == 123
    monkeypatch.setenv("ATDATA_MEMBERS_CACHE_LIMIT", "-1")
    with pytest.raises(ConfigError, match=r"ATDATA_MEMBERS_CACHE_LIMIT='-1'.*member-index"):
        members.prune_cache()
    monkeypatch.setenv("ATDATA_VERIFIED_CACHE_LIMIT", "lots")
    with pytest.raises(ConfigError, match=r"ATDATA_VERIFIED_CACHE_LIMIT='lots'.*whole number"):
        _fresh.prune_verified()
    with pytest.raises(ConfigError, match="pass 0 or more"):
        members.prune_cache(limit=-5)


def _three_shards(d):
    return [
        atdata.write_samples(
            [{"x": i} for i in range(4)], os.path.join(d, f"s{j}.tar"), key="index"
        ).list_shards()[0]
        for j in range(3)
    ]


def test_member_index_use_refreshes_its_clock_and_gc_evicts_the_least_recent(tmp_path, monkeypatch):
    monkeypatch.setenv("ATDATA_CACHE_DIR", str(tmp_path / "cache"))
    shards = _three_shards(str(tmp_path))
    ds = atdata.Dataset(shards[0])
    for i, s in enumerate(shards):
        members.load_index(s, ds.source)
        os.utime(members.cache_path(s), (1000 + i, 1000 + i))
    members.load_index(shards[0], ds.source)  # a hit: now the most recently used
    assert os.path.getmtime(members.cache_path(shards[0])) > 2000
    size = os.path.getsize(members.cache_path(shards[1]))
    out = members.prune_cache(limit=2 * size)
    assert out == [("members-cache", members.cache_path(shards[1]), size)]
    assert [os.path.exists(members.cache_path(s)) for s in shards] == [True, False, True]
    idx = members.load_index(shards[1], ds.source)  # rebuilt by a scan, persisted again
    assert list(idx.keys) == ["00000000", "00000001", "00000002", "00000003"]
    assert os.path.exists(members.cache_path(shards[1]))


def test_verified_record_use_refreshes_its_clock_and_gc_trims_it(tmp_path, monkeypatch):
    monkeypatch.setenv("ATDATA_CACHE_DIR", str(tmp_path / "cache"))
    shards = _three_shards(str(tmp_path))
    for i, s in enumerate(shards):
        _fresh.remember(s, "0" * 64)
        rec = _fresh._cache_file(os.path.realpath(s))
        os.utime(rec, (1000 + i, 1000 + i))
    _fresh._memo.clear()
    real = os.path.realpath(shards[0])
    st = os.stat(real)
    key = (real, st.st_size, st.st_mtime_ns, st.st_ino, st.st_ctime_ns)
    assert _fresh._remembered(real, key) == "0" * 64  # read from the file: its clock moves
    recs = [_fresh._cache_file(os.path.realpath(s)) for s in shards]
    assert os.path.getmtime(recs[0]) > 2000
    size = os.path.getsize(recs[1])
    assert _fresh.prune_verified(limit=2 * size) == [("verified-cache", recs[1], size)]
    assert [os.path.exists(p) for p in recs] == [True, False, True]


def test_local_gc_trims_members_and_verified(tmp_path, monkeypatch, capsys):
    cache = tmp_path / "cache"
    monkeypatch.setenv("ATDATA_CACHE_DIR", str(cache))
    monkeypatch.delenv("ATDATA_MEMBERS_CACHE_LIMIT", raising=False)
    monkeypatch.delenv("ATDATA_VERIFIED_CACHE_LIMIT", raising=False)
    shards = _three_shards(str(tmp_path))
    ds = atdata.Dataset(shards[0])
    for s in shards:
        members.load_index(s, ds.source)
        _fresh.remember(s, "1" * 64)
    mdir, vdir = cache / "members", cache / "verified"
    dead = mdir / "abc.idx.tmp-99-1"
    dead.write_bytes(b"t" * 5)
    os.utime(dead, (time.time() - 7200, time.time() - 7200))
    writing = vdir / "def.json.tmp-99-2"  # a live writer's: young, and never an entry
    writing.write_bytes(b"w")
    db = str(tmp_path / "index.db")
    atdata.Index(path=db).close()
    args = ["local", "gc", "--index", db, "--members-cache-limit", "0"]
    assert cli_main([*args, "--dry-run"]) == 0
    out = capsys.readouterr().out
    assert f"would remove temp {dead} (5 bytes)" in out and dead.exists()
    assert out.count("would remove members-cache ") == 3
    assert "would remove verified-cache" not in out  # 3 small records: under 16 MiB
    assert len(os.listdir(mdir)) == 4
    assert cli_main([*args, "--verified-cache-limit", "0"]) == 0
    out = capsys.readouterr().out
    assert f"caches {cache}/members, {cache}/verified: removed 7 file(s)" in out
    assert os.listdir(mdir) == [] and os.listdir(vdir) == [writing.name]
    assert len(ds) == 4  # the member index is rebuilt on demand
    assert len(os.listdir(mdir)) == 1
