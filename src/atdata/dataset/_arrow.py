"""A :class:`~atdata.Dataset` as Arrow: a streaming ``RecordBatchReader``, the Arrow PyCapsule
stream protocol (``pa.table(ds)``, ``pl.DataFrame(ds)``, DuckDB), tables, polars frames and
streaming parquet. Column types: see :mod:`atdata.dataset._arrow_plan`.

Only one batch of samples is held at a time, so memory does not grow with the dataset; the
array layouts are decided from the first batch.

Examples:
    >>> import os, tempfile, numpy as np, pyarrow as pa, atdata
    >>> @atdata.packable
    ... class Img:
    ...     pixels: atdata.NDArray
    ...     label: str
    >>> d = tempfile.mkdtemp()
    >>> ds = atdata.write_samples(
    ...     [Img(pixels=np.full((2, 2), i, "u1"), label=str(i)) for i in range(5)],
    ...     os.path.join(d, "img.tar"))
    >>> t = pa.table(ds)
    >>> t.num_rows, t.schema.field("pixels").type.shape, t.column("label").to_pylist()
    (5, [2, 2], ['0', '1', '2', '3', '4'])
    >>> [b.num_rows for b in ds.to_arrow_reader(batch_size=2)]
    [2, 2, 1]
"""

from __future__ import annotations

import itertools
import os
import tempfile
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from atdata._errors import ArrayLayoutError, ConfigError, count_arg
from atdata._extras import require
from atdata.dataset._arrow_build import BatchBuilder, build_batch
from atdata.dataset._arrow_plan import (
    Plan,
    arrow_schema,
    layout_for,
    maps_as_lists,
    plan_fields,
    specs_for_rows,
)

if TYPE_CHECKING:
    from atdata.dataset._dataset import Dataset

__all__ = [
    "arrow_c_stream",
    "rows_to_batches",
    "with_fallback",
    "with_progress",
    "to_arrow",
    "to_arrow_reader",
    "to_parquet",
    "to_polars",
]

Arrays = str | Mapping[str, str]


def _pa(feature: str) -> Any:
    return require("pyarrow", "arrow", feature)


def _wire_rows(ds: Dataset[Any]) -> tuple[Iterator[tuple[str | None, Any]], Any]:
    """``(key, wire map)`` per sample, and the field specs (``None``: infer from the rows)."""
    st = ds.sample_type
    if not ds._ops and hasattr(st, "atdata_fields"):
        return ((k, raw) for _shard, k, raw in ds._raws()), st.atdata_fields()

    def gen() -> Iterator[tuple[str | None, Any]]:
        for s in ds._with_ops(ds._decoded(ds._raws())):
            if hasattr(s, "_to_wire"):
                yield getattr(s, "__key__", None), s
            elif isinstance(s, Mapping):
                yield None, s
            else:
                raise ConfigError(
                    f"cannot export a {type(s).__name__} as an Arrow row (this dataset's map/lens "
                    "gives it); return a @packable sample, a DictSample or a dict"
                )

    return gen(), None


def _as_wire(v: Any) -> Any:
    if hasattr(v, "_to_wire"):
        return v._to_wire()
    return v


