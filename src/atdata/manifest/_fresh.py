"""Tying a manifest to the exact shard bytes it describes.

Headers we write record the shard's ``size_bytes``, its ``shard_sha256`` and its file stamp
``shard_stat`` (``mtime_ns`` and ``inode`` of the shard file once it had its final name). Every
use of a manifest checks the shard cheaply: same size, mtime and inode means the same file as
written. When the stamp differs (the shard was copied, restored or rewritten) the shard is hashed
once and compared with ``shard_sha256``; a match is remembered in ``$ATDATA_CACHE_DIR/verified/``
(keyed by the shard's real path, size, mtime, inode and ctime), so a copied dataset is hashed
once per machine, not on every query. ``atdata manifest verify`` always hashes. ``atdata local
gc`` keeps that directory under a size cap (:func:`prune_verified`:
``$ATDATA_VERIFIED_CACHE_LIMIT`` bytes, default 16 MiB), least recently used first.

Upstream atdata reads these headers too: it ignores the extra keys.

Examples:
    >>> import os, tempfile, atdata
    >>> d = tempfile.mkdtemp()
    >>> ds = atdata.write_samples([{"x": i} for i in range(3)], os.path.join(d, "a.tar"), manifest=True)
    >>> from atdata.manifest._read import load_manifest
    >>> m = load_manifest(ds.list_shards()[0])
    >>> shard_matches(m.header, m.shard, allow_hash=False)
    True
    >>> with open(m.shard, "r+b") as f:  # flip one payload byte in place
    ...     _ = f.seek(520); b = f.read(1); _ = f.seek(520); _ = f.write(bytes([b[0] ^ 1]))
    >>> shard_matches(m.header, m.shard, allow_hash=False) is None  # the stamp changed: unknown
    True
    >>> shard_matches(m.header, m.shard)  # hashing settles it
    False
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import re
import threading
from typing import Any

from atdata._errors import IntegrityError, ShardError
from atdata._files import touch, trim_cache

__all__ = [
    "check_digest",
    "check_stamp",
    "file_sha256",
    "prune_verified",
    "recorded_sha256",
    "shard_matches",
    "stamp_of",
]

_REBUILD = "rebuild it with: atdata manifest build {shard} --force"

_HEX64 = re.compile(r"[0-9a-f]{64}")
_memo: dict[tuple[str, int, int, int, int], str] = {}
_lock = threading.Lock()


def stamp_of(path: str) -> dict[str, int]:
    """The ``shard_stat`` a header records for the shard file at ``path``."""
    st = os.stat(path)
    return {"mtime_ns": st.st_mtime_ns, "inode": st.st_ino}


def file_sha256(path: str) -> str:
    """The sha256 hex digest of a local file.

    Raises:
        ShardError: When the file cannot be read.
    """
    h = hashlib.sha256()
    try:
        with open(path, "rb") as f:
            while block := f.read(1 << 20):
                h.update(block)
    except OSError as exc:
        raise ShardError(f"cannot read shard {path}: {exc.strerror}") from None
    return h.hexdigest()


def recorded_sha256(header: dict[str, Any]) -> str | None:
    """The shard sha256 a header records (``None`` when it records none, e.g. upstream's)."""
    sha = header.get("shard_sha256")
    return sha if isinstance(sha, str) and _HEX64.fullmatch(sha) else None


DEFAULT_VERIFIED_LIMIT = 16 << 20  # bytes of remembered hashes `atdata local gc` keeps
_LIMIT_ENV = "ATDATA_VERIFIED_CACHE_LIMIT"


def verified_dir() -> str:
    """``$ATDATA_CACHE_DIR/verified`` (default ``~/.cache/atdata/verified``), absolute."""
    from atdata._shards.members import cache_dir

    return os.path.join(os.path.dirname(cache_dir()), "verified")


def _cache_file(real: str) -> str:
    digest = hashlib.sha256(os.fsencode(real)).hexdigest()[:32]
    return os.path.join(verified_dir(), f"{digest}.json")


def prune_verified(
    *, limit: int | None = None, min_age: float = 3600.0, dry_run: bool = False
) -> list[tuple[str, str, int]]:
    """Trim :func:`verified_dir`, as ``atdata local gc`` does: temporary files of killed writers
    older than ``min_age`` seconds, then the least recently used records until the rest fits in
    ``limit`` bytes (default ``$ATDATA_VERIFIED_CACHE_LIMIT``, else 16 MiB). A record is
    written whole under another name first, so none is taken mid-write; a shard whose record
    went is hashed again the next time its stamp differs.

    Returns:
        ``(kind, path, size)`` for each file removed: kind ``"temp"`` or ``"verified-cache"``.

    Raises:
        ConfigError: When ``limit`` or ``$ATDATA_VERIFIED_CACHE_LIMIT`` is not a whole number
            of bytes (0 or more).
    """
    return trim_cache(
        verified_dir(),
        suffix=".json",
        kind="verified-cache",
        limit=limit,
        env=_LIMIT_ENV,
        default=DEFAULT_VERIFIED_LIMIT,
        what="the verified-shard cache",
        min_age=min_age,
        dry_run=dry_run,
    )


def _remembered(real: str, key: tuple[str, int, int, int, int]) -> str | None:
    with _lock:
        hit = _memo.get(key)
    if hit is not None:
        return hit
    try:
        path = _cache_file(real)
        with open(path, encoding="utf-8") as f:
            rec = json.load(f)
        if [rec.get("path"), rec.get("size"), rec.get("mtime_ns"), rec.get("inode"), rec.get("ctime_ns")] == list(key):  # fmt: skip
            sha = rec.get("sha256")
            touch(path)  # the LRU clock of prune_verified
            return sha if isinstance(sha, str) else None
    except (OSError, ValueError, AttributeError):
        return None
    return None


def remember(path: str, sha256: str) -> None:
    """Record that the local file at ``path``, as it is now, has ``sha256``."""
    real = os.path.realpath(path)
    try:
        st = os.stat(real)
    except OSError:
        return
    key = (real, st.st_size, st.st_mtime_ns, st.st_ino, st.st_ctime_ns)
    with _lock:
        if len(_memo) > 4096:
            _memo.clear()
        _memo[key] = sha256
    rec = dict(zip(("path", "size", "mtime_ns", "inode", "ctime_ns"), key, strict=True))
    rec["sha256"] = sha256
    target = _cache_file(real)
    tmp = f"{target}.tmp-{os.getpid()}-{threading.get_ident()}"
    try:
        os.makedirs(os.path.dirname(target), exist_ok=True)
        with open(tmp, "w", encoding="utf-8") as f:
            json.dump(rec, f)
        os.replace(tmp, target)
    except OSError:  # an unwritable cache only costs hashing again next time
        with contextlib.suppress(OSError):
            os.unlink(tmp)


def shard_matches(header: dict[str, Any], path: str, *, allow_hash: bool = True) -> bool | None:
    """Whether the local shard at ``path`` is the one ``header`` describes.

    Args:
        header: A parsed manifest header (ours; upstream's carry no checksum).
        path: The local shard file.
        allow_hash: Hash the shard when its stamp differs from the recorded one.

    Returns:
        ``True`` when the size matches and the stamp or the sha256 does (or the header records
        no sha256 and the size matches), ``False`` when size or sha256 differ, ``None`` when the
        stamp differs and ``allow_hash`` is false. A missing shard counts as matching: reading
        it reports it.
    """
    try:
        st = os.stat(path)
    except OSError:
        return True
    want_size = header.get("size_bytes")
    if isinstance(want_size, int) and st.st_size != want_size:
        return False
    want = recorded_sha256(header)
    if want is None:
        return True
    stamp = header.get("shard_stat")
    if (
        isinstance(stamp, dict)
        and stamp.get("mtime_ns") == st.st_mtime_ns
        and stamp.get("inode") == st.st_ino
    ):
        return True
    real = os.path.realpath(path)
    key = (real, st.st_size, st.st_mtime_ns, st.st_ino, st.st_ctime_ns)
    known = _remembered(real, key)
    if known is not None:
        return known == want
    if not allow_hash:
        return None
    got = file_sha256(path)
    remember(path, got)
    return got == want


def _local(shard: str) -> str:
    return shard[7:] if shard.startswith("file://") else shard


def check_stamp(header: dict[str, Any], shard: str, json_path: str, *, allow_hash: bool) -> bool:
    """Check that the local ``shard`` is the one the manifest at ``json_path`` describes.

    Returns:
        ``True`` when proven, ``False`` when the stamp differs and hashing was not allowed.

    Raises:
        IntegrityError: When the shard is not the file the manifest was written for.
    """
    path = _local(shard)
    ok = shard_matches(header, path, allow_hash=allow_hash)
    if ok is not False:
        return ok is True
    try:
        size: int | None = os.path.getsize(path)
    except OSError:
        size = None
    want = header.get("size_bytes")
    if size != want:
        why = f"it describes {want} bytes but shard {shard} has {size}"
    else:
        sha = recorded_sha256(header) or ""
        why = (
            f"shard {shard} is not the file it was written for (its sha256 differs from the "
            f"recorded {sha[:16]}...)"
        )
    raise IntegrityError(f"manifest {json_path} is stale: {why}; " + _REBUILD.format(shard=shard))


def check_digest(header: dict[str, Any], shard: str, json_path: str) -> list[str]:
    """Hash the local ``shard`` and compare it with the sha256 the header records (always, the
    stamp is not consulted). Returns a problem when the shard is missing.

    Raises:
        IntegrityError: When the sha256 differs (a corrupt shard or a stale manifest).
    """
    want = recorded_sha256(header)
    if want is None:
        return []
    path = _local(shard)
    if not os.path.exists(path):
        return [f"{shard}: shard is missing (its manifest {json_path} exists)"]
    got = file_sha256(path)
    remember(path, got)
    if got == want:
        return []
    raise IntegrityError(
        f"shard {shard} does not match the sha256 its manifest {json_path} records "
        f"({got[:16]}... != {want[:16]}...): the shard is corrupt or the manifest is stale; "
        "restore the shard, or " + _REBUILD.format(shard=shard)
    )
