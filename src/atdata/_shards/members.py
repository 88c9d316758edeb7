"""Per-shard member indexes (key -> payload offset and size) and an open-file cache for ranged reads.

An index is built once per shard by a header-only scan (no payload is read) and kept in memory.
For local shards it is also persisted in a cache directory, ``$ATDATA_CACHE_DIR/members/``
(default ``~/.cache/atdata/members/``), under a name derived from a hash of the shard's real path;
reading never writes beside the user's shards. A valid ``<shard>.idx`` beside a shard (e.g. one
shipped with the data) is read first. A persisted index is ignored and rebuilt when the shard's
size or modification time no longer match, or when a cheap check against the shard fails: the
offsets must tile the archive (the members between and after indexed ones, usually none, are
walked and may not be samples) and the tar headers at the first, last and a spread of indexed
offsets must name that key and size. An unwritable cache only costs the rebuild. The cache is
kept under a size cap by ``atdata local gc`` (:func:`prune_cache`: ``$ATDATA_MEMBERS_CACHE_LIMIT``
bytes, default 1 GiB), least recently used first (each use sets the file's modification time).
``len(ds)``, ``ds[i]``, ``ds.get(key)``, ``ds.select(...)``, local shuffling and the PyTorch
splitter all read positions from it. Reads through :class:`FdCache` check that a shard is still
the file its index was built from (:func:`stamp_of`: device, inode, size, mtime, ctime): when
they open it, at each read through the ``fstat`` of the open file the range check needs (a
rewrite in place, a removal or a rename over it), and by a ``stat`` of the path at most once a
second per shard.

In memory an index is compact (:class:`ShardIndex`): offsets and sizes in integer arrays, the
keys packed in one string (:class:`MemberKeys`), about 12 bytes plus the key length per member
instead of a few hundred in lists and dicts; ``ds.get``/``ds.locate`` search a
:class:`KeyLookup` of 64-bit key hashes (about 14 bytes per key), confirmed against the key.

File format (text, UTF-8): a first line ``atdata-idx 1 <shard size> <shard mtime_ns> <count>``,
then one line per ``.msgpack`` member: ``<key>\\t<payload offset>\\t<payload size>`` (parsed
from the right, so keys may contain tabs).

Examples:
    >>> import os, tempfile, atdata
    >>> d = tempfile.mkdtemp()
    >>> ds = atdata.write_samples([{"x": i} for i in range(3)], os.path.join(d, "a.tar"), key="index")
    >>> shard = ds.list_shards()[0]
    >>> idx = load_index(shard, ds.source)
    >>> list(idx.keys), list(idx.offsets), idx.keys[1], idx.position("00000002")
    (['00000000', '00000001', '00000002'], [512, 1536, 2560], '00000001', 2)
    >>> os.path.exists(cache_path(shard)), os.path.exists(index_path(shard))
    (True, False)
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import re
import threading
import time
import weakref
from collections.abc import Iterable, Sequence
from typing import Any

from atdata._errors import ShardChangedError, shard_open_error
from atdata._files import touch, trim_cache
from atdata._shards.compact import KeyLookup, MemberKeys, ShardIndex
from atdata._shards.sources import is_remote, pread_exact

__all__ = [
    "FdCache",
    "KeyLookup",
    "MemberKeys",
    "RECHECK_NS",
    "ShardIndex",
    "Stamp",
    "cache_dir",
    "cache_path",
    "index_path",
    "index_tar_bytes",
    "load_index",
    "prune_cache",
    "stamp_of",
]

DEFAULT_CACHE_LIMIT = 1 << 30  # bytes of persisted member indexes `atdata local gc` keeps
_LIMIT_ENV = "ATDATA_MEMBERS_CACHE_LIMIT"

_MAGIC = "atdata-idx 1"


def index_path(shard: str) -> str:
    """Where an index shipped beside a local shard lives (read when valid, never written)."""
    return (shard[7:] if shard.startswith("file://") else shard) + ".idx"


def cache_dir() -> str:
    """Where read-time member indexes are persisted: ``$ATDATA_CACHE_DIR/members`` or
    ``~/.cache/atdata/members``."""
    root = os.path.expanduser(os.environ.get("ATDATA_CACHE_DIR") or "~/.cache/atdata")
    if root.startswith("~"):  # no home directory: never a relative path under the cwd
        import tempfile

        root = os.path.join(tempfile.gettempdir(), "atdata-cache")
    return os.path.join(os.path.abspath(root), "members")


def cache_path(shard: str) -> str:
    """The cache file of a local shard's member index (named by a hash of its real path)."""
    real = os.path.realpath(shard[7:] if shard.startswith("file://") else shard)
    digest = hashlib.sha256(os.fsencode(real)).hexdigest()[:32]
    return os.path.join(cache_dir(), f"{digest}.idx")


