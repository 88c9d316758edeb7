"""Data stores: where an index keeps shard bytes. :class:`LocalDiskStore` keeps them in a directory.

Every store verifies what it stored (size and sha256) before returning its URL, and putting
the same bytes under the same key again is a no-op, so a retried write completes instead of
duplicating.

Examples:
    >>> import tempfile, os, hashlib
    >>> root = tempfile.mkdtemp()
    >>> src = os.path.join(tempfile.mkdtemp(), "a.tar")
    >>> _ = open(src, "wb").write(b"x" * 1024)
    >>> store = LocalDiskStore(root)
    >>> url = store.put_shard(src, "ds/a.tar", sha256=hashlib.sha256(b"x" * 1024).hexdigest(), size=1024)
    >>> url == os.path.join(root, "ds", "a.tar"), store.exists("ds/a.tar", size=1024)
    (True, True)
    >>> store.read_url(url) == url, store.supports_streaming()
    (True, True)
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import shutil
import uuid
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

from atdata._errors import ConfigError, IntegrityError, StorageError
from atdata.stores._base import ShardWriteResult, atdata_home, write_shards_to

__all__ = ["DataStore", "LocalDiskStore", "file_sha256"]


def file_sha256(path: str, bufsize: int = 1 << 20) -> tuple[str, int]:
    """``(sha256 hex, size)`` of a local file."""
    h = hashlib.sha256()
    n = 0
    with open(path, "rb") as f:
        while chunk := f.read(bufsize):
            h.update(chunk)
            n += len(chunk)
    return h.hexdigest(), n


def check_key(key: str) -> str:
    """Reject keys that would escape the store root."""
    parts = key.replace("\\", "/").split("/")
    if not key or key.startswith("/") or any(p in ("", ".", "..") for p in parts):
        raise ConfigError(
            f"store key {key!r} must be a relative path without '.', '..' or empty parts"
        )
    return "/".join(parts)


@runtime_checkable
class DataStore(Protocol):
    """Where shard bytes live. ``put_shard`` returns the URL the index records."""

    kind: str

    @property
    def url(self) -> str: ...

    def put_shard(
        self, local_path: str, key: str, *, sha256: str, size: int, move: bool = False
    ) -> str:
        """Store a local file under ``key``, verify it, and return its URL."""
        ...

    def exists(self, key: str, *, size: int | None = None, sha256: str | None = None) -> bool: ...

    def source(self, urls: list[str]) -> Any:
        """A :class:`~atdata.DataSource` reading these URLs."""
        ...

    def staging_dir(self) -> str:
        """A local directory to write shards in before :meth:`put_shard`."""
        ...

    def ping(self) -> None: ...


class LocalDiskStore:
    """Shards in a local directory, written atomically (temporary name, then ``os.replace``).

    Args:
        root: Directory holding the shards, created if missing (``~`` expanded). Default
            ``~/.atdata/data`` (``$ATDATA_HOME/data`` when ``ATDATA_HOME`` is set).

    Attributes:
        root: The directory, as an absolute resolved :class:`~pathlib.Path`.
    """

    kind = "disk"

    def __init__(self, root: str | os.PathLike[str] | None = None) -> None:
        if root is None:
            root = os.path.join(atdata_home(), "data")
        self.root: Path = Path(os.fspath(root)).expanduser().resolve()
        with contextlib.suppress(OSError):  # reported by ping() and the first write
            self.root.mkdir(parents=True, exist_ok=True)

    @property
    def url(self) -> str:
        return str(self.root)

    def write_shards(
        self,
        ds: Any,
        *,
        prefix: str,
        maxcount: int | None = None,
        maxsize: int | None = None,
        manifest: bool = False,
        schema_version: str | None = None,
        source_job_id: str | None = None,
        parent_shards: list[str] | None = None,
        pipeline_version: str | None = None,
        **kwargs: Any,
    ) -> ShardWriteResult:
        """Copy ``ds``'s samples into new shards under ``root/prefix``.

        Args:
            ds: A :class:`~atdata.Dataset` (or any iterable of samples).
            prefix: Sub-directory of :attr:`root`, e.g. ``"mnist/v1"``.
            maxcount: Samples per shard (default: one shard).
            maxsize: Bytes per shard.
            manifest: Also write a manifest beside each shard.
            schema_version: The ``schema_version`` each manifest header records (default:
                the sample type's ``__schema_version__``, else ``"1.0.0"``).
            source_job_id: Provenance: the job that wrote the shards (in each manifest header).
            parent_shards: Provenance: the input shards they were made from.
            pipeline_version: Provenance: the version of the pipeline that made them.
            **kwargs: Options of other stores (``cache_local``) are accepted and ignored.

        Returns:
            The shard paths in order, with :attr:`ShardWriteResult.checksums`.

        Raises:
            ConfigError: When ``ds`` has no samples or ``prefix`` leaves the root.
        """
        from atdata.manifest._builder import provenance_header

        header = provenance_header(schema_version, source_job_id, parent_shards, pipeline_version)
        return write_shards_to(
            self, ds, prefix, maxcount=maxcount, maxsize=maxsize, manifest=manifest,
            manifest_header=header,
        )  # fmt: skip

    def read_url(self, url: str) -> str:
        """``url`` itself: local shards are read where they are."""
        return url

    def supports_streaming(self) -> bool:
        """``True``: local shards are read as streams."""
        return True

    def path_for(self, key: str) -> str:
        """Local path of ``key``."""
        return os.path.join(self.root, *check_key(key).split("/"))

    def staging_dir(self) -> str:
        d = os.path.join(self.root, ".staging", uuid.uuid4().hex)
        try:
            os.makedirs(d, exist_ok=True)
        except OSError as exc:
            raise StorageError(
                f"cannot create a staging directory in data store {self.root}: {exc.strerror} "
                f"({exc.filename}); make it writable or choose another data_store"
            ) from None
        return d

    def exists(self, key: str, *, size: int | None = None, sha256: str | None = None) -> bool:
        p = self.path_for(key)
        try:
            st = os.stat(p)
        except OSError:
            return False
        if size is not None and st.st_size != size:
            return False
        return sha256 is None or file_sha256(p)[0] == sha256

    def put_shard(
        self, local_path: str, key: str, *, sha256: str, size: int, move: bool = False
    ) -> str:
        """Store ``local_path`` as ``key`` (a move when possible), verify size and sha256.

        Raises:
            IntegrityError: When the stored bytes do not match ``sha256``/``size``.
            StorageError: When the file cannot be written.
        """
        final = self.path_for(key)
        try:
            os.makedirs(os.path.dirname(final), exist_ok=True)
            if self.exists(key, size=size, sha256=sha256):
                if move:
                    os.unlink(local_path)
                return final
            tmp = os.path.join(
                os.path.dirname(final), f".{os.path.basename(final)}.tmp-{uuid.uuid4().hex[:8]}"
            )
            try:
                if move:
                    try:
                        os.replace(local_path, tmp)
                    except OSError:  # another filesystem
                        shutil.copyfile(local_path, tmp)
                        os.unlink(local_path)
                else:
                    shutil.copyfile(local_path, tmp)
                got_sha, got_size = file_sha256(tmp)
                if (got_sha, got_size) != (sha256, size):
                    raise IntegrityError(
                        f"shard {key} in store {self.root}: wrote {got_size} bytes with sha256 "
                        f"{got_sha[:16]}..., expected {size} bytes with {sha256[:16]}...; nothing recorded"
                    )
                with open(tmp, "rb") as f:
                    os.fsync(f.fileno())
                os.replace(tmp, final)
            finally:
                if os.path.exists(tmp):
                    os.unlink(tmp)
        except OSError as exc:
            raise StorageError(f"cannot store shard {key} under {self.root}: {exc}") from None
        return final

    def source(self, urls: list[str]) -> Any:
        from atdata._shards.sources import URLSource

        return URLSource(list(urls))

    def ping(self) -> None:
        try:
            os.makedirs(self.root, exist_ok=True)
        except OSError as exc:
            raise StorageError(f"data store {self.root} is not writable: {exc}") from None
        if not os.access(self.root, os.W_OK):
            raise StorageError(f"data store {self.root} is not writable")

    def __repr__(self) -> str:
        return f"LocalDiskStore({str(self.root)!r})"
