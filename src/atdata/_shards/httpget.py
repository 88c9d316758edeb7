"""HTTP(S) GETs of shards on kept-alive connections.

``urllib.request.urlopen`` opens a new connection for every request: a TCP handshake, for
HTTPS a TLS handshake and a new SSL context (the CA bundle loaded again), for each streamed
shard and for each sample read by random access. :func:`get` keeps the connections of
HTTP/1.1 servers open between requests, a few per host, and sends the next GET on one of
them; a connection the server closed while idle is noticed on reuse and the GET sent once
more on a new one (a GET repeats safely). What it leaves to urllib, unchanged: requests a
proxy applies to (``*_proxy`` variables, ``no_proxy``), and redirects (the response's
connection goes back to the pool and urllib follows the redirect from the original URL).

Pooled connections are this process's own: a forked child (a DataLoader worker) starts with
an empty pool instead of sharing its parent's sockets.

Examples:
    >>> _key("https://example.org/a/b.tar?x=1")
    ('https', 'example.org', 443)
"""

from __future__ import annotations

import contextlib
import http.client
import os
import socket
import sys
import threading
import urllib.parse
from typing import Any

__all__ = ["get", "release"]

_MAX_IDLE = 4  # idle connections kept per host
_REDIRECTS = (301, 302, 303, 307, 308)
_USER_AGENT = f"Python-urllib/{sys.version_info[0]}.{sys.version_info[1]}"  # (as urllib sent)
_STALE = (http.client.RemoteDisconnected, ConnectionResetError, BrokenPipeError)

_idle: dict[tuple[str, str, int], list[http.client.HTTPConnection]] = {}
_lock = threading.Lock()
_ssl_context: Any = None


def _forget() -> None:  # in a forked child: the parent's sockets are not ours to use
    global _idle, _lock
    _idle = {}
    _lock = threading.Lock()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_forget)


def _key(url: str) -> tuple[str, str, int]:
    p = urllib.parse.urlsplit(url)
    scheme = p.scheme.lower()
    return scheme, (p.hostname or ""), p.port or (443 if scheme == "https" else 80)


def _proxied(scheme: str, host: str) -> bool:
    import urllib.request

    return scheme in urllib.request.getproxies() and not urllib.request.proxy_bypass(host)


def _connect(key: tuple[str, str, int], timeout: float) -> http.client.HTTPConnection:
    global _ssl_context
    scheme, host, port = key
    if scheme == "http":
        return http.client.HTTPConnection(host, port, timeout=timeout)
    if _ssl_context is None:  # one context for every connection (urllib makes one each time)
        import ssl

        _ssl_context = ssl.create_default_context()
    return http.client.HTTPSConnection(host, port, timeout=timeout, context=_ssl_context)


def _take(key: tuple[str, str, int]) -> http.client.HTTPConnection | None:
    with _lock:
        free = _idle.get(key)
        return free.pop() if free else None


def get(
    url: str, headers: dict[str, str], timeout: float
) -> tuple[Any, http.client.HTTPConnection | None]:
    """GET ``url``: ``(response, connection)``, the connection to hand back with
    :func:`release` once the response is done (``None``: urllib made the request). A status
    of 400 or more is returned as it is, with its connection, for the caller to report.

    Raises:
        urllib.error.HTTPError: From urllib (a proxied or redirected request) for a status of
            400 or more.
        OSError: When the server cannot be reached (``urllib.error.URLError`` from urllib).
    """
    key = _key(url)
    scheme, host, _port = key
    if scheme not in ("http", "https") or not host or _proxied(scheme, host):
        return _urllib(url, headers, timeout), None
    p = urllib.parse.urlsplit(url)
    target = (p.path or "/") + (f"?{p.query}" if p.query else "")
    sent = {"User-Agent": _USER_AGENT, **headers}
    conn = _take(key)
    if conn is not None and conn.sock is not None:
        conn.timeout = timeout
        conn.sock.settimeout(timeout)
    while True:
        fresh = conn is None
        if conn is None:
            conn = _connect(key, timeout)
        try:
            conn.request("GET", target, headers=sent)
            _quickack(conn)
            resp = conn.getresponse()
        except _STALE:
            conn.close()
            if fresh:
                raise
            conn = None  # closed by the server while idle: once more, on a new connection
            continue
        except BaseException:
            conn.close()
            raise
        break
    if resp.status in _REDIRECTS:
        resp.read()  # (a redirect's body is a few bytes: read, so the connection is reusable)
        release(conn, resp)
        return _urllib(url, headers, timeout), None
    return resp, conn


def _quickack(conn: http.client.HTTPConnection) -> None:
    """Acknowledge the response's first segment at once (Linux): a server that writes the
    headers and the body separately without ``TCP_NODELAY`` (Python's ``http.server`` in
    HTTP/1.1) holds the body back until that ACK, which a delayed ACK sends 40 ms late, on
    every request of a kept-alive connection."""
    sock, opt = conn.sock, getattr(socket, "TCP_QUICKACK", None)
    if sock is not None and opt is not None:
        with contextlib.suppress(OSError):
            sock.setsockopt(socket.IPPROTO_TCP, opt, 1)


def release(conn: http.client.HTTPConnection | None, resp: Any) -> None:
    """Hand back the connection of a finished response: kept for the next GET when the body
    was read to its end on a connection the server keeps open, else closed."""
    if conn is None:
        resp.close()
        return
    reusable = resp.isclosed() and conn.sock is not None  # (will_close: the sock is gone)
    if not reusable:
        resp.close()
        conn.close()
        return
    with _lock:
        free = _idle.setdefault(_key_of(conn), [])
        if len(free) < _MAX_IDLE:
            free.append(conn)
            return
    conn.close()


def _key_of(conn: http.client.HTTPConnection) -> tuple[str, str, int]:
    scheme = "https" if isinstance(conn, http.client.HTTPSConnection) else "http"
    return scheme, conn.host, conn.port


def _urllib(url: str, headers: dict[str, str], timeout: float) -> Any:
    """The GET through urllib, with the proxies the environment names now (urlopen's own
    opener keeps those of its first call)."""
    import urllib.request

    opener = urllib.request.build_opener(urllib.request.ProxyHandler(urllib.request.getproxies()))
    return opener.open(urllib.request.Request(url, headers=headers), timeout=timeout)