def _from_entries(entries: list[tuple[str, int, int]]) -> ShardIndex:
    return ShardIndex(*_member_lists(entries))


def index_tar_bytes(buf: Any, where: str = "", size: int | None = None) -> ShardIndex:
    """The member index of a tar archive held in memory: a plain ustar archive of ``.msgpack``
    members with distinct keys is indexed from arrays (no tuple per member), anything else
    through :func:`~atdata._shards.tar.scan_tar_bytes` (same result, same errors).

    Args:
        buf: The archive (``bytes``, ``bytearray``, ``mmap`` or a ``memoryview``).
        where: Context for error messages (``" in shard ..."``).
        size: The archive's length in ``buf`` (default: all of it).

    Raises:
        ShardError: When the bytes are not a tar archive, or are truncated.
    """
    from atdata._shards.tar import scan_tar_bytes
    from atdata._shards.tarscan import scan_ustar

    fast = scan_ustar(buf, size)
    if fast is None:
        return _from_entries(scan_tar_bytes(memoryview(buf)[:size], where))
    names, offsets, sizes = fast
    text = "\0".join(names)  # (no name holds a NUL)
    if (  # one dot per name, the one before "msgpack": every member is a sample, keys plain
        text.count(".") == len(names)
        and text.count(".msgpack\0") == len(names) - 1
        and text.endswith(".msgpack")
    ):
        keys = [n[:-8] for n in names]
        if len(set(keys)) == len(keys):
            return ShardIndex(MemberKeys(keys), offsets, sizes)
    return _from_entries(list(zip(names, offsets.tolist(), sizes.tolist(), strict=True)))


def _member_lists(
    entries: list[tuple[str, int, int]],
) -> tuple[list[str], list[int], list[int]]:
    """Keys, offsets and sizes of the ``.msgpack`` members among tar ``entries``."""
    keys: list[str] = []
    offs: list[int] = []
    sizes: list[int] = []
    seen: set[str] = set()
    for name, off, size in entries:
        dot = name.find(".", name.rfind("/") + 1)
        if dot >= 0 and name[dot + 1 :] == "msgpack":
            key = name[:dot]
            if key in seen:  # a duplicated key: the first member wins, like a streaming read's get
                continue
            seen.add(key)
            keys.append(key)
            offs.append(off)
            sizes.append(size)
    return keys, offs, sizes


def _read_persisted(path: str, st: os.stat_result, shard: str) -> ShardIndex | None:
    try:
        with open(path, encoding="utf-8") as f:
            text = f.read()
    except (OSError, UnicodeDecodeError):
        return None
    nl = text.find("\n")
    head = text[: max(nl, 0)].split(" ")
    if nl < 0 or len(head) != 5 or " ".join(head[:2]) != _MAGIC:
        return None
    try:
        size, mtime, count = int(head[2]), int(head[3]), int(head[4])
    except ValueError:
        return None
    body = text[nl + 1 :]
    if size != st.st_size or mtime != st.st_mtime_ns or body.count("\n") != count:
        return None
    if count and not body.endswith("\n"):
        return None
    keys: list[str]
    if _PLAIN_LINES.fullmatch(body):  # no tab in any key: one split, parsed at C speed
        parts = body.replace("\n", "\t").split("\t")
        keys, offs, sizes = parts[0:-1:3], list(map(int, parts[1::3])), list(map(int, parts[2::3]))
    else:
        keys, offs, sizes = [], [], []
        try:
            for line in body.split("\n")[:-1]:
                k, o, z = line.rsplit("\t", 2)
                keys.append(k)
                offs.append(int(o))
                sizes.append(int(z))
        except ValueError:
            return None
    # every member must lie inside the shard (_matches_shard): a lying index never sizes a read
    try:
        idx = ShardIndex(keys, offs, sizes)
    except OverflowError:  # past 64 bits: not an index of this shard
        return None
    return idx if _matches_shard(shard, idx, size) else None


