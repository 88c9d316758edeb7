"""Generated per-type decoders: raw msgpack field maps -> typed samples, fast.

For each ``@packable`` type a small function is generated (``exec`` of source built here from the
type's own field specs, never from data) that checks each field's wire type inline and decodes
arrays through a per-field cache of the last array header seen. Anything unusual (a missing field,
another dtype or shape, a ``.npy`` payload, a wrong type) takes the field's regular
:attr:`FieldSpec.decode`, so results and error messages are exactly those of the slow path.

Examples:
    >>> import numpy as np, atdata
    >>> @atdata.packable
    ... class P:
    ...     x: atdata.NDArray
    ...     name: str
    >>> dec = decoder_for(P)
    >>> raw = {"x": atdata.encode_array(np.arange(3)), "name": "a"}
    >>> p = dec(raw, "", "k1")
    >>> p.x.tolist(), p.name, p.__key__, p.x.flags.writeable
    ([0, 1, 2], 'a', 'k1', True)
    >>> decoder_for(P, copy_arrays=False)(raw, "", None).x.flags.writeable
    False
"""

from __future__ import annotations

import collections
import contextlib
from collections.abc import Callable
from typing import Any

from atdata._errors import SchemaError

__all__ = ["decoder_for", "missing_field"]

_MISSING = object()
# generated decoders, least recently used first (rebuilt schema types come and go: keep it bounded)
_cache: collections.OrderedDict[tuple[type, bool], Callable[[dict, str, str | None], Any]] = (
    collections.OrderedDict()
)
_CACHE_SIZE = 256


class _ArrayCell:
    """The last compact array header seen in one field: prefix bytes, total length, dtype, shape."""

    __slots__ = ("dtype", "off", "prefix", "shape", "total")

    def __init__(self) -> None:
        self.prefix = b"\xff\xff"  # matches no valid header
        self.total = -1
        self.dtype: Any = None
        self.shape: tuple[int, ...] = ()
        self.off = 0


def _array_slow(spec: Any, cell: _ArrayCell, copy: bool) -> Callable[[Any, str], Any]:
    from atdata._wire.arrays import decode_array, parse_header

    dec = spec.decode
    name = spec.name

    def slow(v: Any, where: str) -> Any:
        if type(v) is bytes and v[:6] != b"\x93NUMPY":
            try:
                dt, shape, off = parse_header(v)
            except Exception:  # the regular decoder raises the proper error below
                pass
            else:
                cell.prefix, cell.total, cell.dtype, cell.shape, cell.off = (
                    v[:off],
                    len(v),
                    dt,
                    shape,
                    off,
                )
                if not copy:
                    return decode_array(v, copy=False, where=f" in field {name!r}{where}")
        return dec(v, where)

    return slow


def missing_field(cls: type, spec: Any, where: str) -> SchemaError:
    """The error for a payload without the required field ``spec`` of ``cls``."""
    return SchemaError(
        f"payload is missing required field {cls.__name__}.{spec.name!r}{where}; "
        f"declare it `{spec.name}: {spec.type_name} | None` to accept data written without it"
    )


def _missing(cls: type, spec: Any) -> Callable[[str], Any]:
    def missing(where: str) -> Any:
        if spec.optional or spec.has_default:
            return spec.default_value()
        raise missing_field(cls, spec, where)

    return missing


def decoder_for(cls: type, copy_arrays: bool = True) -> Callable[[dict, str, str | None], Any]:
    """A function ``(raw_map, where, key) -> sample`` decoding payload maps into ``cls``.

    Args:
        cls: A ``@packable`` sample type.
        copy_arrays: ``True``: arrays are writable and own their memory. ``False``: arrays are
            read-only zero-copy views of the payload bytes.
    """
    fn = _cache.get((cls, copy_arrays))
    if fn is not None:
        with contextlib.suppress(KeyError):  # another thread may have just evicted it
            _cache.move_to_end((cls, copy_arrays))
        return fn
    from atdata._wire.fields import fields_of
    from atdata._wire.sample import _needs_init

    specs = fields_of(cls)
    ns: dict[str, Any] = {"_M": _MISSING, "_cls": cls, "_new": object.__new__}
    lines = ["def _decode(raw, where, key):", "    get = raw.get", "    d = {}"]
    for i, spec in enumerate(specs):
        n = repr(spec.name)
        ns[f"_dec{i}"] = spec.decode
        ns[f"_miss{i}"] = _missing(cls, spec)
        lines.append(f"    v = get({n}, _M)")
        lines.append("    if v is _M:")
        lines.append(f"        d[{n}] = _miss{i}(where)")
        if spec.kind == "ndarray":
            import numpy as np

            cell = _ArrayCell()
            ns[f"_c{i}"] = cell
            ns[f"_slow{i}"] = _array_slow(spec, cell, copy_arrays)
            ns["_nd"] = np.ndarray
            # one copy into a fresh bytearray makes the array writable (an ndarray over bytes is
            # read-only); bytearray(...) copies faster than ndarray.copy() at these sizes
            buf = "bytearray(v)" if copy_arrays else "v"
            lines.append(
                f"    elif type(v) is bytes and len(v) == _c{i}.total and v.startswith(_c{i}.prefix):"
            )
            lines.append(f"        d[{n}] = _nd(_c{i}.shape, _c{i}.dtype, {buf}, _c{i}.off)")
            lines.append("    else:")
            lines.append(f"        d[{n}] = _slow{i}(v, where)")
        elif spec.kind in ("str", "int", "bytes"):
            tn = spec.kind
            lines.append(f"    elif type(v) is {tn}:")
            lines.append(f"        d[{n}] = v")
            lines.append("    else:")
            lines.append(f"        d[{n}] = _dec{i}(v, where)")
        elif spec.kind == "float":
            lines.append("    elif type(v) is float:")
            lines.append(f"        d[{n}] = v")
            lines.append("    else:")
            lines.append(f"        d[{n}] = _dec{i}(v, where)")
        else:
            lines.append("    else:")
            lines.append(f"        d[{n}] = _dec{i}(v, where)")
    if _needs_init(cls):
        lines.append("    obj = _cls(**d)")
        lines.append("    if key is not None:")
        lines.append("        obj.__dict__['__key__'] = key")
    else:
        lines.append("    if key is not None:")
        lines.append("        d['__key__'] = key")
        lines.append("    obj = _new(_cls)")
        lines.append("    obj.__dict__ = d")
    lines.append("    return obj")
    exec(compile("\n".join(lines), f"<atdata decoder {cls.__qualname__}>", "exec"), ns)
    fn = ns["_decode"]
    _cache[(cls, copy_arrays)] = fn
    if len(_cache) > _CACHE_SIZE:
        with contextlib.suppress(KeyError):
            _cache.popitem(last=False)
    return fn
