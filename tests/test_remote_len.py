"""Iterating remote shards never pays for counting them; counting them is explicit (``count()``)."""

from __future__ import annotations

import http.server
import pathlib
from typing import ClassVar

import pytest

import atdata
from tests._helpers import serve_directory


class _CountingHandler(http.server.SimpleHTTPRequestHandler):
    gets: ClassVar[list[str]] = []

    def log_message(self, *args):
        pass

    def do_GET(self):
        type(self).gets.append(self.path)
        rng = self.headers.get("Range")
        if not rng:
            return super().do_GET()
        data = pathlib.Path(self.translate_path(self.path)).read_bytes()
        lo, hi = (int(x) for x in rng.split("=")[1].split("-"))
        self.send_response(206)
        self.send_header("Content-Range", f"bytes {lo}-{hi}/{len(data)}")
        self.send_header("Content-Length", str(hi + 1 - lo))
        self.end_headers()
        self.wfile.write(data[lo : hi + 1])
        return None


@pytest.fixture
def served(tmp_path):
    atdata.write_samples(
        [{"i": i} for i in range(7)],
        str(tmp_path / "r-%02d.tar"),
        maxcount=4,
        key="index",
        fsync=False,
    )
    _CountingHandler.gets.clear()
    with serve_directory(tmp_path, _CountingHandler) as base:
        yield f"{base}/r-{{00..01}}.tar"


def test_list_of_http_shards_downloads_each_shard_once(served):
    ds = atdata.Dataset(served)
    assert [s["i"] for s in list(ds)] == list(range(7))
    assert sorted(_CountingHandler.gets) == ["/r-00.tar", "/r-01.tar"]
    assert [s["i"] for s in tuple(ds.map(lambda s: s))] == list(range(7))
    assert len(_CountingHandler.gets) == 4


def test_len_of_uncounted_http_shards_asks_for_count(served):
    ds = atdata.Dataset(served)
    with pytest.raises(
        TypeError, match=r"2 remote shard\(s\) \(first: http://.*/r-00.tar\); call ds.count\(\)"
    ):
        len(ds)
    assert _CountingHandler.gets == []
    assert ds.count() == 7
    assert len(_CountingHandler.gets) == 2
    derived = ds.map(lambda s: s["i"])  # derived datasets share the counts
    assert len(ds) == len(derived) == 7
    assert [s["i"] for s in ds[5:]] == [5, 6]
    assert ds.filter(lambda s: s["i"] > 4).count() == 2
    assert (
        len(_CountingHandler.gets) == 2 + 2 + 2
    )  # two ranged reads for the slice; the filter streams both


def test_len_of_http_shards_with_known_counts(served):
    urls = [served.replace("{00..01}", n) for n in ("00", "01")]
    infos = [atdata.ShardInfo(u, n, 0, "") for u, n in zip(urls, (4, 3), strict=True)]
    ds = atdata.Dataset(urls, shard_infos=infos)
    assert len(ds) == 7 and ds.count() == 7
    assert len(atdata.Dataset(served).select([0, 6])) == 2  # a selection's length is known
    assert _CountingHandler.gets == []


def test_local_len_is_unchanged(tmp_path):
    ds = atdata.write_samples(
        [{"i": i} for i in range(5)], str(tmp_path / "l-%d.tar"), maxcount=2, fsync=False
    )
    fresh = atdata.Dataset(str(tmp_path / "l-*.tar"))
    assert len(fresh) == fresh.count() == len(list(fresh)) == 5
    with pytest.raises(TypeError, match="filtered"):
        len(ds.filter(lambda s: True))


def test_known_total_gives_len_without_any_request(served):
    ds = atdata.Dataset(served, num_samples=7)
    assert len(ds) == 7 and len(ds.map(lambda s: s)) == 7
    assert _CountingHandler.gets == []
    assert [s["i"] for s in list(ds)] == list(range(7))
    assert len(_CountingHandler.gets) == 2
    with pytest.raises(TypeError, match="filtered"):
        len(ds.filter(lambda s: True))
