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
    assert collections.Counter(p for p, _ in gets) == {f"/m-{j:02d}.tar": 1 for j in range(30)}
