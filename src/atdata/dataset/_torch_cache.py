"""The local shard cache of streaming-mode :class:`~atdata.dataset._torch.TorchDataset`.

A remote shard (HTTP, S3, ATProto blob, any :class:`~atdata.DataSource`) is fetched with one
sequential ``open_shard`` read (so the source's own checks, such as a blob's sha256, run on the
whole stream, and so does the check against a recorded sha256, see ``_torch_digest``) into a
file of the cache directory, then read with ``os.pread`` through a member index built by a
header-only scan. DataLoader workers of one node share the directory: a lock
file per shard makes one of them download it while the others wait for the finished file, so each
shard crosses the network once. Files appear atomically (temp name, then ``os.replace``). A
download the source refuses or cuts short is tried again, from its start, three times in all
(see :func:`transfer`).

The directory is kept under ``limit`` bytes by deleting the least recently used shards (the
shards the caller still needs soon are never chosen); a deleted shard a worker still has open
stays readable to it, and one needed again is fetched again. A single reading process (no
DataLoader workers) holds shards in memory instead (:class:`_Mem`), under the same ``limit``:
those that fit stay for the next epochs, the rest are dropped first held, first dropped, and
their buffers reused by the next downloads.

Examples:
    >>> import os, tempfile, atdata
    >>> d = tempfile.mkdtemp()
    >>> ds = atdata.write_samples([{"i": i} for i in range(3)], os.path.join(d, "a.tar"))
    >>> os.makedirs(os.path.join(d, "cache"))
    >>> c = ShardCache(os.path.join(d, "cache"), 1 << 30)
    >>> c.count(ds.source, ds.list_shards()[0]), c.raw(ds.source, ds.list_shards()[0], 2)[1]["i"]
    (3, 2)
"""

from __future__ import annotations

import contextlib
import hashlib
import mmap
import os
import shutil
import threading
import time
from collections.abc import Callable
from typing import Any

import msgpack

from atdata._errors import DataNotFoundError, DecodeError, IntegrityError, ShardError
from atdata._logging import get_logger
from atdata._shards import tarscan as _tarscan  # noqa: F401  (imported here, not by a download)
from atdata._shards.members import (
    _from_entries,
    _persist,
    _read_persisted,
    index_tar_bytes,
    load_index,
)
from atdata._shards.sources import is_remote
from atdata._shards.tar import scan_tar_file
from atdata._wire.sample import not_a_map, unpack_failure
from atdata.dataset._forks import fresh_after_fork
from atdata.dataset._torch_digest import Expected, checked

__all__ = ["ShardCache", "checked_unpack"]

_CHUNK = 1 << 22
_SPARE = 8  # buffers of dropped shards kept for the next downloads (or one per shard in flight)
_ORPHAN_AGE = 60.0  # seconds before an index without its shard (or a dead download's file) goes
_ATTEMPTS = 3  # downloads of a shard the reader tries when the source fails (prefetch: one)
_RETRY_PAUSE = 0.5  # seconds before the second download, doubled before each next
_unpackb = msgpack.unpackb


def _lock(fd: int) -> None:
    try:
        import fcntl
    except ImportError:  # pragma: no cover - not POSIX: two workers may fetch the same shard
        return
    fcntl.flock(fd, fcntl.LOCK_EX)


class _Local:
    """A fetched shard: its file descriptor and member index (key, offset, size per sample).

    The index is the one built while downloading (``idx``), else the ``.idx`` the downloading
    process left beside the file, else a header-only scan.
    """

    __slots__ = ("fd", "keys", "mm", "offsets", "path", "sizes", "view")

    def __init__(self, path: str, shard: str, idx: Any = None, sidecar: bool = False) -> None:
        try:
            self.fd = os.open(path, os.O_RDONLY | getattr(os, "O_CLOEXEC", 0))
        except OSError as exc:
            raise ShardError(f"cannot open shard {shard} at {path}: {exc.strerror}") from None
        try:
            if idx is None and sidecar:
                idx = _read_persisted(path + ".idx", os.fstat(self.fd), path)
            if idx is None:
                idx = _from_entries(scan_tar_file(path, f" in shard {shard} (read from {path})"))
            total = os.fstat(self.fd).st_size
            if any(o + n > total for o, n in zip(idx.offsets, idx.sizes, strict=True)):
                raise ShardError(
                    f"the member index of shard {shard} points past the end of {path}; "
                    "delete the shard cache directory and fetch again"
                )
            # mapped, not pread: slicing keeps the GIL, so the prefetch thread cannot stall
            # every read (a GIL hand-over on each pread costs more than the read)
            self.mm = mmap.mmap(self.fd, 0, access=mmap.ACCESS_READ) if total else None
        except BaseException:
            os.close(self.fd)
            raise
        self.view = memoryview(self.mm) if self.mm is not None else memoryview(b"")
        self.path = path
        self.keys, self.offsets, self.sizes = idx.keys, idx.offsets, idx.sizes

    def close(self) -> None:
        self.view.release()
        if self.mm is not None:
            self.mm.close()
        os.close(self.fd)


