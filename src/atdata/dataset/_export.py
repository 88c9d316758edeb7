"""Description, export and manifest queries of a :class:`~atdata.Dataset` (as functions of it).

Each function takes the dataset and uses only what :class:`~atdata.Dataset` declares; the
dataset's methods (``ds.describe()``, ``ds.to_dict(...)``, ``ds.query(...)`` ...) call them.

Examples:
    >>> import os, tempfile, atdata
    >>> d = tempfile.mkdtemp()
    >>> ds = atdata.write_samples([{"x": i} for i in range(3)], os.path.join(d, "a.tar"))
    >>> ds.describe()["samples"], ds.to_dict()["x"], [r["ok"] for r in ds.verify()]
    (3, [0, 1, 2], [True])
"""

from __future__ import annotations

import itertools
import os
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

from atdata._errors import AtdataError, ConfigError
from atdata._shards.sources import is_remote
from atdata.dataset._read import count_arg

if TYPE_CHECKING:
    from atdata.dataset._dataset import Dataset
    from atdata.dataset._torch import TorchDataset
    from atdata.manifest._expr import FieldSet
    from atdata.manifest._locations import SampleLocation
    from atdata.manifest._query import QueryExecutor

__all__ = [
    "batch_type",
    "check_plain",
    "describe",
    "executor",
    "fields",
    "get_sample",
    "iter_verify",
    "metadata",
    "schema",
    "to_dict",
    "to_pandas",
    "to_torch",
    "url",
    "verify",
]


# -- manifest queries (see manifest/_query.py) ------------------------------------------------
def executor(ds: Dataset[Any]) -> QueryExecutor:
    """The manifest query executor over ``ds``'s shards (cached on the dataset)."""
    from atdata.manifest._query import QueryExecutor

    ex = ds._query_executor
    if ex is None or ex.sample_type is not ds.sample_type:
        ex = QueryExecutor.for_shards(
            ds.list_shards(), source=ds.source, sample_type=ds.sample_type
        )
        ds._query_executor = ex
    return ex


def check_plain(ds: Dataset[Any], what: str) -> None:
    """Queries see the stored samples: refuse silently ignoring filter/map/lens/select.

    Raises:
        ConfigError: When ``ds`` has a filter, map, lens or selection.
    """
    if ds._ops or ds._selection is not None:
        ops = [op for op, _ in ds._ops] + (["selection"] if ds._selection is not None else [])
        raise ConfigError(
            f"ds.{what}() runs over the shards' manifests and would ignore this dataset's "
            f"{', '.join(ops)}; query the base dataset, then apply them to the results "
            "(e.g. [s for s in ds.query(...) if pred(s)])"
        )


def fields(ds: Dataset[Any]) -> FieldSet:
    """``ds.fields``: the sample type's query fields, or those of the shards' manifests."""
    from atdata.manifest._expr import FieldSet, query_fields

    if hasattr(ds.sample_type, "atdata_fields"):
        return query_fields(ds.sample_type)
    return FieldSet(executor(ds).fields(), "this dataset")


def get_sample(ds: Dataset[Any], loc: SampleLocation) -> Any:
    """``ds.get_sample(loc)``: the sample at ``loc``, read by one ranged read."""
    from atdata.manifest._locations import fetch_sample

    check_plain(ds, "get_sample")
    return fetch_sample(ds.source, ds.sample_type, loc)


# -- description and export -------------------------------------------------------------------
def url(ds: Dataset[Any]) -> str:
    """``ds.url``: the source's spec, or the shards in brace notation where possible."""
    spec = getattr(ds.source, "spec", None)
    if isinstance(spec, str):
        return spec
    from atdata._shards.sources import brace_url

    return brace_url(ds.list_shards())


def metadata(ds: Dataset[Any]) -> dict[str, Any] | None:
    """``ds.metadata``: the msgpack map at ``ds.metadata_url``, fetched once and kept."""
    if ds.metadata_url is None:
        return None
    if ds._metadata is None:
        from atdata.dataset._meta import fetch_metadata

        ds._metadata = fetch_metadata(ds.metadata_url, ds.source)
    return ds._metadata


def batch_type(ds: Dataset[Any]) -> Any:
    """``ds.batch_type``: ``SampleBatch[ds.sample_type]``."""
    from atdata.dataset._batch import SampleBatch

    generic: Any = SampleBatch
    return generic[ds.sample_type]


def to_torch(ds: Dataset[Any], kwargs: dict[str, Any]) -> TorchDataset:
    """``ds.to_torch(**kwargs)`` (needs ``atdata[torch]``)."""
    from atdata._extras import require

    require("torch", "torch", "Dataset.to_torch")
    from atdata.dataset._torch import TorchDataset

    return TorchDataset(ds, **kwargs)


