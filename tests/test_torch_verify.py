"""Stream mode checks each fetched shard against the size and sha256 recorded for it
(dataset/_torch_digest.py): in memory and into the cache directory, over HTTP and S3."""

from __future__ import annotations

import hashlib
import importlib.util
import io
import os

import pytest

import atdata
from atdata._shards.writer import ShardInfo
from atdata.dataset._torch_cache import ShardCache
from atdata.dataset._torch_digest import BY_INFO, checked, expected
from tests._helpers import s3_bucket, serve_directory
from tests._services import require_service

pytestmark = pytest.mark.filterwarnings("ignore:This DataLoader will create:UserWarning")

N = 12  # samples: 3 shards of 4


@pytest.fixture(autouse=True)
def _torch_present():
    if importlib.util.find_spec("torch") is None:
        require_service("torch", 'not installed (pip install "atdata[torch]")')


def _write(d, prefix, manifest=False):
    """3 shards of 4 samples, ``{prefix}-00.tar`` ... in directory ``d`` (made here)."""
    d.mkdir(exist_ok=True)
    return atdata.write_samples(
        [{"i": i, "pad": b"x" * 300} for i in range(N)],
        str(d / f"{prefix}-%02d.tar"),
        maxcount=4,
        key="index",
        fsync=False,
        manifest=manifest,
    )


@pytest.fixture
def served(tmp_path):
    """``(base URL, shard directory, local infos)``: 3 shards of 4 samples behind loopback HTTP."""
    d = tmp_path / "srv"
    ds = _write(d, "s")
    with serve_directory(d) as srv:
        yield srv.url, d, ds.list_shard_infos()


def _remote(base, infos, wrong=None):
    """Infos for the served copies (``wrong``: this shard's sha256 replaced by another)."""
    out = []
    for i in infos:
        url = f"{base}/{os.path.basename(i.path)}"
        sha = hashlib.sha256(b"other").hexdigest() if url == wrong else i.sha256
        out.append(ShardInfo(url, i.num_samples, i.size, sha))
    return out


def _ids(tds, workers=0):
    return sorted(int(i) for b in tds.loader(num_workers=workers) for i in b.i)


def _flip(path):
    """Change one byte of a sample's ``pad`` bytes: same size, same tar, another sha256."""
    data = bytearray(path.read_bytes())
    at = data.index(b"x" * 300) + 150
    data[at] = ord("y")
    path.write_bytes(bytes(data))


def _leftovers(directory):
    return sorted(f for f in os.listdir(directory) if not f.endswith(".lock"))


@pytest.mark.parametrize("workers", [0, 2])
def test_recorded_digests_stream_every_sample(served, tmp_path, workers):
    base, _d, infos = served
    remote = _remote(base, infos)
    ds = atdata.Dataset([i.path for i in remote], shard_infos=remote)
    tds = ds.to_torch(batch_size=4, shuffle=True, seed=2, cache_dir=tmp_path / "c")
    assert tds._reader.cache.expect[remote[1].path].sha256 == infos[1].sha256
    assert _ids(tds, workers) == list(range(N))
    keys = sorted(k for b in tds.loader(num_workers=workers) for k in b.keys)
    assert keys == [f"{i:08d}" for i in range(N)]


def test_wrong_digest_in_memory_raises_and_is_not_held(served):
    base, _d, infos = served
    bad = f"{base}/s-01.tar"
    remote = _remote(base, infos, wrong=bad)
    ds = atdata.Dataset([i.path for i in remote], shard_infos=remote)
    tds = ds.to_torch(batch_size=4)  # no workers, no cache_dir: shards held in memory
    with pytest.raises(atdata.IntegrityError) as err:
        list(iter(tds))
    msg = str(err.value)
    assert f"checksum mismatch for shard {bad}:" in msg
    assert f"{infos[1].size} bytes, sha256 {infos[1].sha256[:16]}..." in msg  # got
    assert f"{BY_INFO} {infos[1].size} bytes, sha256 {remote[1].sha256[:16]}..." in msg
    assert "re-upload the shard" in msg and "re-index" in msg
    cache = tds._reader.cache
    assert bad not in cache._open
    assert not [f for f in os.listdir(cache.directory) if f.endswith((".tar", ".idx"))]


