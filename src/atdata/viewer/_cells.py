"""How a sample's values are shown: small, JSON-safe cells whose size is bounded.

Every cell is a dict with a ``"t"`` (type) tag:

- ``{"t": "str", "v": text, "cut": bool, "len": n}``: text is cut at ``string_limit`` chars;
- ``{"t": "num"|"bool"|"null", "v": ...}``: non-finite floats become the strings ``"nan"``,
  ``"inf"``, ``"-inf"`` (JSON has no such numbers), integers beyond 2**53 decimal strings (a
  browser would round them);
- ``{"t": "bytes", "len": n}``: raw bytes show only their length;
- ``{"t": "array", "dtype", "shape", "min", "max"[, "thumb"]}``: never the values; ``thumb``
  is the thumbnail URL of an image-like array;
- ``{"t": "list", "v": [cells], "cut": bool, "len": n}`` and ``{"t": "dict", "v": {k: cell}, ...}``:
  at most ``item_limit`` items, nested at most ``depth_limit`` deep;
- ``{"t": "obj", "type": name, "v": repr cut like a string}`` for anything else.

Examples:
    >>> p = CellPolicy(string_limit=5)
    >>> to_cell("hello world", p)
    {'t': 'str', 'v': 'hello', 'cut': True, 'len': 11}
    >>> to_cell(b"abc", p), to_cell(float("nan"), p)
    ({'t': 'bytes', 'len': 3}, {'t': 'num', 'v': 'nan'})
    >>> import numpy as np
    >>> to_cell(np.arange(6, dtype=np.int16).reshape(2, 3), p)
    {'t': 'array', 'dtype': 'int16', 'shape': [2, 3], 'min': 0, 'max': 5}
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable, Mapping
from typing import Any

__all__ = ["CellPolicy", "array_cell", "to_cell", "type_name"]


@dataclasses.dataclass(frozen=True)
class CellPolicy:
    """Limits on what one cell may hold.

    Attributes:
        string_limit: Characters of text kept (the rest is cut and the cell marked ``cut``).
        item_limit: Items of a list or keys of a dict kept.
        depth_limit: Nesting of lists and dicts shown; deeper values become ``"obj"`` cells.
    """

    string_limit: int = 200
    item_limit: int = 20
    depth_limit: int = 3


_JS_SAFE = 2**53  # integers past this lose digits as JavaScript numbers


def _num(v: float | int) -> dict[str, Any]:
    if isinstance(v, float) and not math.isfinite(v):
        return {"t": "num", "v": "nan" if math.isnan(v) else ("inf" if v > 0 else "-inf")}
    if isinstance(v, int) and abs(v) > _JS_SAFE:
        return {"t": "num", "v": str(v)}
    return {"t": "num", "v": v}


def _text(s: str, limit: int) -> dict[str, Any]:
    return {"t": "str", "v": s[:limit], "cut": len(s) > limit, "len": len(s)}


def _scalar(x: Any) -> Any:
    """A numpy scalar as a JSON number (non-finite floats as strings)."""
    v = x.item()
    if isinstance(v, float) and not math.isfinite(v):
        return _num(v)["v"]
    return v


def array_cell(arr: Any, thumb: str | None = None) -> dict[str, Any]:
    """The cell of a numpy array: dtype, shape and (numeric, non-empty) min/max, NaN ignored."""
    import numpy as np

    out: dict[str, Any] = {"t": "array", "dtype": str(arr.dtype), "shape": list(arr.shape)}
    if arr.size and arr.dtype.kind in "biuf":
        if arr.dtype.kind == "f":
            finite = arr[np.isfinite(arr)] if not np.isfinite(arr).all() else arr
            if finite.size:
                out["min"], out["max"] = _scalar(finite.min()), _scalar(finite.max())
        else:
            out["min"], out["max"] = _scalar(arr.min()), _scalar(arr.max())
    if thumb is not None:
        out["thumb"] = thumb
    return out


def to_cell(
    value: Any,
    policy: CellPolicy,
    thumb: Callable[[Any], str | None] | None = None,
    _depth: int = 0,
) -> dict[str, Any]:
    """The cell showing ``value`` under ``policy``.

    Args:
        value: A field value.
        policy: The limits.
        thumb: Called with a top-level array; returns its thumbnail URL or ``None``.
    """
    if value is None:
        return {"t": "null", "v": None}
    if isinstance(value, bool):
        return {"t": "bool", "v": value}
    if isinstance(value, (int, float)):
        return _num(value)
    if isinstance(value, str):
        return _text(value, policy.string_limit)
    if isinstance(value, (bytes, bytearray, memoryview)):
        return {"t": "bytes", "len": len(value)}
    if hasattr(value, "dtype") and hasattr(value, "shape"):
        if getattr(value, "ndim", 1) == 0:  # a numpy scalar
            return to_cell(value.item(), policy, None, _depth)
        return array_cell(value, thumb(value) if thumb is not None and _depth == 0 else None)
    if _depth < policy.depth_limit:
        if isinstance(value, (list, tuple)):
            items = [to_cell(v, policy, None, _depth + 1) for v in value[: policy.item_limit]]
            return {"t": "list", "v": items, "cut": len(value) > len(items), "len": len(value)}
        if isinstance(value, Mapping):
            keys = list(value)[: policy.item_limit]
            d = {
                str(k)[: policy.string_limit]: to_cell(value[k], policy, None, _depth + 1)
                for k in keys
            }
            return {"t": "dict", "v": d, "cut": len(value) > len(keys), "len": len(value)}
    r = _text(repr(value), policy.string_limit)
    return {"t": "obj", "type": type(value).__name__, "v": r["v"], "cut": r["cut"]}


def type_name(value: Any) -> str:
    """A short type name of a value, for the schema of an untyped dataset.

    Examples:
        >>> import numpy as np
        >>> type_name(np.zeros((2, 2), np.float32)), type_name("a"), type_name([1])
        ('NDArray[float32]', 'str', 'list')
    """
    if hasattr(value, "dtype") and hasattr(value, "shape") and len(value.shape):
        return f"NDArray[{value.dtype}]"
    if value is None:
        return "None"
    return type(value).__name__
