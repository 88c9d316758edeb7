"""What a loader leaves behind when its loop ends early: a worker that raised (a transform, a
shard whose sha256 does not match), a loop left with ``break``. Workers, their shared memory and
the temporary shard cache go at once, without waiting for a garbage collection."""

from __future__ import annotations

import contextlib
import functools
import gc
import hashlib
import os
import threading
import time

import pytest

import atdata
from atdata._shards.writer import ShardInfo
from tests._helpers import FileHandler, serve_directory, serve_http

pytestmark = [
    pytest.mark.usefixtures("torch_present"),
    pytest.mark.filterwarnings("ignore:This DataLoader will create:UserWarning"),
]

N = 24  # three shards of 8


def _children() -> set[int]:
    """Live (not zombie) child processes of this process (a test compares them with those
    before it: a service or another test's loader may have some)."""
    me, out = os.getpid(), set()
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        try:
            with open(f"/proc/{name}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == me and fields[0] != "Z":
            out.add(int(name))
    return out


def _fds() -> int:
    return len(os.listdir("/proc/self/fd"))


@contextlib.contextmanager
def _no_gc():
    gc.collect()
    gc.disable()
    try:
        yield
    finally:
        gc.enable()


def _raise_past_8(batch):
    if int(batch.i[0]) >= 8:
        raise ValueError("transform failed on purpose")
    return batch


@pytest.fixture(scope="module")
def shard_dir(tmp_path_factory):
    d = tmp_path_factory.mktemp("cleanup")
    written = atdata.write_samples(
        [{"i": i, "pad": b"x" * 300} for i in range(N)],
        str(d / "s-%02d.tar"),
        maxcount=8,
        key="index",
        fsync=False,
    )
    return d, written.list_shard_infos()


def _wrong_digest(url_base, local):
    """The served shards with the second one's recorded sha256 replaced by another."""
    infos = []
    for k, info in enumerate(local):
        sha = hashlib.sha256(b"other").hexdigest() if k == 1 else info.sha256
        url = f"{url_base}/{os.path.basename(info.path)}"
        infos.append(ShardInfo(url, info.num_samples, info.size, sha))
    return atdata.Dataset([i.path for i in infos], shard_infos=infos)


@pytest.mark.parametrize("persistent", [False, True])
def test_a_transform_that_raises_in_a_worker_stops_the_workers_at_once(shard_dir, persistent):
    ds = atdata.Dataset(str(shard_dir[0] / "s-{00..02}.tar"))
    tds = ds.to_torch(batch_size=4, transform=_raise_past_8)
    loader = tds.loader(num_workers=2, persistent_workers=persistent)
    fds, kids = _fds(), _children()
    with _no_gc():
        got = []
        with pytest.raises(ValueError, match="transform failed on purpose"):
            for b in loader:
                got.append(list(b.i))
        assert got == [[0, 1, 2, 3], [4, 5, 6, 7]]
        assert _children() <= kids  # the workers were still running here
        assert _fds() <= fds  # (no item of theirs is held in the training process)
    assert tds.state_dict()["position"] == 8
    tds.transform = None  # the same loader starts fresh workers for the next epoch
    assert sum(len(b) for b in loader) == N - 8
    if not persistent:
        assert _children() <= kids


@pytest.mark.parametrize("workers", [0, 2])
def test_a_shard_that_fails_its_sha256_leaves_no_worker_and_no_cache(shard_dir, workers):
    with serve_directory(shard_dir[0]) as srv:
        tds = _wrong_digest(srv.url, shard_dir[1]).to_torch(batch_size=4)
        cache, kids = tds._reader.cache.directory, _children()
        with _no_gc():
            with pytest.raises(atdata.IntegrityError, match=r"checksum mismatch for shard .*s-01"):
                for _ in tds.loader(num_workers=workers):
                    pass
            assert _children() <= kids
            assert os.path.isdir(cache)
            del tds
            assert not os.path.exists(cache)  # the temporary cache went with the dataset


class _Held(FileHandler):
    """Serves files, but sends only the first 4 KiB of every shard but ``s-00.tar`` until
    ``server.release`` is set."""

    def do_GET(self):
        path = self.translate_path(self.path)
        if not path.endswith(".tar") or path.endswith("s-00.tar"):
            super().do_GET()
            return
        with open(path, "rb") as f:
            data = f.read()
        self.send_response(200)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data[:4096])
        self.wfile.flush()
        self.server.release.wait(30)
        with contextlib.suppress(OSError):
            self.wfile.write(data[4096:])


def _wait_for(ready, tries=600):
    """Wait (up to a minute) until ``ready()`` is true."""
    for _ in range(tries):
        if ready():
            return
        time.sleep(0.1)


def test_partial_downloads_of_stopped_workers_are_removed(tmp_path):
    # a loop left while workers were downloading shards (their prefetch threads end with the
    # worker) left <shard>.tar.part-PID-TID files in the cache_dir for good: never evicted,
    # never counted against cache_limit, and a new one for each run
    d = tmp_path / "srv"
    atdata.write_samples(
        [{"i": i, "pad": b"x" * 300} for i in range(300)],
        str(d / "s-%02d.tar"),
        maxcount=100,
        key="index",
        fsync=False,
    )
    cache = tmp_path / "cache"
    with serve_http(functools.partial(_Held, directory=str(d))) as srv:
        srv.release = threading.Event()
        ds = atdata.Dataset(f"{srv.url}/s-{{00..02}}.tar")
        tds = ds.to_torch(batch_size=4, cache_dir=cache)
        for _ in tds.loader(num_workers=2):
            _wait_for(lambda: [f for f in os.listdir(cache) if ".part-" in f])
            break  # (while a worker downloads a held shard)
        srv.release.set()
        parts = [f for f in os.listdir(cache) if ".part-" in f]
        assert parts  # (the shards being downloaded when the workers stopped)
        for f in parts:  # (older than a download that is still going could be)
            os.utime(cache / f, (1, 1))
        tds = ds.to_torch(batch_size=4, cache_dir=cache)
        assert sum(len(b) for b in tds.loader(num_workers=2)) == 300
    assert not [f for f in os.listdir(cache) if ".part-" in f]
    assert len([f for f in os.listdir(cache) if f.endswith(".tar")]) == 3


_KILLED_RUN = """
import os, signal, sys, atdata
tds = atdata.Dataset(sys.argv[1]).to_torch(batch_size=4)
for _ in tds.loader(num_workers=1):
    pass
print(tds._reader.cache.directory, flush=True)
os.kill(os.getpid(), signal.SIGKILL)
"""


def test_the_temporary_cache_of_a_killed_run_is_removed_by_the_next(shard_dir):
    # a run killed outright (the OOM killer, SIGKILL) left its atdata-shards-* directory, and
    # every shard in it, in /dev/shm until a reboot
    import subprocess
    import sys

    with serve_directory(shard_dir[0]) as srv:
        url = f"{srv.url}/s-{{00..02}}.tar"
        live = atdata.Dataset(url).to_torch(batch_size=4)
        mine = live._reader.cache.directory
        run = subprocess.run(
            [sys.executable, "-c", _KILLED_RUN, url], capture_output=True, text=True, timeout=300
        )
        left = run.stdout.strip()
        assert left and left != mine
        assert len([f for f in os.listdir(left) if f.endswith(".tar")]) == 3
        fresh = atdata.Dataset(url).to_torch(batch_size=4)
        assert not os.path.exists(left)
        assert os.path.isdir(mine)  # the live process's cache stays
        assert sum(len(b) for b in live) == N
        del fresh
