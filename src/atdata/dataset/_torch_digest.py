"""Stream mode's check of a fetched shard against the size and sha256 recorded for it.

A remote shard is fetched whole (see :mod:`atdata.dataset._torch_cache`); when its sha256 is
recorded (a shard info, an index entry or a manifest published beside it), the stream is wrapped
by :func:`checked`: each block is hashed as soon as it is read (still in the CPU cache; ``hashlib``
releases the GIL for large blocks, so the download thread hashes beside the one that decodes),
and at the end of the stream the size and digest are compared with the record. A mismatch raises
:class:`~atdata.IntegrityError` from the read that meets the end, before the shard is made
visible (renamed into the cache, or added to the shards held in memory).

Random mode reads local shards in place at the offsets of their member indexes:
:func:`stamps` notes each shard's size and modification time when ``to_torch()`` reads it, and
:func:`check_stamp` refuses a shard file opened later that is no longer that file (replaced or
rewritten between epochs: its samples may have moved).

Examples:
    >>> import hashlib, io
    >>> data = b"shard bytes"
    >>> want = expected(hashlib.sha256(data).hexdigest(), len(data), "the test records")
    >>> f = checked(io.BytesIO(data), "s.tar", want)
    >>> f.read(4), f.read(), f.read()
    (b'shar', b'd bytes', b'')
    >>> bad = checked(io.BytesIO(b"other bytes"), "s.tar", want)
    >>> bad.read(64)
    b'other bytes'
    >>> bad.read(64)
    Traceback (most recent call last):
    ...
    atdata._errors.IntegrityError: checksum mismatch for shard s.tar: ...
    >>> expected("not a digest", 3, "x") is None
    True
"""

from __future__ import annotations

import hashlib
import os
import re
from collections.abc import Mapping
from typing import Any, NamedTuple

from atdata._errors import IntegrityError, ShardError

__all__ = [
    "BY_INFO",
    "Expected",
    "check_stamp",
    "checked",
    "expected",
    "from_infos",
    "from_manifest",
    "stamps",
]

BY_INFO = "its shard info (shard_infos= or the index entry) records"
_HEX64 = re.compile(r"[0-9a-f]{64}")
_EMPTY = hashlib.sha256(b"").hexdigest()
# bytes read (then hashed) per call: a block still in the last-level cache when hashed (measured
# on the streaming benchmark: 1 MiB costs more CPU, a trip through the GIL per block; a whole
# 14 MB shard per call lowered the shuffled rows' rates)
_BLOCK = 4 << 20


class Expected(NamedTuple):
    """What a shard's bytes must be: ``sha256`` (hex), ``size`` (bytes, ``None``: not recorded)
    and ``by`` (who records them, for the error message: "its manifest X records")."""

    sha256: str
    size: int | None
    by: str


def expected(sha256: Any, size: Any, by: str) -> Expected | None:
    """The record as an :class:`Expected`, or ``None`` when it holds no sha256 (a size of 0
    counts as unknown unless the digest is the empty one: catalogues write 0 for "unknown")."""
    if not isinstance(sha256, str) or not _HEX64.fullmatch(sha256.lower()):
        return None
    sha = sha256.lower()
    ok = isinstance(size, int) and not isinstance(size, bool) and (size > 0 or sha == _EMPTY)
    return Expected(sha, size if ok else None, by)


def from_infos(infos: Mapping[str, Any]) -> dict[str, Expected]:
    """Shard -> :class:`Expected` for the :class:`~atdata.ShardInfo` records that hold a sha256."""
    out = {}
    for shard, info in infos.items():
        want = expected(getattr(info, "sha256", None), getattr(info, "size", None), BY_INFO)
        if want is not None:
            out[shard] = want
    return out


def from_manifest(m: Any) -> Expected | None:
    """The shard digest a loaded manifest's header records (``None``: it records none)."""
    from atdata.manifest._fresh import recorded_sha256

    header = getattr(m, "header", None)
    if not isinstance(header, dict):
        return None
    return expected(
        recorded_sha256(header), header.get("size_bytes"), f"its manifest {m.json_path} records"
    )


