"""Build Arrow arrays and record batches from samples' wire values, following a column plan.

Array fields of the ``tensor`` layout are copied once, straight from the stored array bytes
into one contiguous buffer per batch (no per-sample numpy arrays).

Examples:
    >>> import numpy as np, pyarrow as pa
    >>> from atdata._wire.arrays import encode_array
    >>> from atdata.dataset._arrow_plan import Plan
    >>> p = Plan("x", "ndarray", layout="tensor", dtype=np.dtype("u1"), shape=(2,))
    >>> arr = build_array(pa, p, [encode_array(np.array([1, 2], "u1")), np.array([3, 4], "u1")])
    >>> arr.type.shape, arr.storage.to_pylist()
    ([2], [[1, 2], [3, 4]])
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from atdata._errors import ArrayLayoutError, SchemaError
from atdata.dataset._arrow_plan import Plan, arrow_field

__all__ = ["BatchBuilder", "TensorSlot", "build_array", "build_batch"]


def _where(keys: Sequence[str | None] | None, i: int) -> str:
    return f" (sample {keys[i]!r})" if keys is not None and i < len(keys) else ""


def _array_data(v: Any) -> tuple[Any, tuple[int, ...], Any]:
    """``(dtype, shape, C-order data as bytes-like)`` of an ndarray or atdata array bytes."""
    import numpy as np

    if type(v).__name__ == "ndarray":
        a = np.ascontiguousarray(v)
        return a.dtype, tuple(a.shape), a.reshape(-1).view(np.uint8).data if a.size else b""
    from atdata._wire.arrays import _NPY_MAGIC, decode_array, parse_header

    if bytes(v[:6]) == _NPY_MAGIC:
        a = decode_array(v)
        return a.dtype, tuple(a.shape), a.tobytes()
    dt, shape, off = parse_header(v)
    return dt, shape, memoryview(v)[off:]


def _mismatch(
    plan: Plan, got: str, keys: Sequence[str | None] | None, i: int, fallback: str = "bytes"
) -> ArrayLayoutError:
    want = (
        f"{plan.dtype} {plan.shape}"
        if plan.layout == "tensor"
        else f"{plan.dtype} ndim {plan.ndim}"
    )
    alt = "'list' or 'bytes'" if plan.layout == "tensor" else "'bytes'"
    return ArrayLayoutError(
        f"field {plan.path!r}{_where(keys, i)} holds an array of {got}, but its {plan.layout} "
        f"column was laid out for {want} from the first batch; pass "
        f"arrays={{{plan.path!r}: {alt}}} (or arrays={alt.split(' ')[0]}) to keep every array",
        plan.path,
        fallback,
    )


def _native(np: Any, flat: Any, dtype: Any) -> Any:
    """A native-endian numpy array of ``dtype`` over ``flat`` bytes (bool stays bool)."""
    a = np.frombuffer(flat, dtype=dtype) if len(flat) else np.zeros(0, dtype=dtype)
    if dtype.byteorder not in ("=", "|") and dtype.byteorder != np.dtype("=i2").byteorder:
        a = a.astype(dtype.newbyteorder("="))
    return a


def _header(dtype: Any, shape: tuple[int, ...]) -> bytes:
    """The compact array header atdata writes for ``dtype`` and ``shape``."""
    import struct

    ds = dtype.str.encode("ascii")
    return bytes((len(ds),)) + ds + bytes((len(shape),)) + struct.pack(f"<{len(shape)}q", *shape)


class TensorSlot:
    """The value buffer of one tensor column of a batch, filled one array at a time.

    An array whose stored header is the column's (the common case) is copied by one memcpy
    straight from its stored bytes, with no header parsing.
    """

    plan: Plan
    capacity: int
    _pa: Any
    _ftype: Any
    _size: int
    _nbytes: int
    _head: bytes
    _want: int
    _buf: Any
    _dst: memoryview
    _nulls: list[int]

    def __init__(self, pa: Any, plan: Plan, capacity: int) -> None:
        assert plan.shape is not None
        self.plan, self.capacity, self._pa = plan, capacity, pa
        self._ftype = arrow_field(pa, plan).type
        self._size = 1
        for d in plan.shape:
            self._size *= d
        self._nbytes = self._size * plan.dtype.itemsize
        self._head = _header(plan.dtype, plan.shape)
        self._want = len(self._head) + self._nbytes
        self._buf = pa.allocate_buffer(self._nbytes * capacity)  # Arrow's pool reuses pages
        self._dst = memoryview(self._buf).cast("B")
        self._nulls = []

    def put(self, i: int, v: Any, key: str | None = None) -> None:
        """Store array ``v`` (atdata array bytes, a numpy array or ``None``) as row ``i``.

        Raises:
            ArrayLayoutError: When ``v`` has another dtype or shape than the column.
        """
        nb = self._nbytes
        if type(v) is bytes and len(v) == self._want and v.startswith(self._head):
            self._dst[i * nb : (i + 1) * nb] = memoryview(v)[len(self._head) :]
            return
        if v is None:
            self._dst[i * nb : (i + 1) * nb] = bytes(nb)
            self._nulls.append(i)
            return
        plan = self.plan
        assert plan.shape is not None
        dt, shape, data = _array_data(v)
        if dt != plan.dtype or shape != plan.shape:
            ok = dt == plan.dtype and len(shape) == len(plan.shape) and 0 not in shape
            raise _mismatch(plan, f"{dt} {shape}", [key], 0, "list" if ok else "bytes")
        self._dst[i * nb : (i + 1) * nb] = data

    def finish(self, n: int) -> Any:
        """The ``arrow.fixed_shape_tensor`` array of the first ``n`` rows."""
        import numpy as np

        pa, plan, ft = self._pa, self.plan, self._ftype
        if plan.dtype.kind == "b" or not plan.dtype.isnative:  # bit-packed / byte-swapped copy
            flat = self._buf.slice(0, n * self._nbytes)
            child = pa.array(_native(np, flat, plan.dtype))
        else:
            child = pa.Array.from_buffers(ft.value_type, self._size * n, [None, self._buf])
        validity = None
        if self._nulls:
            valid = [True] * n
            for i in self._nulls:
                valid[i] = False
            validity = pa.array(valid, pa.bool_()).buffers()[1]
        storage = pa.Array.from_buffers(
            ft.storage_type, n, [validity], null_count=len(self._nulls), children=[child]
        )
        return pa.ExtensionArray.from_storage(ft, storage)


def _tensor(pa: Any, plan: Plan, values: Sequence[Any], keys: Sequence[str | None] | None) -> Any:
    slot = TensorSlot(pa, plan, len(values))
    for i, v in enumerate(values):
        slot.put(i, v, keys[i] if keys is not None and i < len(keys) else None)
    return slot.finish(len(values))


class BatchBuilder:
    """Builds record batches row by row: tensor columns are copied into the batch's buffer as
    each row arrives (while its bytes are still in cache), the others collected and built at
    :meth:`finish`.

    Attributes:
        n: Rows added since the last :meth:`finish`.
    """

    n: int
    _pa: Any
    _schema: Any
    _plans: Sequence[Plan]
    _capacity: int
    _slots: list[TensorSlot | None]
    _cols: list[list[Any]]
    _keys: list[str | None]

    def __init__(self, pa: Any, schema: Any, plans: Sequence[Plan], capacity: int) -> None:
        self._pa, self._schema, self._plans, self._capacity = pa, schema, plans, capacity
        self._reset()

    def _reset(self) -> None:
        self.n = 0
        self._keys = []
        self._slots = []  # buffers are taken by the batch's first row, not before
        self._cols = [[] for _ in self._plans]

    def add(self, key: str | None, row: Mapping[str, Any]) -> None:
        """Add one sample (its wire map)."""
        i = self.n
        if not i:
            self._slots = [
                TensorSlot(self._pa, p, self._capacity) if p.layout == "tensor" else None
                for p in self._plans
            ]
        for p, slot, col in zip(self._plans, self._slots, self._cols, strict=True):
            if slot is not None:
                slot.put(i, row.get(p.name), key)
            else:
                col.append(row.get(p.name))
        self._keys.append(key)
        self.n = i + 1

    def finish(self) -> Any:
        """The record batch of the rows added; the builder starts a new batch."""
        pa, n, keys = self._pa, self.n, self._keys
        cols = [
            slot.finish(n) if slot is not None else build_array(pa, p, col, keys)
            for p, slot, col in zip(self._plans, self._slots, self._cols, strict=True)
        ]
        if self._schema.names and self._schema.names[0] == "__key__":
            cols.insert(0, pa.array([None if k is None else str(k) for k in keys], pa.string()))
        self._reset()
        return pa.RecordBatch.from_arrays(cols, schema=self._schema)


def _offsets(pa: Any, lengths: Sequence[int | None]) -> tuple[Any, Any]:
    """Offsets (a null list takes no room) and the null mask (``None`` when nothing is null)."""
    out = [0]
    total = 0
    for n in lengths:
        total += n or 0
        out.append(total)
    mask = pa.array([n is None for n in lengths], pa.bool_()) if None in lengths else None
    return pa.array(out, pa.int32()), mask


def _ndlist(pa: Any, plan: Plan, values: Sequence[Any], keys: Sequence[str | None] | None) -> Any:
    import numpy as np

    ndim = plan.ndim if plan.ndim is not None else 1
    datas: list[Any] = []
    level_lengths: list[list[int]] = [[] for _ in range(ndim)]
    top: list[int | None] = []
    for i, v in enumerate(values):
        if v is None:
            top.append(None)
            continue
        dt, shape, data = _array_data(v)
        if dt != plan.dtype or len(shape) != ndim:
            raise _mismatch(plan, f"{dt} {shape}", keys, i)
        if 0 in shape and not _restorable(shape, plan.shape):
            raise _mismatch(plan, f"{dt} {shape} (empty, and {plan.shape} recorded)", keys, i)
        datas.append(data)
        if ndim == 0:
            continue
        top.append(shape[0])
        count = shape[0]
        for k in range(1, ndim):
            level_lengths[k].extend([shape[k]] * count)
            count *= shape[k]
    flat = _native(np, b"".join(datas), plan.dtype)
    arr: Any = pa.array(flat)
    if ndim == 0:
        return arr.take(pa.array(_index_of(values), pa.int64()))
    for k in range(ndim - 1, 0, -1):
        arr = pa.ListArray.from_arrays(_offsets(pa, level_lengths[k])[0], arr)
    offsets, mask = _offsets(pa, top)
    return pa.ListArray.from_arrays(offsets, arr, type=arrow_field(pa, plan).type, mask=mask)


def _restorable(shape: tuple[int, ...], known: Any) -> bool:
    """Whether an empty array's extents after its first 0 come back from the recorded ones."""
    z = shape.index(0)
    known = known or (None,) * len(shape)
    return all(shape[k] == (known[k] or 0) for k in range(z + 1, len(shape)))


