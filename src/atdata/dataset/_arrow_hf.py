"""A :class:`~atdata.Dataset` as a Hugging Face ``datasets.Dataset`` / ``IterableDataset``.

The HF dataset's fingerprint is a digest of the shards' sha256 (taken from a manifest whose
file stamp still matches, from the per-machine verified cache, or by hashing the shard), the
sample type's fields and the selection, so HF's cache follows the bytes: rewritten shards give
a new fingerprint, identical shards anywhere give the same one. A dataset with a filter, map
or lens gets a fresh random fingerprint each time (a function cannot be digested).

Array fields become nested list columns (``atdata.layout = list``) keeping dtype and shape in
their field metadata, which HF keeps, so ``atdata.from_arrow(hf_ds)`` gets the arrays back
exactly; dict fields become lists of ``{key, value}`` (HF has no map type).

Examples:
    >>> import os, tempfile, atdata
    >>> d = tempfile.mkdtemp()
    >>> ds = atdata.write_samples([{"x": i} for i in range(3)], os.path.join(d, "a.tar"))
    >>> fp = fingerprint(ds)
    >>> len(fp), fp == fingerprint(atdata.Dataset(ds.list_shards()))
    (64, True)
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
import uuid
import weakref
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

from atdata._errors import ConfigError, ShardError
from atdata._extras import require
from atdata._shards.sources import is_remote
from atdata.dataset import _hf_cache
from atdata.dataset._arrow import hf_reader, with_fallback, with_progress

if TYPE_CHECKING:
    from atdata.dataset._dataset import Dataset

__all__ = ["fingerprint", "shard_sha256", "to_hf"]


def _local_sha(path: str) -> str:
    from atdata.manifest._fresh import _remembered, file_sha256, remember, shard_matches
    from atdata.manifest._read import load_manifest, recorded_digest

    rec = recorded_digest(path)
    if rec is not None:
        m = load_manifest(path)
        if m is not None and shard_matches(m.header, path, allow_hash=False) is True:
            return rec[0]
    real = os.path.realpath(path)
    st = os.stat(real)
    hit = _remembered(real, (real, st.st_size, st.st_mtime_ns, st.st_ino, st.st_ctime_ns))
    if hit is not None:
        return hit
    sha = file_sha256(real)
    remember(real, sha)
    return sha


def shard_sha256(ds: Dataset[Any], shard: str) -> str:
    """The sha256 of one shard of ``ds`` (see the module docs for where it comes from)."""
    if not is_remote(shard):
        return _local_sha(shard[7:] if shard.startswith("file://") else shard)
    info = ds._infos.get(shard)
    if info is not None and info.sha256:
        return info.sha256
    h = hashlib.sha256()
    with ds.source.open_shard(shard) as f:
        while block := f.read(1 << 20):
            h.update(block)
    return h.hexdigest()


def fingerprint(ds: Dataset[Any], extra: Any = None) -> str:
    """A hex digest naming ``ds``'s content (shards, type, selection) plus ``extra``."""
    if ds._ops:
        return uuid.uuid4().hex * 2
    fields = getattr(ds.sample_type, "atdata_fields", None)
    body = {
        "v": 1,
        "shards": [shard_sha256(ds, s) for s in ds.list_shards()],
        "type": getattr(ds.sample_type, "__name__", ""),
        "fields": [] if fields is None else [[s.name, s.type_name] for s in fields()],
        "selection": ds._selection,
        "extra": extra,
    }
    return hashlib.sha256(json.dumps(body, sort_keys=True).encode()).hexdigest()


def _nullable(pa: Any, f: Any) -> Any:
    """``f`` with it and every nested field nullable (HF's features say nothing of nullability,
    and a schema that differs from them is cast, which would drop the atdata field metadata)."""
    t = f.type
    if pa.types.is_struct(t):
        t = pa.struct([_nullable(pa, c) for c in t])
    elif pa.types.is_list(t):
        t = pa.list_(_nullable(pa, t.value_field))
    elif pa.types.is_map(t):
        t = pa.map_(t.key_type, _nullable(pa, t.item_field))
    return pa.field(f.name, t, True, f.metadata)


def _nullable_schema(pa: Any, schema: Any) -> Any:
    return pa.schema([_nullable(pa, f) for f in schema], metadata=schema.metadata)


_live: weakref.WeakValueDictionary[str, Any] = weakref.WeakValueDictionary()


def _lookup(token: str) -> _Handle:
    ds = _live.get(token)
    if ds is None:
        raise ConfigError(
            "this streaming Hugging Face dataset was made in another process from an atdata "
            "Dataset that is gone; call ds.to_hf(streaming=True) again where it is used"
        )
    return _Handle(ds, token)


