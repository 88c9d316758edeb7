"""The documented data-store contract (:class:`AbstractDataStore`) and what every store shares.

A data store keeps shard bytes; an index keeps what they are. ``write_shards(ds, prefix=...)``
copies a dataset's samples into new shards under ``prefix`` and returns their URLs as a
:class:`ShardWriteResult` (a ``list[str]`` that also carries each shard's sha256).

Examples:
    >>> r = ShardWriteResult(["/d/a.tar"], {"/d/a.tar": "ab" * 32})
    >>> r[0], r.checksums["/d/a.tar"][:4], isinstance(r, list)
    ('/d/a.tar', 'abab', True)
"""

from __future__ import annotations

import os
import shutil
import uuid
from typing import Any, Protocol, runtime_checkable

from atdata._errors import ConfigError

__all__ = ["AbstractDataStore", "ShardWriteResult", "atdata_home", "write_shards_to"]


def atdata_home() -> str:
    """``$ATDATA_HOME`` or ``~/.atdata``, absolute."""
    return os.path.abspath(os.path.expanduser(os.environ.get("ATDATA_HOME") or "~/.atdata"))


@runtime_checkable
class AbstractDataStore(Protocol):
    """What a data store offers its users: write a dataset's shards, resolve URLs for reading.

    :class:`~atdata.LocalDiskStore` and :class:`~atdata.S3DataStore` implement it; any object
    with these three methods can be passed where a data store is expected.
    """

    def write_shards(self, ds: Any, *, prefix: str, **kwargs: Any) -> list[str]:
        """Write ``ds``'s samples as shards under ``prefix``; return their URLs in order."""
        ...

    def read_url(self, url: str) -> str:
        """The URL to read ``url`` through (identity for plain files, signed for some stores)."""
        ...

    def supports_streaming(self) -> bool:
        """Whether shards can be read as a stream without downloading them first."""
        ...


class ShardWriteResult(list[str]):
    """The shard URLs :meth:`AbstractDataStore.write_shards` wrote, with their sha256.

    Attributes:
        checksums: Shard URL -> sha256 hex digest.
    """

    checksums: dict[str, str]

    def __init__(self, urls: list[str], checksums: dict[str, str]) -> None:
        super().__init__(urls)
        self.checksums = dict(checksums)


def write_shards_to(
    store: Any,
    ds: Any,
    prefix: str,
    *,
    maxcount: int | None = None,
    maxsize: int | None = None,
    manifest: bool = False,
) -> ShardWriteResult:
    """Write ``ds``'s samples into new shards under ``prefix`` of ``store``.

    Shards are written in the store's staging directory, then put (and verified) under
    ``<prefix>/data--<id>--NNNNNN.tar``; the staged files are removed whatever happens.

    Raises:
        ConfigError: When ``ds`` has no samples or ``prefix`` is not a relative path.
    """
    from atdata.dataset._write import ShardWriter
    from atdata.stores._local import check_key, file_sha256

    prefix = check_key(prefix.strip("/"))
    tag = uuid.uuid4().hex[:8]
    staging = store.staging_dir()
    urls: list[str] = []
    checksums: dict[str, str] = {}
    try:
        pattern = os.path.join(staging, f"data--{tag}--%06d.tar")
        with ShardWriter(
            pattern, maxcount, maxsize, progress=False, manifest=manifest
        ) as w:  # fmt: skip
            for sample in ds.ordered() if hasattr(ds, "ordered") else ds:
                w.write(sample)
        infos = w.list_shard_infos()
        if not infos:
            raise ConfigError(
                f"the dataset has no samples, so nothing was written under {prefix!r}; "
                "write at least one sample"
            )
        for info in infos:
            name = os.path.basename(info.path)
            stem = info.path[: -len(".tar")]
            for side in (stem + ".manifest.json", stem + ".manifest.parquet"):
                if os.path.exists(side):
                    sha, size = file_sha256(side)
                    store.put_shard(
                        side, f"{prefix}/{os.path.basename(side)}", sha256=sha, size=size, move=True
                    )
            url = store.put_shard(
                info.path, f"{prefix}/{name}", sha256=info.sha256, size=info.size, move=True
            )
            urls.append(url)
            checksums[url] = info.sha256
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return ShardWriteResult(urls, checksums)
