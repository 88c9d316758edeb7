"""A fast header scan of plain ustar archives held in memory (the shards atdata and most tar
writers produce), for indexing a downloaded shard with little Python work per member.

The chain of headers is followed from byte 0 reading only each header's size field (one slice
and one ``int()`` per member; no payload byte is touched), then every header on the chain is
checked at once with numpy: the ``ustar`` magic, its checksum, a regular-file type, an empty
name prefix, and plain octal number fields. Anything else (PAX or GNU headers, links, a prefix,
base-256 or unusual number formats, a bad checksum, a truncated member, a non-zero block that
is not a header) makes :func:`scan_ustar` return ``None``, and the caller runs the general
scanner (:func:`atdata._shards.tar.scan_tar_bytes`), which accepts or rejects the archive with
its own messages. So what it accepts it reads exactly as the general scanner does, and it is
never more lenient (it checks every header's checksum; the general scanner the first one and
any without the magic).

Examples:
    >>> import io
    >>> from atdata._shards.tar import TarWriter
    >>> buf = io.BytesIO()
    >>> w = TarWriter(buf, mtime=0)
    >>> for k in ("a", "b"):
    ...     _ = w.add(f"{k}.msgpack", b"x" * 600)
    >>> w.close()
    >>> names, offsets, sizes = scan_ustar(buf.getvalue())
    >>> names, offsets.tolist(), sizes.tolist()
    (['a.msgpack', 'b.msgpack'], [512, 2048], [600, 600])
"""

from __future__ import annotations

from typing import Any

import numpy as np

__all__ = ["scan_ustar"]

_BLOCK = 512
_MAGIC = np.frombuffer(b"ustar", dtype=np.uint8)
_SIZE_POW = 8 ** np.arange(10, -1, -1, dtype=np.int64)  # 11 octal digits, bytes 124..134
_SUM_POW = 8 ** np.arange(5, -1, -1, dtype=np.int64)  # 6 octal digits, bytes 148..153
_ENDS = (0, 0x20)  # NUL or space after the digits of a number field


def _octal_ok(digits: np.ndarray) -> bool:
    """Whether every row of ASCII ``digits`` is all ``0``-``7``."""
    return bool(((digits >= 0x30) & (digits <= 0x37)).all())


def _terminator_ok(col: np.ndarray) -> bool:
    """Whether every byte of ``col`` is NUL or a space (what may follow a number's digits)."""
    return bool(((col == _ENDS[0]) | (col == _ENDS[1])).all())


def _chain(buf: Any, total: int) -> list[int] | None:
    """Offsets of the headers from byte 0 on, each found from the size field of the one before
    (``None``: a block that is neither a parsable header nor the end-of-archive block)."""
    view = isinstance(buf, memoryview)  # (bytes, bytearray and mmap slice to bytes directly)
    heads: list[int] = []
    off = 0
    while off + _BLOCK <= total:
        field = buf[off + 124 : off + 135]
        try:
            size = int(bytes(field) if view else field, 8)
        except ValueError:
            size = -1
        if size < 0:  # (the digits are checked again with the whole header: int() takes " 7")
            if any(buf[off : off + _BLOCK]):
                return None
            break  # the end-of-archive block
        heads.append(off)
        off += _BLOCK + ((size + _BLOCK - 1) & -_BLOCK)  # always forward
    return heads


def scan_ustar(
    buf: Any, size: int | None = None
) -> tuple[list[str], np.ndarray, np.ndarray] | None:
    """``(names, payload offsets, sizes)`` of the regular files of a plain ustar archive in
    memory, in order; ``None`` when the archive holds anything only the general scanner decides
    (see the module notes).

    Args:
        buf: The archive (``bytes``, ``bytearray``, ``mmap`` or a ``memoryview`` of one).
        size: Its length in ``buf`` (default: all of ``buf``).
    """
    if isinstance(buf, memoryview) and (buf.ndim != 1 or buf.format != "B"):
        if not buf.c_contiguous:
            return None
        buf = buf.cast("B")  # (slices count bytes)
    total = memoryview(buf).nbytes if size is None else size
    nblocks = total // _BLOCK
    offs = _chain(buf, total) if nblocks else None
    if not offs:
        return None
    blocks = np.frombuffer(buf, dtype=np.uint8, count=nblocks * _BLOCK).reshape(nblocks, _BLOCK)
    heads = blocks[np.asarray(offs, dtype=np.int64) // _BLOCK]  # (members, 512), copied
    del blocks  # (no export of ``buf`` outlives the call)
    if not (heads[:, 257:262] == _MAGIC).all():
        return None
    field = heads[:, 124:136]
    if not (_octal_ok(field[:, :11]) and _terminator_ok(field[:, 11])):
        return None
    sizes = (field[:, :11].astype(np.int64) - 0x30) @ _SIZE_POW
    offsets = np.asarray(offs, dtype=np.int64) + _BLOCK
    if int(offsets[-1] + sizes[-1]) > total:  # a truncated last member
        return None
    typ = heads[:, 156]
    if not ((typ == 0x30) | (typ == 0) | (typ == 0x37)).all() or heads[:, 345].any():
        return None  # not a regular file, or a name prefix
    chk = heads[:, 148:156]
    if not (_octal_ok(chk[:, :6]) and _terminator_ok(chk[:, 6:8])):
        return None
    stored = (chk[:, :6].astype(np.int64) - 0x30) @ _SUM_POW
    calc = heads.sum(axis=1, dtype=np.uint32) - chk.sum(axis=1, dtype=np.uint32) + 8 * 0x20
    if not (stored == calc).all():
        return None
    raw = np.ascontiguousarray(heads[:, :100]).view("S100").ravel().tolist()
    names = b"\0".join(raw).decode("utf-8", "replace").split("\0")
    if len(names) != len(raw):  # a NUL inside a name field: the name ends at the first one
        names = [r.partition(b"\0")[0].decode("utf-8", "replace") for r in raw]
    return names, offsets, sizes