def to_pandas(ds: Dataset[Any], limit: int | None, with_keys: bool) -> Any:
    """``ds.to_pandas(...)``: one row per sample (needs ``atdata[query]``)."""
    from atdata._extras import require

    pd = require("pandas", "query", "Dataset.to_pandas")
    return pd.DataFrame(ds.to_dict(limit, with_keys=with_keys))


def schema(ds: Dataset[Any]) -> dict[str, str]:
    """Field name -> type, for typed datasets (empty for :class:`~atdata.DictSample`)."""
    fields = getattr(ds.sample_type, "atdata_fields", None)
    return {} if fields is None else {s.name: s.type_name for s in fields()}


def describe(ds: Dataset[Any]) -> dict[str, Any]:
    """The documented summary (``sample_type``, ``fields``, ``num_shards``, ``shards`` (the shard
    list), ``url``, ``metadata``) plus ``samples``, ``bytes`` and ``schema``, without decoding
    samples (``metadata`` is fetched when the dataset has a ``metadata_url``)."""
    shards = ds.list_shards()
    shard_size = getattr(ds.source, "shard_size", lambda _s: None)
    size = 0
    for s in shards:
        info = ds._infos.get(s)
        size += (info.size if info is not None else shard_size(s)) or 0
    fields = schema(ds)
    return {
        "sample_type": getattr(ds.sample_type, "__name__", str(ds.sample_type)),
        "fields": fields,
        "num_shards": len(shards),
        "shards": shards,
        "url": ds.url,
        "metadata": ds.metadata,
        "samples": ds._shared.base_len() if ds._selection is None else len(ds._selection),
        "bytes": size,
        "schema": dict(fields),
    }


def to_dict(
    ds: Dataset[Any], limit: int | None = None, *, with_keys: bool = False
) -> dict[str, list[Any]]:
    """Columns: field name -> list of values (the first ``limit`` samples; ``with_keys`` adds a
    ``__key__`` column first)."""
    cols: dict[str, list[Any]] = {"__key__": []} if with_keys else {}
    if limit is not None:
        limit = count_arg("limit", limit, 0)
    it = ds.ordered() if limit is None else itertools.islice(ds.ordered(), limit)
    for s in it:
        if with_keys:
            cols["__key__"].append(getattr(s, "__key__", None))
        for k, v in _row(s).items():
            cols.setdefault(k, []).append(v)
    return cols


def _row(s: Any) -> dict[str, Any]:
    if hasattr(s, "to_dict"):
        return dict(s.to_dict())
    if isinstance(s, dict):
        return s
    raise ConfigError(f"cannot export a {type(s).__name__} as a row; pass sample_map=")


def verify(ds: Dataset[Any]) -> list[dict[str, Any]]:
    """One report per shard, ``{"shard", "samples", "ok", "error"}``: size and sha256 when
    recorded (by the writer, the index entry or the shard's manifest), and a full decode."""
    return list(iter_verify(ds))


def iter_verify(ds: Dataset[Any]) -> Iterator[dict[str, Any]]:
    """:func:`verify`'s reports, each as soon as its shard is checked (``atdata verify``'s
    progress)."""
    from atdata.manifest._read import recorded_digest

    for shard in ds.list_shards():
        rep: dict[str, Any] = {"shard": shard, "samples": 0, "ok": True, "error": ""}
        try:
            if not is_remote(shard):
                info = ds._infos.get(shard)
                want: tuple[str, int | None, str] | None = None
                if info is not None and info.sha256:
                    want = (info.sha256, info.size, "recorded")
                else:
                    want = recorded_digest(shard)
                if want is not None:
                    _check_sha(shard, *want)
            for _ in ds._decoded(ds._raw_stream([shard])):
                rep["samples"] += 1
        except AtdataError as exc:
            rep["ok"], rep["error"] = False, str(exc)
        yield rep


def _check_sha(shard: str, sha256: str, size: int | None, by: str) -> None:
    from atdata._errors import IntegrityError
    from atdata.manifest._fresh import file_sha256

    path = shard[7:] if shard.startswith("file://") else shard
    got = file_sha256(path)
    have = os.path.getsize(path)
    if (size is not None and have != size) or got != sha256:
        raise IntegrityError(
            f"checksum mismatch for shard {shard}: sha256 {got[:16]}... ({have} bytes), {by} "
            f"{sha256[:16]}...{'' if size is None else f' ({size} bytes)'}; the shard is corrupt "
            "or was replaced: restore it from a good copy"
        )
