"""The ``to_hf()`` cache: a size cap with LRU eviction by access time, never a file in use, and
``atdata local gc`` (real ``datasets`` package, offline)."""

from __future__ import annotations

import gc
import os
import sys
import time

import pytest

import atdata
from atdata._errors import ConfigError
from atdata.cli import main as cli_main
from atdata.dataset import _hf_cache

os.environ.setdefault("HF_DATASETS_OFFLINE", "1")


def _files(d):
    return sorted(n for n in os.listdir(d) if n.startswith("atdata-"))


def _plant(d, name, size, atime):
    p = os.path.join(d, name)
    with open(p, "wb") as f:
        f.write(b"z" * size)
    os.utime(p, (atime, 1000.0))
    return p


def test_evict_goes_by_access_time_and_skips_kept_and_locked_files(tmp_path):
    d = str(tmp_path)
    a = _plant(d, "atdata-a.arrow", 100, 5000)  # most recently used
    b = _plant(d, "atdata-b.arrow", 100, 1000)  # least recently used
    c = _plant(d, "atdata-c.arrow", 100, 2000)
    e = _plant(d, "atdata-e.arrow", 100, 3000)
    _plant(d, "other.arrow", 999, 0)  # not a cache file: never counted or touched
    assert _hf_cache.evict(d, 1000) == []
    assert _hf_cache.evict(d, 250, dry_run=True) == [(b, 100), (c, 100)]
    assert _files(d) == ["atdata-a.arrow", "atdata-b.arrow", "atdata-c.arrow", "atdata-e.arrow"]
    fd = _hf_cache.acquire(c)  # in use: locked (the same process's lock counts too)
    try:
        # c, now the most recently used, is locked; b is kept: e then a go, c stays over the cap
        assert _hf_cache.evict(d, 150, keep={b}) == [(e, 100), (a, 100)]
        assert _files(d) == ["atdata-b.arrow", "atdata-c.arrow"]
        assert os.stat(c).st_atime > 1e9  # acquire() moved it to the front of the LRU order
    finally:
        os.close(fd)
    assert _hf_cache.evict(d, 100) == [(b, 100)]
    assert _files(d) == ["atdata-c.arrow"] and os.path.exists(os.path.join(d, "other.arrow"))
    assert _hf_cache.acquire(b) is None  # evicted: the caller writes it again


def test_limit_from_argument_environment_or_default(monkeypatch):
    monkeypatch.delenv("ATDATA_HF_CACHE_LIMIT", raising=False)
    assert _hf_cache.resolve_limit(None) == 8 << 30
    monkeypatch.setenv("ATDATA_HF_CACHE_LIMIT", "12345")
    assert _hf_cache.resolve_limit(None) == 12345 and _hf_cache.resolve_limit(7) == 7
    monkeypatch.setenv("ATDATA_HF_CACHE_LIMIT", "8GB")
    with pytest.raises(ConfigError, match=r"ATDATA_HF_CACHE_LIMIT='8GB' is not a number of bytes"):
        _hf_cache.resolve_limit(None)
    with pytest.raises(ConfigError, match="pass 0 or more"):
        _hf_cache.resolve_limit(-1)


def test_cache_root_follows_atdata_cache_dir(monkeypatch, tmp_path):
    monkeypatch.setenv("ATDATA_CACHE_DIR", str(tmp_path / "c"))
    assert _hf_cache.cache_root() == str(tmp_path / "c" / "hf")


@pytest.fixture
def three(tmp_path):
    pytest.importorskip("datasets")
    return [
        atdata.write_samples([{"x": i * 10 + j} for j in range(50)], tmp_path / f"s{i}.tar")
        for i in range(3)
    ]


def test_to_hf_evicts_lru_files_over_the_cap_but_never_one_in_use(three, tmp_path):
    d = tmp_path / "hf"
    hf0 = three[0].to_hf(cache_dir=d)
    f0 = _files(d)
    hf1 = three[1].to_hf(cache_dir=d, cache_limit=0)  # over the cap, but hf0 still maps its file
    assert len(_files(d)) == 2 and set(f0) < set(_files(d))
    f1 = sorted(set(_files(d)) - set(f0))
    sel = hf0.select([3, 1])  # a derived dataset shares the mapped table
    del hf0
    gc.collect()
    three[2].to_hf(cache_dir=d, cache_limit=0)
    assert set(f0) < set(_files(d)) and sel["x"] == [3, 1]  # still in use through `sel`
    del sel, hf1
    gc.collect()
    hf2 = three[2].to_hf(cache_dir=d, cache_limit=0)  # reused; the others are free now
    assert hf2["x"][:2] == [20, 21] and len(_files(d)) == 1
    assert not set(f0 + f1) & set(_files(d))
    again = three[0].to_hf(cache_dir=d)  # evicted: written again, same content and fingerprint
    assert again["x"] == list(range(50)) and len(_files(d)) == 2


