"""Sample types and helpers shared by several test modules."""

from __future__ import annotations

import contextlib
import functools
import http.server
import os
import re
import socketserver
import threading
from collections.abc import Callable, Iterator

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


class LoopbackServer(http.server.ThreadingHTTPServer):
    """A threaded HTTP server on 127.0.0.1 (a free port); ``url`` is its base URL.

    ``gets`` holds each GET that ``FileHandler`` answered as (path, Range header or None), in
    arrival order; ``ranges`` says whether ``FileHandler`` honours Range (a test may flip it;
    off, Range is ignored and the whole file sent, as by a plain static server).
    """

    def __init__(self, handler: Callable[..., socketserver.BaseRequestHandler]) -> None:
        super().__init__(("127.0.0.1", 0), handler)
        self.gets: list[tuple[str, str | None]] = []
        self.ranges = False

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"


class FileHandler(http.server.SimpleHTTPRequestHandler):
    """SimpleHTTPRequestHandler without its log lines that records each GET in ``server.gets``
    and, while ``server.ranges``, answers ``Range: bytes=lo-hi`` (or ``bytes=lo-``) on a file with
    206 and bytes lo..hi (416 when lo is past the end; anything else as SimpleHTTPRequestHandler
    does: the whole file, 200, or 404)."""

    server: LoopbackServer

    def log_message(self, format: str, *args: object) -> None:
        pass

    def do_GET(self) -> None:
        rng = self.headers.get("Range")
        self.server.gets.append((self.path, rng))
        m = re.fullmatch(r"bytes=(\d+)-(\d*)", rng or "")
        path = self.translate_path(self.path)
        if not (m and self.server.ranges and os.path.isfile(path)):
            super().do_GET()
            return
        size = os.path.getsize(path)
        lo, hi = int(m.group(1)), min(int(m.group(2) or size - 1), size - 1)
        if lo >= size:
            self.send_response(416)
            self.send_header("Content-Range", f"bytes */{size}")
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        with open(path, "rb") as f:
            f.seek(lo)
            body = f.read(hi + 1 - lo)
        self.send_response(206)
        self.send_header("Content-Range", f"bytes {lo}-{hi}/{size}")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


@contextlib.contextmanager
def serve_http(handler: Callable[..., socketserver.BaseRequestHandler]) -> Iterator[LoopbackServer]:
    """A ``LoopbackServer`` answering with ``handler`` in a daemon thread; shut down after."""
    srv = LoopbackServer(handler)
    t = threading.Thread(target=srv.serve_forever, daemon=True)
    t.start()
    try:
        yield srv
    finally:
        srv.shutdown()
        srv.server_close()
        t.join()


@contextlib.contextmanager
def serve_directory(directory: object, *, ranges: bool = False) -> Iterator[LoopbackServer]:
    """``serve_http`` over the files in ``directory`` with ``FileHandler`` (honouring Range only
    when ``ranges``: a plain static server ignores it)."""
    with serve_http(functools.partial(FileHandler, directory=str(directory))) as srv:
        srv.ranges = ranges
        yield srv


def s3_bucket(endpoint: str, bucket: str, files: list[str]) -> dict[str, str]:
    """Create ``bucket`` on the loopback S3 server at ``endpoint`` and upload ``files`` into it
    (under their base names); returns the keyword arguments that reach it (for boto3 clients
    and :class:`atdata.S3Source`)."""
    import os

    import boto3

    kw = {
        "endpoint_url": endpoint,
        "region_name": "us-east-1",
        "aws_access_key_id": "x",
        "aws_secret_access_key": "x",
    }
    c = boto3.client("s3", **kw)
    c.create_bucket(Bucket=bucket)
    for f in files:
        c.upload_file(f, bucket, os.path.basename(f))
    return kw