def test_wrong_digest_into_the_cache_leaves_no_file(served, tmp_path):
    base, _d, infos = served
    bad = f"{base}/s-02.tar"
    remote = _remote(base, infos, wrong=bad)
    ds = atdata.Dataset([i.path for i in remote], shard_infos=remote)
    tds = ds.to_torch(batch_size=4, cache_dir=tmp_path / "c")
    with pytest.raises(atdata.IntegrityError, match=r"checksum mismatch for shard .*/s-02\.tar:"):
        _ids(tds, 2)
    path = tds._reader.cache.path(bad)
    assert not os.path.exists(path) and not os.path.exists(path + ".idx")  # (a worker may
    # still be downloading it again: its temp file is removed when that check fails too)
    good = {os.path.basename(tds._reader.cache.path(u.path)) for u in remote[:2]}
    assert {f for f in _leftovers(tmp_path / "c") if f.endswith(".tar")} <= good


def test_fetch_checks_the_download_before_the_rename(served, tmp_path):
    base, _d, infos = served
    remote = _remote(base, infos)
    src = atdata.Dataset([i.path for i in remote]).source
    (tmp_path / "c").mkdir()
    cache = ShardCache(str(tmp_path / "c"), 1 << 30)
    url = remote[0].path
    cache.expect[url] = expected(hashlib.sha256(b"other").hexdigest(), remote[0].size, "test")
    with pytest.raises(atdata.IntegrityError, match=f"checksum mismatch for shard {url}:"):
        cache.fetch(src, url)
    assert _leftovers(tmp_path / "c") == []
    cache.expect[url] = expected(remote[0].sha256, remote[0].size, "test")
    path = cache.fetch(src, url)
    assert _leftovers(tmp_path / "c") == sorted(
        [os.path.basename(path), os.path.basename(path) + ".idx"]
    )
    with open(path, "rb") as a, open(infos[0].path, "rb") as b:
        assert a.read() == b.read()
    opened = []
    src.open_shard = lambda shard: opened.append(shard)  # (a cached shard is not read again)
    assert cache.fetch(src, url) == path and opened == []
    # the file's name carries the digest it matched: unchecked copies and shards whose record
    # changed are fetched anew, never taken for a checked one
    assert ShardCache(str(tmp_path / "c"), 1 << 30).path(url) != path


@pytest.mark.parametrize("cached", [False, True])
def test_served_bytes_that_differ_from_the_record_raise(served, tmp_path, cached):
    base, d, infos = served
    remote = _remote(base, infos)
    _flip(d / "s-00.tar")  # the server now sends other bytes than the catalogue recorded
    ds = atdata.Dataset([i.path for i in remote], shard_infos=remote)
    tds = ds.to_torch(batch_size=4, cache_dir=tmp_path / "c" if cached else None)
    with pytest.raises(atdata.IntegrityError, match=r"shard .*/s-00\.tar: the download gave"):
        _ids(tds, 0)  # (a cache_dir: into cache files, else held in memory)
    cache = tds._reader.cache
    path = cache.path(f"{base}/s-00.tar")
    assert not os.path.exists(path) and not os.path.exists(path + ".idx")
    part = os.path.basename(path) + ".part-"  # (other shards may still be arriving)
    assert not [f for f in os.listdir(cache.directory) if f.startswith(part)]
    assert f"{base}/s-00.tar" not in cache._open


def test_verify_false_streams_without_the_check(served, tmp_path):
    base, d, infos = served
    remote = _remote(base, infos, wrong=f"{base}/s-01.tar")
    _flip(d / "s-00.tar")
    ds = atdata.Dataset([i.path for i in remote], shard_infos=remote)
    tds = ds.to_torch(batch_size=4, verify=False)
    assert tds._reader.cache.expect == {}
    assert _ids(tds, 0) == list(range(N))
    tds2 = ds.to_torch(batch_size=4, verify=False, cache_dir=tmp_path / "c")
    assert _ids(tds2, 2) == list(range(N))