_SAMPLE = 16  # indexed headers checked beyond the first and last
_PLAIN_LINES = re.compile(r"(?:[^\t\n]*\t[0-9]+\t[0-9]+\n)*")


def _hdr_ok(hdr: bytes) -> bool:
    """A plausible tar header block: its checksum adds up."""
    from atdata._shards.tar import _checksum_ok

    return len(hdr) == 512 and _checksum_ok(hdr)


def _hdr_size(hdr: bytes) -> int:
    field = hdr[124:136]
    if field[0] & 0x80:
        return int.from_bytes(field[1:], "big") if not field[0] & 0x40 else -1
    try:
        return int(field.split(b"\0", 1)[0].strip() or b"0", 8)
    except ValueError:
        return -1


class _KeySet:
    """The keys of an index as a set, built only when a gap walk asks (gaps are rare)."""

    __slots__ = ("_keys", "_set")

    def __init__(self, keys: Iterable[str]) -> None:
        self._keys = keys
        self._set: set[str] | None = None

    def __contains__(self, key: object) -> bool:
        if self._set is None:
            self._set = set(self._keys)
        return key in self._set


def _walk_gap(fd: int, pos: int, end: int | None, known: _KeySet, total: int) -> bool:
    """Walk the headers of members between ``pos`` and ``end`` (members the index leaves out):
    only names that are not ``.msgpack`` samples (or duplicates of indexed keys), PAX and
    GNU long-name records may be there, and they must end exactly at ``end`` (``None``: at the
    end-of-archive block or the end of the file)."""
    long_name: str | None = None
    while pos < (total if end is None else end):
        hdr = os.pread(fd, 512, pos)
        if end is None and (len(hdr) < 512 or hdr == bytes(512)):
            return True
        if not _hdr_ok(hdr):
            return False
        size = _hdr_size(hdr)
        if size < 0 or pos + 512 + size > total:
            return False
        typ = hdr[156]
        if typ == 120 or typ == 76:  # PAX or GNU long name: read the name it carries
            data = os.pread(fd, min(size, 1 << 16), pos + 512)
            if typ == 76:
                long_name = data.rstrip(b"\0").decode("utf-8", "replace")
            else:
                for rec in data.split(b"\n"):
                    k, _, v = rec.partition(b"=")
                    if k.endswith(b" path"):
                        long_name = v.decode("utf-8", "replace")
        elif typ in (48, 0, 55):
            name = long_name if long_name is not None else _plain_name(hdr)
            long_name = None
            dot = name.find(".", name.rfind("/") + 1)
            if dot >= 0 and name[dot + 1 :] == "msgpack" and name[:dot] not in known:
                return False  # a sample the index leaves out
        else:
            long_name = None
        pos += 512 + ((size + 511) & ~511)
    return pos == end if end is not None else pos >= total


def _plain_name(hdr: bytes) -> str:
    z = hdr.find(0, 0, 100)
    name = hdr[: z if z >= 0 else 100].decode("utf-8", "replace")
    if hdr[257:262] == b"ustar" and hdr[345]:
        pre = hdr[345:500]
        z = pre.find(0)
        name = (pre if z < 0 else pre[:z]).decode("utf-8", "replace") + "/" + name
    return name


