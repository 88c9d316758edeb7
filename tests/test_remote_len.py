"""Iterating remote shards never pays for counting them; counting them is explicit (``count()``)."""

from __future__ import annotations

import pytest

import atdata
from tests._helpers import serve_directory


@pytest.fixture
def server(tmp_path):
    """A loopback HTTP server (honouring Range) over two shards of 4 and 3 samples."""
    atdata.write_samples(
        [{"i": i} for i in range(7)],
        str(tmp_path / "r-%02d.tar"),
        maxcount=4,
        key="index",
        fsync=False,
    )
    with serve_directory(tmp_path, ranges=True) as srv:
        yield srv


@pytest.fixture
def served(server):
    return f"{server.url}/r-{{00..01}}.tar"


def _gets(server):
    """The paths the server was asked for so far."""
    return [path for path, _ in server.gets]


def test_list_of_http_shards_downloads_each_shard_once(served, server):
    ds = atdata.Dataset(served)
    assert [s["i"] for s in list(ds)] == list(range(7))
    assert sorted(_gets(server)) == ["/r-00.tar", "/r-01.tar"]
    assert [s["i"] for s in tuple(ds.map(lambda s: s))] == list(range(7))
    assert len(_gets(server)) == 4


def test_len_of_uncounted_http_shards_asks_for_count(served, server):
    ds = atdata.Dataset(served)
    with pytest.raises(
        TypeError, match=r"2 remote shard\(s\) \(first: http://.*/r-00.tar\); call ds.count\(\)"
    ):
        len(ds)
    assert _gets(server) == []
    assert ds.count() == 7
    assert len(_gets(server)) == 2
    derived = ds.map(lambda s: s["i"])  # derived datasets share the counts
    assert len(ds) == len(derived) == 7
    assert [s["i"] for s in ds[5:]] == [5, 6]
    assert ds.filter(lambda s: s["i"] > 4).count() == 2
    assert (
        len(_gets(server)) == 2 + 2 + 2
    )  # two ranged reads for the slice; the filter streams both


def test_len_of_http_shards_with_known_counts(served, server):
    urls = [served.replace("{00..01}", n) for n in ("00", "01")]
    infos = [atdata.ShardInfo(u, n, 0, "") for u, n in zip(urls, (4, 3), strict=True)]
    ds = atdata.Dataset(urls, shard_infos=infos)
    assert len(ds) == 7 and ds.count() == 7
    assert len(atdata.Dataset(served).subset([0, 6])) == 2  # a selection's length is known
    assert _gets(server) == []


def test_local_len_is_unchanged(tmp_path):
    ds = atdata.write_samples(
        [{"i": i} for i in range(5)], str(tmp_path / "l-%d.tar"), maxcount=2, fsync=False
    )
    fresh = atdata.Dataset(str(tmp_path / "l-*.tar"))
    assert len(fresh) == fresh.count() == len(list(fresh)) == 5
    with pytest.raises(TypeError, match="filtered"):
        len(ds.filter(lambda s: True))


def test_known_total_gives_len_without_any_request(served, server):
    ds = atdata.Dataset(served, num_samples=7)
    assert len(ds) == 7 and len(ds.map(lambda s: s)) == 7
    assert _gets(server) == []
    assert [s["i"] for s in list(ds)] == list(range(7))
    assert len(_gets(server)) == 2
    with pytest.raises(TypeError, match="filtered"):
        len(ds.filter(lambda s: True))
