"""Sample types and helpers shared by several test modules."""

from __future__ import annotations

import contextlib
import functools
import http.server
import threading
from collections.abc import Iterator

import atdata
from atdata import NDArray


# The two sample types upstream atdata 0.7.0b1 wrote the interop fixtures with (same names and
# fields, so schema records compare equal to upstream's).
@atdata.packable
class InteropImage:
    image: NDArray
    mask: NDArray | None
    label: str
    score: float
    idx: int
    tags: list[str]
    flag: bool


@atdata.packable
class InteropVectors:
    vec32: NDArray
    mat64: NDArray
    ints: NDArray
    name: str
    blob: bytes


@contextlib.contextmanager
def serve_directory(
    directory: object, handler: type = http.server.SimpleHTTPRequestHandler
) -> Iterator[str]:
    """A loopback HTTP server over ``directory`` (requests handled by ``handler``) in a daemon
    thread; yields its base URL and shuts it down after."""
    factory = functools.partial(handler, directory=str(directory))
    srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), factory)
    t = threading.Thread(target=srv.serve_forever, daemon=True)
    t.start()
    try:
        yield f"http://127.0.0.1:{srv.server_address[1]}"
    finally:
        srv.shutdown()
        srv.server_close()
        t.join()