class _Stream:
    """The batches of one export: the schema is decided from the first batch, then kept."""

    schema: Any
    plans: list[Plan]
    _first: tuple[list[str | None], list[Any]] | None
    _rest: Iterator[tuple[str | None, Any]]
    _raw: bool
    _batch_size: int
    _pa: Any

    def __init__(
        self,
        pa: Any,
        rows: Iterator[tuple[str | None, Any]],
        specs: Any,
        *,
        batch_size: int,
        columns: Sequence[str] | None,
        arrays: Arrays,
        with_keys: bool,
        type_name: str,
        no_maps: bool = False,
    ) -> None:
        if batch_size < 1:
            raise ConfigError(f"batch_size must be >= 1, got {batch_size}")
        self._pa, self._batch_size = pa, batch_size
        self._raw = specs is not None  # rows are wire maps already
        if specs is None:
            head = list(itertools.islice(rows, 1))
            if head and hasattr(head[0][1], "atdata_fields"):
                specs = head[0][1].atdata_fields()
            rows = itertools.chain(head, rows)
        first = list(itertools.islice(rows, batch_size))
        self._rest = rows
        first_rows = [r if self._raw else _as_wire(r) for _, r in first]
        self._first = ([k for k, _ in first], first_rows) if first else None
        if specs is None:
            specs = specs_for_rows(first_rows)
        if columns is not None:
            by_name = {s.name: s for s in specs}
            missing = [c for c in columns if c not in by_name and c != "__key__"]
            if missing:
                raise ConfigError(
                    f"columns {missing} are not fields of this dataset; its fields are "
                    f"{sorted(by_name)}"
                )
            with_keys = with_keys or "__key__" in columns
            specs = [by_name[c] for c in columns if c != "__key__"]
        self.plans = plan_fields(specs, first_rows, arrays)
        if no_maps:
            maps_as_lists(self.plans)
        self.schema = arrow_schema(pa, self.plans, type_name, with_keys)

    def batches(self) -> Iterator[Any]:
        """The first batch (the one the layout was planned from), then batches built row by row."""
        pa, size = self._pa, self._batch_size
        first, self._first = self._first, None
        if first is None:
            return
        yield build_batch(pa, self.schema, self.plans, first[1], first[0])
        builder = BatchBuilder(pa, self.schema, self.plans, size)
        add, raw = builder.add, self._raw
        for key, row in self._rest:
            add(key, row if raw else _as_wire(row))
            if builder.n == size:
                yield builder.finish()
        if builder.n:
            yield builder.finish()


def _stream(
    ds: Dataset[Any],
    batch_size: int,
    columns: Sequence[str] | None,
    arrays: Arrays,
    with_keys: bool,
    feature: str,
    no_maps: bool = False,
) -> _Stream:
    pa = _pa(feature)
    rows, specs = _wire_rows(ds)
    name = getattr(ds.sample_type, "__name__", "")
    return _Stream(
        pa, rows, specs, batch_size=batch_size, columns=columns, arrays=arrays,
        with_keys=with_keys, type_name=name if name != "DictSample" else "", no_maps=no_maps,
    )  # fmt: skip


def hf_reader(ds: Dataset[Any], batch_size: int, arrays: Arrays) -> Any:
    """A reader laid out for Hugging Face: no map columns (dicts as key/value lists)."""
    st = _stream(ds, batch_size, None, arrays, False, "Dataset.to_hf", no_maps=True)
    return st._pa.RecordBatchReader.from_batches(st.schema, st.batches())


def to_arrow_reader(
    ds: Dataset[Any],
    batch_size: int = 1024,
    columns: Sequence[str] | None = None,
    *,
    arrays: Arrays = "auto",
    with_keys: bool = False,
) -> Any:
    """Stream the dataset as Arrow record batches (needs ``atdata[arrow]``).

    Memory holds one batch at a time, whatever the dataset's size. Array fields become
    ``arrow.fixed_shape_tensor`` columns (one contiguous buffer per batch) keeping dtype and
    shape; ragged arrays fall back to nested lists (see :mod:`atdata.dataset._arrow_plan`).

    Args:
        batch_size: Samples per record batch.
        columns: Only these fields, in this order (``"__key__"`` adds the sample keys).
        arrays: Array layout: ``"auto"`` (default: tensor when the first batch's arrays share one
            shape), ``"tensor"``, ``"list"`` or ``"bytes"``, or a mapping field path -> layout.
        with_keys: Add a ``__key__`` string column first.

    Returns:
        A ``pyarrow.RecordBatchReader``.

    Examples:
        >>> import os, tempfile, numpy as np, atdata
        >>> d = tempfile.mkdtemp()
        >>> ds = atdata.write_samples([{"v": np.arange(3, dtype="f4") + i} for i in range(5)],
        ...                           os.path.join(d, "a.tar"))
        >>> reader = ds.to_arrow_reader(batch_size=2, with_keys=True)
        >>> reader.schema.names, [b.num_rows for b in reader]
        (['__key__', 'v'], [2, 2, 1])

    Raises:
        ConfigError: (a ``ValueError``) For an unknown column, a bad ``batch_size``, or (while
            reading) an array that does not fit its column's layout; the message names the fix.
    """
    st = _stream(ds, batch_size, columns, arrays, with_keys, "Dataset.to_arrow_reader")
    return st._pa.RecordBatchReader.from_batches(st.schema, st.batches())


