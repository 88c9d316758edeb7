"""pyarrow values made from Python values without pyarrow's pandas probe.

Before pyarrow converts a Python value (``pa.array([...])``, ``pa.scalar(3)``, a literal handed
to a compute function such as ``pc.equal(col, 3)``) it asks whether the value is a pandas object,
and asking imports pandas when it is installed: about 50 MB resident and a second of import time
in a process that never wanted a DataFrame (the viewer's server, a query in a worker, an
ingestion). The few values the manifest query path makes from Python (predicate literals,
``isin`` value sets, the ``__shard__`` column, set columns parsed from JSON, empty tables) and
the columns the manifest writer makes (``typed_array``: the same arrays, so the same parquet
bytes, as ``pa.array(values, type)``) are built here from raw little-endian buffers instead.
Values of other types fall back to pyarrow's own conversion, which gives the same result and
may import pandas.

Examples:
    >>> import sys, pyarrow.compute as pc
    >>> col = int32_fill(7, 3)
    >>> col.to_pylist(), scalar(7).type, scalar("dog").as_py(), scalar(0.5).type
    ([7, 7, 7], DataType(int64), 'dog', DataType(double))
    >>> pc.equal(col, scalar(7)).to_pylist()
    [True, True, True]
    >>> array_of(["a", "bc"]).to_pylist(), bools([True, False]).to_pylist()
    (['a', 'bc'], [True, False])
    >>> string_lists([["x", "y"], None, []]).to_pylist()
    [['x', 'y'], None, []]
    >>> empty_table([("__key__", "string"), ("__shard__", "int32")]).schema.names
    ['__key__', '__shard__']
    >>> import pyarrow as pa
    >>> typed_array([1, None, 3], pa.float64()).to_pylist()
    [1.0, None, 3.0]
"""

from __future__ import annotations

import itertools
import struct
from collections.abc import Sequence
from typing import Any

__all__ = [
    "array_of",
    "bools",
    "empty_table",
    "int32_fill",
    "scalar",
    "string_lists",
    "typed_array",
]

_I64 = (-(1 << 63), (1 << 63) - 1)
_MAX_OFFSET = (1 << 31) - 1
_EXACT = 1 << 53  # ints a float64 holds exactly (pa.array refuses others among floats)


def _pa() -> Any:
    from atdata._extras import require

    return require("pyarrow", "query", "manifest queries")


def _validity(pa: Any, valid: Sequence[bool] | None) -> Any:
    return None if valid is None or all(valid) else pa.py_buffer(_bits(valid))


def _nulls(valid: Sequence[bool] | None) -> int:
    return 0 if valid is None else len(valid) - sum(valid)


def _fixed(pa: Any, typ: Any, fmt: str, values: Sequence[Any], valid: Sequence[bool] | None) -> Any:
    n = len(values)
    return pa.Array.from_buffers(
        typ,
        n,
        [_validity(pa, valid), pa.py_buffer(struct.pack(f"<{n}{fmt}", *values))],
        null_count=_nulls(valid),
    )


def _strings(pa: Any, values: Sequence[str], valid: Sequence[bool] | None = None) -> Any | None:
    """A string array, or ``None`` when the text does not fit 32-bit offsets or is not UTF-8."""
    try:
        text = "".join(values).encode()
    except UnicodeEncodeError:  # lone surrogates: pa.array reports them
        return None
    if len(text) > _MAX_OFFSET:
        return None
    if len(text) == sum(map(len, values)):  # all ASCII: characters are bytes
        lengths: Any = map(len, values)
    else:
        lengths = (len(v.encode()) for v in values)
    offsets = list(itertools.accumulate(lengths, initial=0))
    return pa.Array.from_buffers(
        pa.string(),
        len(values),
        [
            _validity(pa, valid),
            pa.py_buffer(struct.pack(f"<{len(offsets)}i", *offsets)),
            pa.py_buffer(text),
        ],
        null_count=_nulls(valid),
    )


