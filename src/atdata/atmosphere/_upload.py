"""Uploading shards as PDS blobs: :class:`PDSBlobStore` (resumable).

Upload plans are made before the first byte goes out: a shard larger than the blob limit (the
smaller of the server's ``blobUploadLimit`` and the lexicon's 50 MiB) is split at sample
boundaries into several tars; a single sample larger than the limit is refused with a clear
error.
"""

from __future__ import annotations

import hashlib
import os
import tempfile
from collections.abc import Callable
from typing import Any

from atdata._errors import (
    AuthenticationError,
    ConfigError,
    NothingWrittenError,
    ShardError,
    StorageError,
)
from atdata._events import emit
from atdata._shards.tar import TarWriter, scan_tar_file, split_member_name
from atdata.atmosphere._blobs import (
    LEXICON_MAX_BLOB,
    BlobRef,
    BlobSource,
    _parse_blob_uri,
    blob_shard_id,
)

__all__ = ["PDSBlobStore", "ShardUploadResult"]


def _sha256_file(path: str) -> tuple[str, int]:
    h = hashlib.sha256()
    n = 0
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
            n += len(block)
    return h.hexdigest(), n


def _plan_pieces(path: str, limit: int) -> list[list[tuple[str, int, int]]]:
    """Group a shard's members into pieces whose tar size stays within ``limit`` (samples kept whole)."""
    members = scan_tar_file(path, f" in shard {path}")
    samples: list[list[tuple[str, int, int]]] = []
    last_key = None
    for name, off, size in members:
        key, _ext = split_member_name(name)
        if key != last_key:
            samples.append([])
            last_key = key
        samples[-1].append((name, off, size))

    def tar_size(group: list[tuple[str, int, int]]) -> int:
        return sum(
            512 * (1 + (len(n.encode()) > 100) * 2) + ((s + 511) & ~511) for n, _o, s in group
        )

    pieces: list[list[tuple[str, int, int]]] = []
    current: list[tuple[str, int, int]] = []
    current_size = 1024  # end-of-archive marker
    for sample in samples:
        need = tar_size(sample)
        if need + 1024 > limit:
            raise ConfigError(
                f"sample {split_member_name(sample[0][0])[0]!r} in shard {path} needs {need} bytes, "
                f"more than the PDS blob limit of {limit} bytes; store this dataset at HTTP or S3 "
                "URLs instead, or shrink the sample"
            )
        if current and current_size + need > limit:
            pieces.append(current)
            current, current_size = [], 1024
        current.extend(sample)
        current_size += need
    if current:
        pieces.append(current)
    return pieces


class ShardUploadResult(list):
    """What :meth:`PDSBlobStore.write_shards` returns: the blob AT-URIs (a ``list[str]``), with
    ``blob_refs`` (the references for a ``storageBlobs`` record) and ``checksums`` (AT-URI ->
    sha256)."""

    def __init__(
        self,
        urls: list[str],
        blob_refs: list[dict[str, Any]],
        checksums: dict[str, str] | None = None,
    ) -> None:
        super().__init__(urls)
        self.blob_refs = blob_refs
        self.checksums = dict(checksums or {})


