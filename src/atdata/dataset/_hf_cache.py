"""The cache of :meth:`Dataset.to_hf <atdata.Dataset.to_hf>`: Arrow files, bounded in size.

``to_hf()`` writes ``atdata-<fingerprint>.arrow`` under ``$ATDATA_CACHE_DIR/hf`` (beside the
member indexes in ``$ATDATA_CACHE_DIR/members``; default ``~/.cache/atdata/hf``) and memory-maps
it. The directory is kept under a size cap (``to_hf(cache_limit=)``, else
``$ATDATA_HF_CACHE_LIMIT`` in bytes, else 8 GiB): after each ``to_hf()`` the least recently used
files go first, by access time, which ``to_hf()`` sets itself on every use (so the order does not
depend on the file system's ``atime`` policy). The file the call returns is never evicted, even
alone over the cap. ``atdata local gc`` applies the same cap and also removes the temporary files
a killed ``to_hf()`` left (``.tmp-*.arrow``, older than ``--min-age``).

Files in use are never evicted: the process that memory-maps a cache file holds a shared
``flock`` on it for as long as the mapping lives (every Arrow buffer of the table, and of each
table HF derives from it by ``select``, ``shuffle``, ``map`` ..., keeps the mapping alive), and
eviction takes an exclusive non-blocking lock first, skipping any file it cannot lock (another
process's or this one's). Should a mapped file still be unlinked (by another tool, or on a
system without ``flock`` semantics), that is safe on Linux and other POSIX systems: unlinking
removes the name, while the inode and its pages stay until the last mapping is gone, so the
mapped rows read the same bytes; only opening the file again by its path (HF pickles a
memory-mapped table as its path, e.g. for ``map(num_proc=)``) would fail, and the next
``to_hf()`` writes it again.

Examples:
    >>> import os, tempfile
    >>> d = tempfile.mkdtemp()
    >>> for i, name in enumerate(["atdata-a.arrow", "atdata-b.arrow", "atdata-c.arrow"]):
    ...     with open(os.path.join(d, name), "wb") as f:
    ...         _ = f.write(b"x" * 100)
    ...     os.utime(os.path.join(d, name), (1000 + i, 1000 + i))
    >>> [os.path.basename(p) for p, _ in evict(d, 150, keep={os.path.join(d, "atdata-a.arrow")})]
    ['atdata-b.arrow', 'atdata-c.arrow']
    >>> sorted(os.listdir(d))
    ['atdata-a.arrow']
"""

from __future__ import annotations

import contextlib
import os
import time
import weakref
from collections.abc import Collection
from typing import Any

from atdata._errors import ConfigError
from atdata._files import evict_lru

__all__ = [
    "DEFAULT_LIMIT",
    "acquire",
    "cache_root",
    "evict",
    "open_table",
    "prune",
    "resolve_limit",
]

DEFAULT_LIMIT = 8 << 30
_ENV = "ATDATA_HF_CACHE_LIMIT"
_PREFIX, _SUFFIX, _TMP = "atdata-", ".arrow", ".tmp-"


def cache_root() -> str:
    """``$ATDATA_CACHE_DIR/hf`` (default ``~/.cache/atdata/hf``), absolute."""
    from atdata._shards.members import cache_dir

    return os.path.join(os.path.dirname(cache_dir()), "hf")


def resolve_limit(limit: int | None) -> int:
    """The cap in bytes: ``limit``, else ``$ATDATA_HF_CACHE_LIMIT``, else :data:`DEFAULT_LIMIT`.

    Raises:
        ConfigError: For a negative limit or an environment value that is not a whole number.

    Examples:
        >>> resolve_limit(10), resolve_limit(None) > 0
        (10, True)
    """
    if limit is None:
        raw = os.environ.get(_ENV, "").strip()
        if not raw:
            return DEFAULT_LIMIT
        try:
            limit = int(raw)
        except ValueError:
            raise ConfigError(
                f"${_ENV}={raw!r} is not a number of bytes; set it to a whole number "
                f"(e.g. {DEFAULT_LIMIT}) or unset it"
            ) from None
    if limit < 0:
        raise ConfigError(f"the Hugging Face cache limit is {limit} bytes; pass 0 or more")
    return limit


