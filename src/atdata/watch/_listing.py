"""What a watcher sees in one poll: the shards under a local directory or an S3 prefix.

Each :class:`WatchEntry` carries a *stamp* that changes whenever the bytes may have changed (size
and modification time in nanoseconds for a file, size and ETag for an S3 object) and whether
the shard is *complete by its manifest*: ``<base>.manifest.json`` sits beside it and is not
older than the shard (writers finish a shard before its manifest). Hidden names (a leading
``.``, which is how atdata writes temporary files) and names with ``.tmp`` are never listed.

Examples:
    >>> import os, tempfile
    >>> d = tempfile.mkdtemp()
    >>> _ = open(os.path.join(d, "a.tar"), "wb").write(b"x" * 10)
    >>> _ = open(os.path.join(d, ".b.tar.tmp-1"), "wb").write(b"y")
    >>> [(os.path.basename(e.url), e.size, e.complete) for e in list_local(d)]
    [('a.tar', 10, False)]
    >>> _ = open(os.path.join(d, "a.manifest.json"), "w").write("{}")
    >>> [e.complete for e in list_local(d)]
    [True]
"""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any, NamedTuple

from atdata._errors import ConfigError, StorageError

__all__ = ["LocalLister", "Lister", "WatchEntry", "list_local", "list_s3", "lister_for"]

_MANIFEST = ".manifest.json"


class WatchEntry(NamedTuple):
    """One shard as listed.

    Attributes:
        url: Its path (local) or ``s3://`` URL.
        size: Size in bytes.
        stamp: Changes whenever the bytes may have changed (``"size:mtime_ns"`` or
            ``"size:etag"``).
        complete: Its manifest is written (no need to wait for the size to settle).
    """

    url: str
    size: int
    stamp: str
    complete: bool = False


Lister = Callable[[], list[WatchEntry]]


def _visible(name: str) -> bool:
    return not name.startswith(".") and ".tmp" not in name


def list_local(directory: str | os.PathLike[str], suffix: str = ".tar") -> list[WatchEntry]:
    """The shards (``*<suffix>``, not recursive) in ``directory``, sorted by name.

    Raises:
        StorageError: When ``directory`` cannot be listed.
    """
    return LocalLister(directory, suffix)()


class LocalLister:
    """:func:`list_local` as a callable that keeps the previous listing: an entry whose size
    and mtime are unchanged is reused instead of built again (a poll over a settled directory
    then allocates almost nothing beyond what ``os.scandir`` does).

    Args:
        directory: The directory.
        suffix: Shard file suffix.
    """

    def __init__(self, directory: str | os.PathLike[str], suffix: str = ".tar") -> None:
        self.directory = os.fspath(directory)
        self.suffix = suffix
        self._prev: dict[str, tuple[int, int, WatchEntry]] = {}
        self._prev_manifests: dict[str, int] = {}
        self._prev_out: list[WatchEntry] = []

    def __call__(self) -> list[WatchEntry]:
        d, suffix = self.directory, self.suffix
        prefix = os.path.join(d, "")
        prev = self._prev
        cur: dict[str, tuple[int, int, WatchEntry]] = {}
        manifests: dict[str, int] = {}
        cut = len(_MANIFEST)
        fresh = 0
        try:
            with os.scandir(d) as it:
                for e in it:
                    name = e.name
                    if name.endswith(suffix):
                        if name[:1] == "." or ".tmp" in name:
                            continue
                        try:
                            st = e.stat()
                        except FileNotFoundError:  # removed between listing and stat
                            continue
                        size, mtime = st.st_size, st.st_mtime_ns
                        p = prev.get(name)
                        if p is not None and p[0] == size and p[1] == mtime:
                            cur[name] = p
                        else:
                            ent = WatchEntry(prefix + name, size, f"{size}:{mtime}")
                            cur[name] = (size, mtime, ent)
                            fresh += 1
                    elif name.endswith(_MANIFEST) and name[:1] != "." and ".tmp" not in name:
                        try:
                            manifests[name[:-cut]] = e.stat().st_mtime_ns
                        except FileNotFoundError:
                            continue
        except OSError as exc:
            raise StorageError(f"cannot list the watched directory {d}: {exc}") from None
        self._prev = cur
        if not fresh and len(cur) == len(prev) and manifests == self._prev_manifests:
            return list(self._prev_out)  # nothing changed since the last listing
        self._prev_manifests = manifests
        out = [cur[name][2] for name in sorted(cur)]
        if manifests:
            strip = len(".tar") if suffix.endswith(".tar") else 0
            for i, ent in enumerate(out):
                name = ent.url[len(prefix) :]
                m = manifests.get(name[:-strip] if strip else name)
                done = m is not None and m >= cur[name][1]
                if done != ent.complete:
                    out[i] = ent._replace(complete=done)
        self._prev_out = out
        return list(out)


def list_s3(url: str, client: Any, suffix: str = ".tar") -> list[WatchEntry]:
    """The shards under the S3 prefix ``url`` (``s3://bucket/prefix/``), sorted by key.

    Raises:
        StorageError: When the prefix cannot be listed.
    """
    from atdata.stores._s3client import _err, parse_s3_url

    bucket, prefix = parse_s3_url(url)
    tars: dict[str, tuple[int, str, Any]] = {}
    manifests: dict[str, Any] = {}
    try:
        for page in client.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
            for o in page.get("Contents", ()):
                key = o["Key"]
                if not _visible(key.rsplit("/", 1)[-1]):
                    continue
                if key.endswith(suffix):
                    tars[key] = (int(o["Size"]), str(o.get("ETag", "")).strip('"'),
                                 o.get("LastModified"))  # fmt: skip
                elif key.endswith(_MANIFEST):
                    manifests[key[: -len(_MANIFEST)]] = o.get("LastModified")
    except Exception as exc:
        raise _err(exc, f"listing {url}") from None
    out: list[WatchEntry] = []
    for key in sorted(tars):
        size, etag, modified = tars[key]
        m = manifests.get(key[: -len(suffix)] if key.endswith(".tar") else key)
        done = m is not None and (modified is None or m >= modified)
        out.append(WatchEntry(f"s3://{bucket}/{key}", size, f"{size}:{etag}", done))
    return out


def lister_for(source: str, *, client: Any = None, suffix: str = ".tar") -> Lister:
    """The listing function for a local directory or an ``s3://bucket/prefix/``.

    Raises:
        ConfigError: When ``source`` is neither.
    """
    if source.startswith("s3://"):
        if client is None:
            raise ConfigError(f"watching {source} needs an S3 client (pass client= or s3=)")
        return lambda: list_s3(source, client, suffix)
    if "://" in source:
        raise ConfigError(
            f"cannot watch {source!r}: give a local directory or an s3://bucket/prefix/"
        )
    if not os.path.isdir(source):
        raise ConfigError(f"the watched directory {source} does not exist; create it first")
    return LocalLister(source, suffix)
