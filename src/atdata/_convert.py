"""The way in: :func:`from_arrow` writes tabular data (Arrow, polars, DuckDB, pandas, Hugging Face
``datasets``, dict rows) into typed shards with manifests, at a path or into an
:class:`~atdata.Index`.

Examples:
    >>> import os, tempfile, pyarrow as pa, atdata
    >>> d = tempfile.mkdtemp()
    >>> t = pa.table({"label": ["cat", "dog"], "score": [0.5, 0.25]})
    >>> ds = atdata.from_arrow(t, os.path.join(d, "pets"))
    >>> ds.sample_type.__name__, [(s.label, s.score) for s in ds]
    ('ArrowSample', [('cat', 0.5), ('dog', 0.25)])
"""

from __future__ import annotations

import itertools
import os
from collections.abc import Iterable, Iterator, Mapping
from typing import Any

from atdata._errors import AtdataError, ConfigError, SchemaError
from atdata._extras import require
from atdata.dataset._arrow_read import RowReader

__all__ = ["from_arrow"]


def _is_hf(obj: Any) -> bool:
    return type(obj).__module__.split(".")[0] == "datasets" and hasattr(obj, "features")


def _is_pandas(obj: Any) -> bool:
    return type(obj).__module__.split(".")[0] == "pandas" and hasattr(obj, "columns")


def _pandas_table(pa: Any, df: Any) -> Any:
    """A pyarrow Table of a DataFrame; object columns of arrays, bytes, lists or dicts are typed
    by atdata (arrays keep dtype and shape as tensor columns)."""
    import numpy as np

    from atdata._wire.fields import spec_for_annotation
    from atdata.dataset._arrow_build import build_array
    from atdata.dataset._arrow_plan import arrow_field, infer_annotation, plan_fields

    arrays, fields = [], []
    for col in df.columns:
        name = str(col)
        s = df[col]
        if s.dtype == object:
            vals = [None if isinstance(v, float) and v != v else v for v in s.tolist()]
            if any(isinstance(v, np.ndarray | bytes | list | dict | tuple) for v in vals):
                spec = spec_for_annotation(name, infer_annotation(vals, path=name))
                (plan,) = plan_fields([spec], [{name: v} for v in vals])
                arrays.append(build_array(pa, plan, [_listify(v) for v in vals]))
                fields.append(arrow_field(pa, plan))
                continue
        arr = pa.Array.from_pandas(s)
        arrays.append(arr)
        fields.append(pa.field(name, arr.type, nullable=True))
    return pa.Table.from_arrays(arrays, schema=pa.schema(fields))


def _listify(v: Any) -> Any:
    return list(v) if isinstance(v, tuple) else v


def _batches(obj: Any, batch_size: int) -> tuple[Any, Iterator[Any]]:
    """``(schema, record batches or tables)`` of any supported input."""
    pa = require("pyarrow", "arrow", "atdata.from_arrow")
    if isinstance(obj, pa.Table):
        return obj.schema, iter(obj.to_batches(batch_size))
    if isinstance(obj, pa.RecordBatch):
        return obj.schema, iter([obj])
    if isinstance(obj, pa.RecordBatchReader):
        return obj.schema, iter(obj)
    if _is_hf(obj):
        if hasattr(obj, "data") and hasattr(obj, "with_format"):  # datasets.Dataset
            schema = obj.data.table.schema
            return schema, iter(obj.with_format("arrow").iter(batch_size=batch_size))
        rows = ((None, r) for r in obj)  # an IterableDataset: dict rows
        return _row_batches(pa, rows, batch_size)
    if type(obj).__name__ == "LazyFrame" and hasattr(obj, "collect"):  # polars, lazily
        obj = obj.collect()
    if _is_pandas(obj):
        t = _pandas_table(pa, obj)
        return t.schema, iter(t.to_batches(batch_size))
    if hasattr(obj, "__arrow_c_stream__"):
        reader = pa.RecordBatchReader.from_stream(obj)
        return reader.schema, iter(reader)
    if hasattr(obj, "fetch_record_batch"):  # an older DuckDB relation
        reader = obj.fetch_record_batch(batch_size)
        return reader.schema, iter(reader)
    if isinstance(obj, Iterable) and not isinstance(obj, str | bytes | Mapping):
        return _row_batches(pa, ((None, r) for r in obj), batch_size)
    raise ConfigError(
        f"from_arrow cannot read a {type(obj).__name__}; pass a pyarrow Table/RecordBatchReader, "
        "anything with __arrow_c_stream__ (polars, DuckDB), a pandas DataFrame, a Hugging Face "
        "datasets.Dataset, or an iterable of dicts"
    )


def _row_batches(pa: Any, rows: Iterator[tuple[str | None, Any]], batch_size: int) -> Any:
    from atdata.dataset._arrow import rows_to_batches

    def checked() -> Iterator[tuple[str | None, Any]]:
        for i, (k, r) in enumerate(rows):
            if not isinstance(r, Mapping) and not hasattr(r, "_to_wire"):
                raise ConfigError(
                    f"row {i} of the input is a {type(r).__name__}; from_arrow takes rows as "
                    "dicts (field name -> value) or @packable samples"
                )
            yield k, r

    return rows_to_batches(pa, checked(), batch_size=batch_size)