def test_a_published_manifest_records_the_digest(tmp_path):
    d = tmp_path / "srv"
    _write(d, "m", manifest=True)
    _flip(d / "m-01.tar")
    with serve_directory(d) as srv:
        ds = atdata.Dataset(f"{srv.url}/m-{{00..02}}.tar")
        tds = ds.to_torch(batch_size=3, rank=0, world_size=2)  # counted from the manifests
        assert len(tds) == 2  # (rank 0 streams shards 00 and 01)
        with pytest.raises(atdata.IntegrityError, match=r"m-01\.tar: .* its manifest .*m-01"):
            _ids(tds, 0)


def test_s3_stream_is_checked(s3_endpoint, tmp_path):
    pytest.importorskip("boto3")
    ds = _write(tmp_path, "s")
    kw = s3_bucket(s3_endpoint, "verify", [i.path for i in ds.list_shard_infos()])
    src = atdata.S3Source("s3://verify/s-{00..02}.tar", **kw)
    infos = [
        ShardInfo(u, i.num_samples, i.size, i.sha256)
        for u, i in zip(src.list_shards(), ds.list_shard_infos(), strict=True)
    ]
    good = atdata.Dataset(src, shard_infos=infos).to_torch(batch_size=4)
    assert _ids(good, 0) == list(range(N))
    infos[2] = ShardInfo(infos[2].path, 4, infos[2].size, hashlib.sha256(b"x").hexdigest())
    bad = atdata.Dataset(src, shard_infos=infos).to_torch(batch_size=4, cache_dir=tmp_path / "c")
    with pytest.raises(atdata.IntegrityError, match=r"shard s3://verify/s-02\.tar: "):
        _ids(bad, 0)


def test_expected_takes_only_recorded_digests():
    sha = hashlib.sha256(b"abc").hexdigest()
    assert expected(sha.upper(), 3, "r") == (sha, 3, "r")
    assert expected(sha, 0, "r") == (sha, None, "r")  # 0: a catalogue's "unknown"
    assert expected(hashlib.sha256(b"").hexdigest(), 0, "r").size == 0
    assert expected(sha, True, "r").size is None
    assert expected("", 3, "r") is None and expected(None, 3, "r") is None
    assert expected(sha[:-1], 3, "r") is None


class _Body(io.BytesIO):
    """A stream that records the size of each ``readinto`` request and announces its length."""

    def __init__(self, data):
        super().__init__(data)
        self.length = len(data)
        self.asked = []

    def readinto(self, b):
        self.asked.append(len(b))
        return super().readinto(b)


def test_a_whole_shard_read_in_one_call_is_hashed_block_by_block():
    data = bytes(range(256)) * (10 * 4096)  # 10 MiB
    want = expected(hashlib.sha256(data).hexdigest(), len(data), "test")
    body = _Body(data)
    f = checked(body, "big.tar", want)
    assert f.length == len(data)  # (the memory path sizes its buffer by it)
    buf = bytearray(len(data) + 1)
    assert f.readinto(buf) == len(data) and bytes(buf[: len(data)]) == data
    assert body.asked == [4 << 20, 4 << 20, (2 << 20) + 1]  # each block hashed as it came
    assert f.readinto(buf) == 0  # the end: size and digest match
    bad = checked(_Body(data[:-1] + b"?"), "big.tar", want)
    assert bad.readinto(buf) == len(data)
    with pytest.raises(atdata.IntegrityError, match=r"big\.tar: the download gave 10485760 "):
        bad.readinto(buf)


@pytest.mark.parametrize("workers", [0, 2])
def test_a_lazy_stream_checks_shards_against_their_manifests(tmp_path, workers):
    # one rank, no shard infos, counts unknown: no manifest is read for counts, so each one is
    # looked up just before its shard is fetched
    d = tmp_path / "pub"
    _write(d, "p", manifest=True)
    with serve_directory(d) as srv:
        ds = atdata.Dataset(f"{srv.url}/p-{{00..02}}.tar")
        assert _ids(ds.to_torch(batch_size=3), workers) == list(range(N))
        _flip(d / "p-02.tar")
        with pytest.raises(atdata.IntegrityError, match=r"p-02\.tar: .* its manifest .*p-02"):
            _ids(ds.to_torch(batch_size=3, cache_dir=str(tmp_path / f"c{workers}")), workers)