class _Handle:
    """The dataset given to HF's generator. HF digests (pickles) generator arguments: this one
    pickles as its content fingerprint and is found again in the same (or a forked) process."""

    ds: Any
    token: str

    def __init__(self, ds: Any, token: str) -> None:
        self.ds, self.token = ds, token
        _live[token] = ds

    def __reduce__(self) -> tuple[Any, tuple[str]]:
        return _lookup, (self.token,)


def _rows(handle: _Handle, batch_size: int) -> Iterator[dict[str, Any]]:
    for batch in hf_reader(handle.ds, batch_size, "list"):
        yield from batch.to_pylist()


def to_hf(
    ds: Dataset[Any],
    *,
    streaming: bool = False,
    cache_dir: str | os.PathLike[str] | None = None,
    batch_size: int = 1024,
    progress: bool | None = None,
    cache_limit: int | None = None,
) -> Any:
    """This dataset as a Hugging Face ``datasets.Dataset`` (needs ``atdata[hf]``).

    The rows are written once into an Arrow file named by the content fingerprint under
    ``cache_dir`` (default ``$ATDATA_CACHE_DIR/hf``) and memory-mapped; a later call over the same
    shards reuses it. ``streaming=True`` gives a ``datasets.IterableDataset`` that reads the
    shards as it is iterated (nothing is written). ``progress`` shows a bar while the file is
    written (default: on an interactive terminal).

    The cache directory is kept under ``cache_limit`` bytes (default ``$ATDATA_HF_CACHE_LIMIT``,
    else 8 GiB): the least recently used files go first, never the one returned and never one a
    live HF dataset still maps (see :mod:`atdata.dataset._hf_cache`; ``atdata local gc`` applies
    the same cap to the default directory).

    Examples:
        >>> import os, tempfile, numpy as np, atdata
        >>> d = tempfile.mkdtemp()
        >>> ds = atdata.write_samples([{"img": np.eye(2, dtype="u1"), "y": 1}], os.path.join(d, "a.tar"))
        >>> hf = ds.to_hf(cache_dir=d)
        >>> hf.num_rows, hf[0]["img"], hf._fingerprint == fingerprint(ds, "hf-v2")
        (1, [[1, 0], [0, 1]], True)
    """
    datasets = require("datasets", "hf", "Dataset.to_hf")
    pa = require("pyarrow", "hf", "Dataset.to_hf")
    fp = fingerprint(ds, "hf-v2")
    if streaming:
        schema = hf_reader(ds, batch_size, "list").schema
        features = datasets.Features.from_arrow_schema(schema)
        return datasets.IterableDataset.from_generator(
            _rows, features=features,
            gen_kwargs={"handle": _Handle(ds, fp), "batch_size": batch_size},
        )  # fmt: skip
    from datasets.table import MemoryMappedTable  # type: ignore[import-untyped]

    limit = _hf_cache.resolve_limit(cache_limit)
    root = os.fspath(cache_dir) if cache_dir is not None else _hf_cache.cache_root()
    os.makedirs(root, exist_ok=True)
    path = os.path.join(root, f"atdata-{fp[:40]}.arrow")
    fd = _hf_cache.acquire(path)
    for _ in range(3):  # written, then locked (another process's eviction may win in between)
        if fd is not None:
            break

        def write(arrays: Any) -> None:
            reader = hf_reader(ds, batch_size, arrays)
            schema = _nullable_schema(pa, reader.schema)
            tfd, tmp = tempfile.mkstemp(prefix=".tmp-", suffix=".arrow", dir=root)
            os.close(tfd)
            try:
                with pa.OSFile(tmp, "wb") as sink, pa.ipc.new_stream(sink, schema) as w:
                    for batch in with_progress(ds, reader, progress):
                        w.write_batch(pa.RecordBatch.from_arrays(batch.columns, schema=schema))
                os.replace(tmp, path)
            finally:
                if os.path.exists(tmp):
                    os.unlink(tmp)

        with_fallback(write, "list", widen=("list",))
        fd = _hf_cache.acquire(path)
    if fd is None:
        raise ShardError(
            f"the Hugging Face cache file {path} was removed as soon as it was written, three "
            f"times (another process evicting it?); pass a larger cache_limit or another cache_dir"
        )
    table = MemoryMappedTable(_hf_cache.open_table(pa, path, fd), path)  # locked while mapped
    _hf_cache.evict(root, limit, keep={path})
    return datasets.Dataset(table, fingerprint=fp)