def _flock(fd: int, exclusive: bool) -> None:
    """Lock ``fd`` (shared and waiting, or exclusive and failing with ``OSError`` at once).

    Without ``fcntl`` (Windows) nothing is locked: there the system refuses to delete a file
    that is open or mapped, which keeps the same promise.
    """
    try:
        import fcntl
    except ImportError:  # pragma: no cover - not POSIX
        return
    fcntl.flock(fd, (fcntl.LOCK_EX | fcntl.LOCK_NB) if exclusive else fcntl.LOCK_SH)


def acquire(path: str) -> int | None:
    """A descriptor of ``path`` holding a shared lock (eviction skips it), or ``None`` when the
    file is not there (never written, or evicted while this waited for the lock)."""
    try:
        fd = os.open(path, os.O_RDONLY)
    except FileNotFoundError:
        return None
    try:
        _flock(fd, exclusive=False)  # waits out an eviction in progress
        if os.fstat(fd).st_ino != os.stat(path).st_ino:
            raise FileNotFoundError(path)  # evicted (and perhaps rewritten) meanwhile
    except OSError:
        os.close(fd)
        return None
    st = os.fstat(fd)
    with contextlib.suppress(OSError):  # the LRU clock: last use, whatever the atime policy
        os.utime(path, (time.time(), st.st_mtime))
    return fd


def open_table(pa: Any, path: str, fd: int) -> Any:
    """The Arrow table of the cache file ``fd`` (from :func:`acquire`), memory-mapped, zero copy.

    The mapping is a :class:`mmap.mmap` that every buffer of the table (and of any table HF
    derives from it) keeps alive; ``fd``, and with it the shared lock, is closed only when the
    mapping is gone, so eviction never takes a file that is still mapped by this process.
    """
    import mmap

    try:
        mm = mmap.mmap(fd, 0, access=mmap.ACCESS_READ)
        weakref.finalize(mm, os.close, fd)
    except BaseException:
        os.close(fd)
        raise
    return pa.ipc.open_stream(pa.py_buffer(mm)).read_all()


def _unlink_unused(path: str, dry_run: bool) -> bool:
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return False
    try:
        _flock(fd, exclusive=True)
    except OSError:
        os.close(fd)
        return False  # a live HF dataset maps it
    try:
        if not dry_run:
            os.unlink(path)
        return True
    except OSError:
        return False
    finally:
        os.close(fd)  # drops the lock: a waiting acquire() then sees the file gone


def evict(
    root: str, limit: int, *, keep: Collection[str] = (), dry_run: bool = False
) -> list[tuple[str, int]]:
    """Remove the least recently used cache files of ``root`` until it holds ``limit`` bytes.

    Files in ``keep`` and files a live HF dataset maps (locked) are skipped.

    Returns:
        ``(path, size)`` of each file removed (or that would be, with ``dry_run``).
    """
    return evict_lru(
        root,
        prefix=_PREFIX,
        suffix=_SUFFIX,
        max_bytes=limit,
        keep=keep,
        by_atime=True,
        remove=_unlink_unused,
        dry_run=dry_run,
    )


def prune(
    root: str | None = None,
    *,
    limit: int | None = None,
    min_age: float = 3600.0,
    dry_run: bool = False,
) -> list[tuple[str, str, int]]:
    """What ``atdata local gc`` does to the cache: temporary files a killed ``to_hf()`` left
    (older than ``min_age`` seconds) and the least recently used files over the cap.

    Returns:
        ``(kind, path, size)`` for each file removed: kind ``"temp"`` or ``"hf-cache"``.
    """
    root = cache_root() if root is None else root
    out: list[tuple[str, str, int]] = []
    now = time.time()
    with contextlib.suppress(OSError), os.scandir(root) as it:
        for e in it:
            if not (e.name.startswith(_TMP) and e.name.endswith(_SUFFIX)):
                continue
            with contextlib.suppress(OSError):
                st = e.stat(follow_symlinks=False)
                if now - st.st_mtime >= min_age:
                    if not dry_run:
                        os.unlink(e.path)
                    out.append(("temp", e.path, st.st_size))
    out += [("hf-cache", p, n) for p, n in evict(root, resolve_limit(limit), dry_run=dry_run)]
    return out
