"""Arrow -> samples: :func:`schema_from_arrow` makes a ``@packable`` type from an Arrow schema, and
:class:`RowReader` turns record batches into samples' wire maps.

Type mapping (each nullable Arrow field becomes ``X | None``, defaulting to ``None``):

- integers -> ``int``; floats and decimals -> ``float``; ``bool``; strings -> ``str``; binaries
  -> ``bytes``; dates, times and timestamps -> ``str`` (ISO 8601); dictionary-encoded columns
  -> their value type;
- ``arrow.fixed_shape_tensor`` columns, fixed-size lists of numbers (e.g. polars ``Array``)
  and columns whose metadata says ``atdata.kind = ndarray`` -> ``NDArray[dtype]``;
- ``list<X>`` -> ``list[X]``; ``map<string, X>`` -> ``dict[str, X]``; ``struct`` -> a nested
  ``@packable`` type (named by its ``atdata.type`` metadata, or after the field);
- ``binary`` with ``atdata.encoding = msgpack`` -> ``Any``.

Examples:
    >>> import pyarrow as pa
    >>> T = schema_from_arrow(pa.schema([pa.field("label", pa.string(), nullable=False),
    ...                                  pa.field("score", pa.float32())]), name="Row")
    >>> T.__name__, {s.name: s.type_name for s in T.atdata_fields()}
    ('Row', {'label': 'str', 'score': 'float | None'})
"""

from __future__ import annotations

import dataclasses
import json
import keyword
import re
from collections.abc import Callable, Iterator
from typing import Any

from atdata._errors import SchemaError
from atdata.dataset._arrow_plan import (
    META_DTYPE,
    META_ENCODING,
    META_KIND,
    META_LAYOUT,
    META_REQUIRED,
    META_SAMPLE_TYPE,
    META_SHAPE,
    META_TYPE,
)

__all__ = ["RowReader", "schema_from_arrow"]

Reader = Callable[[Any], list[Any]]  # a pyarrow Array -> one wire value per row
_IDENT = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


def _meta(field: Any, key: bytes) -> str | None:
    md = field.metadata or {}
    v = md.get(key)
    return v.decode() if v is not None else None


def _none_mask(arr: Any) -> list[bool] | None:
    if arr.null_count == 0:
        return None
    mask: list[bool] = arr.is_null().to_pylist()
    return mask


def _tensor_leaf(t: Any) -> tuple[Any, list[int]] | None:
    """``(leaf type, shape)`` of nested fixed-size lists of numbers, else ``None``."""
    import pyarrow as pa

    shape: list[int] = []
    while pa.types.is_fixed_size_list(t):
        shape.append(t.list_size)
        t = t.value_type
    if shape and (pa.types.is_integer(t) or pa.types.is_floating(t) or pa.types.is_boolean(t)):
        return t, shape
    return None


def _flat_values(arr: Any, depth: int) -> Any:
    """The leaf values of ``depth`` levels of fixed-size lists, honouring slice offsets."""
    for _ in range(depth):
        size = arr.type.list_size
        arr = arr.values.slice(arr.offset * size, len(arr) * size)
    return arr


def _tensor_reader(
    field: Any, storage_type: Any, shape: list[int], dtype_str: str | None
) -> Reader:
    import numpy as np

    from atdata._wire.arrays import encode_array

    depth = 0
    t = storage_type
    while hasattr(t, "list_size"):
        depth, t = depth + 1, t.value_type
    dt = np.dtype(dtype_str) if dtype_str else np.dtype(t.to_pandas_dtype())

    def read(arr: Any) -> list[Any]:
        if hasattr(arr, "storage"):
            arr = arr.storage
        n = len(arr)
        vals = _flat_values(arr, depth)
        if vals.null_count:  # null rows' slots (e.g. after parquet): no float detour for ints
            import pyarrow as pa

            vals = vals.fill_null(pa.scalar(0).cast(vals.type))
        flat = vals.to_numpy(zero_copy_only=False)
        block = flat.astype(dt, copy=False).reshape((n, *shape))
        mask = _none_mask(arr)
        return [
            None if mask is not None and mask[i] else encode_array(block[i, ...]) for i in range(n)
        ]

    return read