def arrow_c_stream(ds: Dataset[Any], requested_schema: Any = None) -> Any:
    """The Arrow PyCapsule stream of the dataset (``pa.table(ds)``, ``pl.DataFrame(ds)``)."""
    return to_arrow_reader(ds).__arrow_c_stream__(requested_schema)


def with_progress(ds: Dataset[Any], batches: Iterator[Any], enabled: bool | None) -> Iterator[Any]:
    """``batches``, advancing a rich progress bar by their rows (shown when ``enabled``, or by
    default on an interactive terminal)."""
    from atdata._shards.writer import _Progress

    try:
        total: int | None = len(ds)
    except TypeError:  # filtered, or remote shards not counted yet
        total = None
    bar = _Progress(enabled, total)
    try:
        for b in batches:
            for _ in range(b.num_rows):
                bar.advance(0)
            yield b
    finally:
        bar.close()


def with_fallback(
    run: Callable[[Arrays], Any], arrays: Arrays, widen: tuple[str, ...] = ("auto",)
) -> Any:
    """``run(arrays)``, run again with a wider layout for a field whose arrays did not fit the
    layout chosen from the first batch (only fields whose given layout is in ``widen``)."""
    current: Arrays = arrays
    while True:
        try:
            return run(current)
        except ArrayLayoutError as exc:
            path, given = exc.field_path, layout_for(arrays, exc.field_path)
            if given not in widen or layout_for(current, path) == exc.fallback:
                raise
            wider = dict(current) if isinstance(current, Mapping) else {"*": current}
            wider[path] = exc.fallback
            current = wider


def to_arrow(
    ds: Dataset[Any],
    columns: Sequence[str] | None = None,
    *,
    batch_size: int = 1024,
    arrays: Arrays = "auto",
    with_keys: bool = False,
) -> Any:
    """The whole dataset as one ``pyarrow.Table`` (see :func:`to_arrow_reader` for the columns).

    Unlike the streaming reader, a field laid out automatically whose later arrays do not fit
    the first batch's layout is read again with the wider layout (``list``, else ``bytes``).

    Examples:
        >>> import os, tempfile, numpy as np, atdata
        >>> d = tempfile.mkdtemp()
        >>> ds = atdata.write_samples([{"v": np.zeros(n, "i2")} for n in (1, 1, 3)],
        ...                           os.path.join(d, "a.tar"))
        >>> t = ds.to_arrow(batch_size=2)  # the third array is longer: read again as lists
        >>> t.schema.field("v").metadata[b"atdata.layout"], t.column("v").to_pylist()
        (b'list', [[0], [0], [0, 0, 0]])
    """
    return with_fallback(
        lambda a: to_arrow_reader(
            ds, batch_size, columns, arrays=a, with_keys=with_keys
        ).read_all(),
        arrays,
    )


