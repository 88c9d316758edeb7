"""The local shard cache of streaming-mode :class:`~atdata.dataset._torch.TorchDataset`.

A remote shard (HTTP, S3, ATProto blob, any :class:`~atdata.DataSource`) is fetched with one
sequential ``open_shard`` read (so the source's own checks, such as a blob's sha256, run on the
whole stream) into a file of the cache directory, then read with ``os.pread`` through a member
index built by a header-only scan. DataLoader workers of one node share the directory: a lock
file per shard makes one of them download it while the others wait for the finished file, so each
shard crosses the network once. Files appear atomically (temp name, then ``os.replace``).

The directory is kept under ``limit`` bytes by deleting the least recently used shards (the
shards the caller still needs soon are never chosen); a deleted shard a worker still has open
stays readable to it, and one needed again is fetched again.

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
import os
import shutil
import threading
from typing import Any

import msgpack

from atdata._errors import DecodeError, ShardError
from atdata._shards.sources import is_remote
from atdata._wire.sample import not_a_map, unpack_failure

__all__ = ["ShardCache"]

_CHUNK = 1 << 22
_unpackb = msgpack.unpackb


def _lock(fd: int) -> None:
    try:
        import fcntl
    except ImportError:  # pragma: no cover - not POSIX: two workers may fetch the same shard
        return
    fcntl.flock(fd, fcntl.LOCK_EX)


class _Local:
    """A fetched shard: its file descriptor and member index (key, offset, size per sample)."""

    __slots__ = ("fd", "keys", "offsets", "path", "sizes")

    def __init__(self, path: str, shard: str) -> None:
        from atdata._shards.members import _from_entries
        from atdata._shards.tar import scan_tar_file

        try:
            self.fd = os.open(path, os.O_RDONLY | getattr(os, "O_CLOEXEC", 0))
        except OSError as exc:
            raise ShardError(f"cannot open shard {shard} at {path}: {exc.strerror}") from None
        try:
            idx = _from_entries(scan_tar_file(path, f" in shard {shard} (read from {path})"))
        except BaseException:
            os.close(self.fd)
            raise
        self.path = path
        self.keys, self.offsets, self.sizes = idx.keys, idx.offsets, idx.sizes


class ShardCache:
    """Fetches whole shards into ``directory`` (at most ``limit`` bytes) and reads their samples.

    Args:
        directory: Where shard files go (an existing directory); shared by the workers of a node.
        limit: Target size of the directory in bytes; least recently used shards are deleted.
        direct: Read local shard files where they are instead of copying them.
    """

    def __init__(self, directory: str, limit: int, direct: bool = False) -> None:
        self.directory = directory
        self.limit = int(limit)
        self.direct = direct
        self.keep: set[str] = set()  # shards the reader needs soon: never evicted by this process
        self._open: dict[str, _Local] = {}
        self._mu = threading.Lock()

    def __getstate__(self) -> dict[str, Any]:  # workers open their own files
        return {"directory": self.directory, "limit": self.limit, "direct": self.direct}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__init__(state["directory"], state["limit"], state["direct"])  # type: ignore[misc]

    def path(self, shard: str) -> str:
        """The cache file of ``shard``."""
        digest = hashlib.sha256(shard.encode("utf-8", "surrogatepass")).hexdigest()[:32]
        return os.path.join(self.directory, digest + ".tar")

    def fetch(self, source: Any, shard: str) -> str:
        """The local file of ``shard``, fetching it first (one sequential read) if needed.

        Raises:
            ShardError: When the shard cannot be fetched or the cache cannot be written.
        """
        path = self.path(shard)
        if os.path.exists(path):
            with contextlib.suppress(OSError):
                os.utime(path)  # most recently used
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
            tmp = f"{path}.part-{os.getpid()}-{threading.get_ident()}"
            try:
                self._download(source, shard, tmp)
                os.replace(tmp, path)
            except BaseException:
                with contextlib.suppress(OSError):
                    os.unlink(tmp)
                raise
        finally:
            os.close(lock_fd)  # releases the lock
        self._evict({path, *(self.path(k) for k in set(self.keep))})
        return path

    def _download(self, source: Any, shard: str, tmp: str) -> None:
        f = source.open_shard(shard)
        try:
            with open(tmp, "wb") as out:
                read = f.read
                while True:
                    block = read(_CHUNK)
                    if not block:
                        break
                    out.write(block)
        except OSError as exc:
            if isinstance(exc, ShardError):
                raise
            raise ShardError(
                f"cannot write shard {shard} into the cache {self.directory}: {exc}; "
                "free space or pass another cache_dir / a smaller cache_limit"
            ) from None
        finally:
            f.close()

    def _evict(self, keep: set[str]) -> None:
        try:
            entries = []
            with os.scandir(self.directory) as it:
                for e in it:
                    if e.name.endswith(".tar"):
                        st = e.stat()
                        entries.append((st.st_mtime, st.st_size, e.path))
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

    def local(self, source: Any, shard: str) -> _Local:
        """The fetched, indexed shard (kept open by this process)."""
        loc = self._open.get(shard)
        if loc is not None:
            return loc
        if self.direct and not is_remote(shard):
            loc = _Local(shard[7:] if shard.startswith("file://") else shard, shard)
        else:
            try:
                loc = _Local(self.fetch(source, shard), shard)
            except ShardError:  # evicted between fetch and open: fetch again
                loc = _Local(self.fetch(source, shard), shard)
        with self._mu:
            known = self._open.get(shard)
            if known is not None:  # another thread opened it meanwhile
                os.close(loc.fd)
                return known
            if len(self._open) >= 64:
                self.close()
            self._open[shard] = loc
        return loc

    def count(self, source: Any, shard: str) -> int:
        """Samples in ``shard`` (fetching it into the cache)."""
        return len(self.local(source, shard).keys)

    def raw(self, source: Any, shard: str, i: int) -> tuple[str, dict]:
        """``(key, payload map)`` of the ``i``-th sample of ``shard``.

        Raises:
            DecodeError: When the payload is not a msgpack map.
        """
        loc = self.local(source, shard)
        key = loc.keys[i]
        size = loc.sizes[i]
        data = os.pread(loc.fd, size, loc.offsets[i])
        if len(data) != size:
            raise ShardError(f"short read in shard {shard} (cached at {loc.path}), sample {key!r}")
        try:
            raw = _unpackb(data)
        except Exception as exc:
            where = f" in shard {shard}, sample {key!r}"
            err = unpack_failure(exc, where)
            raise err or DecodeError(f"payload is not valid msgpack ({exc}){where}") from None
        if type(raw) is not dict:
            raise not_a_map(raw, f" in shard {shard}, sample {key!r}")
        return key, raw

    def close(self) -> None:
        """Close the files this process opened."""
        for loc in self._open.values():
            with contextlib.suppress(OSError):
                os.close(loc.fd)
        self._open.clear()

    def remove(self) -> None:
        """Delete the whole directory (a private temporary cache at the end of its life)."""
        self.close()
        shutil.rmtree(self.directory, ignore_errors=True)
