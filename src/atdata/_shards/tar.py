"""A small, fast tar reader and writer for WebDataset shards.

Only what shards need: regular files, PAX and GNU long names. The reader walks a stream in large
chunks and hands out zero-copy ``memoryview`` payloads with their absolute byte offsets, so the
same walk feeds sequential reading, member indexes and manifests.

Examples:
    >>> import io
    >>> buf = io.BytesIO()
    >>> w = TarWriter(buf)
    >>> w.add("a.msgpack", b"hello")
    512
    >>> w.close()
    >>> _ = buf.seek(0)
    >>> [(m.name, m.offset, bytes(m.data)) for m in iter_tar(buf.read)]
    [('a.msgpack', 512, b'hello')]
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Iterator
from typing import Any, BinaryIO, NamedTuple, Protocol

from atdata._errors import ShardError, shard_open_error

__all__ = [
    "FIXED_MTIME",
    "Member",
    "TarWriter",
    "iter_tar",
    "scan_tar_bytes",
    "scan_tar_file",
    "split_member_name",
]

BLOCK = 512
_ZERO = bytes(BLOCK)
CHUNK = 1 << 20
# The most one read() call asks for. ``FileIO.read(n)`` and ``HTTPResponse.read(n)`` allocate
# ``n`` bytes before reading, so a size declared by a tar header is never passed to read() whole:
# a lying header costs at most this much memory beyond the bytes that really arrive.
MAX_READ = 1 << 20


class Member(NamedTuple):
    """One regular file inside a tar stream."""

    name: str
    offset: int  # absolute byte offset of the payload in the tar
    data: memoryview  # the payload (only valid until the next item for streamed reads)


_new_member = tuple.__new__  # Member(...) without the Python-level __new__ (hot loop)


def split_member_name(name: str) -> tuple[str, str]:
    """Split a member name into ``(key, extension)`` the WebDataset way (first dot of the basename).

    Examples:
        >>> split_member_name("dir/abc.msgpack")
        ('dir/abc', 'msgpack')
    """
    slash = name.rfind("/")
    dot = name.find(".", slash + 1)
    if dot < 0:
        return name, ""
    return name[:dot], name[dot + 1 :]


_ROWS_FILE = re.compile(r"\.(?:csv|tsv|jsonl|ndjson|json|parquet|arrow)(?:\.(?:gz|zst))?$", re.I)


def _not_tar(what: str, where: str) -> ShardError:
    """``what`` + ``where``; when the file's name says it holds rows (``.csv``, ``.jsonl``,
    ``.parquet`` ...), how to turn them into shards."""
    name = where.rsplit(" ", 1)[-1] if where else ""
    hint = (
        f"; {name} holds rows, not shards: write shards from it with `atdata ingest {name} OUT`"
        if _ROWS_FILE.search(name)
        else ""
    )
    return ShardError(f"{what}{where}{hint}")


def _parse_num(field: bytes, what: str, where: str) -> int:
    if field and field[0] & 0x80:  # GNU base-256
        n = int.from_bytes(field[1:], "big")
        if field[0] & 0x40:
            n -= 1 << (8 * (len(field) - 1))
        return n
    s = field.split(b"\0", 1)[0].strip()
    if not s:
        return 0
    try:
        return int(s, 8)
    except ValueError:
        raise ShardError(
            f"not a tar archive or corrupt tar header ({what} field {field!r}){where}"
        ) from None


def _checksum_ok(hdr: bytes) -> bool:
    try:
        stored = int(hdr[148:156].split(b"\0", 1)[0].strip() or b"-1", 8)
    except ValueError:
        return False
    calc = sum(hdr[:148]) + 256 + sum(hdr[156:])
    return stored == calc


def _pax_size(value: str, where: str) -> int:
    """A PAX ``size`` record: plain decimal digits only (``int()`` would take ``-1``, ``1_0``)."""
    if not (value.isascii() and value.isdigit()) or len(value) > 20:
        raise ShardError(f"corrupt PAX header (size {value[:40]!r}){where}")
    return int(value)


def _parse_pax(data: bytes, where: str) -> dict[str, str]:
    out: dict[str, str] = {}
    pos = 0
    n = len(data)
    while pos < n:
        sp = data.find(b" ", pos)
        if sp < 0:
            break
        field = data[pos:sp]
        if not field.isdigit() or len(field) > 20:
            raise ShardError(f"corrupt PAX header (record length {bytes(field[:40])!r}){where}")
        length = int(field)
        if length <= sp - pos:
            break
        rec = data[sp + 1 : pos + length - 1]
        k, _, v = rec.partition(b"=")
        out[k.decode("utf-8", "replace")] = v.decode("utf-8", "replace")
        pos += length
    return out


def iter_tar(read: Callable[[int], bytes], where: str = "", chunk: int = CHUNK) -> Iterator[Member]:
    """Iterate the regular files of a tar stream.

    Args:
        read: A ``read(n)`` callable (file, socket or HTTP response).
        where: Context for error messages (e.g. ``" in shard data-000000.tar"``).
        chunk: Read size.

    Yields:
        :class:`Member` tuples; ``data`` is a view that stays valid while referenced.

    Raises:
        ShardError: For a stream that is not tar, or one truncated mid-member.
    """
    buf = b""
    bufmv = memoryview(buf)
    pos = 0
    base = 0  # stream offset of buf[0]
    first = True
    pax_name: str | None = None
    pax_size: int | None = None
    long_name: str | None = None
    zero = _ZERO
    while True:
        if len(buf) - pos < BLOCK:
            rest = buf[pos:]
            base += pos
            more = _read_at_least(read, BLOCK - len(rest), chunk)
            buf = rest + more if rest else more
            bufmv = memoryview(buf)
            pos = 0
            if len(buf) < BLOCK:
                if not buf and not first:
                    return  # EOF without end-of-archive blocks: accepted, like most readers
                if not buf:
                    raise _not_tar("empty file is not a tar archive", where)
                raise _not_tar(f"truncated tar header at byte {base}", where)
        end = pos + BLOCK
        hdr = buf[pos:end]
        if hdr[0] == 0 and hdr == zero:
            return
        ustar = hdr[257:262] == b"ustar"
        if first or not ustar:
            if not _checksum_ok(hdr):
                raise _not_tar(
                    f"not a tar archive (bad header checksum at byte {base + pos})", where
                )
            first = False
        if pax_size is not None:
            size = pax_size
        else:
            field = hdr[124:136]
            try:
                size = int(field.rstrip(b"\0 ") or b"0", 8) if field[0] < 0x80 else -1
            except ValueError:
                size = -1
            if size < 0:
                size = _parse_num(field, "size", where)
        if size < 0:
            raise ShardError(f"negative member size in tar header at byte {base + pos}{where}")
        typ = hdr[156]
        start = end
        padded = (size + 511) & ~511
        avail = len(buf) - start
        if avail >= size:
            data = bufmv[start : start + size]
            offset = base + start
            nxt = start + padded
        else:
            # the member runs past the buffer: complete it with exact reads (one member copied)
            offset = base + start
            more = _read_at_least(read, padded - avail, 0)
            if len(more) < size - avail:
                raise ShardError(
                    f"truncated shard: member at byte {offset} needs {size} bytes, "
                    f"only {avail + len(more)} remain{where}"
                )
            data = memoryview(buf[start:] + more[: size - avail])
            base += len(buf) + len(more)
            buf = b""
            nxt = 0
        if typ in (48, 0, 55):  # '0', '\0', '7': regular file
            if (
                pax_name is None
                and long_name is None
                and pax_size is None
                and not (ustar and hdr[345])
            ):
                z = hdr.find(0, 0, 100)  # the common case, inlined: a plain ustar/v7 name
                name = hdr[: z if z >= 0 else 100].decode("utf-8", "replace")
            else:
                name = _member_name(hdr, ustar, pax_name, long_name)
                pax_name = pax_size = long_name = None
            yield _new_member(Member, (name, offset, data))
        elif typ == 120:  # 'x': PAX per-file header
            pax = _parse_pax(bytes(data), where)
            pax_name = pax.get("path", pax_name)
            if "size" in pax:
                pax_size = _pax_size(pax["size"], where)
        elif typ == 76:  # 'L': GNU long name
            long_name = bytes(data).rstrip(b"\0").decode("utf-8", "replace")
        elif typ != 103:  # directories and links are skipped; 'g' global headers too
            pax_name = pax_size = long_name = None
        pos = nxt
        if pos > len(buf):  # the padding runs past what we hold: drop it from the stream
            skip = pos - len(buf)
            got = _read_at_least(read, skip, chunk)
            base += len(buf)
            if len(got) < skip:
                return
            buf = got
            bufmv = memoryview(buf)
            pos = skip


def _member_name(hdr: bytes, ustar: bool, pax_name: str | None, long_name: str | None) -> str:
    """A member's name: a PAX ``path``, else a GNU long name, else the header's (ustar prefix joined)."""
    if pax_name is not None:
        return pax_name
    if long_name is not None:
        return long_name
    raw = hdr[:100]
    z = raw.find(0)
    name = (raw if z < 0 else raw[:z]).decode("utf-8", "replace")
    if ustar and hdr[345] != 0:
        pre = hdr[345:500]
        z = pre.find(0)
        name = (pre if z < 0 else pre[:z]).decode("utf-8", "replace") + "/" + name
    return name


def _read_at_least(read: Callable[[int], bytes], n: int, chunk: int) -> bytes:
    """At least ``n`` bytes (fewer at the end of the stream), asking for at most
    :data:`MAX_READ` (or ``chunk``) per call so a declared size never sizes an allocation."""
    want = max(n, chunk)
    cap = max(chunk, MAX_READ)
    data = read(min(want, cap))
    if data is None:
        data = b""
    if len(data) >= n or not data:
        return data
    parts = [data]
    got = len(data)
    while got < n:
        d = read(min(want - got, cap))
        if not d:
            break
        parts.append(d)
        got += len(d)
    return b"".join(parts)


def scan_tar_file(path: str | os.PathLike[str], where: str = "") -> list[tuple[str, int, int]]:
    """List ``(name, payload offset, size)`` of a local tar file, reading only the headers.

    Raises:
        ShardError: When the file is missing, not a tar archive, or truncated.
    """
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError as exc:
        raise shard_open_error(os.fspath(path), exc) from None
    try:
        return _scan(lambda n, o: os.pread(fd, n, o), os.fstat(fd).st_size, where)
    finally:
        os.close(fd)


def scan_tar_bytes(
    buf: bytes | bytearray | memoryview, where: str = ""
) -> list[tuple[str, int, int]]:
    """:func:`scan_tar_file` of a tar archive held in memory (only the headers are looked at).

    Raises:
        ShardError: When the bytes are not a tar archive, or are truncated.
    """
    from atdata._shards.tarscan import scan_ustar

    mv = memoryview(buf)
    fast = scan_ustar(buf)  # a plain ustar archive: its headers checked at once
    if fast is not None:
        names, offsets, sizes = fast
        return list(zip(names, offsets.tolist(), sizes.tolist(), strict=True))
    return _scan(lambda n, o: bytes(mv[o : o + n]), mv.nbytes, where)


def _scan(pread: Callable[[int, int], bytes], total: int, where: str) -> list[tuple[str, int, int]]:
    out: list[tuple[str, int, int]] = []
    off = 0
    pax_name: str | None = None
    long_name: str | None = None
    pax_size: int | None = None
    first = True
    while off + BLOCK <= total:
        hdr = pread(BLOCK, off)
        if hdr == _ZERO:
            break
        if (first or hdr[257:262] != b"ustar") and not _checksum_ok(hdr):
            raise _not_tar(f"not a tar archive (bad header checksum at byte {off})", where)
        first = False
        size = pax_size if pax_size is not None else _parse_num(hdr[124:136], "size", where)
        if size < 0:  # the offset would move backwards: an endless scan
            raise ShardError(f"negative member size in tar header at byte {off}{where}")
        typ = hdr[156]
        start = off + BLOCK
        if start + size > total:
            raise ShardError(f"truncated shard: member at byte {start} needs {size} bytes{where}")
        if typ in (48, 0, 55):
            name = _member_name(hdr, hdr[257:262] == b"ustar", pax_name, long_name)
            out.append((name, start, size))
            pax_name = pax_size = long_name = None
        elif typ == 120:
            pax = _parse_pax(pread(size, start), where)
            pax_name = pax.get("path", pax_name)
            if "size" in pax:
                pax_size = _pax_size(pax["size"], where)
        elif typ == 76:
            long_name = pread(size, start).rstrip(b"\0").decode("utf-8", "replace")
        elif typ != 103:  # a directory or link consumes its PAX/long-name headers
            pax_name = pax_size = long_name = None
        off = start + ((size + 511) & ~511)
    else:
        if off < total and first:
            raise _not_tar("not a tar archive (file too short)", where)
    if first and total == 0:
        raise _not_tar("empty file is not a tar archive", where)
    return out


def _octal(n: int, width: int) -> bytes:
    return b"%0*o\0" % (width - 1, n)


class _Writable(Protocol):
    """What :class:`TarWriter` writes to: anything with ``write(bytes)``."""

    def write(self, data: bytes | memoryview, /) -> Any: ...


FIXED_MTIME = 0
"""The tar ``mtime`` (and manifest ``created_at``) of reproducible writes (``atdata.ingest``,
``Index.write_samples`` with a ``write_id``): their bytes never depend on the clock."""


class TarWriter:
    """Append regular files to a tar stream; tracks payload offsets.

    The header layout is ustar with fixed owner fields; names longer than 100 bytes get a PAX
    ``path`` record, which every tar reader understands.
    """

    def __init__(self, fileobj: BinaryIO | _Writable, mtime: int | None = None) -> None:
        import time

        self._f = fileobj
        self.offset = 0
        self._mtime = _octal(int(time.time() if mtime is None else mtime), 12)

    def _header(self, name: bytes, size: int, typ: bytes) -> bytes:
        if size >= 8**11:
            raise ShardError(f"member of {size} bytes is too large for a tar header")
        h = bytearray(BLOCK)
        h[0 : len(name)] = name
        assert len(name) <= 100
        h[100:108] = b"0000444\0"
        h[108:116] = b"0000000\0"
        h[116:124] = b"0000000\0"
        h[124:136] = _octal(size, 12)
        h[136:148] = self._mtime
        h[148:156] = b"        "
        h[156:157] = typ
        h[257:265] = b"ustar\x0000"
        h[265:271] = b"atdata"
        h[297:303] = b"atdata"
        h[148:156] = b"%06o\0 " % sum(h)
        return bytes(h)

    def add(self, name: str, data: bytes | memoryview) -> int:
        """Write one member; returns the absolute offset of its payload."""
        bname = name.encode("utf-8")
        size = len(data)
        write = self._f.write
        if len(bname) > 100:
            rec = b" path=" + bname + b"\n"
            n = len(rec)
            ln = len(str(n)) + n
            if len(str(ln)) + n != ln:
                ln += 1
            pax = str(ln).encode() + rec
            write(self._header(b"././@PaxHeader", len(pax), b"x"))
            write(pax + bytes(-len(pax) % BLOCK))
            self.offset += BLOCK + len(pax) + (-len(pax) % BLOCK)
            bname = bname[:100]
        write(self._header(bname, size, b"0"))
        start = self.offset + BLOCK
        write(data)
        pad = -size % BLOCK
        if pad:
            write(_ZERO[:pad])
        self.offset = start + size + pad
        return start

    def close(self) -> None:
        """Write the end-of-archive marker (two zero blocks)."""
        self._f.write(_ZERO + _ZERO)
        self.offset += 2 * BLOCK