class PDSBlobStore:
    """Upload local shards as ``application/x-tar`` blobs to the account's PDS.

    Args:
        client: A logged-in :class:`~atdata.atmosphere.Atmosphere` (the documented name;
            ``PDSBlobStore(client=atmo)`` or positionally).
        max_blob_size: Cap per blob (default: the server's limit, at most 50 MiB as the
            ``storageBlobs`` lexicon says).
        atmosphere: The same as ``client`` (our earlier keyword).

    Raises:
        ConfigError: (a ``ValueError``) Neither ``client`` nor ``atmosphere``, or both.
    """

    def __init__(
        self, client: Any = None, max_blob_size: int | None = None, *, atmosphere: Any = None
    ) -> None:
        if (client is None) == (atmosphere is None):
            raise ConfigError("PDSBlobStore needs the logged-in Atmosphere: PDSBlobStore(client)")
        self.atmosphere = client if client is not None else atmosphere
        self.max_blob_size = max_blob_size
        self._limit: int | None = None

    @property
    def client(self) -> Any:
        """The atmosphere client (upstream's name for :attr:`atmosphere`)."""
        return self.atmosphere

    @property
    def url(self) -> str:
        """``at://<did>``: the repository whose blobs hold the shards (what an index entry
        records as its ``data_store``)."""
        return f"at://{self.atmosphere.did}"

    @property
    def limit(self) -> int:
        """Bytes per blob: the smallest of the server's limit, the lexicon's and ``max_blob_size``."""
        if self._limit is None:
            server = getattr(self.atmosphere, "blob_limit", None) or LEXICON_MAX_BLOB
            self._limit = min(x for x in (server, LEXICON_MAX_BLOB, self.max_blob_size) if x)
        return self._limit

    def write_shards(self, ds: Any, *, prefix: str = "", **kwargs: Any) -> ShardUploadResult:
        """Upload a dataset's local shards as blobs (split at sample boundaries when too big).

        Args:
            ds: A :class:`~atdata.Dataset` over local shard files.
            prefix: Accepted for the data-store protocol (blobs have no paths).

        Returns:
            The blob AT-URIs ``at://<did>/blob/<cid>``, with ``blob_refs`` and ``checksums``.

        Raises:
            ConfigError: (a ``ValueError``) When the Atmosphere is not logged in.
            NothingWrittenError: (a ``RuntimeError``, as documented upstream) When ``ds`` has
                no shards.
        """
        shards = list(ds.list_shards())
        if not shards:
            raise NothingWrittenError(
                f"{ds!r} has no shards, so no blob was uploaded; write its samples first"
            )
        refs = self.upload_shards(shards, progress=kwargs.get("progress"))
        did = self.atmosphere.did
        urls = [blob_shard_id(did, r.cid) for r in refs]
        return ShardUploadResult(
            urls, [r.ref for r in refs], {u: r.sha256 for u, r in zip(urls, refs, strict=True)}
        )

    def keep_shards(self, index: Any, entry: Any) -> Any:
        """Make the blobs of ``entry`` (written by :meth:`write_shards`) permanent: a PDS keeps an
        uploaded blob only while a record references it, so the dataset's entry record (and its
        schema record) is published to the account, over these blobs (nothing is uploaded
        again). :class:`~atdata.Index` calls this after the upload and before it commits its own
        entry, so a failure leaves no index entry.

        Returns:
            The :class:`~atdata.atmosphere.PromoteResult` (``.uri`` is the entry record's).
        """
        from atdata.atmosphere._promote import promote_dataset_entry

        return promote_dataset_entry(index, entry, self.atmosphere)

    def read_url(self, url: str) -> str:
        """The HTTP ``getBlob`` URL of a blob AT-URI (other URLs are returned unchanged)."""
        if not url.startswith("at://"):
            return url
        did, cid = _parse_blob_uri(url)
        return str(self.atmosphere.get_blob_url(did, cid))

    def supports_streaming(self) -> bool:
        """Blobs stream over HTTP: ``True``."""
        return True

    def create_source(self, urls: list[str]) -> BlobSource:
        """A :class:`BlobSource` over blob AT-URIs from :meth:`write_shards` (one repository)."""
        pairs = [_parse_blob_uri(u) for u in urls]
        dids = {d for d, _c in pairs}
        if len(dids) != 1:
            raise ConfigError(f"a blob source reads one repository's blobs, got {sorted(dids)}")
        did = dids.pop()
        pds = self.atmosphere.resolve(did).pds
        return BlobSource(did, pds, [(c, None, None) for _d, c in pairs])

    def plan(self, paths: list[str]) -> list[tuple[str, list[list[tuple[str, int, int]]] | None]]:
        """For each shard, ``None`` (uploaded whole) or the member groups it is split into.

        Raises:
            ConfigError: When a single sample does not fit in one blob (nothing is uploaded).
            ShardError: When a shard is missing or not a tar.
        """
        out: list[tuple[str, list[list[tuple[str, int, int]]] | None]] = []
        for p in paths:
            try:
                size = os.path.getsize(p)
            except OSError as exc:
                raise ShardError(f"cannot read shard {p}: {exc.strerror}") from None
            out.append((p, None if size <= self.limit else _plan_pieces(p, self.limit)))
        return out

    def upload(self, data: bytes) -> BlobRef:
        """Upload one tar (at most :attr:`limit` bytes)."""
        if len(data) > self.limit:
            raise ConfigError(
                f"a blob of {len(data)} bytes exceeds the blob limit of {self.limit} bytes"
            )
        ref = self.atmosphere.upload_blob(data, "application/x-tar")
        return BlobRef(ref=ref, sha256=hashlib.sha256(data).hexdigest(), size=len(data))

    def upload_shards(
        self,
        paths: list[str],
        on_blob: Callable[[BlobRef], None] | None = None,
        *,
        progress: bool | None = None,
    ) -> list[BlobRef]:
        """Plan (refusing before any upload if something cannot fit), then upload every shard.

        Each blob sent emits a ``shard_write`` event (``op="pds_upload"``, ``data``: ``cid``,
        ``bytes``, ``blob``/``blobs`` counts; see :mod:`atdata._events`).

        Args:
            paths: Local shard files, in order.
            on_blob: Called after each upload (e.g. to record progress).
            progress: Show a progress bar over the blobs (``None``: on an interactive terminal,
                when there is more than one blob).

        Returns:
            One :class:`BlobRef` per blob, in order (a split shard gives several).
        """
        planned = self.plan(paths)
        total = sum(1 if pieces is None else len(pieces) for _p, pieces in planned)
        refs: list[BlobRef] = []
        bar = _UploadBar(progress, total)

        def send(data: bytes, path: str) -> None:
            try:
                refs.append(self.upload(data))
            except (StorageError, AuthenticationError) as exc:
                bar.close()
                raise _resumable(exc, path, len(refs), total) from None
            emit("shard_write", op="pds_upload", shard=path, cid=refs[-1].cid,
                 bytes=len(data), blob=len(refs), blobs=total)  # fmt: skip
            bar.advance(len(data))
            if on_blob:
                on_blob(refs[-1])

        for path, pieces in planned:
            if pieces is None:
                with open(path, "rb") as f:
                    send(f.read(), path)
                continue
            fd = os.open(path, os.O_RDONLY)
            try:
                for group in pieces:
                    with tempfile.SpooledTemporaryFile(max_size=self.limit + 1) as tmp:
                        w = TarWriter(tmp, mtime=0)
                        for name, off, size in group:
                            w.add(name, os.pread(fd, size, off))
                        w.close()
                        tmp.seek(0)
                        send(tmp.read(), path)
            finally:
                os.close(fd)
        bar.close()
        return refs