def _bits(flags: Sequence[bool]) -> bytes:
    """An Arrow bitmap (least significant bit first) of ``flags``."""
    out = bytearray((len(flags) + 7) // 8)
    for i, f in enumerate(flags):
        if f:
            out[i >> 3] |= 1 << (i & 7)
    return bytes(out)


def bools(flags: Sequence[bool]) -> Any:
    """A ``bool`` array of ``flags`` (no nulls)."""
    pa = _pa()
    return pa.Array.from_buffers(pa.bool_(), len(flags), [None, pa.py_buffer(_bits(flags))])


def int32_fill(value: int, n: int) -> Any:
    """An ``int32`` array of ``n`` copies of ``value``."""
    pa = _pa()
    return pa.Array.from_buffers(pa.int32(), n, [None, pa.py_buffer(struct.pack("<i", value) * n)])


def _is_int(v: Any) -> bool:
    return type(v) is int and _I64[0] <= v <= _I64[1]


def array_of(values: Sequence[Any]) -> Any:
    """An array of Python values of one type, ``None`` for nulls: all ``bool``, all ``str``, all
    ``int`` (int64) or ``int``/``float`` mixed (float64), as ``pa.array`` infers them; anything
    else (including only ``None``) goes to ``pa.array`` itself."""
    pa = _pa()
    vals = list(values)
    valid = [v is not None for v in vals]
    have = [v for v in vals if v is not None]
    got = None
    if not have:
        pass
    elif all(type(v) is bool for v in have):
        got = pa.Array.from_buffers(
            pa.bool_(),
            len(vals),
            [_validity(pa, valid), pa.py_buffer(_bits([v is True for v in vals]))],
            null_count=_nulls(valid),
        )
    elif all(type(v) is str for v in have):
        got = _strings(pa, ["" if v is None else v for v in vals], valid)
    elif all(_is_int(v) for v in have):
        got = _fixed(pa, pa.int64(), "q", [0 if v is None else v for v in vals], valid)
    elif all((_is_int(v) and abs(v) <= _EXACT) or type(v) is float for v in have):
        got = _fixed(pa, pa.float64(), "d", [0.0 if v is None else float(v) for v in vals], valid)
    return pa.array(vals) if got is None else got


_KINDS = {"string": str, "bool": bool, "int64": int, "double": float}
_NONE = type(None)


def _packed(pa: Any, typ: Any, fmt: str, values: list[Any], valid: list[bool] | None) -> Any:
    n = len(values)
    data = pa.py_buffer(struct.pack(f"<{n}{fmt}", *values))
    return pa.Array.from_buffers(typ, n, [_validity(pa, valid), data], null_count=_nulls(valid))


def typed_array(values: Sequence[Any], typ: Any) -> Any:
    """``pa.array(values, typ)`` for a ``string``/``bool``/``int64``/``float64`` ``typ``, built
    from buffers when every value is ``None`` or a Python value of the matching kind (``int`` or
    ``float`` for ``float64``). Other values and types go to ``pa.array`` itself, which keeps its
    exact conversions and errors (``ArrowInvalid``/``ArrowTypeError``/``OverflowError``)."""
    pa = _pa()
    kind = _KINDS.get(str(typ))
    vals = values if isinstance(values, list) else list(values)
    types = set(map(type, vals))
    nulls = _NONE in types
    types.discard(_NONE)
    valid = [v is not None for v in vals] if nulls else None
    have = [v for v in vals if v is not None] if nulls else vals
    got = None
    if kind is None or not types <= ({int, float} if kind is float else {kind}):
        pass
    elif kind is str:
        got = _strings(pa, [v or "" for v in vals] if nulls else vals, valid)
    elif kind is bool:
        bits = pa.py_buffer(_bits([v is True for v in vals]))
        got = pa.Array.from_buffers(
            pa.bool_(), len(vals), [_validity(pa, valid), bits], null_count=_nulls(valid)
        )
    elif kind is int:
        if not have or (_I64[0] <= min(have) and max(have) <= _I64[1]):
            got = _packed(pa, pa.int64(), "q", [v or 0 for v in vals] if nulls else vals, valid)
    elif int not in types or all(abs(v) <= _EXACT for v in have if type(v) is int):
        filled = [0.0 if v is None else v for v in vals] if nulls else vals
        got = _packed(pa, pa.float64(), "d", filled, valid)
    return pa.array(vals, typ) if got is None else got


def scalar(v: Any) -> Any:
    """A pyarrow scalar of a Python ``bool``/``int``/``float``/``str``/``None`` (typed as
    ``pa.scalar`` types it); other values go to ``pa.scalar``."""
    pa = _pa()
    if v is None:
        return pa.nulls(1)[0]
    if type(v) is bool or type(v) is str or _is_int(v) or isinstance(v, float):
        return array_of([float(v) if isinstance(v, float) else v])[0]
    return pa.scalar(v)


def string_lists(rows: Sequence[Any]) -> Any:
    """A ``list<string>`` array of ``rows`` (each a list of ``str`` or ``None``).

    Raises:
        TypeError: When a row is not a list of strings.
    """
    pa = _pa()
    flat: list[str] = []
    offsets = [0]
    valid = []
    for row in rows:
        if row is not None:
            if not isinstance(row, list) or not all(type(x) is str for x in row):
                raise TypeError(f"not a list of strings: {str(row)[:60]}")
            flat.extend(row)
        valid.append(row is not None)
        offsets.append(len(flat))
    values = _strings(pa, flat)
    if values is None or offsets[-1] > _MAX_OFFSET:
        return pa.array(list(rows), pa.list_(pa.string()))
    return pa.Array.from_buffers(
        pa.list_(pa.string()),
        len(valid),
        [_validity(pa, valid), pa.py_buffer(struct.pack(f"<{len(offsets)}i", *offsets))],
        null_count=_nulls(valid),
        children=[values],
    )


def empty_table(columns: Sequence[tuple[str, Any]]) -> Any:
    """A table without rows of these ``(name, type)`` columns (types as pyarrow types or
    names such as ``"int64"``)."""
    pa = _pa()
    return pa.Table.from_arrays(
        [pa.nulls(0, pa.type_for_alias(t) if isinstance(t, str) else t) for _, t in columns],
        names=[n for n, _ in columns],
    )