def test_to_hf_reuse_refreshes_the_access_time(three, tmp_path):
    d = tmp_path / "hf"
    three[0].to_hf(cache_dir=d)
    three[1].to_hf(cache_dir=d)
    gc.collect()
    old, new = sorted(_files(d), key=lambda n: os.stat(d / n).st_atime)
    for n in (old, new):
        os.utime(d / n, (1000.0 if n == old else 2000.0, 1000.0))
    size = os.path.getsize(d / old)
    hf = three[0].to_hf(cache_dir=d)  # a hit on three[0]'s file
    hit = next(n for n in _files(d) if os.stat(d / n).st_atime > 1e9)
    del hf
    gc.collect()
    three[2].to_hf(cache_dir=d, cache_limit=2 * size + 1)  # room for two: the LRU one goes
    assert hit in _files(d) and len(_files(d)) == 2


@pytest.mark.skipif(sys.platform != "linux", reason="POSIX unlink semantics checked on Linux")
def test_unlinking_a_mapped_cache_file_is_safe_on_linux(three, tmp_path):
    # Another tool deleting the file (or eviction after a derived table outlived the lock): the
    # mapping keeps the inode, the rows read the same; the next to_hf() writes the file again.
    d = tmp_path / "hf"
    hf = three[1].to_hf(cache_dir=d)
    (name,) = _files(d)
    os.unlink(d / name)
    assert hf["x"] == list(range(10, 60)) and hf[49]["x"] == 59
    assert three[1].to_hf(cache_dir=d)["x"] == list(range(10, 60)) and _files(d) == [name]


def test_gc_removes_dead_temp_files_and_trims_the_hf_cache(three, tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("ATDATA_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.delenv("ATDATA_HF_CACHE_LIMIT", raising=False)
    root = tmp_path / "cache" / "hf"
    live = three[0].to_hf()  # the default directory
    mapped = _files(root)
    three[1].to_hf()
    gc.collect()
    dead = root / ".tmp-abc123.arrow"
    dead.write_bytes(b"t" * 77)
    os.utime(dead, (time.time() - 7200, time.time() - 7200))
    young = root / ".tmp-young.arrow"
    young.write_bytes(b"y")
    db = str(tmp_path / "index.db")
    atdata.Index(path=db).close()
    assert cli_main(["local", "gc", "--index", db, "--dry-run", "--hf-cache-limit", "0"]) == 0
    out = capsys.readouterr().out
    assert f"would remove temp {dead} (77 bytes)" in out and dead.exists()
    assert "would remove 1 item" not in out and f"hf cache {root}: would remove 2 file(s)" in out
    assert cli_main(["local", "gc", "--index", db, "--hf-cache-limit", "0"]) == 0
    out = capsys.readouterr().out
    assert f"hf cache {root}: removed 2 file(s)" in out
    assert not dead.exists() and young.exists()  # younger than --min-age: a live writer's
    assert _files(root) == mapped  # the file `live` maps stays
    assert live["x"][:3] == [0, 1, 2]


def test_a_file_another_process_maps_is_not_evicted(three, tmp_path):
    import subprocess

    d = tmp_path / "hf"
    shard = three[0].list_shards()[0]
    code = (
        "import sys, atdata\n"
        f"hf = atdata.Dataset({shard!r}).to_hf(cache_dir={str(d)!r})\n"
        "print(hf[7]['x'], flush=True)\n"
        "sys.stdin.readline()\n"
        "print(sum(hf['x']), flush=True)\n"
    )
    p = subprocess.Popen(
        [sys.executable, "-c", code], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
    )
    try:
        assert p.stdout.readline().strip() == "7"
        (theirs,) = _files(d)
        three[1].to_hf(cache_dir=d, cache_limit=0)  # over the cap: theirs is locked, stays
        assert theirs in _files(d) and len(_files(d)) == 2
        gc.collect()  # ours is no longer mapped: only ours goes
        assert [os.path.basename(x) for x, _ in _hf_cache.evict(str(d), 0)] != [theirs]
        assert _files(d) == [theirs]
        out, _ = p.communicate("go\n", timeout=60)
        assert out.strip() == str(sum(range(50)))
    finally:
        if p.poll() is None:
            p.kill()
    size = os.path.getsize(d / theirs)
    assert _hf_cache.evict(str(d), 0) == [(str(d / theirs), size)] and _files(d) == []
