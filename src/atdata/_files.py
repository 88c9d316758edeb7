"""Files that appear whole or not at all (:func:`write_atomic`), and caches of such files kept
under a cap (:func:`evict_lru`, :func:`remove_stale_temps`, :func:`limit_from_env`,
:func:`trim_cache`).

A cache directory here holds entries written whole (a temporary name, then ``os.replace``), so
an entry is complete whenever it is visible under its name and removing it never cuts a write
short: the writer's temporary file has another name (``<entry>.tmp-*`` or ``.<entry>.tmp-*``)
that eviction never matches. A reader that loses an entry it was about to open rebuilds it.

Examples:
    >>> import os, tempfile
    >>> p = os.path.join(tempfile.mkdtemp(), "state.json")
    >>> write_atomic(p, b'{"n": 1}')
    >>> open(p, "rb").read(), sorted(os.listdir(os.path.dirname(p)))
    (b'{"n": 1}', ['state.json'])
    >>> d = tempfile.mkdtemp()
    >>> for i, name in enumerate(["a.idx", "b.idx", "c.idx", "c.idx.tmp-1-2"]):
    ...     write_atomic(os.path.join(d, name), b"x" * 100)
    ...     os.utime(os.path.join(d, name), (1000 + i, 1000 + i))
    >>> [(os.path.basename(p), n) for p, n in evict_lru(d, suffix=".idx", max_bytes=150)]
    [('a.idx', 100), ('b.idx', 100)]
    >>> sorted(os.listdir(d))  # the newest entry stays; a temporary is never an entry
    ['c.idx', 'c.idx.tmp-1-2']
"""

from __future__ import annotations

import contextlib
import os
import time
import uuid
from collections.abc import Callable, Collection

from atdata._errors import ConfigError

__all__ = [
    "evict_lru",
    "limit_from_env",
    "remove_stale_temps",
    "touch",
    "trim_cache",
    "write_atomic",
]


def write_atomic(path: str | os.PathLike[str], data: bytes, *, fsync: bool = False) -> None:
    """Write ``data`` to ``path`` through a unique temporary name beside it and ``os.replace``.

    A reader sees the old file or the new one, never part of one; the temporary is removed when
    the write fails (a killed process leaves a ``.<name>.tmp-*`` file that no reader opens).
    ``fsync`` flushes the bytes to disk before the rename (a crash then keeps the new file).
    """
    path = os.fspath(path)
    d, name = os.path.split(path)
    tmp = os.path.join(d or ".", f".{name}.tmp-{os.getpid()}-{uuid.uuid4().hex[:8]}")
    try:
        with open(tmp, "wb") as f:
            f.write(data)
            if fsync:
                f.flush()
                os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def touch(path: str) -> None:
    """Mark a cache entry used now (its modification time is the LRU clock); never raises."""
    with contextlib.suppress(OSError):
        os.utime(path)


def limit_from_env(name: str, default: int, what: str) -> int:
    """A cap in bytes from ``$name`` (a whole number, 0 or more), else ``default``.

    Raises:
        ConfigError: When the variable is set to anything but a whole number of 0 or more.

    Examples:
        >>> limit_from_env("ATDATA_NO_SUCH_LIMIT", 64, "the example cache")
        64
    """
    raw = os.environ.get(name, "").strip()
    if not raw:
        return default
    try:
        value = int(raw)
    except ValueError:
        value = -1
    if value < 0:
        raise ConfigError(
            f"${name}={raw!r} is not a number of bytes for {what}; set it to a whole number "
            f"of 0 or more (e.g. {default}) or unset it"
        )
    return value


def _unlink(path: str, dry_run: bool) -> bool:
    if dry_run:
        return os.path.exists(path)
    try:
        os.unlink(path)
    except OSError:
        return False
    return True