class _Mem:
    """A shard held in this process's memory (streaming without workers): downloaded into a
    recycled buffer, so the bytes are copied once (socket to buffer) and no page of a cache file
    has to be allocated, written and mapped."""

    __slots__ = ("buf", "keys", "offsets", "path", "sizes", "view")

    def __init__(
        self, source: Any, shard: str, buf: Any, want: Expected | None = None, attempts: int = 1
    ) -> None:
        def sink(f: Any) -> int:
            length = getattr(f, "length", None)  # (the Content-Length, where the stream knows it)
            if isinstance(length, int) and isinstance(buf, mmap.mmap) and len(buf) <= length:
                buf.resize(length + 1)  # (room for all of it, and the byte that shows the end)
            return _read_into(f, buf)

        n = transfer(source, shard, want, sink, attempts)
        self.buf = buf
        self.view = memoryview(buf)[:n]
        idx = index_tar_bytes(buf, f" in shard {shard} (held in memory)", n)
        self.path = "(memory)"
        self.keys, self.offsets, self.sizes = idx.keys, idx.offsets, idx.sizes

    def close(self) -> None:
        self.view.release()


def _new_buffer(size: int) -> Any:
    """A writable buffer of ``size`` bytes: an anonymous mapping whose pages the kernel supplies
    as the download's socket reads first write them, with the GIL released (pre-faulting them
    with ``MAP_POPULATE``, or zero-filling a ``bytearray``, costs as much CPU but holds the GIL,
    stalling the thread that decodes batches for several milliseconds per shard; huge pages
    measured cheaper in isolation but cost 3x more CPU in a loaded process: compaction)."""
    flags = getattr(mmap, "MAP_PRIVATE", 0) | getattr(mmap, "MAP_ANONYMOUS", 0)
    try:
        return mmap.mmap(-1, size, flags=flags)
    except (OSError, TypeError, ValueError):  # pragma: no cover - not Linux
        return bytearray(size)