def _index_of(values: Sequence[Any]) -> list[int | None]:
    """Position of each non-null value among the non-null values (``None`` for nulls)."""
    out: list[int | None] = []
    j = 0
    for v in values:
        out.append(None if v is None else j)
        j += v is not None
    return out


def _nested(pa: Any, plan: Plan, values: Sequence[Any], keys: Sequence[str | None] | None) -> Any:
    assert plan.item is not None
    lengths: list[int | None] = []
    items: list[Any] = []
    for v in values:
        if v is None:
            lengths.append(None)
            continue
        if plan.kind == "dict":
            items.extend(v.items())
        else:
            items.extend(v)
        lengths.append(len(v))
    offsets, mask = _offsets(pa, lengths)
    ftype = arrow_field(pa, plan).type
    if plan.kind == "dict":
        ks = pa.array([k for k, _ in items], pa.string())
        vs = build_array(pa, plan.item, [x for _, x in items])
        if plan.map_as_list:
            entries = pa.StructArray.from_arrays([ks, vs], fields=list(ftype.value_type))
            return pa.ListArray.from_arrays(offsets, entries, type=ftype, mask=mask)
        return pa.MapArray.from_arrays(offsets, ks, vs, type=ftype, mask=mask)
    items_arr = build_array(pa, plan.item, items)
    return pa.ListArray.from_arrays(offsets, items_arr, type=ftype, mask=mask)


