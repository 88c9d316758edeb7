"""Stream mode's receive path: each remote shard crosses the network once, whatever the window
sizes; shards held in memory are indexed exactly as the cache files would be."""

from __future__ import annotations

import collections

import pytest

import atdata
from tests._helpers import serve_directory

pytestmark = [
    pytest.mark.usefixtures("torch_present"),
    pytest.mark.filterwarnings("ignore:This DataLoader will create:UserWarning"),
]


@pytest.fixture
def many_shards(tmp_path):
    """30 shards of 4 samples behind a loopback HTTP server that counts GETs per path."""
    atdata.write_samples(
        [{"i": i} for i in range(120)], str(tmp_path / "m-%02d.tar"), maxcount=4, fsync=False
    )
    with serve_directory(tmp_path) as srv:
        yield f"{srv.url}/m-{{00..29}}.tar", srv.gets


@pytest.mark.parametrize("workers", [0, 2])
def test_growing_windows_fetch_each_shard_once(many_shards, workers):
    # windows of 1, 2, 4, ... 24 samples: a window and the rest of the one before it span more
    # shards than are fetched ahead, and none of them may be dropped while still read
    url, gets = many_shards
    tds = atdata.Dataset(url).to_torch(batch_size=5, shuffle=True, seed=3, shuffle_buffer=24)
    got = sorted(int(i) for b in tds.loader(num_workers=workers) for i in b.i)
    assert got == list(range(120))
    shards = collections.Counter(p for p, _ in gets if p.endswith(".tar"))
    assert shards == {f"/m-{j:02d}.tar": 1 for j in range(30)}


def test_the_first_shard_is_fetched_alone(tmp_path):
    # the first batch needs only the first shard: no other download may share its bandwidth,
    # so no other shard is asked for while the first one's response is being sent. The server
    # holds that response back for a while, watching for another shard's GET (stamping times
    # on the server instead raced with its own threads under load)
    import functools
    import threading

    from tests._helpers import FileHandler, serve_http

    atdata.write_samples(
        [{"i": i} for i in range(40)], str(tmp_path / "f-%d.tar"), maxcount=10, fsync=False
    )
    other = threading.Event()
    overlapped: list[bool] = []

    class Held(FileHandler):
        def do_GET(self) -> None:
            if self.path == "/f-0.tar":
                overlapped.append(other.wait(0.5))  # another shard asked for meanwhile?
            elif self.path.endswith(".tar"):  # (not the one manifest looked for)
                other.set()
            super().do_GET()

    with serve_http(functools.partial(Held, directory=str(tmp_path))) as srv:
        tds = atdata.Dataset(f"{srv.url}/f-{{0..3}}.tar").to_torch(batch_size=5, shuffle=False)
        got = [int(i) for b in tds for i in b.i]
        tars = [p for p, _ in srv.gets if p.endswith(".tar")]
    assert got == list(range(40))
    assert tars[0] == "/f-0.tar"  # (the others may arrive in either order: two threads)
    assert sorted(tars) == [f"/f-{j}.tar" for j in range(4)]
    assert overlapped == [False]