def _ndlist_reader(field: Any, dtype_str: str | None) -> Reader:
    import numpy as np

    from atdata._wire.arrays import encode_array

    shape = json.loads(_meta(field, META_SHAPE) or "null")
    ndim = 0
    t = field.type
    while hasattr(t, "value_type") and not hasattr(t, "key_type"):
        ndim, t = ndim + 1, t.value_type
    dt = np.dtype(dtype_str) if dtype_str else np.dtype(t.to_pandas_dtype())

    def one(v: Any) -> bytes:
        a = np.asarray(v, dtype=dt)
        if a.ndim != ndim:  # an empty array: the extents after its first 0 are recorded
            known = shape or [None] * ndim
            a = a.reshape(a.shape + tuple(known[k] or 0 for k in range(a.ndim, ndim)))
        return encode_array(a)

    def read(arr: Any) -> list[Any]:
        return [None if v is None else one(v) for v in arr.to_pylist()]

    return read


def _list_reader(item: Reader, is_map: bool, cast_to: Any = None) -> Reader:
    def read(arr: Any) -> list[Any]:
        if cast_to is not None:
            arr = arr.cast(cast_to)
        offs = arr.offsets.to_pylist()
        base, end = offs[0], offs[-1]
        if is_map and not hasattr(arr, "keys"):  # list<struct<key, value>> (atdata.kind dict)
            kcol, vcol = arr.values.slice(base, end - base).flatten()
            keys, vals = kcol.to_pylist(), item(vcol)
        elif is_map:
            keys = arr.keys.slice(base, end - base).to_pylist()
            vals = item(arr.items.slice(base, end - base))
        else:
            vals = item(arr.values.slice(base, end - base))
        mask = _none_mask(arr)
        out: list[Any] = []
        for i in range(len(arr)):
            if mask is not None and mask[i]:
                out.append(None)
                continue
            a, b = offs[i] - base, offs[i + 1] - base
            out.append(dict(zip(keys[a:b], vals[a:b], strict=True)) if is_map else vals[a:b])
        return out

    return read


def _struct_reader(names: list[str], kids: list[Reader]) -> Reader:
    def read(arr: Any) -> list[Any]:
        cols = [k(c) for k, c in zip(kids, arr.flatten(), strict=True)]
        mask = _none_mask(arr)
        return [
            None
            if mask is not None and mask[i]
            else {n: col[i] for n, col in zip(names, cols, strict=True)}
            for i in range(len(arr))
        ]

    return read


def _plain(arr: Any) -> list[Any]:
    out: list[Any] = arr.to_pylist()
    return out


def _ndarray_ann(dtype_str: str | None) -> Any:
    import numpy as np

    from atdata._types import NDArray

    if not dtype_str:
        return NDArray
    return NDArray[np.dtype(dtype_str).type]  # type: ignore[misc]


def _class_name(name: str) -> str:
    base = re.sub(r"[^A-Za-z0-9_]", "_", name) or "Sample"
    base = "".join(p[:1].upper() + p[1:] for p in base.split("_") if p) or "Sample"
    return "_" + base if base[0].isdigit() else base