def _filler(plan: Plan) -> Any:
    """A value for a required field under a null struct (Arrow wants no nulls there)."""
    import numpy as np

    from atdata._wire.arrays import encode_array

    if plan.kind == "ndarray":
        dt = plan.dtype if plan.dtype is not None else np.dtype("u1")
        if plan.layout == "tensor":
            return np.zeros(plan.shape or (), dt)
        if plan.layout == "list":
            known = plan.shape or (None,) * (plan.ndim or 0)
            return np.zeros((0, *(d or 0 for d in known[1:])) if known else (), dt)
        return encode_array(np.zeros(0, dt))
    if plan.kind == "sample":
        return {c.name: _filler(c) for c in plan.children if not c.optional}
    return {
        "str": "",
        "int": 0,
        "float": 0.0,
        "bool": False,
        "bytes": b"",
        "list": [],
        "dict": {},
    }.get(plan.kind)


def _struct(pa: Any, plan: Plan, values: Sequence[Any], keys: Sequence[str | None] | None) -> Any:
    rows = [None if v is None else v if isinstance(v, dict) else v._to_wire() for v in values]
    kids = []
    for c in plan.children:
        fill = None if c.optional else _filler(c)  # a null struct's required children
        kids.append(build_array(pa, c, [fill if r is None else r.get(c.name) for r in rows], keys))
    ftype = arrow_field(pa, plan).type
    mask = pa.array([r is None for r in rows], pa.bool_()) if None in rows else None
    if not kids:
        return pa.array([None if r is None else {} for r in rows], type=ftype)
    return pa.StructArray.from_arrays(kids, fields=list(ftype), mask=mask)