def _tensor_as_arrays(pa: Any, table: Any) -> Any:
    """Tensor columns as nested fixed-size lists (polars ``Array`` of the full shape)."""
    fields, cols = [], []
    for f, col in zip(table.schema, table.columns, strict=True):
        t = f.type
        if isinstance(t, pa.BaseExtensionType) and t.extension_name == "arrow.fixed_shape_tensor":
            nt = t.value_type
            for d in reversed(t.shape or [1]):
                nt = pa.list_(nt, d)
            chunks = []
            for ch in col.chunks:
                st = ch.storage
                flat = st.values.slice(st.offset * st.type.list_size, len(st) * st.type.list_size)
                arr = flat
                for d in reversed((t.shape or [1])[1:]):
                    arr = pa.FixedSizeListArray.from_arrays(arr, d)
                size = (t.shape or [1])[0]
                arr = pa.FixedSizeListArray.from_arrays(arr, size, mask=st.is_null())
                chunks.append(arr)
            col = pa.chunked_array(chunks, type=nt)
            f = pa.field(f.name, nt, f.nullable, f.metadata)
        fields.append(f)
        cols.append(col)
    return pa.Table.from_arrays(cols, schema=pa.schema(fields, metadata=table.schema.metadata))


def to_polars(
    ds: Dataset[Any],
    columns: Sequence[str] | None = None,
    *,
    batch_size: int = 1024,
    arrays: Arrays = "auto",
    with_keys: bool = False,
) -> Any:
    """A ``polars.DataFrame``; fixed-shape array fields become ``pl.Array(dtype, shape)`` columns
    (needs ``atdata[arrow]``).

    Examples:
        >>> import os, tempfile, numpy as np, atdata
        >>> d = tempfile.mkdtemp()
        >>> ds = atdata.write_samples([{"m": np.eye(2, dtype="u1"), "y": 1}], os.path.join(d, "a.tar"))
        >>> ds.to_polars().schema["m"]
        Array(UInt8, shape=(2, 2))
    """
    pl = require("polars", "arrow", "Dataset.to_polars")
    pa = _pa("Dataset.to_polars")
    table = to_arrow(ds, columns, batch_size=batch_size, arrays=arrays, with_keys=with_keys)
    return pl.from_arrow(_tensor_as_arrays(pa, table))


def rows_to_batches(
    pa: Any,
    rows: Iterator[tuple[str | None, Any]],
    *,
    batch_size: int = 1024,
    arrays: Arrays = "auto",
) -> tuple[Any, Iterator[Any]]:
    """``(schema, batches)`` for rows of dicts (types inferred from the first batch)."""
    st = _Stream(
        pa, rows, None, batch_size=batch_size, columns=None, arrays=arrays, with_keys=False,
        type_name="",
    )  # fmt: skip
    return st.schema, st.batches()


