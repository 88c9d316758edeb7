"""Reading a whole HTTP response body with few trips through the GIL.

``http.client`` reads a body through a ``BufferedReader`` over the socket: each ``recv``
returns what the kernel holds (often 64 KB or less), and between two of them the reading
thread takes the GIL back. A prefetch thread downloading next to a thread that decodes batches
waits for the GIL up to the switch interval (5 ms) each time, so a 14 MB shard that crosses
loopback in 5 ms alone took 50-90 ms. :class:`DirectBody` reads the body of a plain (not TLS)
HTTP/1.1 response with a known length straight from the socket into the caller's buffer, with
one ``recv(MSG_WAITALL)`` per call: the kernel fills the whole buffer while the GIL is released
once. What it cannot do that way (TLS, chunked bodies, an unknown length, other platforms) goes
through ``HTTPResponse.readinto`` unchanged. The response's own bookkeeping stays right: its
``length`` counts down, and the last byte is read through it, so it closes (and a pool may reuse
the connection) exactly as after a plain read.

Examples:
    >>> import io
    >>> class Resp(io.BytesIO):
    ...     chunked, length = False, None
    >>> DirectBody(Resp(b"abc")).readinto(bytearray(8))  # (no socket: the plain read)
    3
"""

from __future__ import annotations

import contextlib
import socket
import struct
import sys
from typing import Any

from atdata._errors import ShardError

__all__ = ["DirectBody"]

_MIN = 1 << 16  # smaller reads gain nothing from going around the buffered reader
_DEFAULT_TIMEOUT = 60.0


def _plain_socket(resp: Any) -> socket.socket | None:
    """The plain TCP socket under an ``http.client`` response, else ``None`` (TLS: the bytes
    on the socket are encrypted; anything unrecognised: read it the usual way)."""
    if sys.platform != "linux" or not hasattr(socket, "MSG_WAITALL"):
        return None
    raw = getattr(getattr(resp, "fp", None), "raw", None)
    sock = getattr(raw, "_sock", None)
    if type(sock) is not socket.socket or sock.type != socket.SOCK_STREAM:
        return None
    return sock


class DirectBody:
    """``readinto`` for the body of ``resp`` (an ``http.client.HTTPResponse``), read straight
    from its socket where that is safe (see the module docstring).

    Args:
        resp: A response whose headers have been read and whose body has not been touched
            except through this object.
        name: What the body is (a shard URL), for errors.
    """

    __slots__ = ("_drained", "_got", "_length", "_name", "_resp", "_sock")

    @property
    def length(self) -> int | None:
        """The body's announced length in bytes (``None``: chunked or not announced)."""
        return self._length

    def __init__(self, resp: Any, name: str = "the response") -> None:
        self._resp = resp
        self._name = name
        self._sock = _plain_socket(resp)
        length = getattr(resp, "length", None)
        self._length = length if isinstance(length, int) and not resp.chunked else None
        self._got = 0
        self._drained = False  # the buffered reader holds no body bytes (none read through it)

    def readinto(self, b: Any) -> int:
        """Read up to ``len(b)`` bytes of the body into ``b``; 0 at its end.

        Raises:
            ShardError: When the connection closes before the announced Content-Length.
        """
        n = self._read(b)
        self._got += n
        if not n and len(b):
            self._check_end()
        return n

    def read(self, n: int | None = -1) -> bytes:
        """Up to ``n`` bytes of the body (all the rest for ``-1``/``None``), read the usual way.

        Raises:
            ShardError: When the connection closes before the announced Content-Length.
        """
        self._drained = False
        whole = n is None or n < 0
        data = self._resp.read(None if whole else n)
        self._got += len(data)
        if whole or (not data and n):
            self._check_end()
        return bytes(data)

    def _check_end(self) -> None:
        """At the end of the body: it must have been as long as announced."""
        if self._length is not None and self._got < self._length:
            raise ShardError(
                f"{self._name} ended after {self._got} of its {self._length} bytes "
                "(the connection closed early); read it again"
            )

    def _plain(self, b: Any) -> int:
        self._drained = False  # (the buffered reader may now hold bytes read ahead)
        return int(self._resp.readinto(b))

    def _read(self, b: Any) -> int:
        resp, sock = self._resp, self._sock
        left = resp.length if sock is not None and self._length is not None else None
        if left is None or left < 2 or len(b) < _MIN or resp.fp is None:
            return self._plain(b)
        with memoryview(b) as whole, whole.cast("B") as mv:
            want = min(len(mv), left)
            n = 0
            if not self._drained:
                head = resp.fp.peek()  # bytes already in the reader's buffer (else one recv)
                if not head:  # the body ended early
                    return self._plain(mv)
                n = resp.fp.readinto(mv[: min(len(head), want)])
                resp.length -= n
                if n < len(head):
                    return n  # the buffer holds more than was asked for
                self._drained = True
            # the last byte of the body is left to the response, which then closes itself
            stop = want - 1 if want == left else want
            if stop > n:
                got = _recv_all(sock, mv[n:stop])  # type: ignore[arg-type]
                resp.length -= got
                n += got
                if n < stop:  # the connection closed early
                    return n
            if n < want:
                n += self._plain(mv[n:want])
            return n


def _recv_all(sock: socket.socket, mv: memoryview) -> int:
    """Receive into all of ``mv`` with one blocking ``recv(MSG_WAITALL)`` (again after a
    signal), on a duplicate of ``sock``'s descriptor so the original socket object keeps its
    own mode; a stall as long as the socket's timeout raises ``TimeoutError``. Returns fewer
    bytes only when the peer closed the connection."""
    timeout = sock.gettimeout()
    limit = _DEFAULT_TIMEOUT if timeout is None else timeout
    dup = socket.socket(fileno=sock.dup().detach())
    try:
        dup.setblocking(True)  # (the descriptor's flags are shared with the original)
        sec = int(limit)
        dup.setsockopt(
            socket.SOL_SOCKET,
            socket.SO_RCVTIMEO,
            struct.pack("@ll", sec, max(1, int((limit - sec) * 1e6))),
        )
        n = 0
        while n < len(mv):
            try:
                got = dup.recv_into(mv[n:], len(mv) - n, socket.MSG_WAITALL)
            except BlockingIOError:  # SO_RCVTIMEO ran out with nothing received
                raise TimeoutError(f"no data for {limit:g} s") from None
            if not got:
                break
            n += got
        return n
    finally:
        with contextlib.suppress(OSError):
            dup.setsockopt(socket.SOL_SOCKET, socket.SO_RCVTIMEO, struct.pack("@ll", 0, 0))
            dup.setblocking(timeout is None)  # (a timeout: Python keeps the socket non-blocking)
        dup.close()