def _samples(reader: RowReader, batches: Iterator[Any], st: type) -> Iterator[Any]:
    from atdata._wire.sample import set_key

    row = 0
    for batch in batches:
        for key, wire in reader.rows(batch):
            try:
                s = st._from_wire(wire)  # type: ignore[attr-defined]
            except AtdataError as exc:
                where = f"row {row}" + (f" (key {key!r})" if key is not None else "")
                raise type(exc)(
                    f"{exc} -- in {where} of the input; pass a sample_type whose fields match "
                    f"the columns {reader.names}, or omit it to derive one"
                ) from None
            if key is not None:
                set_key(s, str(key))
            row += 1
            yield s


def from_arrow(
    obj: Any,
    path_or_index: str | os.PathLike[str] | Any,
    sample_type: type | None = None,
    *,
    name: str | None = None,
    type_name: str | None = None,
    maxcount: int | None = 10_000,
    maxsize: int | None = None,
    batch_size: int = 1024,
    manifest: bool = True,
    key: Any = None,
    progress: bool | None = None,
    **entry: Any,
) -> Any:
    """Write tabular data as typed atdata shards (with manifests) and return the ``Dataset``.

    Array columns keep dtype and shape: ``arrow.fixed_shape_tensor`` columns, polars ``Array``
    columns, atdata's own list/bytes array columns (from :meth:`Dataset.to_arrow`) and pandas
    cells holding numpy arrays all become ``NDArray`` fields. A ``__key__`` column gives the
    sample keys.

    Args:
        obj: A ``pyarrow.Table``/``RecordBatch``/``RecordBatchReader``, anything with
            ``__arrow_c_stream__`` (polars, DuckDB results, an atdata ``Dataset``), a pandas
            DataFrame, a Hugging Face ``datasets.Dataset``/``IterableDataset``, or an iterable
            of dicts.
        path_or_index: Where the shards go: a directory (shards ``data-000000.tar``, ...), a
            shard pattern (``"out/train-%06d.tar"``) or a single ``.tar`` path; or an
            :class:`~atdata.Index` (then ``name`` is required).
        sample_type: The ``@packable`` type to write (every row is checked against it); by
            default one is made from the Arrow schema (:func:`atdata.schema_from_arrow`).
        name: The dataset name in the index.
        type_name: Class name of the derived sample type.
        maxcount, maxsize: Shard limits (samples, bytes).
        batch_size: Rows converted at a time.
        manifest: Write a manifest beside each shard (default ``True``).
        key: Key policy of the writer when there is no ``__key__`` column.
        progress: Show progress while writing.
        **entry: Passed on to :meth:`Index.write_samples` (``description``, ``tags``, ...).

    Returns:
        A ``Dataset[T]`` over the written shards.

    Examples:
        >>> import os, tempfile, numpy as np, atdata
        >>> d = tempfile.mkdtemp()
        >>> rows = [{"img": np.full((2, 2), i, "u1"), "label": "ab"[i % 2]} for i in range(3)]
        >>> ds = atdata.from_arrow(rows, os.path.join(d, "out"), type_name="Img")
        >>> [(s.label, s.img.dtype.name, s.img.shape) for s in ds][:2]
        [('a', 'uint8', (2, 2)), ('b', 'uint8', (2, 2))]

    Raises:
        ConfigError: (a ``ValueError``) For an input that is not tabular, an empty input, an
            Index without ``name``, or a directory that already holds ``data-*.tar`` shards.
        SchemaError: (a ``TypeError``) When a column cannot be stored or a row does not fit
            ``sample_type`` (the message names the row and column).
    """
    schema, batches = _batches(obj, batch_size)
    reader = RowReader(schema, name=type_name)
    st = sample_type or reader.sample_type
    if not hasattr(st, "atdata_fields"):
        raise SchemaError(f"sample_type must be a @packable type, got {st!r}")
    samples = _samples(reader, batches, st)
    if hasattr(path_or_index, "write_samples") and hasattr(path_or_index, "open_dataset"):
        if not name:
            raise ConfigError("from_arrow into an Index needs name= (the dataset's name)")
        head = list(itertools.islice(samples, 1))
        if not head:
            raise ConfigError(f"the input has no rows, so nothing was written for {name!r}")
        e = path_or_index.write_samples(
            itertools.chain(head, samples), name=name, maxcount=maxcount, maxsize=maxsize,
            manifest=manifest, key=key, sample_type=st, **entry,
        )  # fmt: skip
        return path_or_index.open_dataset(e.name, e.version, sample_type=st)
    if entry:
        raise ConfigError(f"unexpected arguments {sorted(entry)} (they are for an Index)")
    from atdata.dataset._write import write_samples

    out = os.fspath(path_or_index)
    if "%" not in out and not out.endswith(".tar"):
        os.makedirs(out, exist_ok=True)
        # new shards over some of an older run's would leave a mix of the two in the directory
        old = sorted(n for n in os.listdir(out) if n.startswith("data-") and n.endswith(".tar"))
        if old:
            raise ConfigError(
                f"{out} already holds shards ({old[0]}{', ...' if len(old) > 1 else ''}); "
                "from_arrow would overwrite some of them: write into a new directory, or "
                "remove the old shards first"
            )
        out = os.path.join(out, "data-%06d.tar")
    elif "%" not in out:
        maxcount = maxsize = None  # one named shard
    return write_samples(
        samples, out, maxcount, maxsize, key=key, sample_type=st, manifest=manifest,
        progress=progress,
    )  # fmt: skip