def _matches_shard(path: str, idx: ShardIndex, total: int) -> bool:
    """Cheaply check a persisted index against the shard: offsets ordered and block-aligned, the
    members between indexed ones (usually none) and after the last walked, and the tar header at
    the first, the last and a spread of other indexed offsets naming that key and size."""
    import numpy as np

    offs, sizes, keys = idx.offsets, idx.sizes, idx.keys
    n = len(keys)
    o = np.asarray(offs).astype(np.int64)
    z = np.asarray(sizes).astype(np.int64)
    ends = o + ((z + 511) & ~511)
    prev = np.concatenate((np.zeros(1, np.int64), ends[:-1]))  # where each member may start
    if n and (
        (o > total).any()  # first: o + z below cannot overflow then
        or (z < 0).any()
        or (z > total).any()
        or (o % 512).any()
        or (o - 512 < prev).any()
        or (o + z > total).any()
    ):
        return False
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return False
    try:
        known = _KeySet(keys)
        for i in np.flatnonzero(o - 512 != prev).tolist():  # members between indexed ones
            if not _walk_gap(fd, int(prev[i]), int(o[i]) - 512, known, total):
                return False  # what sits in between is not just other members
        last = int(ends[-1]) if n else 0
        if not _walk_gap(fd, last, None, known, total):  # after the last sample
            return False
        step = max(1, n // _SAMPLE)
        for i in sorted({0, n - 1, *range(0, n, step)} if n else ()):
            hdr = os.pread(fd, 512, offs[i] - 512)
            if not _hdr_ok(hdr) or _hdr_size(hdr) != sizes[i] or hdr[156] not in (48, 0, 55):
                return False
            want = (keys[i] + ".msgpack").encode("utf-8")
            if len(want) <= 100 and _plain_name(hdr) != keys[i] + ".msgpack":
                return False
    except OSError:
        return False
    finally:
        os.close(fd)
    return True


def _persist(path: str, st: os.stat_result, idx: ShardIndex) -> None:
    _write_persisted(path, st, idx.keys, idx.offsets, idx.sizes)


def _write_persisted(
    path: str, st: os.stat_result, keys: Sequence[str], offs: Sequence[int], sizes: Sequence[int]
) -> None:
    body = "".join(f"{k}\t{o}\t{s}\n" for k, o, s in zip(keys, offs, sizes, strict=True))
    text = f"{_MAGIC} {st.st_size} {st.st_mtime_ns} {len(keys)}\n{body}"
    tmp = f"{path}.tmp-{os.getpid()}-{threading.get_ident()}"
    try:
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(tmp, "w", encoding="utf-8") as f:
            f.write(text)
        os.replace(tmp, path)
    except OSError:  # unwritable cache or full disk: the in-memory index still works
        with contextlib.suppress(OSError):
            os.unlink(tmp)


def load_index(
    shard: str,
    source: Any,
    persist: bool = True,
    *,
    stat: os.stat_result | None = None,
    fresh: bool = False,
) -> ShardIndex:
    """The member index of ``shard``: from a valid ``<shard>.idx`` beside it or in the cache
    directory, else a header-only scan (then persisted in the cache directory).

    Args:
        shard: The shard.
        source: The source it is read through.
        persist: Whether to read and write persisted indexes (local shards).
        stat: The local shard's ``os.stat`` taken by the caller before this call (it notes
            which file the index describes); default: taken here.
        fresh: Scan the local shard even when a persisted index seems valid (after the shard
            changed: a rewrite may keep its size and modification time), then persist it.

    Raises:
        ShardError: When the shard is missing, unreadable or not a tar archive.
    """
    from atdata._shards.tar import iter_tar, scan_tar_file

    where = f" in shard {shard}"
    if is_remote(shard) or not hasattr(source, "read_range"):
        f = source.open_shard(shard)
        try:
            entries = [(n, o, len(d)) for n, o, d in iter_tar(f.read, where)]
        finally:
            f.close()
        return _from_entries(entries)
    path = shard[7:] if shard.startswith("file://") else shard
    st = stat
    if st is None:
        try:
            st = os.stat(path)
        except OSError as exc:
            raise shard_open_error(path, exc) from None
    if not persist:
        return _from_entries(scan_tar_file(path, where))
    idx = None if fresh else _read_persisted(index_path(shard), st, path)
    if idx is None:
        cpath = cache_path(shard)
        idx = None if fresh else _read_persisted(cpath, st, path)
        if idx is not None:
            touch(cpath)  # the LRU clock of prune_cache
        else:
            keys, offs, sizes = _member_lists(scan_tar_file(path, where))
            _write_persisted(cpath, st, keys, offs, sizes)
            idx = ShardIndex(keys, offs, sizes)
    return idx


def prune_cache(
    *, limit: int | None = None, min_age: float = 3600.0, dry_run: bool = False
) -> list[tuple[str, str, int]]:
    """Trim the member-index cache (:func:`cache_dir`), as ``atdata local gc`` does: temporary
    files of killed writers older than ``min_age`` seconds, then the least recently used indexes
    until the rest fits in ``limit`` bytes (default ``$ATDATA_MEMBERS_CACHE_LIMIT``, else 1 GiB).
    An index is written whole under another name first, so none is taken mid-write; one removed
    is rebuilt by a header scan the next time its shard is read.

    Returns:
        ``(kind, path, size)`` for each file removed: kind ``"temp"`` or ``"members-cache"``.

    Raises:
        ConfigError: When ``limit`` or ``$ATDATA_MEMBERS_CACHE_LIMIT`` is not a whole number
            of bytes (0 or more).
    """
    return trim_cache(
        cache_dir(),
        suffix=".idx",
        kind="members-cache",
        limit=limit,
        env=_LIMIT_ENV,
        default=DEFAULT_CACHE_LIMIT,
        what="the member-index cache",
        min_age=min_age,
        dry_run=dry_run,
    )


Stamp = tuple[int, int, int, int, int]
"""What tells one file from another at a path: device, inode, size, mtime_ns and ctime_ns (a
rewrite in place that keeps the size and sets the old mtime back still moves the ctime)."""

RECHECK_NS = 1_000_000_000
"""How often (ns) :class:`FdCache` checks that a shard's path still names the file it holds
open: at most once per shard per second, not per read (an ``os.stat`` costs a few
microseconds, a quarter of a ``ds[i]``; far more on a network filesystem)."""

_now = time.monotonic_ns  # (tests move this clock instead of waiting)
_MAX_FDS = 256
_O_READ = os.O_RDONLY | getattr(os, "O_CLOEXEC", 0)
_Entry = tuple[int, int, int, int, Stamp]  # FdCache: fd, next path check, ctime, size, stamp


def stamp_of(st: os.stat_result) -> Stamp:
    """The :data:`Stamp` of a file's ``os.stat``/``os.fstat``."""
    return (st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns)


class FdCache:
    """Open file descriptors of local shards, for ``os.pread`` (safe across threads and forks),
    each checked against the file its member index describes.

    A descriptor is opened when a shard is first read and its file's :data:`Stamp` compared
    with the one in ``stamps`` (noted when the index was built). Each read fstats it (as
    the range check always did): a file rewritten in place (its size, mtime or ctime moved) or
    no longer named by any path (removed, or replaced by a rename over it) is let go and the
    path opened and checked again. The path itself is stat'ed at most once every
    :data:`RECHECK_NS` per shard (an ``os.stat`` is not free): that catches a path that names
    another file while the open one is left untouched (its directory renamed away and another
    put in its place, a symlink on the way pointed elsewhere). A file that is not the indexed one
    raises :class:`~atdata._errors.ShardChangedError` (the caller indexes it again or refuses),
    a removed one :class:`~atdata.DataNotFoundError`: reads never go to another file at the old
    offsets, nor to a removed or replaced one.

    Args:
        stamps: Shard -> the :data:`Stamp` of the file its member index was built from (the
            caller's dict, read as it changes); a shard without one is read as it is.
    """

    def __init__(self, stamps: dict[str, Stamp] | None = None) -> None:
        # shard -> (fd, when to stat its path again, its ctime_ns, its size, its stamp);
        # inherited by forked workers: pread has no shared offset
        self._fds: dict[str, _Entry] = {}
        self._retired: list[int] = []  # fds of changed files: closed with the next batch
        self._stamps: dict[str, Stamp] = {} if stamps is None else stamps
        self._fin = weakref.finalize(self, _close_all, self._fds, self._retired)

    def pread(self, shard: str, offset: int, size: int) -> bytes:
        """Read ``size`` bytes at ``offset`` of a local shard.

        Raises:
            ShardChangedError: When the file is not the one its stamp describes (see above).
            DataNotFoundError: When the shard no longer exists.
            ShardError: When the shard cannot be opened or the read comes back short.
        """
        hit = self._fds.get(shard)
        if hit is not None and _now() < hit[1]:
            fd, _due, ctime, total, _stamp = hit
            st = os.fstat(fd)
            # (a write, truncate or utime moves the ctime; the last unlink may not: nlink 0)
            if st.st_ctime_ns != ctime or st.st_size != total or not st.st_nlink:
                self._retire(shard)  # changed in place, removed or renamed over: the path again
                fd, st = self._checked(shard, None)
        else:
            fd, st = self._checked(shard, hit)
        total = st.st_size
        if size < 0 or offset < 0 or offset + size > total:
            return pread_exact(fd, size, offset, shard, total)  # (raises, naming the range)
        data = os.pread(fd, size, offset)
        if len(data) != size:
            return pread_exact(fd, size, offset, shard, total)
        return data

    def _checked(self, shard: str, hit: _Entry | None) -> tuple[int, os.stat_result]:
        """A descriptor of ``shard`` checked against its stamp, and its file's stat: ``hit``'s
        when its path still names the file it holds (``hit``: due for that check), else one
        opened now."""
        path = shard if shard[:7] != "file://" else shard[7:]
        if hit is not None:  # due: does the path still name the open file?
            try:
                st = os.stat(path)
            except OSError as exc:
                self._retire(shard)
                raise shard_open_error(shard, exc) from None
            if stamp_of(st) == hit[4]:
                self._fds[shard] = (hit[0], _now() + RECHECK_NS, hit[2], hit[3], hit[4])
                return hit[0], st
            self._retire(shard)  # another file now: open it and check it below
        try:
            fd = os.open(path, _O_READ)
        except OSError as exc:
            raise shard_open_error(shard, exc) from None
        try:
            st = os.fstat(fd)
        except OSError as exc:
            os.close(fd)
            raise shard_open_error(shard, exc) from None
        got = self._stamps.get(shard)
        if got is None:
            got = stamp_of(st)
        elif (  # (field by field: no stamp built on this path, taken once per open)
            st.st_ctime_ns != got[4]
            or st.st_ino != got[1]
            or st.st_size != got[2]
            or st.st_mtime_ns != got[3]
            or st.st_dev != got[0]
        ):
            os.close(fd)
            raise ShardChangedError(
                f"shard {shard} changed since its member index was built (rewritten, replaced "
                "or renamed over): read it again once it stops changing, or open the dataset "
                "again"
            )
        if len(self._fds) >= _MAX_FDS:
            _close_all(self._fds, self._retired)
        self._fds[shard] = (fd, _now() + RECHECK_NS, got[4], got[2], got)
        return fd, st

    def _retire(self, shard: str) -> None:
        """Stop using ``shard``'s descriptor; it is closed with the next batch, not now (a
        thread between looking it up and reading it must not get a reused number)."""
        hit = self._fds.pop(shard, None)
        if hit is not None:
            self._retired.append(hit[0])

    def close(self) -> None:
        """Close every cached descriptor."""
        _close_all(self._fds, self._retired)


def _close_all(fds: dict[str, _Entry], retired: list[int]) -> None:
    for fd in [hit[0] for hit in fds.values()] + retired:
        try:  # (not contextlib.suppress: with 256 descriptors, its cost shows in ds[i])
            os.close(fd)
        except OSError:  # (closed already)
            continue
    fds.clear()
    retired.clear()
