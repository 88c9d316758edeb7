"""Inferring a ``@packable`` sample type from the first rows of an input.

Used when :func:`~atdata.ingest` gets no ``sample_type``. Each column becomes a field whose type
fits every value seen: ``bool``, ``int``, ``float`` (ints and floats mixed), ``str``, ``bytes``,
``list[...]`` or ``dict``; a column that is missing or empty in some rows is ``X | None``. CSV
cells are text, so text that always parses as a number or a boolean gets that type. Column names
that are not Python identifiers are renamed (``"first name"`` -> ``first_name``); the mapping
goes with the type.

Examples:
    >>> rows = [{"text": "a", "n": 1, "score": 0.5}, {"text": "b", "n": 2, "score": None}]
    >>> st, cols = infer_sample_type(rows, "Row")
    >>> describe_type(st), cols
    ('Row(text: str, n: int, score: float | None)', {})
    >>> st, cols = infer_sample_type([{"first name": "1", "ok": "true"}], "Csv")
    >>> describe_type(st), cols
    ('Csv(first_name: int, ok: bool)', {'first_name': 'first name'})
"""

from __future__ import annotations

import keyword
import re
from collections.abc import Iterable, Mapping
from typing import Any

from atdata._errors import SchemaError

__all__ = ["describe_type", "field_name_for", "infer_sample_type", "type_name_for"]

_NOT_IDENT = re.compile(r"\W")
_INT = re.compile(r"[+-]?\d+\Z")
_FLOAT = re.compile(r"[+-]?(\d+\.?\d*([eE][+-]?\d+)?|\.\d+([eE][+-]?\d+)?|inf|nan)\Z", re.I)
_BOOL = frozenset({"true", "false"})
_ORDER = ("bool", "int", "float", "str", "bytes", "list", "dict")


def field_name_for(column: str) -> str:
    """A Python identifier for a column name.

    Examples:
        >>> field_name_for("first name"), field_name_for("2x"), field_name_for("class")
        ('first_name', 'f_2x', 'class_')
    """
    name = _NOT_IDENT.sub("_", column.strip()) or "field"
    if name[0].isdigit():
        name = "f_" + name
    if keyword.iskeyword(name):
        name += "_"
    return name


def type_name_for(stem: str) -> str:
    """A class name from a file stem or dataset name.

    Examples:
        >>> type_name_for("my-rows.v2"), type_name_for("3d")
        ('MyRowsV2', 'Row3d')
    """
    parts = [p for p in re.split(r"[^0-9A-Za-z]+", stem) if p]
    name = "".join(p[:1].upper() + p[1:] for p in parts) or "Row"
    return name if name[0].isalpha() else "Row" + name


def _kind(v: Any) -> str | None:
    t = type(v)
    if t is bool:
        return "bool"
    if t is int:
        return "int"
    if t is float:
        return "float"
    if t is str:
        return "text"
    if t in (bytes, bytearray):
        return "bytes"
    if t in (list, tuple):
        return "list"
    if t is dict:
        return "dict"
    return None


def _text_kind(s: str) -> str:
    s = s.strip()
    if _INT.match(s):
        return "int"
    if s.lower() in _BOOL:
        return "bool"
    if _FLOAT.match(s):
        return "float"
    return "str"


def _merge(a: str | None, b: str) -> str:
    if a is None or a == b:
        return b
    if {a, b} == {"int", "float"}:
        return "float"
    return "mixed"


class _Column:
    __slots__ = ("items", "kind", "optional", "text")

    def __init__(self) -> None:
        self.kind: str | None = None
        self.optional = False
        self.text: str | None = None  # kind of the text values (CSV cells)
        self.items: _Column | None = None

    def see(self, v: Any) -> None:
        if v is None:
            self.optional = True
            return
        k = _kind(v)
        if k is None:
            self.kind = "mixed"
            return
        if k == "text":
            if v == "":
                self.optional = True
                return
            self.text = _merge(self.text, _text_kind(v))
            k = "text"
        if k == "list":
            self.items = self.items or _Column()
            for x in v:
                self.items.see(x)
        self.kind = _merge(self.kind, k)

    def annotation(self, where: str) -> Any:
        import typing

        kind = self.kind
        if kind == "text":
            kind = self.text if self.text in ("int", "float", "bool") else "str"
        tp: Any
        if kind is None:
            tp = str
        elif kind == "mixed":
            raise SchemaError(
                f"column {where!r} holds values of different types in the first rows; "
                "pass sample_type= with the type you want it to have"
            )
        elif kind == "list":
            item = self.items
            if item is None or item.kind is None or item.kind in ("mixed", "list", "dict"):
                tp = list
            else:
                it = item.annotation(where + "[]")
                tp = list[it]  # type: ignore[valid-type]
        elif kind == "dict":
            tp = dict
        else:
            tp = {"bool": bool, "int": int, "float": float, "str": str, "bytes": bytes}[kind]
        return typing.Optional[tp] if self.optional else tp  # noqa: UP045 - built at runtime


def infer_sample_type(
    rows: Iterable[Mapping[str, Any]], name: str = "Row"
) -> tuple[type, dict[str, str]]:
    """A ``@packable`` type fitting ``rows``, and its renamed columns (field -> column).

    Raises:
        SchemaError: When no row has any column, or a column mixes types.
    """
    from atdata._wire.sample import packable

    cols: dict[str, _Column] = {}
    for n, row in enumerate(rows, 1):
        for k in cols.keys() - row.keys():
            cols[k].optional = True
        for k, v in row.items():
            c = cols.get(k)
            if c is None:
                c = cols[k] = _Column()
                if n > 1:
                    c.optional = True
            c.see(v)
    if not cols:
        raise SchemaError(
            "cannot infer a sample type: the first rows have no columns; pass sample_type="
        )
    ann: dict[str, Any] = {}
    renames: dict[str, str] = {}
    for col, c in cols.items():
        if not isinstance(col, str):
            raise SchemaError(f"column name {col!r} is not text; pass sample_type=")
        fname = field_name_for(col)
        while fname in ann:
            fname += "_"
        if fname != col:
            renames[fname] = col
        ann[fname] = c.annotation(col)
    cls = type(name, (), {"__annotations__": ann, "__module__": __name__, "__qualname__": name})
    return packable(cls), renames


def describe_type(sample_type: type) -> str:
    """``Name(field: type, ...)`` of a ``@packable`` type."""
    from atdata._wire.fields import fields_of

    body = ", ".join(f"{s.name}: {s.type_name}" for s in fields_of(sample_type))
    return f"{sample_type.__name__}({body})"