def to_parquet(
    ds: Dataset[Any],
    path: str | os.PathLike[str],
    sample_map: Callable[[Any], dict[str, Any]] | None = None,
    maxcount: int | None = None,
    *,
    row_group_size: int | None = None,
    batch_size: int = 1024,
    arrays: Arrays = "auto",
    with_keys: bool = False,
    progress: bool | None = None,
    **kwargs: Any,
) -> list[str]:
    """Stream the dataset into parquet, one batch in memory at a time (needs ``atdata[arrow]``).

    Array fields are fixed-shape tensor columns keeping dtype and shape (ragged ones nested
    lists; see :func:`to_arrow_reader`), so ``atdata.from_arrow(pq.read_table(path))`` gives the
    samples back exactly. Each file is written under a temporary name and renamed when complete.

    Args:
        path: The output file; with ``maxcount``, files ``{stem}-{segment:06d}{suffix}``.
        sample_map: Turn each sample into a dict row (columns are inferred from the rows).
        maxcount: At most this many rows per file.
        row_group_size: Rows per parquet row group (default ``max(batch_size, 16384)``).
        batch_size, arrays, with_keys: As for :func:`to_arrow_reader`.
        progress: Show a progress bar (default: on an interactive terminal).
        **kwargs: Passed to ``pyarrow.parquet.ParquetWriter`` (``compression=`` ...).

    Returns:
        The paths written.

    Examples:
        >>> import os, tempfile, numpy as np, pyarrow.parquet as pq, atdata
        >>> d = tempfile.mkdtemp()
        >>> ds = atdata.write_samples([{"img": np.zeros((2, 2), "u1")}] * 5, os.path.join(d, "a.tar"))
        >>> [os.path.basename(p) for p in ds.to_parquet(os.path.join(d, "x.parquet"), maxcount=2)]
        ['x-000000.parquet', 'x-000001.parquet', 'x-000002.parquet']
        >>> pq.read_table(os.path.join(d, "x-000000.parquet")).schema.field("img").type.shape
        [2, 2]
    """
    pa = _pa("Dataset.to_parquet")
    pq = require("pyarrow.parquet", "arrow", "Dataset.to_parquet")
    if maxcount is not None:
        maxcount = count_arg("maxcount", maxcount, 1)
    if row_group_size is not None:
        row_group_size = count_arg("row_group_size", row_group_size, 1)
    kwargs.pop("engine", None)  # pandas.DataFrame.to_parquet spellings (upstream passed them on)
    kwargs.pop("index", None)
    if "partition_cols" in kwargs:
        raise ConfigError("to_parquet does not partition; write one file per split instead")
    group = row_group_size or max(batch_size, 16_384)

    def run(layout: Arrays) -> list[str]:
        if sample_map is None:
            s = _stream(ds, batch_size, None, layout, with_keys, "Dataset.to_parquet")
            schema, batches = s.schema, s.batches()
        else:
            mapped = ((None, sample_map(x)) for x in ds.ordered())
            schema, batches = rows_to_batches(pa, mapped, batch_size=batch_size, arrays=layout)
        batches = with_progress(ds, batches, progress)
        return _write_parquet(pa, pq, os.fspath(path), schema, batches, maxcount, group, kwargs)

    written: list[str] = with_fallback(run, arrays)
    return written


def _write_parquet(
    pa: Any,
    pq: Any,
    out: str,
    schema: Any,
    batches: Iterator[Any],
    maxcount: int | None,
    group: int,
    kwargs: dict[str, Any],
) -> list[str]:
    stem, suffix = os.path.splitext(out)
    written: list[str] = []
    state: dict[str, Any] = {"w": None, "tmp": None, "rows": 0, "pending": [], "n": 0}

    def open_file() -> None:
        target = out if maxcount is None else f"{stem}-{len(written):06d}{suffix}"
        d = os.path.dirname(os.path.abspath(target))
        fd, tmp = tempfile.mkstemp(prefix=".tmp-", suffix=".parquet", dir=d)
        os.close(fd)
        state.update(w=pq.ParquetWriter(tmp, schema, **kwargs), tmp=tmp, target=target, rows=0)

    def flush_group() -> None:
        if state["pending"]:
            state["w"].write_table(pa.Table.from_batches(state["pending"], schema), group)
            state["pending"], state["n"] = [], 0

    def close_file() -> None:
        flush_group()
        state["w"].close()
        os.replace(state["tmp"], state["target"])
        written.append(state["target"])
        state["w"] = None

    try:
        for batch in batches:
            while batch.num_rows:
                if state["w"] is None:
                    open_file()
                room = batch.num_rows if maxcount is None else maxcount - state["rows"]
                part, batch = batch.slice(0, room), batch.slice(room)
                state["pending"].append(part)
                state["n"] += part.num_rows
                state["rows"] += part.num_rows
                if state["n"] >= group:
                    flush_group()
                if maxcount is not None and state["rows"] >= maxcount:
                    close_file()
        if state["w"] is None and not written:
            open_file()
        if state["w"] is not None:
            close_file()
    finally:
        if state["w"] is not None:
            state["w"].close()
            os.unlink(state["tmp"])
    return written