def test_shards_without_manifests_cost_one_lookup(tmp_path):
    d = tmp_path / "pub"
    _write(d, "p")
    with serve_directory(d) as srv:
        ds = atdata.Dataset(f"{srv.url}/p-{{00..02}}.tar")
        assert _ids(ds.to_torch(batch_size=3)) == list(range(N))
        looked = [p for p, _ in srv.gets if ".manifest." in p]
        tars = sorted(p for p, _ in srv.gets if p.endswith(".tar"))
    assert len(looked) == 1  # the first shard's: none published, so no more are asked for
    # (every shard fetched; a prefetch download that fails on a loaded machine is tried again
    # by the reader, so a shard may be asked for twice: once seen in a full run)
    assert sorted(set(tars)) == ["/p-00.tar", "/p-01.tar", "/p-02.tar"] and len(tars) <= 4


@pytest.mark.parametrize("cached", [False, True])
def test_a_mismatched_shard_is_downloaded_once(tmp_path, cached):
    # the prefetch thread meets the mismatch first; the reader raises it without a second GET
    d = tmp_path / "srv"
    infos = _write(d, "s").list_shard_infos()
    with serve_directory(d) as srv:
        bad = f"{srv.url}/s-01.tar"
        remote = _remote(srv.url, infos, wrong=bad)
        ds = atdata.Dataset([i.path for i in remote], shard_infos=remote)
        extra = {"cache_dir": tmp_path / "c"} if cached else {}
        tds = ds.to_torch(batch_size=4, **extra)
        with pytest.raises(
            atdata.IntegrityError, match=r"checksum mismatch for shard .*/s-01\.tar:"
        ):
            list(iter(tds))
        assert [p for p, _r in srv.gets if p.endswith(".tar")].count("/s-01.tar") == 1
        assert tds._reader.cache.failed == {}  # (handed to the reader: a next epoch tries again)


def test_a_failed_prefetch_is_logged_and_fetched_again_by_the_reader(tmp_path, caplog):
    import functools
    import logging

    from atdata.dataset._torch_prefetch import Prefetch
    from tests._helpers import FileHandler, serve_http

    d = tmp_path / "srv"
    _write(d, "s")
    failed: list[str] = []

    class FailsOnce(FileHandler):
        def do_GET(self):
            if self.path == "/s-01.tar" and not failed:
                failed.append(self.path)
                self.server.gets.append((self.path, None))
                self.send_error(503, "busy")
                return
            super().do_GET()

    with serve_http(functools.partial(FailsOnce, directory=str(d))) as srv:
        ds = atdata.Dataset(f"{srv.url}/s-{{00..02}}.tar")
        shards = ds.list_shards()
        (tmp_path / "c").mkdir()
        cache = ShardCache(str(tmp_path / "c"), 1 << 30)
        pre = Prefetch(cache, ds.source, shards, ahead=3, memory=True)
        with caplog.at_level(logging.DEBUG, logger="atdata"):
            pre.start()
            pre.advance(len(shards), set())
            for t in pre._threads:
                t.join(30)
        assert sorted(cache._open) == [shards[0], shards[2]]  # the failed one is not held
        assert cache.count(ds.source, shards[1], True) == 4  # the reader fetches it again
        tars = [p for p, _ in srv.gets if p.endswith(".tar")]
    assert sorted(tars) == ["/s-00.tar", "/s-01.tar", "/s-01.tar", "/s-02.tar"]
    logged = [r.getMessage() for r in caplog.records if "prefetching" in r.getMessage()]
    assert logged == [
        f"to_torch: prefetching shard {shards[1]} failed (ShardError: cannot fetch shard "
        f"{shards[1]}: HTTP 503 busy); the reader fetches it again"
    ]