class _Checked:
    """``read``/``close`` over a shard stream; hashes each block read, checks at the end."""

    __slots__ = ("_f", "_h", "_n", "_shard", "_want")

    def __init__(self, f: Any, shard: str, want: Expected) -> None:
        self._f, self._shard, self._want = f, shard, want
        self._h = hashlib.sha256()
        self._n = 0

    def read(self, n: int = -1) -> bytes:
        block = self._f.read(n)
        if block:
            self._h.update(block)
            self._n += len(block)
        elif n != 0:
            self._finish()
        return block

    @property
    def length(self) -> int | None:
        """The stream's announced length (Content-Length), where it knows one."""
        n = getattr(self._f, "length", None)
        return n if isinstance(n, int) else None

    def close(self) -> None:
        self._f.close()

    def _finish(self) -> None:
        """At the end of the stream: compare size and sha256 with the record.

        Raises:
            IntegrityError: When they differ (naming the shard, both values and the fix).
        """
        want, got, n = self._want, self._h.hexdigest(), self._n
        if got == want.sha256 and (want.size is None or n == want.size):
            return
        size = "" if want.size is None else f"{want.size} bytes, "
        raise IntegrityError(
            f"checksum mismatch for shard {self._shard}: the download gave {n} bytes, sha256 "
            f"{got[:16]}..., but {want.by} {size}sha256 {want.sha256[:16]}...; the shard is "
            "corrupt or the catalogue is stale: re-upload the shard from a good copy, or re-index "
            "it so its record matches its bytes (to_torch(verify=False) streams it unchecked)"
        )


class _CheckedInto(_Checked):
    """:class:`_Checked` for a stream that also reads into a caller's buffer."""

    __slots__ = ()

    def readinto(self, b: Any) -> int:
        """Read into ``b`` block by block, hashing each block as soon as it is filled (a whole
        shard read in one call would be hashed from memory, after the read, not beside it)."""
        with memoryview(b) as whole, whole.cast("B") as mv:
            n = 0
            while n < len(mv):
                want = min(_BLOCK, len(mv) - n)
                got = self._f.readinto(mv[n : n + want]) or 0
                self._h.update(mv[n : n + got])
                n += got
                if got < want:  # the end, or a short read: return what came
                    break
            self._n += n
            if not n and len(mv):
                self._finish()
            return n


def checked(f: Any, shard: str, want: Expected | None) -> Any:
    """Stream ``f`` of ``shard``, checked against ``want`` (unchanged when ``want`` is ``None``).

    The returned stream has ``read`` and ``close``, and ``readinto`` where ``f`` has it; the read
    that meets the end of the stream raises :class:`~atdata.IntegrityError` on a mismatch.
    """
    if want is None:
        return f
    if getattr(f, "readinto", None) is not None:
        return _CheckedInto(f, shard, want)
    return _Checked(f, shard, want)


def stamps(shards: list[str]) -> dict[str, tuple[int, int]]:
    """``(size, mtime_ns)`` of each local shard that exists now."""
    out = {}
    for shard in shards:
        try:
            st = os.stat(shard[7:] if shard.startswith("file://") else shard)
        except OSError:
            continue
        out[shard] = (st.st_size, st.st_mtime_ns)
    return out


def check_stamp(fd: int, shard: str, want: tuple[int, int] | None) -> None:
    """Raise :class:`~atdata.ShardError` (closing ``fd`` first) when the file open as ``fd`` is
    not the one :func:`stamps` noted for ``shard`` (``want``; ``None``: not noted)."""
    if want is None:
        return
    st = os.fstat(fd)
    if (st.st_size, st.st_mtime_ns) == want:
        return
    os.close(fd)
    how = f"{want[0]} bytes then, {st.st_size} now" if st.st_size != want[0] else "rewritten"
    raise ShardError(
        f"shard {shard} changed after to_torch() read it ({how}): its samples may have moved; "
        "open the Dataset and call to_torch() again (load_state_dict() then checks that a saved "
        "position still fits)"
    )