def _read_into(f: Any, buf: Any) -> int:
    """Read stream ``f`` to its end into ``buf`` (grown as needed); the byte count."""
    readinto = getattr(f, "readinto", None)
    n = 0
    while True:
        if n == len(buf):  # (a recycled buffer usually has room: shards are alike in size)
            if isinstance(buf, mmap.mmap):
                buf.resize(len(buf) + max(_CHUNK, len(buf) // 2))
            else:
                buf.extend(bytes(max(_CHUNK, len(buf) // 2)))
        want = len(buf) - n  # (all the room: a socket read fills it with the GIL released once)
        with memoryview(buf) as mv:
            if readinto is not None:
                got = readinto(mv[n : n + want])
            else:
                block = f.read(want)
                got = len(block)
                mv[n : n + got] = block
        if not got:
            return n
        n += got


def transfer(
    source: Any, shard: str, want: Expected | None, sink: Callable[[Any], Any], attempts: int
) -> Any:
    """``sink(stream)`` of ``shard`` opened with ``source.open_shard`` and checked against
    ``want`` (a mismatch raises at the end of the stream), tried up to ``attempts`` times while
    the source fails (a refused, cut or timed-out connection, an HTTP error: ``ShardError``),
    pausing between tries; never again for a shard that is not there or bytes that do not
    match their record.

    Raises:
        ShardError: The source's last failure.
        IntegrityError: When the bytes do not match ``want``.
    """
    k = 1
    while True:
        try:
            f = checked(source.open_shard(shard), shard, want)
            try:
                return sink(f)
            finally:
                f.close()
        except ShardError as exc:
            if k >= attempts or isinstance(exc, DataNotFoundError):
                raise
            get_logger().info(
                "to_torch: fetching shard %s failed (%s); trying again (%d of %d)",
                shard, exc, k + 1, attempts,
            )  # fmt: skip
        time.sleep(_RETRY_PAUSE * 2 ** (k - 1))
        k += 1


def _abandoned(e: os.DirEntry[str]) -> bool:
    """Whether ``e``, a download's ``<name>.tar.part-PID-TID``, was left by a process that is
    gone (a worker stopped while its prefetch thread downloaded) and unwritten for
    ``_ORPHAN_AGE`` seconds (a download going on elsewhere, in a shared directory, writes)."""
    if os.name != "posix":  # (elsewhere os.kill(pid, 0) would end the process)
        return False
    try:
        pid = int(e.name.rsplit(".part-", 1)[1].split("-", 1)[0])
        if pid == os.getpid() or time.time() - e.stat().st_mtime <= _ORPHAN_AGE:
            return False
        os.kill(pid, 0)  # (signal 0: only asks whether the process exists)
    except ProcessLookupError:
        return True
    except (OSError, ValueError, IndexError):  # (a process of another user is alive)
        return False
    return False


def _index_file(path: str, where: str) -> Any:
    """The member index of the tar file at ``path`` (mapped: its pages are in memory).

    Raises:
        ShardError: When it is not a tar (raised after the map is closed: the error's
            traceback holds views of the map, which would make closing it a ``BufferError``).
    """
    failed: str | None = None
    with open(path, "rb") as g:
        mm = mmap.mmap(g.fileno(), 0, access=mmap.ACCESS_READ)
        try:
            return index_tar_bytes(mm, where)
        except ShardError as exc:
            failed = str(exc)  # (the traceback goes with ``exc`` at the end of this block)
        finally:
            with contextlib.suppress(BufferError):  # (else it closes when collected)
                mm.close()
    raise ShardError(failed)


def checked_unpack(view: Any, off: int, size: int, shard: str, key: str) -> dict:
    """The payload map at ``view[off:off + size]`` (sample ``key`` of ``shard``).

    Raises:
        DecodeError: When the payload is not a msgpack map (naming the shard and the sample).
    """
    try:
        raw = _unpackb(view[off : off + size])
    except Exception as exc:
        where = f" in shard {shard}, sample {key!r}"
        err = unpack_failure(exc, where)
        raise err or DecodeError(f"payload is not valid msgpack ({exc}){where}") from None
    if type(raw) is not dict:
        raise not_a_map(raw, f" in shard {shard}, sample {key!r}")
    return raw


class ShardCache:
    """Fetches whole shards into ``directory`` (at most ``limit`` bytes) and reads their samples.

    Args:
        directory: Where shard files go (an existing directory); shared by the workers of a node.
        limit: Target size of the directory in bytes; least recently used shards are deleted.
        direct: Read local shard files where they are instead of copying them.

    Attributes:
        expect: Shard -> the size and sha256 recorded for it: its download is checked against
            them (see :mod:`~atdata.dataset._torch_digest`) and a mismatch is never made visible.
    """

    def __init__(self, directory: str, limit: int, direct: bool = False) -> None:
        self.directory = directory
        self.limit = int(limit)
        self.direct = direct
        self.expect: dict[str, Expected] = {}
        self.lookup: Callable[[str], Expected | None] | None = None  # (see :meth:`_want`)
        self._looked: set[str] = set()
        self._looking: dict[str, threading.Lock] = {}
        self.keep: set[str] = set()  # shards the reader needs soon: never evicted by this process
        self.pinned: set[str] = set()  # shards whose views the reader holds: never closed
        self._open: dict[str, _Local] = {}
        self._built: dict[str, Any] = {}  # member indexes built while this process downloaded
        self._spare: list[Any] = []  # buffers of shards held in memory, for reuse
        self._size_hint = _CHUNK  # a new buffer's size: the largest shard held so far
        self._holding: dict[str, threading.Lock] = {}  # one download per shard at a time
        self.failed: dict[str, IntegrityError] = {}  # (see :meth:`_check_failed`)
        self._mu = threading.Lock()
        fresh_after_fork(self, "_mu", "_holding", "_looking")  # (a parent thread may hold them)

    def __getstate__(self) -> dict[str, Any]:  # workers open their own files
        return {
            "directory": self.directory,
            "limit": self.limit,
            "direct": self.direct,
            "expect": self.expect,
            "lookup": self.lookup,
        }

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__init__(state["directory"], state["limit"], state["direct"])  # type: ignore[misc]
        self.expect = state["expect"]
        self.lookup = state["lookup"]

    def _want(self, shard: str) -> Expected | None:
        """What ``shard`` must be: the record in :attr:`expect`, else what :attr:`lookup` finds
        (a manifest published beside it), asked once per shard and before anything names the
        shard's cache file (whose name holds the digest), other threads waiting for it."""
        want = self.expect.get(shard)
        if want is not None or self.lookup is None or shard in self._looked:
            return want
        with self._mu:
            lock = self._looking.setdefault(shard, threading.Lock())
        with lock:
            if shard not in self._looked:
                found = self.lookup(shard)
                if found is not None:
                    self.expect[shard] = found
                self._looked.add(shard)
        return self.expect.get(shard)

    def settle(self, shard: str, want: Expected | None) -> None:
        """Record what ``shard`` must be as found elsewhere (its manifest, read for its count):
        :attr:`lookup` is not asked for it again."""
        if want is not None:
            self.expect.setdefault(shard, want)
        self._looked.add(shard)

    def _check_failed(self, shard: str) -> None:
        """Raise the mismatch that the prefetch thread met downloading ``shard`` (recorded in
        :attr:`failed`, once, before that download let go of the shard's lock: a reader that
        waited for the lock meets it there), without downloading the shard again."""
        exc = self.failed.pop(shard, None)
        if exc is not None:
            try:
                raise exc
            finally:  # (a local naming the error it raised: a cycle through its traceback,
                del exc  # which would keep the reader's frames, and the dataset, until a GC)

    def path(self, shard: str) -> str:
        """The cache file of ``shard`` (named by its URL and the sha256 it must have, when one
        is recorded: such a file was renamed into place only after its bytes matched, so it is
        used without hashing it again, and a shard whose record changed is fetched again)."""
        want = self.expect.get(shard)
        name = shard if want is None else f"{shard}\n{want.sha256}"
        digest = hashlib.sha256(name.encode("utf-8", "surrogatepass")).hexdigest()[:32]
        return os.path.join(self.directory, digest + ".tar")

    def fetch(self, source: Any, shard: str, keep_failure: bool = False) -> str:
        """The local file of ``shard``, fetching it first (one sequential read) if needed
        (``keep_failure``: a mismatch with the recorded sha256 is also kept in :attr:`failed`,
        for the reader: the prefetch thread's download).

        Raises:
            ShardError: When the shard cannot be fetched or the cache cannot be written.
        """
        if self.direct and not is_remote(shard):  # read where it is
            return shard[7:] if shard.startswith("file://") else shard
        self._want(shard)
        path = self.path(shard)
        try:
            mtime = os.stat(path).st_mtime_ns
        except OSError:
            mtime = None
        if mtime is not None:
            with contextlib.suppress(OSError):
                # most recently used: the access time (the modification time stays, as the
                # member index written beside the file is valid only for that stamp)
                os.utime(path, ns=(time.time_ns(), mtime))
            return path
        try:  # never recreates the directory: a removed temporary cache stays removed
            lock_fd = os.open(path + ".lock", os.O_RDWR | os.O_CREAT, 0o600)
        except OSError as exc:
            raise ShardError(
                f"cannot use the shard cache {self.directory} for shard {shard}: {exc.strerror}; "
                "pass a writable cache_dir to to_torch()"
            ) from None
        try:
            _lock(lock_fd)
            if os.path.exists(path):  # another worker fetched it while this one waited
                return path
            self._check_failed(shard)  # (the prefetch thread's download, which this one awaited)
            tmp = f"{path}.part-{os.getpid()}-{threading.get_ident()}"
            try:
                idx = self._download(source, shard, tmp, 1 if keep_failure else _ATTEMPTS)
                _persist(path + ".idx", os.stat(tmp), idx)  # for the other workers
                os.replace(tmp, path)
                with self._mu:
                    self._built[shard] = idx
            except BaseException as exc:
                with contextlib.suppress(OSError):
                    os.unlink(tmp)
                if keep_failure and isinstance(exc, IntegrityError):
                    self.failed[shard] = exc
                raise
        finally:
            os.close(lock_fd)  # releases the lock
        self._evict({path, *(self.path(k) for k in set(self.keep))})
        return path

    def _download(self, source: Any, shard: str, tmp: str, attempts: int) -> Any:
        """Copy the shard into ``tmp`` with one sequential read (``attempts``: see
        :func:`transfer`), then index its members from the file's pages (just written, so in
        memory) with the array scan of tar headers (a shard with a recorded digest is checked as
        it arrives: a mismatch raises before that)."""
        chunk = bytearray(_CHUNK)

        def sink(f: Any) -> int:
            readinto = getattr(f, "readinto", None)
            with open(tmp, "wb") as out, memoryview(chunk) as mv:  # (buffered: writes whole)
                while True:
                    if readinto is not None:
                        got = readinto(mv)
                        block: Any = mv[:got]
                    else:
                        block = f.read(_CHUNK)
                        got = len(block)
                    if not got:
                        break
                    out.write(block)
                return out.tell()

        try:
            size = transfer(source, shard, self.expect.get(shard), sink, attempts)
            where = f" in shard {shard}"
            if not size:
                return index_tar_bytes(b"", where)
            return _index_file(tmp, where)
        except OSError as exc:
            if isinstance(exc, ShardError):
                raise
            raise ShardError(
                f"cannot write shard {shard} into the cache {self.directory}: {exc}; "
                "free space or pass another cache_dir / a smaller cache_limit"
            ) from None

    def _evict(self, keep: set[str]) -> None:
        try:
            entries = []
            with os.scandir(self.directory) as it:
                for e in it:
                    if e.name.endswith(".tar"):
                        st = e.stat()
                        entries.append((st.st_atime_ns, st.st_size, e.path))
                    elif e.name.endswith(".tar.idx") and not os.path.exists(e.path[:-4]):
                        # its shard was evicted (a fresh one may be a download's, written just
                        # before its shard file is renamed into place)
                        with contextlib.suppress(OSError):
                            if time.time() - e.stat().st_mtime > _ORPHAN_AGE:
                                os.unlink(e.path)
                    elif ".tar.part-" in e.name and _abandoned(e):
                        with contextlib.suppress(OSError):
                            os.unlink(e.path)
        except OSError:
            return
        total = sum(size for _t, size, _p in entries)
        for _t, size, p in sorted(entries):
            if total <= self.limit:
                break
            if p in keep:
                continue
            with contextlib.suppress(OSError):
                os.unlink(p)
                total -= size
            with contextlib.suppress(OSError):
                os.unlink(p + ".idx")

    def hold(self, source: Any, shard: str, keep_failure: bool = False) -> None:
        """Download ``shard`` into this process's memory (see :class:`_Mem`) unless it is open
        (``keep_failure``: as for :meth:`fetch`)."""
        with self._mu:
            lock = self._holding.setdefault(shard, threading.Lock())
        with lock:  # the prefetch thread and the reader never download one shard twice
            if shard in self._open:
                return
            self._check_failed(shard)
            self._want(shard)
            with self._mu:
                buf = self._spare.pop() if self._spare else None
            if buf is None:  # (allocated outside the lock: the reader may need it meanwhile)
                buf = _new_buffer(self._size_hint)
            try:
                tries = 1 if keep_failure else _ATTEMPTS
                loc = _Mem(source, shard, buf, self.expect.get(shard), tries)
                self._size_hint = max(self._size_hint, len(loc.view) + 1)
            except IntegrityError as exc:
                if keep_failure:
                    self.failed[shard] = exc
                raise
            except OSError as exc:
                if isinstance(exc, ShardError):
                    raise
                raise ShardError(f"cannot read shard {shard}: {exc}") from None
            self._add(shard, loc)

    def _add(self, shard: str, loc: Any) -> Any:
        with self._mu:
            known = self._open.get(shard)
            if known is not None:  # another thread opened it meanwhile
                self._close(loc)
                return known
            files = [s for s, o in self._open.items() if type(o) is _Local]
            if len(files) >= 64:  # (never a pinned shard: a batch being built reads it)
                for s in [s for s in files if s not in self.pinned]:
                    self._close(self._open.pop(s))
            self._open[shard] = loc
        return loc

    def _close(self, loc: Any) -> None:
        with contextlib.suppress(OSError, BufferError):
            loc.close()
            if type(loc) is _Mem and len(self._spare) < max(_SPARE, len(self.keep)):
                self._spare.append(loc.buf)

    def local(
        self, source: Any, shard: str, memory: bool = False, keep_failure: bool = False
    ) -> Any:
        """The fetched, indexed shard (kept open by this process; ``memory``: held in memory
        rather than in the cache directory, for a remote shard not already there;
        ``keep_failure``: as for :meth:`fetch`)."""
        loc = self._open.get(shard)
        if loc is not None:
            return loc
        if memory and is_remote(shard):
            self._want(shard)  # (before the cache file's name, which holds the digest)
            if not os.path.exists(self.path(shard)):
                self.hold(source, shard, keep_failure)
                return self._open[shard]
        if self.direct and not is_remote(shard):
            path = shard[7:] if shard.startswith("file://") else shard
            loc = _Local(path, shard, load_index(path, source))  # the persisted member index
        else:
            path = self.fetch(source, shard, keep_failure)
            try:
                loc = _Local(path, shard, self._built.pop(shard, None), sidecar=True)
            except ShardError:  # evicted between fetch and open: fetch again
                path = self.fetch(source, shard, keep_failure)
                loc = _Local(path, shard, self._built.pop(shard, None), sidecar=True)
        return self._add(shard, loc)

    def count(self, source: Any, shard: str, memory: bool = False) -> int:
        """Samples in ``shard`` (fetching it into the cache, or into memory)."""
        return len(self.local(source, shard, memory).keys)

    def raw(self, source: Any, shard: str, i: int, memory: bool = False) -> tuple[str, dict]:
        """``(key, payload map)`` of the ``i``-th sample of ``shard``.

        Raises:
            DecodeError: When the payload is not a msgpack map.
        """
        loc = self._open.get(shard) or self.local(source, shard, memory)
        key = loc.keys[i]
        return key, checked_unpack(loc.view, loc.offsets[i], loc.sizes[i], shard, key)

    def entry(
        self, source: Any, shard: str, i: int, memory: bool = False
    ) -> tuple[str, str, memoryview, int, int]:
        """``(shard, key, view, offset, size)``: where the undecoded payload of the ``i``-th
        sample of ``shard`` lies (``view`` stays valid while the shard is open: until
        :meth:`trim` or :meth:`close`; decode it with :func:`checked_unpack`)."""
        loc = self._open.get(shard) or self.local(source, shard, memory)
        return shard, loc.keys[i], loc.view, loc.offsets[i], loc.sizes[i]

    def close(self) -> None:
        """Close the files this process opened."""
        with self._mu:
            for loc in self._open.values():
                self._close(loc)
            self._open.clear()
            self._spare.clear()

    def trim(self, keep: set[str]) -> None:
        """Close the shards this process has open that are not in ``keep``: mapped files at once
        (they stay in the directory); shards held in memory while those hold over ``limit`` bytes,
        first held first (the rest stay for the next epochs: no download or hash again)."""
        with self._mu:
            held = sum(len(loc.view) for loc in self._open.values() if type(loc) is _Mem)
            for shard in [s for s in self._open if s not in keep]:
                loc = self._open[shard]
                if type(loc) is _Mem:
                    if held <= self.limit:
                        continue
                    held -= len(loc.view)
                self._close(self._open.pop(shard))

    def remove(self) -> None:
        """Delete the whole directory (a private temporary cache at the end of its life)."""
        self.close()
        shutil.rmtree(self.directory, ignore_errors=True)
