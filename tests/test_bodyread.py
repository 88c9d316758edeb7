"""Reading HTTP bodies straight from the socket (``atdata._shards.bodyread``), over real
loopback connections to a scripted server: same bytes as ``http.client`` for any sequence of
read sizes, short bodies and stalls reported, the socket left as it was found."""

from __future__ import annotations

import contextlib
import http.client
import os
import socket
import ssl
import threading
import time
from collections.abc import Iterator

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from atdata import ShardError
from atdata._shards import bodyread, sources
from atdata._shards.bodyread import DirectBody
from atdata.dataset._torch_cache import _read_into


@contextlib.contextmanager
def scripted(
    body: bytes, length: int | None = None, stall: float = 0.0, cut: int | None = None
) -> Iterator[tuple[str, list[int]]]:
    """A loopback server answering every GET with ``body`` (announced as ``length`` bytes; sent
    whole, or only ``cut`` bytes and then closed, or half, ``stall`` s of silence, the rest);
    yields its URL and the list of connections accepted."""
    srv = socket.create_server(("127.0.0.1", 0))
    accepted: list[int] = []

    def answer(conn: socket.socket) -> None:
        with conn:
            data = b""
            while b"\r\n\r\n" not in data:
                got = conn.recv(65536)
                if not got:
                    return
                data += got
            head = (
                f"HTTP/1.1 200 OK\r\nContent-Length: {len(body) if length is None else length}\r\n"
            )
            conn.sendall(head.encode() + b"Connection: close\r\n\r\n")
            if cut is not None:
                conn.sendall(body[:cut])
                return
            half = len(body) // 2
            conn.sendall(body[:half])
            time.sleep(stall)
            with contextlib.suppress(OSError):
                conn.sendall(body[half:])

    stop = threading.Event()
    srv.settimeout(0.05)

    def serve() -> None:
        while not stop.is_set():
            try:
                conn, _ = srv.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            conn.settimeout(None)
            accepted.append(1)
            threading.Thread(target=answer, args=(conn,), daemon=True).start()

    t = threading.Thread(target=serve, daemon=True)
    t.start()
    try:
        yield f"http://127.0.0.1:{srv.getsockname()[1]}/shard.tar", accepted
    finally:
        stop.set()
        t.join(5)
        srv.close()


def _body(n: int) -> bytes:
    return os.urandom(n)


def test_whole_body_arrives_in_one_socket_read_per_call():
    body = _body(3 << 20)
    with scripted(body) as (url, _):
        s = sources._HTTPStream(url)
        assert s._body._sock is not None  # plain HTTP: the direct path
        buf = bytearray(len(body) + 100)
        n = _read_into(s, buf)
        s.close()
    assert n == len(body)
    assert bytes(buf[:n]) == body
    assert s._resp.isclosed()  # the response closed itself after its last byte


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    size=st.integers(0, 600_000),
    reads=st.lists(
        st.sampled_from([1, 100, 8192, 65535, 65536, 70_000, 300_000, 1 << 20]), max_size=12
    ),
)
def test_any_sequence_of_read_sizes_gives_the_same_bytes(size, reads):
    # reads below 64 KiB go through http.client's buffered reader, larger ones straight to the
    # socket: mixed, no byte may be skipped or repeated
    body = _body(size)
    with scripted(body) as (url, _):
        s = sources._HTTPStream(url)
        out = bytearray()
        for k in [*reads, *([1 << 20] * 4)]:
            buf = bytearray(k)
            got = s.readinto(buf)
            out += buf[:got]
        out += s.read()
        s.close()
    assert bytes(out) == body


def test_read_and_readinto_interleave():
    body = _body(500_000)
    with scripted(body) as (url, _):
        s = sources._HTTPStream(url)
        a = s.read(10)
        buf = bytearray(200_000)
        n = s.readinto(buf)
        b = s.read(5)
        rest = s.read()
        s.close()
    assert a + bytes(buf[:n]) + b + rest == body


def test_short_body_is_a_shard_error_naming_the_url():
    body = _body(400_000)
    with scripted(body, length=1_000_000, cut=len(body)) as (url, _):
        s = sources._HTTPStream(url)
        with pytest.raises(ShardError, match=r"ended after 400000 of its 1000000 bytes") as ei:
            _read_into(s, bytearray(1 << 20))
        s.close()
    assert url in str(ei.value)


def test_a_stall_longer_than_the_timeout_is_a_shard_error(monkeypatch):
    monkeypatch.setattr(sources, "_HTTP_TIMEOUT", 0.3)
    body = _body(1 << 20)
    with scripted(body, stall=2.0) as (url, _):
        s = sources._HTTPStream(url)
        t0 = time.monotonic()
        with pytest.raises(ShardError, match="connection lost while reading shard") as ei:
            _read_into(s, bytearray(2 << 20))
        took = time.monotonic() - t0
        s.close()
    assert url in str(ei.value)
    assert took < 1.5  # the stall was noticed, not waited out


def test_a_slow_but_moving_body_is_read_whole(monkeypatch):
    monkeypatch.setattr(sources, "_HTTP_TIMEOUT", 1.0)
    body = _body(1 << 20)
    with scripted(body, stall=0.4) as (url, _):
        s = sources._HTTPStream(url)
        buf = bytearray(2 << 20)
        n = _read_into(s, buf)
        s.close()
    assert bytes(buf[:n]) == body


def test_the_socket_keeps_its_mode_after_a_direct_read():
    body = _body(1 << 20)
    with scripted(body) as (url, _):
        s = sources._HTTPStream(url)
        sock = s._body._sock
        assert sock.gettimeout() == sources._HTTP_TIMEOUT
        assert os.get_blocking(sock.fileno()) is False  # Python's timeout mode
        assert s.readinto(bytearray(200_000)) == 200_000
        assert os.get_blocking(sock.fileno()) is False
        rcv = sock.getsockopt(socket.SOL_SOCKET, socket.SO_RCVTIMEO, 16)
        assert rcv == b"\0" * 16  # no receive timeout left behind
        s.close()


def test_tls_and_unknown_responses_take_the_plain_path():
    ctx = ssl.create_default_context()
    with (
        socket.socket() as raw,
        ctx.wrap_socket(raw, server_hostname="x", do_handshake_on_connect=False) as tls,
    ):

        class FP:
            pass

        fp = FP()
        fp.raw = FP()
        fp.raw._sock = tls

        class Resp:
            pass

        resp = Resp()
        resp.fp = fp
        assert bodyread._plain_socket(resp) is None
    assert bodyread._plain_socket(object()) is None


def test_chunked_responses_are_read_by_http_client():
    body = _body(300_000)
    srv = socket.create_server(("127.0.0.1", 0))

    def serve() -> None:
        conn, _ = srv.accept()
        with conn:
            while b"\r\n\r\n" not in conn.recv(65536):
                pass
            conn.sendall(
                b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n"
            )
            for i in range(0, len(body), 100_000):
                part = body[i : i + 100_000]
                conn.sendall(f"{len(part):x}\r\n".encode() + part + b"\r\n")
            conn.sendall(b"0\r\n\r\n")

    t = threading.Thread(target=serve, daemon=True)
    t.start()
    conn = http.client.HTTPConnection("127.0.0.1", srv.getsockname()[1], timeout=5)
    conn.request("GET", "/x")
    resp = conn.getresponse()
    d = DirectBody(resp, "shard x")
    buf = bytearray(1 << 20)
    n = _read_into(d, buf)
    conn.close()
    srv.close()
    t.join(5)
    assert bytes(buf[:n]) == body
