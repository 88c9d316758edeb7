"""The streaming shard cache (dataset/_torch_cache.py): downloads, member indexes, LRU eviction."""

from __future__ import annotations

import os
import time

import atdata
from atdata._shards.members import _read_persisted, load_index
from atdata.dataset._torch_cache import _ORPHAN_AGE, ShardCache


def _shards(tmp_path, n=3):
    ds = atdata.write_samples(
        [{"i": i, "pad": b"x" * 700} for i in range(n * 4)],
        str(tmp_path / "s-%d.tar"),
        maxcount=4,
        key="index",
        fsync=False,
    )
    return ds.source, ds.list_shards()


def test_download_indexes_every_member_like_a_scan(tmp_path):
    src, shards = _shards(tmp_path)
    (tmp_path / "c").mkdir()
    cache = ShardCache(str(tmp_path / "c"), 1 << 30)
    path = cache.fetch(src, shards[1])
    built = cache._built[shards[1]]
    ref = load_index(shards[1], src, persist=False)
    assert list(built.keys) == list(ref.keys) == ["00000004", "00000005", "00000006", "00000007"]
    assert list(built.offsets) == list(ref.offsets) and list(built.sizes) == list(ref.sizes)
    with open(path, "rb") as a, open(shards[1], "rb") as b:
        assert a.read() == b.read()


def test_a_used_shard_keeps_its_member_index_valid(tmp_path):
    src, shards = _shards(tmp_path)
    (tmp_path / "c").mkdir()
    cache = ShardCache(str(tmp_path / "c"), 1 << 30)
    path = cache.fetch(src, shards[0])
    mtime = os.stat(path).st_mtime_ns
    os.utime(path, ns=(1, mtime))  # long unused
    assert cache.fetch(src, shards[0]) == path  # used again: marked by its access time only
    st = os.stat(path)
    assert st.st_mtime_ns == mtime and st.st_atime_ns > 1
    idx = _read_persisted(path + ".idx", st, path)  # (a changed mtime would void it: a rescan)
    assert idx is not None and list(idx.keys) == ["00000000", "00000001", "00000002", "00000003"]


def test_eviction_drops_the_least_recently_used_shard(tmp_path):
    src, shards = _shards(tmp_path)
    (tmp_path / "c").mkdir()
    size = os.path.getsize(shards[0])
    cache = ShardCache(str(tmp_path / "c"), 2 * size)
    a, b = cache.fetch(src, shards[0]), cache.fetch(src, shards[1])
    os.utime(a, ns=(2_000_000_000, os.stat(a).st_mtime_ns))
    os.utime(b, ns=(1_000_000_000, os.stat(b).st_mtime_ns))
    cache.fetch(src, shards[0])  # a used again, b the oldest
    c = cache.fetch(src, shards[2])
    assert os.path.exists(a) and os.path.exists(c) and not os.path.exists(b)
    assert not os.path.exists(b + ".idx")


def test_a_fresh_member_index_without_its_shard_is_left_alone(tmp_path):
    src, shards = _shards(tmp_path)
    (tmp_path / "c").mkdir()
    cache = ShardCache(str(tmp_path / "c"), 1 << 30)
    fresh = tmp_path / "c" / ("0" * 32 + ".tar.idx")  # a download's, before its rename
    stale = tmp_path / "c" / ("1" * 32 + ".tar.idx")  # its shard was evicted long ago
    fresh.write_text("x")
    stale.write_text("x")
    old = time.time() - _ORPHAN_AGE - 5
    os.utime(stale, (old, old))
    cache.fetch(src, shards[0])
    assert fresh.exists() and not stale.exists()