class _UploadBar:
    """A rich progress bar over blob uploads (shown only when asked or on a terminal)."""

    def __init__(self, enabled: bool | None, total: int) -> None:
        if enabled is None:
            import sys

            enabled = total > 1 and sys.stderr.isatty()
        self._bar: Any = None
        if enabled:
            from rich.progress import BarColumn, DownloadColumn, Progress, TextColumn

            self._bar = Progress(
                TextColumn("uploading blobs"), BarColumn(), TextColumn("{task.completed}/{task.total}"),
                DownloadColumn(binary_units=True), transient=False,
            )  # fmt: skip
            self._bar.start()
            self._task = self._bar.add_task("upload", total=total)

    def advance(self, nbytes: int) -> None:
        if self._bar is not None:
            self._bar.advance(self._task)

    def close(self) -> None:
        if self._bar is not None:
            self._bar.stop()
            self._bar = None


def _resumable(exc: Exception, path: str, done: int, total: int) -> Exception:
    """The upload error, saying what to do next (nothing was recorded; a rerun resumes)."""
    kind = type(exc)
    return kind(
        f"uploading shard {path} failed ({exc}); {done} of {total} blobs are already up and no "
        "dataset record was written: rerun the same publish to resume (uploads are "
        "content-addressed, so the blobs already up keep their CIDs and the record is written "
        "once); an expired session needs `atdata login` first"
    )
