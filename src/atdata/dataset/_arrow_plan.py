"""How each field of a sample type becomes an Arrow column (the *plan*), decided from its type
and, for arrays, from the first batch of values.

Mapping (``T | None`` fields are nullable columns; required fields are not):

- ``str`` -> ``string``, ``int`` -> ``int64``, ``float`` -> ``float64``, ``bool`` -> ``bool``,
  ``bytes`` -> ``binary``; ``list[X]`` -> ``list<X>``, ``dict[str, X]`` -> ``map<string, X>``,
  a nested ``@packable`` type -> ``struct``; untyped values (``Any``) -> ``binary`` holding
  msgpack (field metadata ``atdata.encoding = msgpack``).
- ``NDArray`` -> one of three *layouts*, chosen per column from the first batch:

  - ``tensor``: every array has the same shape and a numeric/bool dtype: an
    ``arrow.fixed_shape_tensor`` column (one contiguous value buffer per batch);
  - ``list``: arrays of one ``ndim`` whose shapes differ (ragged), or of zero size: nested
    ``list`` columns ``ndim`` deep;
  - ``bytes``: anything else (``ndim`` varies, or a dtype Arrow has no type for such as
    complex): ``binary`` cells holding atdata's array encoding.

  Every array column carries field metadata ``atdata.kind = ndarray``, ``atdata.dtype`` (numpy
  ``dtype.str``, e.g. ``<f4``, ``|b1``, ``>i2``) and ``atdata.layout``; a ``list`` column also
  records ``atdata.shape``, the extents its arrays share (JSON, ``null`` where they differ), so
  an empty array gets back the extents the nested lists cannot show.

Examples:
    >>> import numpy as np, atdata
    >>> from atdata._wire.arrays import encode_array
    >>> @atdata.packable
    ... class Img:
    ...     pixels: atdata.NDArray
    ...     label: str | None = None
    >>> plans = plan_fields(Img.atdata_fields(), [{"pixels": encode_array(np.zeros((2, 3), "u1"))}])
    >>> [(p.name, p.kind, p.layout, p.shape, str(p.dtype)) for p in plans]
    [('pixels', 'ndarray', 'tensor', (2, 3), 'uint8'), ('label', 'str', '', None, 'None')]
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from atdata._errors import ConfigError, SchemaError
from atdata._wire.fields import FieldSpec, spec_for_annotation

__all__ = [
    "LAYOUTS",
    "META_DTYPE",
    "META_KIND",
    "META_LAYOUT",
    "META_SHAPE",
    "Plan",
    "array_meta",
    "arrow_field",
    "arrow_schema",
    "infer_annotation",
    "layout_for",
    "maps_as_lists",
    "plan_fields",
]

LAYOUTS = ("auto", "tensor", "list", "bytes")
META_KIND = b"atdata.kind"
META_DTYPE = b"atdata.dtype"
META_LAYOUT = b"atdata.layout"
META_SHAPE = b"atdata.shape"
META_ENCODING = b"atdata.encoding"
META_TYPE = b"atdata.type"
META_SAMPLE_TYPE = b"atdata.sample_type"
META_REQUIRED = b"atdata.required"
_TENSOR_KINDS = "biuf"  # numpy dtype kinds an Arrow tensor/list column can hold


@dataclasses.dataclass(eq=False)
class Plan:
    """How one field (or list item / dict value) becomes an Arrow column.

    Attributes:
        name: Field name (``item``/``value`` for list items and dict values).
        kind: The field kind (see :class:`~atdata._wire.fields.FieldSpec`).
        optional: Whether the column is nullable.
        layout: For arrays: ``tensor``, ``list`` or ``bytes``.
        dtype: For arrays: the numpy dtype (``None`` with layout ``bytes`` when unknown).
        shape: For ``tensor`` columns the array shape; for ``list`` columns the extents all
            arrays share, ``None`` where they differ (recorded so empty arrays keep them).
        ndim: For ``list`` columns: the nesting depth.
        item: The plan of list items / dict values.
        children: The plans of a nested sample's fields.
        type_name: A nested sample's class name.
        path: Dotted path for messages (``meta.tags[]``).
        map_as_list: For dicts: a ``list<struct<key, value>>`` column (metadata ``atdata.kind =
            dict``) instead of a ``map`` (for consumers without maps, e.g. Hugging Face).
    """

    name: str
    kind: str
    optional: bool = False
    layout: str = ""
    dtype: Any = None
    shape: tuple[int, ...] | None = None
    ndim: int | None = None
    item: Plan | None = None
    children: tuple[Plan, ...] = ()
    type_name: str = ""
    path: str = ""
    map_as_list: bool = False


def array_meta(v: Any) -> tuple[Any, tuple[int, ...]]:
    """``(dtype, shape)`` of an array value: a numpy array or atdata array bytes.

    Examples:
        >>> import numpy as np
        >>> from atdata._wire.arrays import encode_array
        >>> array_meta(encode_array(np.zeros((2, 1), "<f2")))
        (dtype('float16'), (2, 1))
    """
    if type(v).__name__ == "ndarray":
        return v.dtype, tuple(v.shape)
    from atdata._wire.arrays import _NPY_MAGIC, decode_array, parse_header

    if bytes(v[:6]) == _NPY_MAGIC:
        a = decode_array(v)
        return a.dtype, tuple(a.shape)
    dt, shape, _ = parse_header(v)
    return dt, shape


def _choose_layout(values: list[Any], forced: str, spec_dtype: Any, path: str) -> Plan:
    metas = [array_meta(v) for v in values if v is not None]
    plan = Plan(name="", kind="ndarray", path=path)
    dtypes = {m[0] for m in metas}
    if not metas:
        plan.dtype = spec_dtype
        plan.layout = forced if forced in ("list", "bytes") else "bytes"
        if plan.layout == "list" and spec_dtype is None:
            plan.layout = "bytes"
        plan.ndim = 1
        return plan
    if len(dtypes) > 1:
        if forced in ("tensor", "list"):
            raise ConfigError(
                f"field {path!r} holds arrays of several dtypes {sorted(str(d) for d in dtypes)}; "
                f"a {forced} column needs one: use arrays='bytes' for this field"
            )
        plan.layout, plan.dtype = "bytes", None
        return plan
    dt = metas[0][0]
    plan.dtype = dt
    shapes = {m[1] for m in metas}
    ndims = {len(s) for s in shapes}
    arrowable = dt.kind in _TENSOR_KINDS
    if forced == "bytes" or not arrowable or (len(ndims) > 1 and forced == "auto"):
        if forced in ("tensor", "list") and not arrowable:
            raise ConfigError(
                f"field {path!r} holds {dt} arrays, which Arrow has no type for; "
                "use arrays='bytes' for this field"
            )
        plan.layout = "bytes"
        return plan
    if len(ndims) > 1:
        raise ConfigError(
            f"field {path!r} holds arrays of different ndim {sorted(ndims)}; a {forced} column "
            "needs one: use arrays='bytes' for this field"
        )
    shape = next(iter(shapes))
    size = 1
    for d in shape:
        size *= d
    if len(shapes) == 1 and size > 0 and forced in ("auto", "tensor"):
        plan.layout, plan.shape = "tensor", shape
        return plan
    if forced == "tensor":
        why = "have different shapes" if len(shapes) > 1 else "are empty"
        raise ConfigError(
            f"field {path!r}: its arrays {why} ({sorted(shapes)[:3]}), so they cannot form a "
            "fixed-shape tensor column; use arrays='list' or 'bytes' for this field"
        )
    plan.layout, plan.ndim = "list", len(shape)  # ndim 0 (arrays="list"): a plain value column
    # the extents every array shares (None where they differ): empty arrays keep them
    known: Any = tuple(a[0] if len(set(a)) == 1 else None for a in zip(*shapes, strict=True))
    plan.shape = known
    return plan


def layout_for(arrays: str | Mapping[str, str], path: str) -> str:
    """The layout ``arrays=`` asks for the array field at ``path``."""
    forced = arrays if isinstance(arrays, str) else arrays.get(path, arrays.get("*", "auto"))
    if forced not in LAYOUTS:
        raise ConfigError(f"arrays= layout for {path!r} must be one of {LAYOUTS}, got {forced!r}")
    return forced


def _plan(spec: FieldSpec, values: list[Any], arrays: str | Mapping[str, str], path: str) -> Plan:
    kind = spec.kind
    if kind == "ndarray":
        plan = _choose_layout(values, layout_for(arrays, path), spec.dtype, path)
    elif kind in ("list", "dict"):
        plan = Plan(name="", kind=kind)
        items: list[Any] = []
        for v in values:
            if v is not None:
                items.extend(v.values() if kind == "dict" else v)
        ispec = spec.item
        if ispec is None or ispec.kind == "any":
            ispec = spec_for_annotation("item", infer_annotation(items, path=path + "[]"))
        plan.item = _plan(ispec, items, arrays, path + ("{}" if kind == "dict" else "[]"))
        plan.item.name = "value" if kind == "dict" else "item"
    elif kind == "sample":
        st = spec.sample_type
        rows = [v if isinstance(v, dict) else v._to_wire() for v in values if v is not None]
        kids = plan_fields(st.atdata_fields(), rows, arrays, prefix=path + ".")
        plan = Plan(name="", kind="sample", children=tuple(kids), type_name=st.__name__)
    else:
        plan = Plan(name="", kind=kind)
    plan.name, plan.path = spec.name, path
    plan.optional = spec.optional or plan.optional or kind == "any"  # Any holds None too
    return plan


def maps_as_lists(plans: Sequence[Plan]) -> None:
    """Lay out every dict field (nested ones too) as a list of key/value structs."""
    for p in plans:
        p.map_as_list = p.kind == "dict"
        maps_as_lists([*p.children, *([p.item] if p.item is not None else [])])


def plan_fields(
    specs: Sequence[FieldSpec],
    rows: Sequence[Mapping[str, Any]],
    arrays: str | Mapping[str, str] = "auto",
    *,
    prefix: str = "",
) -> list[Plan]:
    """The column plans of ``specs``, with array layouts decided from ``rows`` (wire maps).

    Args:
        specs: The field specs (``T.atdata_fields()``).
        rows: The first batch of samples as wire maps (arrays as atdata array bytes or numpy).
        arrays: ``"auto"`` (default), ``"tensor"``, ``"list"`` or ``"bytes"`` for every array
            field, or a mapping from field path (``"img"``, ``"meta.mask"``, ``"*"``) to one.
        prefix: Path prefix of nested fields (for messages).

    Raises:
        ConfigError: When a forced layout cannot hold the arrays (the message names the field).
    """
    return [_plan(s, [r.get(s.name) for r in rows], arrays, prefix + s.name) for s in specs]


# -- inference (schema-free samples, dict rows, pandas object columns) -----------------------------


def infer_annotation(values: Iterable[Any], *, path: str = "") -> Any:
    """A field annotation that fits every value (``None`` makes it optional).

    Array bytes (atdata's encoding) and numpy arrays give ``NDArray``; numpy scalars their
    Python type; lists and dicts their item type; anything mixed ``Any``.

    Examples:
        >>> import numpy as np
        >>> infer_annotation([1, None, 2])
        int | None
        >>> infer_annotation([[1.5], []]), infer_annotation([np.zeros(2), None])
        (list[float], numpy.ndarray | None)
        >>> infer_annotation(["a", 1])
        typing.Any
    """
    import numpy as np

    from atdata._wire.arrays import is_array_bytes

    kinds: set[Any] = set()
    optional = False
    lists: list[Any] = []
    maps: list[Any] = []
    for v in values:
        if v is None:
            optional = True
        elif isinstance(v, bool | np.bool_):
            kinds.add(bool)
        elif isinstance(v, int | np.integer):
            kinds.add(int)
        elif isinstance(v, float | np.floating):
            kinds.add(float)
        elif isinstance(v, str):
            kinds.add(str)
        elif isinstance(v, np.ndarray):
            kinds.add(np.ndarray)
        elif isinstance(v, bytes | bytearray | memoryview):
            kinds.add(np.ndarray if is_array_bytes(v) else bytes)
        elif isinstance(v, list | tuple):
            kinds.add(list)
            lists.extend(v)
        elif isinstance(v, dict) and all(isinstance(k, str) for k in v):
            kinds.add(dict)
            maps.extend(v.values())
        else:
            kinds.add(object)
    if kinds == {int, float}:
        kinds = {float}
    if {np.ndarray, bytes} == kinds:
        kinds = {bytes}
    if len(kinds) != 1 or object in kinds:
        return Any if kinds or not optional else str | None
    (k,) = kinds
    ann: Any
    if k is list:
        item = infer_annotation(lists, path=path + "[]") if lists else Any
        ann = list if item is Any else list[item]  # type: ignore[valid-type]
    elif k is dict:
        item = infer_annotation(maps, path=path + "{}") if maps else Any
        ann = dict if item is Any else dict[str, item]  # type: ignore[valid-type]
    else:
        ann = k
    return ann | None if optional else ann


# -- Arrow types ------------------------------------------------------------------------------------


def _value_type(pa: Any, dtype: Any) -> Any:
    if dtype.kind == "b":
        return pa.bool_()
    return pa.from_numpy_dtype(dtype.newbyteorder("="))


def _arrow_type(pa: Any, plan: Plan) -> tuple[Any, dict[bytes, bytes]]:
    meta: dict[bytes, bytes] = {}
    kind = plan.kind
    if kind == "str":
        return pa.string(), meta
    if kind == "int":
        return pa.int64(), meta
    if kind == "float":
        return pa.float64(), meta
    if kind == "bool":
        return pa.bool_(), meta
    if kind == "bytes":
        return pa.binary(), meta
    if kind == "ndarray":
        meta[META_KIND] = b"ndarray"
        meta[META_LAYOUT] = plan.layout.encode()
        if plan.dtype is not None:
            meta[META_DTYPE] = plan.dtype.str.encode()
        if plan.layout == "tensor":
            assert plan.shape is not None
            return pa.fixed_shape_tensor(_value_type(pa, plan.dtype), list(plan.shape)), meta
        if plan.layout == "list":
            t = _value_type(pa, plan.dtype)
            for _ in range(plan.ndim if plan.ndim is not None else 1):
                t = pa.list_(t)
            if plan.shape is not None:
                meta[META_SHAPE] = json.dumps(list(plan.shape)).encode()
            return t, meta
        return pa.binary(), meta
    if kind == "list":
        assert plan.item is not None
        return pa.list_(arrow_field(pa, plan.item)), meta
    if kind == "dict":
        assert plan.item is not None
        if plan.map_as_list:
            meta[META_KIND] = b"dict"
            entry = pa.struct([pa.field("key", pa.string(), False), arrow_field(pa, plan.item)])
            return pa.list_(pa.field("entries", entry, False)), meta
        return pa.map_(pa.string(), arrow_field(pa, plan.item)), meta
    if kind == "sample":
        meta[META_TYPE] = plan.type_name.encode()
        return pa.struct([arrow_field(pa, c, in_struct=True) for c in plan.children]), meta
    meta[META_ENCODING] = b"msgpack"
    return pa.binary(), meta


def arrow_field(pa: Any, plan: Plan, *, in_struct: bool = False) -> Any:
    """The ``pyarrow.Field`` of a plan (with its atdata metadata).

    A required tensor field of a nested type is declared nullable, with ``atdata.required``
    metadata (pyarrow's parquet reader rejects a non-nullable fixed-size list under a null
    struct); :func:`~atdata.schema_from_arrow` reads it back as required.
    """
    t, meta = _arrow_type(pa, plan)
    nullable = plan.optional
    if in_struct and not nullable and plan.kind == "ndarray" and plan.layout == "tensor":
        nullable, meta[META_REQUIRED] = True, b"1"
    return pa.field(plan.name, t, nullable=nullable, metadata=meta or None)


def arrow_schema(
    pa: Any, plans: Sequence[Plan], sample_type_name: str = "", with_keys: bool = False
) -> Any:
    """The ``pyarrow.Schema`` of the plans (a ``__key__`` string column first with ``with_keys``)."""
    fields = [arrow_field(pa, p) for p in plans]
    if with_keys:
        fields.insert(0, pa.field("__key__", pa.string(), nullable=False))
    meta = {META_SAMPLE_TYPE: sample_type_name.encode()} if sample_type_name else None
    return pa.schema(fields, metadata=meta)


def specs_for_rows(rows: Sequence[Mapping[str, Any]]) -> tuple[FieldSpec, ...]:
    """Field specs inferred from schema-free rows (field order: first appearance)."""
    names: dict[str, None] = {}
    for r in rows:
        for k in r:
            names.setdefault(k, None)
    out = []
    for n in names:
        vals = [r.get(n) for r in rows]
        if any(n not in r for r in rows):
            vals.append(None)
        ann = infer_annotation(vals, path=n)
        try:
            out.append(spec_for_annotation(n, ann))
        except SchemaError:  # pragma: no cover - inference only yields storable types
            out.append(spec_for_annotation(n, Any))
    return tuple(out)


def annotation_text(ann: Any) -> str:
    """A readable annotation, for messages."""
    return getattr(ann, "__name__", None) or str(ann).replace("typing.", "")