def _convert(field: Any, path: str, nested: dict[str, type]) -> tuple[Any, Reader]:
    """``(annotation without Optional, reader)`` for one Arrow field."""
    import numpy as np
    import pyarrow as pa

    t = field.type
    dtype_str = _meta(field, META_DTYPE)
    if isinstance(t, pa.BaseExtensionType):
        if t.extension_name == "arrow.fixed_shape_tensor":
            dt = dtype_str or np.dtype(t.value_type.to_pandas_dtype()).str
            return _ndarray_ann(dt), _tensor_reader(field, t.storage_type, list(t.shape), dt)
        field = pa.field(field.name, t.storage_type, field.nullable, field.metadata)
        t = field.type
    if _meta(field, META_KIND) == "ndarray":
        ann = _ndarray_ann(dtype_str)
        layout = _meta(field, META_LAYOUT)
        if layout == "bytes" or pa.types.is_binary(t) or pa.types.is_large_binary(t):
            return ann, _plain
        if layout == "list" or pa.types.is_list(t) or pa.types.is_large_list(t):
            return ann, _ndlist_reader(field, dtype_str)
    if pa.types.is_dictionary(t):
        inner = pa.field(field.name, t.value_type, field.nullable, field.metadata)
        ann, rd = _convert(inner, path, nested)
        return ann, lambda arr, rd=rd: rd(arr.dictionary_decode())
    leaf = _tensor_leaf(t)
    if leaf is not None:
        dt = dtype_str or np.dtype(leaf[0].to_pandas_dtype()).str
        return _ndarray_ann(dt), _tensor_reader(field, t, leaf[1], dt)
    if pa.types.is_boolean(t):
        return bool, _plain
    if pa.types.is_integer(t):
        return int, _plain
    if pa.types.is_floating(t):
        return float, _plain
    if pa.types.is_decimal(t):
        return float, lambda arr: arr.cast(pa.float64()).to_pylist()
    if pa.types.is_string(t) or pa.types.is_large_string(t) or str(t) == "string_view":
        return str, _plain
    if (
        pa.types.is_binary(t)
        or pa.types.is_large_binary(t)
        or pa.types.is_fixed_size_binary(t)
        or str(t) == "binary_view"
    ):
        if _meta(field, META_ENCODING) == "msgpack":
            import msgpack

            return Any, lambda arr: [
                None if v is None else msgpack.unpackb(v, raw=False) for v in arr.to_pylist()
            ]
        return bytes, _plain
    if pa.types.is_temporal(t):
        return str, lambda arr: [None if v is None else v.isoformat() for v in arr.to_pylist()]
    if pa.types.is_null(t):
        return str, _plain
    if (
        _meta(field, META_KIND) == "dict"
        and pa.types.is_list(t)
        and pa.types.is_struct(t.value_type)
    ):
        iann, ird = _convert_opt(t.value_type.field("value"), path + "{}", nested)
        return dict[str, iann], _list_reader(ird, True)  # type: ignore[valid-type]
    if pa.types.is_map(t):
        iann, ird = _convert_opt(t.item_field, path + "{}", nested)
        if not pa.types.is_string(t.key_type) and not pa.types.is_large_string(t.key_type):
            raise SchemaError(
                f"column {path!r} is a map with {t.key_type} keys; atdata dicts have str keys: "
                "cast the keys to string first"
            )
        return dict[str, iann], _list_reader(ird, True)  # type: ignore[valid-type]
    if (
        pa.types.is_list(t)
        or pa.types.is_large_list(t)
        or pa.types.is_fixed_size_list(t)
        or str(t).startswith("list_view")
    ):
        cast_to = None
        if pa.types.is_fixed_size_list(t) or not (pa.types.is_list(t) or pa.types.is_large_list(t)):
            t = cast_to = pa.list_(t.value_field)
        iann, ird = _convert_opt(t.value_field, path + "[]", nested)
        return list[iann], _list_reader(ird, False, cast_to)  # type: ignore[valid-type]
    if pa.types.is_struct(t):
        cname = _meta(field, META_TYPE) or _class_name(field.name)
        cls, readers = _build_type(cname, list(t), path + ".", nested)
        return cls, _struct_reader([f.name for f in t], readers)
    raise SchemaError(
        f"column {path!r} has Arrow type {t}, which atdata cannot store; cast it to a number, "
        "string, binary, list, struct or tensor column first"
    )


def _convert_opt(field: Any, path: str, nested: dict[str, type]) -> tuple[Any, Reader]:
    ann, rd = _convert(field, path, nested)
    if field.nullable and ann is not Any:
        ann = ann | None
    return ann, rd


def _check_name(name: str, where: str) -> None:
    from atdata._wire.schema_json import _reserved_names

    if not _IDENT.fullmatch(name) or keyword.iskeyword(name):
        raise SchemaError(
            f"column {where}{name!r} is not a Python identifier, so it cannot be a field; "
            "rename it (e.g. table.rename_columns([...])) first"
        )
    if name in _reserved_names() or name.startswith("__"):
        raise SchemaError(
            f"column {where}{name!r} would hide the sample type's own attribute of that name; "
            "rename it first"
        )


