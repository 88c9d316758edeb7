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

import contextlib
import functools
import hashlib
import os
import shutil
import uuid
from collections.abc import Iterable, Iterator, Mapping
from typing import Any, Protocol, runtime_checkable

from atdata._errors import ConfigError, NothingWrittenError

__all__ = [
    "AbstractDataStore",
    "ShardWriteResult",
    "atdata_home",
    "put_samples",
    "staging_lock",
    "write_key",
    "write_shards_to",
]


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


def put_samples(
    store: Any,
    samples: Iterable[Any],
    prefix: str,
    pattern: str,
    *,
    maxcount: int | None = None,
    maxsize: int | None = None,
    manifest: bool = False,
    key: Any = None,
    write_id: str | None = None,
    manifest_header: Mapping[str, Any] | None = None,
) -> tuple[list[tuple[Any, str]], type | None]:
    """Write ``samples`` into shards named ``pattern`` (``"x-%06d.tar"``) under ``prefix`` of
    ``store``: staged locally, then put and verified (size, sha256) with their manifests.

    With a ``write_id`` the stored bytes are a function of the samples and the arguments: a
    sample without its own ``__key__`` is keyed by :func:`write_key` (``key=None``), the tar
    headers carry :data:`~atdata._shards.tar.FIXED_MTIME` and the manifests no clock time or
    file stamp. The files then go under ``prefix/<digest>/``, ``digest`` being the first 16 hex
    digits of a sha256 over every stored file's name, size and sha256: a retry with the same
    samples puts the same bytes under the same keys (found stored, so not uploaded again), and
    a run with other samples (a source that changed) puts them elsewhere, never over them.

    Returns:
        ``[(ShardInfo of the staged shard, stored URL), ...]`` in order, and the type of the
        first sample (``None`` when there was none). Staged files are removed whatever happens,
        except on Ctrl-C (``KeyboardInterrupt``), which leaves them for ``atdata local gc``.
    """
    from atdata._shards.tar import FIXED_MTIME
    from atdata._shards.writer import ShardWriter
    from atdata.stores._local import check_key, file_sha256

    prefix = check_key(prefix.strip("/"))
    if not hasattr(store, "put_shard"):  # a store that only offers the documented protocol
        return _put_via_write_shards(
            store, samples, prefix, pattern, maxcount=maxcount, maxsize=maxsize,
            manifest=manifest, key=key, write_id=write_id,
        )  # fmt: skip
    staging = store.staging_dir()
    first: list[type] = []

    def track(it: Iterable[Any]) -> Iterator[Any]:
        for x in it:
            if not first:
                first.append(type(x))
            yield x

    observers: list[Any] = []
    if manifest:
        from atdata.manifest._builder import ManifestObserver

        observers.append(
            ManifestObserver.reproducible(header=manifest_header)
            if write_id
            else ManifestObserver(header=manifest_header)
        )
    if write_id is not None and key is None:
        key = functools.partial(write_key, write_id)
    out: list[tuple[Any, str]] = []
    keep = False
    try:
        with staging_lock(staging):  # `atdata local gc` never takes a staging dir in use
            with ShardWriter(
                os.path.join(staging, pattern), maxcount, maxsize, key=key, progress=False,
                observers=observers, mtime=FIXED_MTIME if write_id is not None else None,
            ) as w:  # fmt: skip
                for sample in track(samples):
                    w.write(sample)
            # each shard, then its manifest (rows, then header): a failure in between leaves a
            # shard without a manifest, never a manifest without its shard
            files: list[tuple[Any, str, str, int]] = []  # (ShardInfo or None, path, sha, size)
            for info in w.list_shard_infos():
                files.append((info, info.path, info.sha256, info.size))
                stem = info.path[: -len(".tar")]
                for side in (stem + ".manifest.parquet", stem + ".manifest.json"):
                    if os.path.exists(side):
                        files.append((None, side, *file_sha256(side)))
            if write_id is not None and files:
                h = hashlib.sha256()
                for _, path, sha, size in files:
                    h.update(f"{os.path.basename(path)}\t{size}\t{sha}\n".encode())
                prefix = f"{prefix}/{h.hexdigest()[:16]}"
            for info, path, sha, size in files:
                url = store.put_shard(
                    path, f"{prefix}/{os.path.basename(path)}", sha256=sha, size=size, move=True
                )
                if info is not None:
                    out.append((info, url))
    except BaseException as exc:
        # Ctrl-C (or SystemExit) leaves the staging directory for inspection: `atdata local
        # status` lists it, `atdata local gc` removes it, and a rerun with the same write_id
        # completes the write.
        keep = not isinstance(exc, Exception)
        raise
    finally:
        if not keep:
            shutil.rmtree(staging, ignore_errors=True)
    return out, (first[0] if first else None)