def evict_lru(
    root: str,
    *,
    suffix: str,
    prefix: str = "",
    max_bytes: int | None = None,
    max_files: int | None = None,
    keep: Collection[str] = (),
    by_atime: bool = False,
    remove: Callable[[str, bool], bool] = _unlink,
    dry_run: bool = False,
) -> list[tuple[str, int]]:
    """Remove the least recently used entries of the cache directory ``root`` (files named
    ``prefix*suffix``, not hidden) until it holds at most ``max_bytes`` bytes and ``max_files``
    entries (``None``: no cap of that kind).

    The clock is the modification time (``by_atime``: the access time), which a cache sets on
    each use (:func:`touch`). Entries in ``keep`` stay; ``remove(path, dry_run)`` takes one
    entry and says whether it went (a cache whose entries may be in use passes one that skips
    those). Temporary files are never entries, so a write in progress is never cut short.

    Returns:
        ``(path, size)`` of each entry removed (or that would be, with ``dry_run``), oldest first.
    """
    files: list[tuple[float, int, str]] = []
    with contextlib.suppress(OSError), os.scandir(root) as it:
        for e in it:
            n = e.name
            if n.startswith(".") or not (n.startswith(prefix) and n.endswith(suffix)):
                continue
            with contextlib.suppress(OSError):
                st = e.stat(follow_symlinks=False)
                if e.is_file(follow_symlinks=False):
                    files.append((st.st_atime if by_atime else st.st_mtime, st.st_size, e.path))
    files.sort()
    total, count = sum(f[1] for f in files), len(files)
    removed: list[tuple[str, int]] = []
    for _t, size, path in files:
        if (max_bytes is None or total <= max_bytes) and (max_files is None or count <= max_files):
            break
        if path in keep or not remove(path, dry_run):
            continue
        removed.append((path, size))
        total, count = total - size, count - 1
    return removed


def remove_stale_temps(
    root: str, *, min_age: float = 3600.0, dry_run: bool = False
) -> list[tuple[str, int]]:
    """Remove the temporary files (``*.tmp-*``) killed writers left in ``root``, older than
    ``min_age`` seconds (a younger one may still be written).

    Returns:
        ``(path, size)`` of each file removed (or that would be, with ``dry_run``).
    """
    out: list[tuple[str, int]] = []
    now = time.time()
    with contextlib.suppress(OSError), os.scandir(root) as it:
        for e in it:
            if ".tmp-" not in e.name:
                continue
            with contextlib.suppress(OSError):
                st = e.stat(follow_symlinks=False)
                if e.is_file(follow_symlinks=False) and now - st.st_mtime >= min_age:
                    if not dry_run:
                        os.unlink(e.path)
                    out.append((e.path, st.st_size))
    return sorted(out)


def trim_cache(
    root: str,
    *,
    suffix: str,
    kind: str,
    limit: int | None,
    env: str,
    default: int,
    what: str,
    min_age: float = 3600.0,
    dry_run: bool = False,
) -> list[tuple[str, str, int]]:
    """Trim the cache directory ``root`` as ``atdata local gc`` does: temporary files of killed
    writers older than ``min_age`` seconds (:func:`remove_stale_temps`), then the least recently
    used ``*suffix`` entries until the rest fits in ``limit`` bytes (:func:`evict_lru`; ``None``:
    ``$env``, else ``default``). ``what`` names the cache in errors.

    Returns:
        ``(kind, path, size)`` for each file removed: kind ``"temp"`` or ``kind``.

    Raises:
        ConfigError: When ``limit`` or ``$env`` is not a whole number of bytes (0 or more).

    Examples:
        >>> import os, tempfile
        >>> d = tempfile.mkdtemp()
        >>> for i, name in enumerate(["a.idx", "b.idx", "b.idx.tmp-1-2"]):
        ...     write_atomic(os.path.join(d, name), b"x" * 100)
        ...     os.utime(os.path.join(d, name), (1000 + i, 1000 + i))
        >>> [(k, os.path.basename(p), n) for k, p, n in trim_cache(
        ...     d, suffix=".idx", kind="example-cache", limit=100,
        ...     env="ATDATA_NO_SUCH_LIMIT", default=0, what="the example cache")]
        [('temp', 'b.idx.tmp-1-2', 100), ('example-cache', 'a.idx', 100)]
        >>> trim_cache(d, suffix=".idx", kind="example-cache", limit=-1,
        ...     env="ATDATA_NO_SUCH_LIMIT", default=0, what="the example cache")
        Traceback (most recent call last):
        ...
        atdata._errors.ConfigError: the example cache limit is -1 bytes; pass 0 or more
    """
    if limit is None:
        limit = limit_from_env(env, default, what)
    if limit < 0:
        raise ConfigError(f"{what} limit is {limit} bytes; pass 0 or more")
    out = [("temp", p, n) for p, n in remove_stale_temps(root, min_age=min_age, dry_run=dry_run)]
    for p, n in evict_lru(root, suffix=suffix, max_bytes=limit, dry_run=dry_run):
        out.append((kind, p, n))
    return out
