"""Description, export and manifest queries of a :class:`~atdata.Dataset` (as functions of it).

Each function takes the dataset and uses only what :class:`~atdata.Dataset` declares; the
dataset's methods (``ds.describe()``, ``ds.to_parquet(...)``, ``ds.query(...)`` ...) call them.

Examples:
    >>> import os, tempfile, atdata
    >>> d = tempfile.mkdtemp()
    >>> ds = atdata.write_samples([{"x": i} for i in range(3)], os.path.join(d, "a.tar"))
    >>> ds.describe()["samples"], ds.to_dict()["x"], [r["ok"] for r in ds.verify()]
    (3, [0, 1, 2], [True])
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Any

from atdata._errors import AtdataError, ConfigError
from atdata._shards.sources import is_remote

if TYPE_CHECKING:
    from atdata.dataset._dataset import Dataset
    from atdata.manifest._query import QueryExecutor

__all__ = ["check_plain", "describe", "executor", "schema", "to_dict", "to_parquet", "verify"]


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
        ops = [op for op, _ in ds._ops] + (["select"] if ds._selection is not None else [])
        raise ConfigError(
            f"ds.{what}() runs over the shards' manifests and would ignore this dataset's "
            f"{', '.join(ops)}; query the base dataset, then apply them to the results "
            "(e.g. [s for s in ds.query(...) if pred(s)])"
        )


# -- description and export -------------------------------------------------------------------
def schema(ds: Dataset[Any]) -> dict[str, str]:
    """Field name -> type, for typed datasets (empty for :class:`~atdata.DictSample`)."""
    fields = getattr(ds.sample_type, "atdata_fields", None)
    return {} if fields is None else {s.name: s.type_name for s in fields()}


def describe(ds: Dataset[Any]) -> dict[str, Any]:
    """Shards, sample count, bytes and schema, without decoding samples."""
    shards = ds.list_shards()
    shard_size = getattr(ds.source, "shard_size", lambda _s: None)
    size = 0
    for s in shards:
        info = ds._infos.get(s)
        size += (info.size if info is not None else shard_size(s)) or 0
    return {
        "sample_type": getattr(ds.sample_type, "__name__", str(ds.sample_type)),
        "shards": len(shards),
        "samples": ds._shared.base_len() if ds._selection is None else len(ds._selection),
        "bytes": size,
        "schema": schema(ds),
    }


def to_dict(ds: Dataset[Any]) -> dict[str, list[Any]]:
    """Columns: field name -> list of values, plus ``__key__``."""
    cols: dict[str, list[Any]] = {"__key__": []}
    for s in ds.ordered():
        row = s.to_dict()
        cols["__key__"].append(getattr(s, "__key__", None))
        for k, v in row.items():
            cols.setdefault(k, []).append(v)
    return cols


def to_parquet(ds: Dataset[Any], path: str | os.PathLike[str]) -> str:
    """Write ``ds`` as one parquet file (arrays as nested lists); returns the path."""
    from atdata._extras import require

    pa = require("pyarrow", "query", "Dataset.to_parquet")
    pq = require("pyarrow.parquet", "query", "Dataset.to_parquet")
    cols = to_dict(ds)
    for k, vals in cols.items():
        cols[k] = [v.tolist() if type(v).__name__ == "ndarray" else v for v in vals]
    out = os.fspath(path)
    pq.write_table(pa.table(cols), out)
    return out


def verify(ds: Dataset[Any]) -> list[dict[str, Any]]:
    """One report per shard, ``{"shard", "samples", "ok", "error"}``: recorded size and sha256
    when known, and a full decode."""
    import hashlib

    reports = []
    for shard in ds.list_shards():
        rep: dict[str, Any] = {"shard": shard, "samples": 0, "ok": True, "error": ""}
        try:
            info = ds._infos.get(shard)
            if info is not None and not is_remote(shard):
                h = hashlib.sha256()
                with open(shard, "rb") as f:
                    while block := f.read(1 << 20):
                        h.update(block)
                if os.path.getsize(shard) != info.size or h.hexdigest() != info.sha256:
                    raise AtdataError(f"checksum mismatch for shard {shard}")
            for _ in ds._decoded(ds._raw_stream([shard])):
                rep["samples"] += 1
        except AtdataError as exc:
            rep["ok"], rep["error"] = False, str(exc)
        reports.append(rep)
    return reports
