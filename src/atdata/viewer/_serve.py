"""Serving the viewer with uvicorn: in the foreground (``atdata serve``) or in a thread.

The socket is bound here (port ``0`` picks a free one), so the URL is known before the server
starts. On a loopback address only loopback ``Host`` names are accepted (see
:class:`~atdata.viewer.ViewerApp`).
"""

from __future__ import annotations

import ipaddress
import socket
import threading
import time
from collections.abc import Callable
from typing import Any

from atdata._errors import ConfigError
from atdata._extras import require
from atdata.viewer._app import ViewerApp, create_app

__all__ = ["ServerThread", "bind", "check_address", "is_loopback", "loopback_hosts", "serve"]


def is_loopback(host: str) -> bool:
    """Whether ``host`` is a loopback address or ``localhost``.

    Examples:
        >>> is_loopback("127.0.0.1"), is_loopback("::1"), is_loopback("0.0.0.0")
        (True, True, False)
    """
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def loopback_hosts(port: int) -> list[str]:
    """The ``Host`` header values a browser sends to a loopback server on ``port``."""
    names = ["127.0.0.1", "localhost", "[::1]"]
    return [*names, *(f"{n}:{port}" for n in names)]


def check_address(host: str, port: int) -> None:
    """Refuse an empty host or a port outside 0-65535 with the fix.

    Raises:
        ConfigError: For either.
    """
    if not host.strip("[] "):
        raise ConfigError(
            "the host is empty; give an address: 127.0.0.1 (this machine only) or 0.0.0.0 "
            "(every interface)"
        )
    if not 0 <= port <= 65535:
        raise ConfigError(f"port {port} is not a TCP port; pick one in 0-65535 (0: any free port)")


def bind(host: str, port: int) -> socket.socket:
    """A listening TCP socket on ``host:port`` (``port=0``: any free port).

    Raises:
        ConfigError: When the address cannot be bound (in use, or not an address of this host).
    """
    check_address(host, port)
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    # accepted connections inherit it: the response head and body (two writes) are not held
    # back by Nagle's algorithm waiting for the client's delayed ACK (~40 ms a request)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    try:
        sock.bind((host.strip("[]"), port))
    except OSError as exc:
        sock.close()
        raise ConfigError(
            f"cannot listen on {host}:{port} ({exc.strerror or exc}); pick another --port "
            "(0 picks a free one) or --host"
        ) from None
    sock.listen(128)
    sock.setblocking(False)
    return sock


def _url(sock: socket.socket, host: str) -> str:
    port = sock.getsockname()[1]
    shown = f"[{host.strip('[]')}]" if ":" in host else host
    return f"http://{shown}:{port}/"


class ServerThread:
    """A uvicorn server for ``app`` running in a daemon thread (tests, notebooks, benchmarks).

    Args:
        app: The ASGI app.
        host: Address to bind.
        port: Port (``0``: a free one).

    Attributes:
        url: ``http://host:port/``.

    Examples:
        >>> import os, tempfile, urllib.request, json, atdata
        >>> from atdata.viewer import create_app
        >>> d = tempfile.mkdtemp()
        >>> _ = atdata.write_samples([{"x": 1}], os.path.join(d, "one.tar"))
        >>> with ServerThread(create_app(os.path.join(d, "one.tar"))) as srv:
        ...     body = urllib.request.urlopen(srv.url + "api/datasets").read()
        >>> json.loads(body)["datasets"][0]["samples"]
        1
    """

    url: str

    def __init__(self, app: Any, host: str = "127.0.0.1", port: int = 0) -> None:
        uvicorn = require("uvicorn", "viewer", "the dataset viewer")
        self._sock = bind(host, port)
        self.url = _url(self._sock, host)
        config = uvicorn.Config(app, log_level="warning", lifespan="on", access_log=False)
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(
            target=self._server.run, kwargs={"sockets": [self._sock]}, daemon=True
        )

    def start(self, timeout: float = 30.0) -> ServerThread:
        """Start serving; return once the server accepts connections."""
        self._thread.start()
        deadline = time.monotonic() + timeout
        while not self._server.started:
            if not self._thread.is_alive() or time.monotonic() > deadline:
                raise ConfigError(f"the viewer server at {self.url} did not start")
            time.sleep(0.02)
        return self

    def stop(self) -> None:
        """Stop serving and wait for the thread."""
        self._server.should_exit = True
        self._thread.join(timeout=10)
        self._sock.close()

    def __enter__(self) -> ServerThread:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def serve(
    *datasets: Any,
    host: str = "127.0.0.1",
    port: int = 8765,
    index: Any = None,
    include_index: bool = False,
    on_ready: Callable[[str], None] | None = None,
    **options: Any,
) -> None:
    """Serve the viewer of ``datasets`` (see :func:`create_app`) until interrupted.

    Args:
        *datasets: What to show (paths, names, datasets).
        host: Address to bind (default loopback only; another address exposes the data).
        port: Port (``0``: a free one).
        index: The index for ``@local/`` names and ``include_index``.
        include_index: List every entry of the index.
        on_ready: Called with the URL once the socket is bound.
        **options: Passed to :func:`create_app` (limits, cache sizes).

    Raises:
        MissingExtraError: Without uvicorn (``pip install "atdata[viewer]"``).
    """
    uvicorn = require("uvicorn", "viewer", "the dataset viewer")
    sock = bind(host, port)
    try:
        allowed = loopback_hosts(sock.getsockname()[1]) if is_loopback(host) else None
        app: ViewerApp = create_app(
            *datasets, index=index, include_index=include_index, allowed_hosts=allowed, **options
        )
        if on_ready is not None:
            on_ready(_url(sock, host))
        config = uvicorn.Config(app, log_level="warning", lifespan="on", access_log=False)
        uvicorn.Server(config).run(sockets=[sock])
    finally:
        sock.close()
