"""Coercing input rows (JSON objects, CSV records, Arrow rows) to a ``@packable`` type.

Text from CSV (and numbers written as strings in JSON) is parsed into the field's type; a value
that cannot be made into it raises :class:`Reject`, which the ingestion counts and writes to its
rejects file instead of stopping.

Examples:
    >>> import atdata
    >>> @atdata.packable
    ... class Row:
    ...     text: str
    ...     n: int
    ...     score: float | None
    >>> c = RowCoercer(Row)
    >>> c({"text": "a", "n": "3", "score": ""})
    Row(text='a', n=3, score=None)
    >>> c({"text": "a", "n": "3.5", "score": 1})
    Traceback (most recent call last):
    ...
    atdata._ingest._coerce.Reject: field 'n': '3.5' is not an int
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Callable, Mapping
from typing import Any

from atdata._wire.fields import FieldSpec
from atdata._wire.sample import _needs_init

__all__ = ["Reject", "RowCoercer"]

_MISSING = object()
_TRUE = frozenset({"true", "t", "yes", "y", "1"})
_FALSE = frozenset({"false", "f", "no", "n", "0"})


class Reject(Exception):
    """A row that cannot become a sample; ``reason`` is the counter it goes to."""

    def __init__(self, message: str, reason: str = "coerce") -> None:
        super().__init__(message)
        self.reason = reason


def _short(v: Any) -> str:
    r = repr(v)
    return r if len(r) <= 60 else r[:57] + "..."


def _coercer(spec: FieldSpec, where: str) -> Callable[[Any], Any]:
    kind = spec.kind

    def bad(v: Any, what: str) -> Reject:
        return Reject(f"field {where!r}: {_short(v)} is not {what}")

    if kind == "str":

        def co(v: Any) -> Any:
            if isinstance(v, str):
                return v
            raise bad(v, "a str")
    elif kind == "int":

        def co(v: Any) -> Any:
            t = type(v)
            if t is int:
                return v
            if t is float and v.is_integer():
                return int(v)
            if t is str:
                try:
                    return int(v.strip())
                except ValueError:
                    raise bad(v, "an int") from None
            if t is not bool and hasattr(v, "__index__"):
                return int(v)
            raise bad(v, "an int")
    elif kind == "float":

        def co(v: Any) -> Any:
            t = type(v)
            if t is float:
                return v
            if t is int:
                return float(v)
            if t is str:
                try:
                    return float(v.strip())
                except ValueError:
                    raise bad(v, "a float") from None
            if t is not bool and hasattr(v, "__float__") and not isinstance(v, (bytes, str)):
                return float(v)
            raise bad(v, "a float")
    elif kind == "bool":

        def co(v: Any) -> Any:
            if v is True or v is False:
                return v
            if type(v) is str:
                s = v.strip().lower()
                if s in _TRUE:
                    return True
                if s in _FALSE:
                    return False
            if type(v) is int and v in (0, 1):
                return bool(v)
            raise bad(v, "a bool")
    elif kind == "bytes":

        def co(v: Any) -> Any:
            if isinstance(v, (bytes, bytearray, memoryview)):
                return bytes(v)
            if isinstance(v, str):
                try:
                    return base64.b64decode(v, validate=True)
                except (binascii.Error, ValueError):
                    raise bad(v, "bytes (base64 text)") from None
            raise bad(v, "bytes")
    elif kind == "ndarray":
        dtype = spec.dtype

        def co(v: Any) -> Any:
            import numpy as np

            if isinstance(v, (bytes, bytearray, memoryview)):
                from atdata._wire.arrays import decode_array

                try:
                    return decode_array(bytes(v), where=f" in field {where!r}")
                except Exception as exc:
                    raise Reject(f"field {where!r}: {exc}") from None
            if isinstance(v, str):
                v = _json_text(v, where, "an array")
            try:
                arr = np.asarray(v, dtype=dtype)
            except (ValueError, TypeError, OverflowError):
                raise bad(v, f"an array{'' if dtype is None else f' of {dtype}'}") from None
            if arr.dtype.hasobject:
                raise bad(v, "a numeric array (ragged or mixed values)")
            return arr
    elif kind == "list":
        item = _coercer(spec.item, where + "[]") if spec.item and spec.item.kind != "any" else None

        def co(v: Any) -> Any:
            if isinstance(v, str):
                v = _json_text(v, where, "a list")
            if isinstance(v, (list, tuple)):
                return [item(x) for x in v] if item is not None else list(v)
            if hasattr(v, "tolist") and not isinstance(v, (bytes, dict)):
                return co(v.tolist())
            raise bad(v, "a list")
    elif kind == "dict":
        item = _coercer(spec.item, where + "{}") if spec.item and spec.item.kind != "any" else None

        def co(v: Any) -> Any:
            if isinstance(v, str):
                v = _json_text(v, where, "an object")
            if isinstance(v, dict) and all(isinstance(k, str) for k in v):
                return {k: item(x) for k, x in v.items()} if item is not None else dict(v)
            raise bad(v, "an object with str keys")
    elif kind == "sample":
        nested = RowCoercer(spec.sample_type, prefix=where + ".")

        def co(v: Any) -> Any:
            if isinstance(v, spec.sample_type):
                return v
            if isinstance(v, str):
                v = _json_text(v, where, "an object")
            if isinstance(v, Mapping):
                return nested(v)
            raise bad(v, f"a {spec.sample_type.__name__} object")
    else:

        def co(v: Any) -> Any:
            return v

    if not spec.optional:
        return co

    def co_opt(v: Any) -> Any:
        return None if v is None else co(v)

    return co_opt


def _json_text(v: str, where: str, what: str) -> Any:
    """A CSV cell holding JSON (``[1, 2]``, ``{"a": 1}``)."""
    try:
        return json.loads(v)
    except ValueError:
        raise Reject(f"field {where!r}: {_short(v)} is not {what}") from None


class RowCoercer:
    """Turns one input row (a mapping) into a sample of ``sample_type``.

    Args:
        sample_type: The ``@packable`` class.
        columns: Field name -> input column, for fields whose column has another name (inferred
            types rename columns that are not identifiers).
        prefix: Prefix of field names in messages (nested samples).

    Calling it returns the sample or raises :class:`Reject` naming the field and value.
    """

    def __init__(
        self, sample_type: type, columns: Mapping[str, str] | None = None, prefix: str = ""
    ) -> None:
        from atdata._wire.fields import fields_of

        cols = dict(columns or {})
        self.sample_type = sample_type
        self.specs: tuple[FieldSpec, ...] = fields_of(sample_type)
        self._plan: list[tuple[str, str, Callable[[Any], Any], bool, FieldSpec]] = []
        for spec in self.specs:
            co = _coercer(spec, prefix + spec.name)
            required = not (spec.optional or spec.has_default)
            self._plan.append((spec.name, cols.get(spec.name, spec.name), co, required, spec))
        self._init = _needs_init(sample_type)
        self._prefix = prefix

    @property
    def field_names(self) -> list[str]:
        """The sample type's field names, in order."""
        return [s.name for s in self.specs]

    def __call__(self, row: Mapping[str, Any]) -> Any:
        vals: dict[str, Any] = {}
        get = row.get
        for name, col, co, required, spec in self._plan:
            v = get(col, _MISSING)
            if v is None or v is _MISSING or (v == "" and spec.kind != "str"):
                if required:
                    what = "missing" if v is _MISSING else "empty"
                    raise Reject(
                        f"required field {self._prefix + name!r} is {what}", reason="coerce"
                    )
                vals[name] = (
                    None if spec.optional and not spec.has_default else spec.default_value()
                )
                continue
            vals[name] = co(v)
        cls: Any = self.sample_type
        if self._init:
            try:
                return cls(**vals)
            except Exception as exc:
                raise Reject(f"{cls.__name__}(...) refused the row: {exc}") from None
        obj = cls.__new__(cls)
        obj.__dict__.update(vals)
        return obj
