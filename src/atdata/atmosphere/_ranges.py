"""Ranged reads of remote shards (HTTP ``Range``) and what can be checked about them.

A part of a shard cannot be checked against a whole-shard digest; what is checked is the answer's
``Content-Range`` (the position and length asked for, the total size against the recorded one)
and, when the range turns out to span the whole shard, its digest (:class:`RangeCheck`).

Examples:
    >>> RangeCheck("s", total=10).answer("bytes 2-4/10", 2, 3)
    >>> RangeCheck("s", total=10).answer("bytes 0-2/10", 2, 3)
    Traceback (most recent call last):
    ...
    atdata._errors.IntegrityError: shard s: asked for bytes 2-4, the server answered 'bytes 0-2/10'; not using them (the server is misbehaving)
"""

from __future__ import annotations

import dataclasses
import hashlib
import re
from collections.abc import Callable
from typing import Any

from atdata._errors import IntegrityError, ShardError
from atdata._extras import require

__all__ = ["RangeCache", "RangeCheck", "http_range"]


class RangeCache:
    """Random access for sources whose server may ignore Range: keep the last whole shard."""

    def __init__(self, opener: Callable[[str], Any]) -> None:
        self._open = opener
        self._key: str | None = None
        self._data = b""

    def read(self, shard: str, offset: int, size: int) -> bytes:
        if self._key != shard:
            f = self._open(shard)
            try:
                self._data = f.read()
            finally:
                f.close()
            self._key = shard
        data = self._data[offset : offset + size]
        if len(data) != size:
            raise ShardError(f"short read in shard {shard}: wanted {size} bytes at {offset}")
        return data


@dataclasses.dataclass(frozen=True)
class RangeCheck:
    """What a ranged read of ``shard`` can be checked against: its recorded ``total`` size and
    whole-shard ``sha256`` (each ``None`` when unknown); ``claim`` says where the digest is from."""

    shard: str
    total: int | None = None
    sha256: str | None = None
    claim: str = "the dataset record says"

    def answer(self, content_range: str, offset: int, size: int) -> None:
        """Check a 206 answer's ``Content-Range`` against the range asked for.

        Raises:
            IntegrityError: Another range, or a total size other than the recorded one.
        """
        m = re.fullmatch(r"\s*bytes\s+(\d+)-(\d+)/(\d+|\*)\s*", content_range)
        end = offset + size - 1
        if m is None or (int(m[1]), int(m[2])) != (offset, end):
            raise IntegrityError(
                f"shard {self.shard}: asked for bytes {offset}-{end}, the server answered "
                f"{content_range[:80]!r}; not using them (the server is misbehaving)"
            )
        if m[3] != "*" and self.total is not None and int(m[3]) != self.total:
            raise IntegrityError(
                f"shard {self.shard} is served as {m[3]} bytes but its record says "
                f"{self.total}; the stored shard was replaced"
            )

    def whole(self, data: bytes, offset: int, content_range: str) -> None:
        """Check ``data`` against the digest when the range read is the whole shard.

        Raises:
            IntegrityError: The digest does not match.
        """
        total = self.total
        if total is None and "/" in content_range:
            tail = content_range.rsplit("/", 1)[1].strip()
            total = int(tail) if tail.isdigit() else None
        if self.sha256 is None or offset != 0 or total != len(data):
            return
        got = hashlib.sha256(data).hexdigest()
        if got != self.sha256:
            raise IntegrityError(
                f"sha256 mismatch for shard {self.shard}: got {got}, {self.claim} "
                f"{self.sha256}; the shard was altered or corrupted"
            )


def http_range(
    url: str, params: dict[str, str] | None, offset: int, size: int, check: RangeCheck
) -> bytes | None:
    """``size`` bytes at ``offset`` by a Range request, checked as ``check`` can (see
    :class:`RangeCheck`); ``None`` when the server ignores Range."""
    from atdata.atmosphere._resolve import http_client

    httpx = require("httpx", "atmosphere", "reading remote shards")
    headers = {"Accept-Encoding": "identity", "Range": f"bytes={offset}-{offset + size - 1}"}
    client = http_client()
    try:  # streamed: a server that ignores Range (or lies) never makes us buffer its answer
        r = client.send(
            client.build_request("GET", url, params=params, headers=headers), stream=True
        )
    except httpx.HTTPError as exc:
        raise ShardError(f"cannot read {url}: {type(exc).__name__}: {exc}") from None
    try:
        if r.status_code != 206:
            return None
        content_range = r.headers.get("content-range", "")
        check.answer(content_range, offset, size)
        parts, got = [], 0
        for part in r.iter_bytes(max(1, min(size + 1, 1 << 20))):
            parts.append(part)
            got += len(part)
            if got > size:
                break
    except httpx.HTTPError as exc:
        raise ShardError(f"connection lost reading {url}: {type(exc).__name__}") from None
    finally:
        r.close()
    if got != size:
        raise ShardError(f"short read of {url}: wanted {size} bytes at {offset}, got {got}")
    data = b"".join(parts)
    check.whole(data, offset, content_range)
    return data
