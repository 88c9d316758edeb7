"""The streaming shard cache (dataset/_torch_cache.py): downloads, member indexes, LRU eviction."""

from __future__ import annotations

import os
import time

import pytest

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


def _http_dataset(tmp_path, n_shards=12, per=50):
    ds = atdata.write_samples(
        [{"i": i, "pad": os.urandom(3000)} for i in range(n_shards * per)],
        str(tmp_path / "h-%03d.tar"),
        maxcount=per,
        key="index",
        fsync=False,
    )
    return ds.list_shards()


def _epochs(tmp_path, monkeypatch, cache_limit):
    """Two epochs of a shuffled stream over 100 ten-sample HTTP shards without workers: per
    epoch, the GETs sent and the download buffers made."""
    from atdata.dataset import _torch_cache
    from tests._helpers import serve_directory

    shards = _http_dataset(tmp_path, n_shards=100, per=10)
    made: list[int] = []
    real = _torch_cache._new_buffer

    def counting(size: int):
        made.append(size)
        return real(size)

    monkeypatch.setattr(_torch_cache, "_new_buffer", counting)
    out = []
    with serve_directory(tmp_path) as srv:
        urls = [f"{srv.url}/{os.path.basename(s)}" for s in shards]
        tds = atdata.Dataset(urls).to_torch(
            batch_size=32, shuffle=True, seed=3, shuffle_buffer=200, cache_limit=cache_limit
        )
        for epoch in range(2):
            tds.set_epoch(epoch)
            gets, bufs = len(srv.gets), len(made)
            keys = [k for b in tds for k in b.keys]
            assert sorted(keys) == sorted(f"{i:08d}" for i in range(1000))
            tars = [p for p, _ in srv.gets[gets:] if p.endswith(".tar")]
            out.append((len(tars), len(made) - bufs))
    return out, os.path.getsize(shards[0])


@pytest.mark.usefixtures("torch_present")
def test_shards_that_fit_stay_in_memory_for_the_next_epoch(tmp_path, monkeypatch):
    (gets1, bufs1), (gets2, bufs2) = _epochs(tmp_path, monkeypatch, None)[0]
    assert gets1 == 100
    assert bufs1 >= 40  # (dozens held at once: a window, the rest of the one before, the next)
    assert (gets2, bufs2) == (0, 0)  # nothing downloaded, or hashed, again


@pytest.mark.usefixtures("torch_present")
def test_shards_past_the_limit_are_dropped_and_their_buffers_reused(tmp_path, monkeypatch):
    (e1, e2), size = _epochs(tmp_path, monkeypatch, 20 * 37_000)
    assert size < 37_000  # (about 20 shards fit)
    assert e1[0] == 100
    assert e2[0] >= 60  # at most ~20 stayed: the others came again
    assert e2[1] <= 3  # into the buffers of the dropped ones


def test_a_known_content_length_sizes_the_buffer_once(tmp_path, monkeypatch):
    from atdata.dataset import _torch_cache
    from tests._helpers import serve_directory

    shards = _http_dataset(tmp_path, n_shards=1, per=3000)  # ~9.5 MB: past the first buffer
    size = os.path.getsize(shards[0])
    assert size > _torch_cache._CHUNK
    grown: list[int] = []
    real = _torch_cache._read_into

    def watching(f, buf):
        grown.append(len(buf))
        n = real(f, buf)
        grown.append(len(buf))
        return n

    monkeypatch.setattr(_torch_cache, "_read_into", watching)
    with serve_directory(tmp_path) as srv:
        cache = ShardCache(str(tmp_path / "unused"), 1 << 30)
        url = f"{srv.url}/{os.path.basename(shards[0])}"
        cache.hold(atdata.Dataset([url]).source, url)
        loc = cache.local(atdata.Dataset([url]).source, url, True)
        assert len(loc.keys) == 3000
        with open(shards[0], "rb") as f:
            assert bytes(loc.view) == f.read()
    assert grown == [size + 1, size + 1]  # the room was made before reading, in one step


@pytest.mark.usefixtures("torch_present")
def test_a_remote_shard_that_is_not_a_tar_is_a_shard_error(tmp_path):
    # the member-index failure surfaces as itself (it was replaced by a BufferError from
    # closing the map its traceback still viewed), and nothing is left in the cache
    from tests._helpers import serve_directory

    d = tmp_path / "data"
    d.mkdir()
    atdata.write_samples(
        [{"i": i} for i in range(12)], str(d / "s-%02d.tar"), maxcount=4, fsync=False
    )
    (d / "s-01.tar").write_bytes(b"\0garbage" * 500)
    cache = tmp_path / "cache"
    with serve_directory(d) as srv:
        tds = atdata.Dataset(f"{srv.url}/s-{{00..02}}.tar").to_torch(
            batch_size=4, shuffle=False, cache_dir=str(cache)
        )
        with pytest.raises(atdata.ShardError, match=r"not a tar archive .* in shard .*/s-01\.tar"):
            list(tds.loader(num_workers=0))
    assert not [p for p in os.listdir(cache) if ".part-" in p]


def test_locks_held_when_a_worker_forks_are_fresh_in_the_worker(tmp_path):
    """A DataLoader worker forked while a prefetch thread of the parent held the cache's lock
    hung in ShardCache.trim (CI, test_an_overtaken_loop_raises_instead_of_repeating_items)."""
    import threading

    from atdata.dataset._torch_read import PublishedDigests

    cache = ShardCache(str(tmp_path), 1 << 20)
    digests = PublishedDigests(source=None)
    held = threading.Lock()
    cache._holding["s.tar"] = held
    for lock in (cache._mu, held, digests._mu):
        lock.acquire()
    pid = os.fork()
    if pid == 0:  # the child: every one of them usable, none of them held
        ok = not cache._mu.locked() and cache._holding == {} and not digests._mu.locked()
        cache.trim(set())  # (takes the cache's lock: hung here before)
        os._exit(0 if ok else 1)
    status = None
    for _ in range(300):  # (30 s; a hung child is killed, not waited for forever)
        done, status = os.waitpid(pid, os.WNOHANG)
        if done:
            break
        time.sleep(0.1)
    else:
        os.kill(pid, 9)
        os.waitpid(pid, 0)
        status = None
    for lock in (cache._mu, held, digests._mu):
        lock.release()
    assert status is not None and os.waitstatus_to_exitcode(status) == 0, "the child hung or failed"
    assert not cache._mu.locked()  # the parent's own locks are untouched by the child's reset