def build_array(
    pa: Any, plan: Plan, values: Sequence[Any], keys: Sequence[str | None] | None = None
) -> Any:
    """One Arrow array of ``values`` (wire values of one field, ``None`` for nulls).

    Raises:
        ArrayLayoutError: (a ``ConfigError``) When an array does not fit the column's layout (the message names the
            field, the sample and the ``arrays=`` fix).
        SchemaError: When a value does not fit the column's type (e.g. an int beyond int64).
    """
    kind = plan.kind
    try:
        if kind == "ndarray":
            if plan.layout == "tensor":
                return _tensor(pa, plan, values, keys)
            if plan.layout == "list":
                return _ndlist(pa, plan, values, keys)
            return pa.array(
                [None if v is None else _as_array_bytes(v) for v in values], pa.binary()
            )
        if kind in ("list", "dict"):
            return _nested(pa, plan, values, keys)
        if kind == "sample":
            return _struct(pa, plan, values, keys)
        if kind == "any":
            import msgpack

            return pa.array(
                [None if v is None else msgpack.packb(v, use_bin_type=True) for v in values],
                pa.binary(),
            )
        return pa.array(values, type=arrow_field(pa, plan).type)
    except (pa.ArrowInvalid, pa.ArrowTypeError, OverflowError, TypeError) as exc:
        raise SchemaError(
            f"field {plan.path!r}: cannot make a {plan.kind} Arrow column from these values "
            f"({exc}); declare the field's type to match its values"
        ) from None


def _as_array_bytes(v: Any) -> bytes:
    if type(v).__name__ == "ndarray":
        from atdata._wire.arrays import encode_array

        return encode_array(v)
    return bytes(v)


def build_batch(
    pa: Any,
    schema: Any,
    plans: Sequence[Plan],
    rows: Sequence[Mapping[str, Any]],
    keys: Sequence[str | None] | None = None,
) -> Any:
    """A ``pyarrow.RecordBatch`` of ``rows`` (wire maps) with ``schema``; a ``__key__`` column
    first when the schema has one."""
    cols = [build_array(pa, p, [r.get(p.name) for r in rows], keys) for p in plans]
    if schema.names and schema.names[0] == "__key__":
        cols.insert(0, pa.array([None if k is None else str(k) for k in keys or ()], pa.string()))
    return pa.RecordBatch.from_arrays(cols, schema=schema)
