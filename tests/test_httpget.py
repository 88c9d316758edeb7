"""Shard GETs on kept-alive connections (``atdata._shards.httpget``), against real loopback
servers: one connection serves many shards and ranges, a connection the server dropped while
idle is replaced, and what urllib did (errors, redirects, proxies) still happens."""

from __future__ import annotations

import functools
import http.server
import multiprocessing
import os
import threading

import pytest

import atdata
from atdata import ShardError
from atdata._shards import httpget
from atdata._shards.sources import URLSource
from tests._helpers import FileHandler, serve_http


class KeepAlive(FileHandler):
    """HTTP/1.1 (connections stay open); counts connections on ``server.conns``."""

    protocol_version = "HTTP/1.1"

    def setup(self) -> None:
        super().setup()
        with self.server.count_lock:
            self.server.conns += 1


@pytest.fixture
def shards(tmp_path):
    ds = atdata.write_samples(
        [{"i": i, "pad": os.urandom(2000)} for i in range(60)],
        str(tmp_path / "k-%d.tar"),
        maxcount=10,
        fsync=False,
    )
    return tmp_path, [os.path.basename(s) for s in ds.list_shards()]


@pytest.fixture
def keepalive(shards):
    d, names = shards
    with serve_http(functools.partial(KeepAlive, directory=str(d))) as srv:
        srv.conns = 0
        srv.count_lock = threading.Lock()
        srv.ranges = True
        yield srv, d, names
    httpget._forget()  # (the next test's server reuses no connection of this one)


def _read(src, url):
    with src.open_shard(url) as f:
        return f.read()


def test_one_connection_streams_every_shard(keepalive):
    srv, d, names = keepalive
    urls = [f"{srv.url}/{n}" for n in names]
    src = URLSource(urls)
    for _ in range(2):
        for url, n in zip(urls, names, strict=True):
            assert _read(src, url) == (d / n).read_bytes()
    assert len(srv.gets) == 12
    assert srv.conns == 1


def test_ranges_reuse_the_connection_too(keepalive):
    srv, d, names = keepalive
    url = f"{srv.url}/{names[0]}"
    whole = (d / names[0]).read_bytes()
    src = URLSource([url])
    for off in (0, 512, 1536, 4000, 9000):
        assert src.read_range(url, off, 700) == whole[off : off + 700]
    assert srv.conns == 1


def test_random_access_over_http_gives_the_samples(keepalive):
    srv, _d, names = keepalive
    ds = atdata.Dataset([f"{srv.url}/{n}" for n in names])
    assert [ds[i]["i"] for i in (0, 59, 17, 33)] == [0, 59, 17, 33]
    assert srv.conns == 1


def test_a_partly_read_response_does_not_lend_its_connection(keepalive):
    srv, d, names = keepalive
    url = f"{srv.url}/{names[1]}"
    src = URLSource([url])
    with src.open_shard(url) as f:
        assert f.read(100) == (d / names[1]).read_bytes()[:100]
    assert _read(src, url) == (d / names[1]).read_bytes()
    assert srv.conns == 2


def test_a_connection_the_server_dropped_is_replaced(shards):
    d, names = shards

    class DropsIdle(KeepAlive):
        # answers like an HTTP/1.1 server that keeps the connection, then closes it anyway
        # (an idle timeout): the client finds out only when it sends the next GET
        def handle(self) -> None:
            self.handle_one_request()

    with serve_http(functools.partial(DropsIdle, directory=str(d))) as srv:
        srv.conns, srv.count_lock = 0, threading.Lock()
        urls = [f"{srv.url}/{n}" for n in names[:3]]
        src = URLSource(urls)
        got = [_read(src, u) for u in urls]
    httpget._forget()
    assert got == [(d / n).read_bytes() for n in names[:3]]
    assert srv.conns == 3


def test_errors_name_the_shard_and_the_status(keepalive):
    srv, _d, _names = keepalive
    url = f"{srv.url}/missing.tar"
    with pytest.raises(ShardError, match=r"cannot fetch shard .*missing\.tar: HTTP 404"):
        URLSource([url]).open_shard(url)


def test_redirects_are_followed(shards):
    d, names = shards

    class Redirects(KeepAlive):
        def do_GET(self) -> None:
            if self.path.startswith("/old/"):
                self.send_response(302)
                self.send_header("Location", "/" + self.path[len("/old/") :])
                self.send_header("Content-Length", "0")
                self.end_headers()
                return
            super().do_GET()

    with serve_http(functools.partial(Redirects, directory=str(d))) as srv:
        srv.conns, srv.count_lock = 0, threading.Lock()
        url = f"{srv.url}/old/{names[2]}"
        assert _read(URLSource([url]), url) == (d / names[2]).read_bytes()
    httpget._forget()


def test_a_proxy_in_the_environment_is_used(shards, monkeypatch):
    d, names = shards
    seen: list[str] = []

    class Proxy(http.server.BaseHTTPRequestHandler):
        def log_message(self, *a: object) -> None:
            pass

        def do_GET(self) -> None:  # a forward proxy gets the absolute URL
            seen.append(self.path)
            body = (d / self.path.rsplit("/", 1)[1]).read_bytes()
            self.send_response(200)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

    with serve_http(Proxy) as proxy:
        monkeypatch.setenv("http_proxy", proxy.url)
        monkeypatch.delenv("no_proxy", raising=False)
        monkeypatch.delenv("NO_PROXY", raising=False)
        url = f"http://shards.invalid/{names[3]}"
        assert _read(URLSource([url]), url) == (d / names[3]).read_bytes()
    assert seen == [url]


def _child_pool_size(q) -> None:
    q.put(sum(len(v) for v in httpget._idle.values()))


def test_a_forked_worker_starts_with_no_connections(keepalive):
    srv, d, names = keepalive
    url = f"{srv.url}/{names[0]}"
    _read(URLSource([url]), url)
    assert sum(len(v) for v in httpget._idle.values()) == 1
    ctx = multiprocessing.get_context("fork")
    q = ctx.Queue()
    p = ctx.Process(target=_child_pool_size, args=(q,))
    p.start()
    p.join(30)
    assert q.get(timeout=5) == 0
    assert _read(URLSource([url]), url) == (d / names[0]).read_bytes()  # the parent's still works
    assert srv.conns == 1