def _put_via_write_shards(
    store: Any,
    samples: Iterable[Any],
    prefix: str,
    pattern: str,
    *,
    maxcount: int | None,
    maxsize: int | None,
    manifest: bool,
    key: Any,
    write_id: str | None,
) -> tuple[list[tuple[Any, str]], type | None]:
    """:func:`put_samples` for a store with only ``write_shards`` (e.g. ``PDSBlobStore``): the
    shards are staged in a temporary directory, handed to ``store.write_shards`` as a
    :class:`~atdata.Dataset`, and paired with the URLs it returns (nothing is recorded here, so
    a failed upload leaves no entry). A store with a ``limit`` (bytes per stored object) gets
    shards no bigger than that, so each shard becomes exactly one stored object."""
    import tempfile

    from atdata._shards.tar import FIXED_MTIME
    from atdata._shards.writer import ShardWriter
    from atdata.dataset._dataset import Dataset

    name = type(store).__name__
    if manifest:
        raise ConfigError(
            f"{name} stores shards only (it has no put_shard for manifest sidecars); write with "
            "manifest=False, or into a LocalDiskStore/S3DataStore to keep manifests"
        )
    limit = getattr(store, "limit", None)
    if isinstance(limit, int) and limit > 0:
        maxsize = min(maxsize, limit) if maxsize is not None else limit
    if write_id is not None and key is None:
        key = functools.partial(write_key, write_id)
    staging = tempfile.mkdtemp(prefix="atdata-upload-")
    try:
        with ShardWriter(
            os.path.join(staging, pattern), maxcount, maxsize, key=key, progress=False,
            mtime=FIXED_MTIME if write_id is not None else None,
        ) as w:  # fmt: skip
            first: type | None = None
            for sample in samples:
                if first is None:
                    first = type(sample)
                w.write(sample)
        infos = w.list_shard_infos()
        if not infos:
            return [], None
        ds = Dataset([i.path for i in infos], sample_type=first, shard_infos=infos)
        urls = list(store.write_shards(ds, prefix=prefix))
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    if len(urls) != len(infos):
        raise ConfigError(
            f"{name}.write_shards stored {len(infos)} shard(s) under {prefix!r} as {len(urls)} "
            "objects, so they cannot be recorded one URL per shard; give the store a `limit` "
            "(bytes per object) or write with a smaller maxsize"
        )
    return list(zip(infos, urls, strict=True)), first


def write_key(write_id: str, sample: Any, index: int) -> str:
    """The key a sample gets in a write with ``write_id``: its own ``__key__``, else a uuid5 of
    ``write_id`` and its position ``index`` (the same in every run of that write).

    Examples:
        >>> write_key("job-7", object(), 3) == write_key("job-7", object(), 3)
        True
        >>> write_key("job-7", object(), 3) != write_key("job-8", object(), 3)
        True
    """
    own = getattr(sample, "__key__", None)
    if own is not None:
        return own
    return str(uuid.uuid5(_WRITE_KEYS, f"{write_id}/{index}"))


_WRITE_KEYS = uuid.uuid5(uuid.NAMESPACE_URL, "atdata:write_id")


LOCK = ".lock"


@contextlib.contextmanager
def staging_lock(directory: str) -> Iterator[None]:
    """Hold ``directory``'s writer lock while writing in it (``atdata local gc`` skips locked
    staging directories)."""
    import fcntl

    fd = os.open(os.path.join(directory, LOCK), os.O_CREAT | os.O_RDWR, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)


def write_shards_to(
    store: Any,
    ds: Any,
    prefix: str,
    *,
    maxcount: int | None = None,
    maxsize: int | None = None,
    manifest: bool = False,
    manifest_header: Mapping[str, Any] | None = None,
) -> ShardWriteResult:
    """Write ``ds``'s samples into new shards ``<prefix>/data--<id>--NNNNNN.tar`` of ``store``
    (``manifest_header``: fields every manifest's header carries, see
    :func:`~atdata.manifest._builder.provenance_header`).

    Raises:
        NothingWrittenError: (a ``ConfigError`` and a ``RuntimeError``) When ``ds`` has no
            samples.
        ConfigError: When ``prefix`` is not a relative path.
    """
    samples = ds.ordered() if hasattr(ds, "ordered") else ds
    pattern = f"data--{uuid.uuid4().hex[:8]}--%06d.tar"
    put, _ = put_samples(
        store, samples, prefix, pattern, maxcount=maxcount, maxsize=maxsize, manifest=manifest,
        manifest_header=manifest_header,
    )  # fmt: skip
    if not put:
        raise NothingWrittenError(
            f"the dataset has no samples, so nothing was written under {prefix!r}; "
            "write at least one sample"
        )
    return ShardWriteResult([u for _, u in put], {u: i.sha256 for i, u in put})
