"""Leftovers of killed writers: staging directories and temporary files, found and removed.

A writer killed by a signal (or a power cut) cannot clean up after itself. What it leaves is
always under a name no reader uses: ``.staging/<id>/`` directories of a
:class:`~atdata.stores.LocalDiskStore` and hidden temporary files (``.<name>.tmp-...``) beside
shards and manifests in it. (An S3 store stages in the system's temporary directory, which is not
searched: other programs' files live there.) A
staging directory in use is locked by its writer (``.lock``), so it is never taken; temporary
files younger than ``min_age`` seconds are left alone (a live writer may still own them), and a
path an index entry references is never removed, whatever its name.

Examples:
    >>> import os, tempfile, atdata
    >>> home = tempfile.mkdtemp()
    >>> idx = atdata.Index(path=os.path.join(home, "index.db"))
    >>> left = os.path.join(idx.write_store.root, ".staging", "dead")
    >>> os.makedirs(left); _ = open(os.path.join(left, "x.tar"), "wb").write(b"x" * 100)
    >>> [(os.path.basename(p.path), p.size) for p in find_leftovers(idx, min_age=0)]
    [('dead', 100)]
    >>> collect(idx, min_age=0).bytes, os.path.exists(left)
    (100, False)
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import re
import shutil
import time
from typing import Any

from atdata.stores._base import LOCK, staging_lock

__all__ = [
    "GcReport",
    "Leftover",
    "collect",
    "collect_caches",
    "collect_hf_cache",
    "find_leftovers",
    "staging_lock",
]

_TMP = re.compile(r"^\..+\.tmp-[0-9a-z-]+$")


@dataclasses.dataclass(frozen=True)
class Leftover:
    """A staging directory or temporary file a killed writer left behind."""

    path: str
    kind: str  # "staging" or "temp"
    size: int


@dataclasses.dataclass
class GcReport:
    """What :func:`collect` removed (or would remove, for a dry run)."""

    removed: list[Leftover]
    bytes: int
    skipped: list[str]


def _size(path: str) -> int:
    if not os.path.isdir(path):
        try:
            return os.lstat(path).st_size
        except OSError:
            return 0
    total = 0
    for root, _dirs, files in os.walk(path):
        for f in files:
            with contextlib.suppress(OSError):
                total += os.lstat(os.path.join(root, f)).st_size
    return total


def _in_use(directory: str) -> bool:
    import fcntl

    try:
        fd = os.open(os.path.join(directory, LOCK), os.O_RDWR)
    except OSError:
        return False  # never locked: its writer is gone
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        return True
    finally:
        os.close(fd)
    return False


def _roots(index: Any) -> tuple[list[str], list[str]]:
    """(directories holding staging dirs, directories to search for temp files)."""
    store = index.write_store
    staging: list[str] = []
    temps: list[str] = []
    root = getattr(store, "root", None)
    if getattr(store, "kind", None) == "disk" and isinstance(root, (str, os.PathLike)):
        staging.append(os.path.join(os.fspath(root), ".staging"))
        temps.append(os.fspath(root))
    return staging, temps


def _referenced(index: Any) -> set[str]:
    out: set[str] = set()
    for e in index.provider.list_entries():
        for s in e.shards:
            url = s.url[7:] if s.url.startswith("file://") else s.url
            if "://" not in url:
                out.add(os.path.realpath(url))
                base = url[:-4] if url.endswith(".tar") else url
                out.update(
                    os.path.realpath(base + x) for x in (".manifest.json", ".manifest.parquet")
                )
    return out


def find_leftovers(index: Any, *, min_age: float = 3600.0) -> list[Leftover]:
    """Staging directories and temporary files killed writers left in ``index``'s data store.

    Args:
        index: An :class:`~atdata.Index`.
        min_age: Temporary files modified less than this many seconds ago are not reported.
    """
    now = time.time()
    staging_dirs, temp_roots = _roots(index)
    found: list[Leftover] = []
    candidates = [
        os.path.join(d, n) for d in staging_dirs if os.path.isdir(d) for n in os.listdir(d)
    ]
    for d in sorted(candidates):
        if os.path.isdir(d) and not _in_use(d):
            found.append(Leftover(d, "staging", _size(d)))
    skip = {os.path.realpath(d) for d in staging_dirs}
    for root in temp_roots:
        for dirpath, dirs, files in os.walk(root):
            dirs[:] = [x for x in dirs if os.path.realpath(os.path.join(dirpath, x)) not in skip]
            for f in files:
                if not _TMP.match(f):
                    continue
                p = os.path.join(dirpath, f)
                try:
                    st = os.lstat(p)
                except OSError:
                    continue
                if now - st.st_mtime >= min_age:
                    found.append(Leftover(p, "temp", st.st_size))
    return found


def collect(index: Any, *, min_age: float = 3600.0, dry_run: bool = False) -> GcReport:
    """Remove what :func:`find_leftovers` finds, except anything an index entry references.

    Returns:
        The :class:`GcReport`: what was removed and how many bytes that freed.
    """
    refs = _referenced(index)
    removed: list[Leftover] = []
    skipped: list[str] = []
    for lo in find_leftovers(index, min_age=min_age):
        real = os.path.realpath(lo.path)
        if real in refs or any(r.startswith(real + os.sep) for r in refs):
            skipped.append(lo.path)
            continue
        if not dry_run:
            try:
                if lo.kind == "staging" and os.path.isdir(lo.path):
                    shutil.rmtree(lo.path)
                else:
                    os.unlink(lo.path)
            except OSError:
                skipped.append(lo.path)
                continue
        removed.append(lo)
    return GcReport(removed, sum(r.size for r in removed), skipped)


def collect_hf_cache(
    *, min_age: float = 3600.0, dry_run: bool = False, limit: int | None = None
) -> GcReport:
    """Trim the ``Dataset.to_hf()`` cache (``$ATDATA_CACHE_DIR/hf``): temporary files a killed
    ``to_hf()`` left, older than ``min_age`` seconds, and the least recently used cache files
    over ``limit`` bytes (default ``$ATDATA_HF_CACHE_LIMIT``, else 8 GiB), never one a live
    Hugging Face dataset maps (see :mod:`atdata.dataset._hf_cache`).

    Returns:
        The :class:`GcReport` (kinds ``"temp"`` and ``"hf-cache"``).
    """
    from atdata.dataset._hf_cache import prune

    found = prune(limit=limit, min_age=min_age, dry_run=dry_run)
    removed = [Leftover(path, kind, size) for kind, path, size in found]
    return GcReport(removed, sum(r.size for r in removed), [])


def collect_caches(
    *,
    min_age: float = 3600.0,
    dry_run: bool = False,
    members_limit: int | None = None,
    verified_limit: int | None = None,
) -> GcReport:
    """Trim the small, rebuildable caches under ``$ATDATA_CACHE_DIR``: the member indexes
    (``members/``, cap ``members_limit`` bytes, default ``$ATDATA_MEMBERS_CACHE_LIMIT``, else
    1 GiB) and the remembered shard hashes (``verified/``, cap ``verified_limit``, default
    ``$ATDATA_VERIFIED_CACHE_LIMIT``, else 16 MiB): least recently used entries over the cap, and
    temporary files killed writers left (older than ``min_age`` seconds). Entries are written
    whole under another name first, so a write in progress is never cut short.

    Returns:
        The :class:`GcReport` (kinds ``"temp"``, ``"members-cache"`` and ``"verified-cache"``).

    Examples:
        >>> import os, tempfile
        >>> saved = os.environ.get("ATDATA_CACHE_DIR")
        >>> os.environ["ATDATA_CACHE_DIR"] = tempfile.mkdtemp()
        >>> from atdata._shards.members import cache_dir
        >>> os.makedirs(cache_dir())
        >>> for name in ["a.idx", "b.idx"]:
        ...     _ = open(os.path.join(cache_dir(), name), "wb").write(b"x" * 10)
        >>> rep = collect_caches(members_limit=10)
        >>> [r.kind for r in rep.removed], rep.bytes, len(os.listdir(cache_dir()))
        (['members-cache'], 10, 1)
        >>> if saved is None:
        ...     del os.environ["ATDATA_CACHE_DIR"]
        ... else:
        ...     os.environ["ATDATA_CACHE_DIR"] = saved
    """
    from atdata._shards.members import prune_cache
    from atdata.manifest._fresh import prune_verified

    found = prune_cache(limit=members_limit, min_age=min_age, dry_run=dry_run)
    found += prune_verified(limit=verified_limit, min_age=min_age, dry_run=dry_run)
    removed = [Leftover(path, kind, size) for kind, path, size in found]
    return GcReport(removed, sum(r.size for r in removed), [])