def _build(
    cname: str, fields: list[Any], prefix: str, nested: dict[str, type]
) -> tuple[type, list[Reader]]:
    from atdata._wire.sample import packable

    annotations: dict[str, Any] = {}
    ns: dict[str, Any] = {}
    readers: list[Reader] = []
    for f in fields:
        _check_name(f.name, prefix)
        ann, rd = _convert(f, prefix + f.name, nested)
        readers.append(rd)
        if (f.nullable and _meta(f, META_REQUIRED) != "1") or ann is Any:
            annotations[f.name] = ann if ann is Any else ann | None
            ns[f.name] = dataclasses.field(default=None, kw_only=True)
        else:
            annotations[f.name] = ann
    ns["__annotations__"] = annotations
    ns["__module__"] = "atdata.dynamic"
    ns["__doc__"] = f"{cname}: a sample type made from an Arrow schema."
    cls: type = packable(type(cname, (), ns))
    nested[cname] = cls
    return cls, readers


def _build_type(
    cname: str, fields: list[Any], prefix: str, nested: dict[str, type]
) -> tuple[type, list[Reader]]:
    return _build(cname, fields, prefix, nested)


def _plain_schema(schema: Any) -> Any:
    import pyarrow as pa

    if not isinstance(schema, pa.Schema):
        schema = getattr(schema, "schema", schema)
    if not isinstance(schema, pa.Schema):
        raise SchemaError(
            f"expected a pyarrow.Schema (or a table/batch with one), got {type(schema).__name__}"
        )
    return schema


def schema_from_arrow(schema: Any, name: str | None = None) -> type:
    """Make a ``@packable`` sample type from an Arrow schema.

    Args:
        schema: A ``pyarrow.Schema`` (or anything with a ``.schema``: a Table, RecordBatch,
            RecordBatchReader). A ``__key__`` column is skipped (it holds sample keys).
        name: The class name (default: the ``atdata.sample_type`` schema metadata written by
            ``Dataset.to_arrow``, else ``"ArrowSample"``).

    Returns:
        A new ``@packable`` class; non-nullable fields are required, nullable ones ``X | None``
        defaulting to ``None``.

    Examples:
        >>> import pyarrow as pa, atdata
        >>> schema = pa.schema([pa.field("img", pa.fixed_shape_tensor(pa.uint8(), [28, 28]),
        ...                              nullable=False), pa.field("tags", pa.list_(pa.string()))])
        >>> T = atdata.schema_from_arrow(schema, name="Digit")
        >>> [(s.name, s.type_name) for s in T.atdata_fields()]
        [('img', 'NDArray[uint8]'), ('tags', 'list[str | None] | None')]

    Raises:
        SchemaError: (a ``TypeError``) For a column atdata cannot store (the message names it and
            the fix), or a column name that is not a Python identifier.
    """
    schema = _plain_schema(schema)
    md = schema.metadata or {}
    default = md.get(META_SAMPLE_TYPE, b"").decode() or "ArrowSample"
    fields = [f for f in schema if f.name != "__key__"]
    cls, _ = _build(_class_name(name or default) if name is None else name, fields, "", {})
    return cls


class RowReader:
    """Turns record batches of one schema into samples' wire maps.

    Attributes:
        sample_type: The type :func:`schema_from_arrow` made from the schema.
        names: Column names, in order (without ``__key__``).
        has_keys: Whether the schema has a ``__key__`` column.
    """

    sample_type: type
    names: list[str]
    has_keys: bool
    _readers: list[Reader]

    def __init__(self, schema: Any, name: str | None = None) -> None:
        schema = _plain_schema(schema)
        md = schema.metadata or {}
        cname = name or _class_name(md.get(META_SAMPLE_TYPE, b"").decode() or "ArrowSample")
        fields = [f for f in schema if f.name != "__key__"]
        self.has_keys = "__key__" in schema.names
        self.names = [f.name for f in fields]
        self.sample_type, self._readers = _build(cname, fields, "", {})

    def rows(self, batch: Any) -> Iterator[tuple[str | None, dict[str, Any]]]:
        """``(key or None, wire map)`` for each row of ``batch`` (a RecordBatch or Table)."""
        cols = []
        for n, rd in zip(self.names, self._readers, strict=True):
            col = batch.column(n)
            if hasattr(col, "combine_chunks"):
                col = col.combine_chunks()
            cols.append(rd(col))
        keys = batch.column("__key__").to_pylist() if self.has_keys else [None] * batch.num_rows
        for i in range(batch.num_rows):
            yield (
                keys[i],
                {n: c[i] for n, c in zip(self.names, cols, strict=True) if c[i] is not None},
            )
