"""Leftovers of killed writers: staging directories and temporary files, found and removed.

A writer killed by a signal (or a power cut) cannot clean up after itself. What it leaves is
always under a name no reader uses: ``.staging/<id>/`` directories of a
:class:`~atdata.stores.LocalDiskStore` and hidden temporary files (``.<name>.tmp-...``) beside
shards and manifests in it. (An S3 store stages in the system's temporary directory, which is not
searched: other programs' files live there.) A
staging directory in use is locked by its writer (``.lock``), so it is never taken; temporary
files younger than ``min_age`` seconds are left alone (a live writer may still own them), and a
path an index entry references is never removed, whatever its name.

A run of ``write_samples(write_id=W)`` that lost (another run with ``W`` committed other samples
first, so it raised :class:`~atdata.IntegrityError`) leaves its shards in its own
``{name}/W/<digest>/`` directory. Once an entry with id ``W`` is committed, that write
directory ``{name}/W/`` belongs to it, so files in it that no entry references are
*orphans* (kind ``"orphan"``), taken when older than ``min_age`` seconds, in a disk or an
S3 store alike. Only the write directories of this index's own entries are searched: a store
shared with other indexes (the default ``~/.atdata/data`` is) holds their shards elsewhere.

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
_DIGEST = re.compile(r"^[0-9a-f]{16}$")
_SIDECARS = (".manifest.json", ".manifest.parquet")


@dataclasses.dataclass(frozen=True)
class Leftover:
    """A staging directory or temporary file a killed writer left behind."""

    path: str
    kind: str  # "staging", "temp" or "orphan" (a path, or an s3:// URL)
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


def _with_sidecars(url: str) -> list[str]:
    base = url[:-4] if url.endswith(".tar") else url
    return [url, *(base + x for x in _SIDECARS)]


def _referenced(entries: list[Any]) -> set[str]:
    """Every shard (and manifest) an entry references: real paths, and URLs as recorded."""
    out: set[str] = set()
    for e in entries:
        for s in e.shards:
            url = s.url[7:] if s.url.startswith("file://") else s.url
            if "://" not in url:
                out.update(os.path.realpath(u) for u in _with_sidecars(url))
            else:
                out.update(_with_sidecars(url))
    return out


def _write_dirs(entries: list[Any]) -> set[str]:
    """The write directories ``.../<entry_id>/`` of these entries (disk: real paths, S3:
    ``s3://bucket/key/`` prefixes), each found from its shards' URLs."""
    out: set[str] = set()
    for e in entries:
        wid = e.entry_id
        if not wid:
            continue
        for s in e.shards:
            url = s.url[7:] if s.url.startswith("file://") else s.url
            parts = url.split("/")
            if len(parts) >= 3 and parts[-2] == wid:
                head = parts[:-1]
            elif len(parts) >= 4 and parts[-3] == wid and _DIGEST.match(parts[-2]):
                head = parts[:-2]
            else:
                continue
            where = "/".join(head)
            out.add(where + "/" if "://" in where else os.path.realpath(where))
    return out


def _disk_orphans(
    root: str, dirs: set[str], refs: set[str], now: float, min_age: float
) -> list[Leftover]:
    found: list[Leftover] = []
    top = os.path.realpath(root)
    for d in sorted(dirs):
        if "://" in d or not d.startswith(top + os.sep):
            continue
        for dirpath, _dirs, files in os.walk(d):
            for f in files:
                p = os.path.join(dirpath, f)
                if _TMP.match(f) or os.path.realpath(p) in refs:
                    continue  # temp files: the temp pass, by their own age rule
                try:
                    st = os.lstat(p)
                except OSError:
                    continue
                # ctime too: a rename into the store (a put) does not change the mtime
                if now - max(st.st_mtime, st.st_ctime) >= min_age:
                    found.append(Leftover(p, "orphan", st.st_size))
    return found


def _s3_orphans(
    store: Any, dirs: set[str], refs: set[str], now: float, min_age: float
) -> list[Leftover]:
    from atdata.stores._s3client import _err

    found: list[Leftover] = []
    base = f"s3://{store.bucket}/{store.prefix}"
    for d in sorted(dirs):
        if not d.startswith(base):
            continue
        prefix = d[len(f"s3://{store.bucket}/") :]
        try:
            pages = store.client.get_paginator("list_objects_v2").paginate(
                Bucket=store.bucket, Prefix=prefix
            )
            objs = [o for p in pages for o in p.get("Contents", ())]
        except Exception as exc:
            raise _err(exc, f"listing {d} for atdata local gc") from None
        for o in objs:
            url = f"s3://{store.bucket}/{o['Key']}"
            if url not in refs and now - o["LastModified"].timestamp() >= min_age:
                found.append(Leftover(url, "orphan", int(o.get("Size", 0))))
    return found


def _orphans(index: Any, entries: list[Any], now: float, min_age: float) -> list[Leftover]:
    store = index.write_store
    kind = getattr(store, "kind", None)
    dirs, refs = _write_dirs(entries), _referenced(entries)
    if kind == "disk" and isinstance(getattr(store, "root", None), (str, os.PathLike)):
        return _disk_orphans(os.fspath(store.root), dirs, refs, now, min_age)
    if kind == "s3":
        return _s3_orphans(store, dirs, refs, now, min_age)
    return []


def find_leftovers(index: Any, *, min_age: float = 3600.0) -> list[Leftover]:
    """Staging directories and temporary files killed writers left in ``index``'s data store,
    and the orphans of losing ``write_id`` runs (see the module docstring).

    Args:
        index: An :class:`~atdata.Index`.
        min_age: Temporary files and orphans younger than this many seconds are not reported.
    """
    return _find(index, min_age, index.provider.list_entries())


def _find(index: Any, min_age: float, entries: list[Any]) -> list[Leftover]:
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
    return found + _orphans(index, entries, now, min_age)


def collect(index: Any, *, min_age: float = 3600.0, dry_run: bool = False) -> GcReport:
    """Remove what :func:`find_leftovers` finds, except anything an index entry references.

    Returns:
        The :class:`GcReport`: what was removed and how many bytes that freed.
    """
    entries = index.provider.list_entries()
    refs = _referenced(entries)
    removed: list[Leftover] = []
    skipped: list[str] = []
    for lo in _find(index, min_age, entries):
        remote = lo.path.startswith("s3://")
        real = lo.path if remote else os.path.realpath(lo.path)
        if real in refs or any(r.startswith(real + os.sep) for r in refs):
            skipped.append(lo.path)
            continue
        if not dry_run:
            try:
                if remote:
                    _delete_s3(index.write_store, lo.path)
                elif lo.kind == "staging" and os.path.isdir(lo.path):
                    shutil.rmtree(lo.path)
                else:
                    os.unlink(lo.path)
                    if lo.kind == "orphan":  # a losing run's directory, once empty
                        with contextlib.suppress(OSError):
                            os.rmdir(os.path.dirname(lo.path))
            except OSError:
                skipped.append(lo.path)
                continue
        removed.append(lo)
    return GcReport(removed, sum(r.size for r in removed), skipped)


def _delete_s3(store: Any, url: str) -> None:
    from atdata.stores._s3client import _err

    try:
        store.client.delete_object(Bucket=store.bucket, Key=url[len(f"s3://{store.bucket}/") :])
    except Exception as exc:
        raise OSError(str(_err(exc, f"deleting {url}"))) from None


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
