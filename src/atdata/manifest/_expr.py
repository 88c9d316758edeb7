"""Typed field predicates for queries: ``(Q.label == "dog") & (Q.score > 0.5)``.

A :class:`Predicate` is a boolean condition over manifest fields. Called on a manifest
DataFrame it returns a boolean Series (so it works wherever a ``lambda df: ...`` does), and from
a shard's aggregates alone it says whether the shard *may* hold a match, so shards that cannot
are pruned. Field proxies come from :func:`query_fields` (a sample type's fields, checked) or
:data:`F` (any name).

Examples:
    >>> import atdata
    >>> @atdata.packable
    ... class Row:
    ...     label: str
    ...     score: float
    ...     tags: list[str]
    >>> Q = query_fields(Row)
    >>> e = (Q.label.isin(["dog", "cat"]) & (Q.score > 0.5)) | ~Q.tags.contains("t0")
    >>> e
    ((Predicate('label' isin ('dog', 'cat')) & Predicate('score' gt 0.5)) | ~Predicate('tags' contains 't0'))
    >>> aggs = {"label": {"type": "categorical", "value_counts": {"bird": 4}},
    ...         "score": {"type": "numeric", "min": 0.1, "max": 0.9, "count": 4}}
    >>> (Q.label == "dog").may_match(aggs, 4), (Q.score.between(0.2, 0.3)).may_match(aggs, 4)
    (False, True)
    >>> import pandas as pd
    >>> list((F.score >= 0.5)(pd.DataFrame({"score": [0.2, 0.7]})))
    [False, True]
"""

from __future__ import annotations

import functools
import math
import operator
from collections.abc import Callable
from typing import Any, ClassVar

from atdata._errors import ConfigError, SchemaError, UnknownFieldError

__all__ = ["F", "FieldProxy", "FieldSet", "Predicate", "query_fields"]


def _label(v: Any) -> str:
    return v if isinstance(v, str) else str(v)


def _is_num(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool)


def _floating(typ: Any) -> bool:
    import pyarrow as pa

    return bool(pa.types.is_floating(typ))


def _num(agg: dict, key: str) -> float | None:
    v = agg.get(key)
    return float(v) if v is not None else None


class Predicate:
    """A boolean condition over manifest fields. Combine with ``&``, ``|`` and ``~``; call it on a
    manifest DataFrame for a boolean Series."""

    __hash__ = None  # type: ignore[assignment]
    _kind = "comparison"
    _compiled: Callable[[Any], Any] | None = None

    def __and__(self, other: Predicate) -> Predicate:
        if not isinstance(other, Predicate):
            return NotImplemented
        return And(*_flat(self, And), *_flat(other, And))

    def __or__(self, other: Predicate) -> Predicate:
        if not isinstance(other, Predicate):
            return NotImplemented
        return Or(*_flat(self, Or), *_flat(other, Or))

    def __invert__(self) -> Predicate:
        return Not(self)

    def __bool__(self) -> bool:
        raise ConfigError("combine query predicates with & | ~, not and/or/not")

    def __call__(self, df: Any) -> Any:
        """The boolean Series of the rows of ``df`` that match."""
        return self.mask(df)

    def compile(self) -> Callable[[Any], Any]:
        """This predicate as a function ``DataFrame -> boolean Series`` (the same one each call)."""
        if self._compiled is None:
            self._compiled = self.mask
        return self._compiled

    def fields(self) -> set[str]:
        """Names of the fields this condition reads."""
        raise NotImplementedError

    def mask(self, df: Any) -> Any:
        """A boolean pandas Series over the rows of ``df``."""
        raise NotImplementedError

    def arrow_mask(self, table: Any) -> Any:
        """A boolean pyarrow array (no nulls) over the rows of a pyarrow ``table``."""
        raise NotImplementedError

    def may_match(self, aggs: dict[str, Any], n: int, negated: bool = False) -> bool:
        """Whether a shard with these aggregates (and ``n`` samples) may hold a matching row."""
        raise NotImplementedError


Expr = Predicate  # the name used inside the package


def _flat(p: Predicate, kind: type) -> tuple[Predicate, ...]:
    return p.parts if type(p) is kind else (p,)  # type: ignore[attr-defined]


class And(Predicate):
    _kind = "and"
    # What And and Or differ in: the function joining two masks (its name in ``operator`` for
    # pandas and in ``pyarrow.compute``), its symbol, and whether every part must hold (any,
    # under NOT: De Morgan).
    _join: ClassVar[str] = "and_"
    _symbol: ClassVar[str] = "&"
    _every: ClassVar[bool] = True

    def __init__(self, *parts: Predicate) -> None:
        self.parts = parts

    @property
    def _children(self) -> list[Predicate]:
        return list(self.parts)

    def fields(self) -> set[str]:
        return set().union(*(p.fields() for p in self.parts))

    def mask(self, df: Any) -> Any:
        return functools.reduce(getattr(operator, self._join), (p.mask(df) for p in self.parts))

    def arrow_mask(self, table: Any) -> Any:
        import pyarrow.compute as pc

        return functools.reduce(getattr(pc, self._join), (p.arrow_mask(table) for p in self.parts))

    def may_match(self, aggs: dict[str, Any], n: int, negated: bool = False) -> bool:
        hits = (p.may_match(aggs, n, negated) for p in self.parts)
        return all(hits) if self._every != negated else any(hits)

    def __repr__(self) -> str:
        return "(" + f" {self._symbol} ".join(map(repr, self.parts)) + ")"


class Or(And):
    _kind = "or"
    _join = "or_"
    _symbol = "|"
    _every = False


class Not(Predicate):
    _kind = "not"

    def __init__(self, inner: Predicate) -> None:
        self.inner = inner

    def fields(self) -> set[str]:
        return self.inner.fields()

    def mask(self, df: Any) -> Any:
        return ~self.inner.mask(df)

    def arrow_mask(self, table: Any) -> Any:
        import pyarrow.compute as pc

        return pc.invert(self.inner.arrow_mask(table))

    def may_match(self, aggs: dict[str, Any], n: int, negated: bool = False) -> bool:
        return self.inner.may_match(aggs, n, not negated)

    def __repr__(self) -> str:
        return f"~{self.inner!r}"


_NULLS = "atdata.nulls"  # DataFrame.attrs key of the NullMasks a frame made from arrow carries


class NullMasks:
    """Which rows of a manifest frame are null, per field, as pyarrow knew them.

    pandas turns a null float (and a null int) into NaN, so a frame alone cannot tell ``None``
    from NaN. The query executor's pandas fallback puts one of these in ``df.attrs`` so that
    :meth:`Leaf.mask` fails every test on a null, as the Arrow path does. Deep copies (pandas
    copies ``attrs`` into every column it hands out) return the same object.

    Examples:
        >>> import pyarrow as pa
        >>> t = pa.table({"score": [1.0, None, float("nan")]})
        >>> df = t.to_pandas()
        >>> list(df["score"] != 1.0)  # pandas: None became NaN
        [False, True, True]
        >>> df.attrs[_NULLS] = NullMasks.of(t, {"score"})
        >>> list((F.score != 1.0).mask(df))  # None fails the test; NaN != 1.0 stays true
        [False, False, True]
    """

    def __init__(self, masks: dict[str, Any]) -> None:
        self.masks = masks

    @classmethod
    def of(cls, table: Any, fields: set[str]) -> NullMasks:
        """The null masks (numpy bool arrays) of ``fields`` in a pyarrow ``table``."""
        masks: dict[str, Any] = {}
        for name in sorted(fields & set(table.column_names)):
            col = table.column(name)
            if col.null_count:  # only on the pandas path: pandas (and numpy) are loaded already
                masks[name] = col.is_null().to_numpy()
        return cls(masks)

    def __deepcopy__(self, memo: dict[int, Any]) -> NullMasks:
        return self


class Leaf(Predicate):
    """One test of one field: ``op`` is ``== != < <= > >= in between contains``."""

    def __init__(self, field: str, op: str, value: Any) -> None:
        self.field, self.op, self.value = field, op, value

    def fields(self) -> set[str]:
        return {self.field}

    def mask(self, df: Any) -> Any:
        if self.field not in df.columns:
            raise SchemaError(
                f"field {self.field!r} is not in the manifest (columns: "
                f"{', '.join(c for c in df.columns if not c.startswith('__'))})"
            )
        m = self._compare(df[self.field])
        nulls = df.attrs.get(_NULLS)
        mask = nulls.masks.get(self.field) if isinstance(nulls, NullMasks) else None
        return m if mask is None else m & ~mask  # a null fails every test, as in arrow_mask

    def _compare(self, col: Any) -> Any:
        op, v = self.op, self.value
        if op == "==":
            return col == v
        if op == "!=":
            return col != v
        if op == "<":
            return col < v
        if op == "<=":
            return col <= v
        if op == ">":
            return col > v
        if op == ">=":
            return col >= v
        if op == "in" and col.dtype.kind == "f" and v:
            m = col == v[0]  # compared, not hashed (isin matches a NaN literal): as arrow_mask
            for x in v[1:]:
                m = m | (col == x)
            return m
        if op == "in":
            return col.isin(list(v))
        if op == "between":
            return col.between(v[0], v[1])
        return col.map(lambda xs: xs is not None and v in list(xs)).astype(bool)  # contains

    def arrow_mask(self, table: Any) -> Any:
        import pyarrow.compute as pc

        from atdata.manifest._arrowvals import array_of, bools, scalar

        if self.field not in table.column_names:
            raise SchemaError(
                f"field {self.field!r} is not in the manifest (columns: "
                f"{', '.join(c for c in table.column_names if not c.startswith('__'))})"
            )
        col, op, v = table.column(self.field), self.op, self.value
        # literals go in as pyarrow scalars made without pyarrow's pandas probe (_arrowvals)
        if op == "contains":
            m = bools([xs is not None and v in xs for xs in col.to_pylist()])
        elif op == "in" and _floating(col.type) and v:
            m = pc.equal(col, scalar(v[0]))  # compared, not hashed: -0.0 == 0 and NaN != NaN
            for x in v[1:]:
                m = pc.or_(m, pc.equal(col, scalar(x)))
        elif op == "in":
            m = pc.is_in(col, value_set=array_of(list(v)))
        elif op == "between":
            m = pc.and_(pc.greater_equal(col, scalar(v[0])), pc.less_equal(col, scalar(v[1])))
        else:
            fn = {
                "==": pc.equal,
                "!=": pc.not_equal,
                "<": pc.less,
                "<=": pc.less_equal,
                ">": pc.greater,
                ">=": pc.greater_equal,
            }[op]
            m = fn(col, scalar(v))
        return pc.fill_null(m, scalar(False))

    def may_match(self, aggs: dict[str, Any], n: int, negated: bool = False) -> bool:
        agg = aggs.get(self.field)
        if not isinstance(agg, dict):
            return True
        kind = agg.get("type")
        try:
            if kind == "numeric":
                return self._numeric(agg, n, negated)
            if kind == "categorical":
                return self._categorical(agg, n, negated)
            if kind == "set" and self.op == "contains" and not negated:
                return _label(self.value) in set(agg.get("all_values") or ())
        except (TypeError, ValueError):
            return True
        return True

    def _numeric(self, agg: dict, n: int, negated: bool) -> bool:
        count = int(agg.get("count") or 0)
        mean = agg.get("mean")
        # rows the bounds leave out: None or NaN (ours count neither; upstream's writer counts
        # NaN but its mean turns NaN). NaN compares false except for != (IEEE, as pandas), so
        # != and every negated test may match them.
        nulls = n > count or (isinstance(mean, float) and math.isnan(mean))
        if (negated or self.op == "!=") and nulls:
            return True
        lo, hi = _num(agg, "min"), _num(agg, "max")
        if lo is not None and hi is not None and (math.isnan(lo) or math.isnan(hi)):
            return True
        if count == 0 or lo is None or hi is None or math.isinf(lo) or math.isinf(hi):
            return count != 0 or (negated and n > 0)
        op, v = self.op, self.value
        vals = list(v) if op in ("in", "between") else [v]
        if not all(_is_num(x) for x in vals):
            return True
        if negated:
            op = {"==": "!=", "!=": "==", "<": ">=", "<=": ">", ">": "<=", ">=": "<"}.get(
                op, "not " + op
            )
        if op == "==":
            return lo <= v <= hi
        if op == "!=":
            return not (lo == hi == v)
        if op == "<":
            return lo < v
        if op == "<=":
            return lo <= v
        if op == ">":
            return hi > v
        if op == ">=":
            return hi >= v
        if op == "in":
            return any(lo <= x <= hi for x in vals)
        if op == "between":
            return hi >= vals[0] and lo <= vals[1]
        if op == "not between":
            return lo < vals[0] or hi > vals[1]
        return True

    def _categorical(self, agg: dict, n: int, negated: bool) -> bool:
        vc = agg.get("value_counts")
        if not isinstance(vc, dict) or self.op not in ("==", "!=", "in"):
            return True
        vals = list(self.value) if self.op == "in" else [self.value]
        if not all(isinstance(x, (str, bool)) for x in vals):
            return True
        labels = {_label(x) for x in vals}
        positive = (self.op != "!=") != negated
        if positive:
            return any(lab in vc for lab in labels)
        nulls = n > sum(int(c) for c in vc.values())
        return nulls or any(k not in labels for k in vc)

    def __repr__(self) -> str:
        # The operator by name, as upstream atdata prints it: ``Predicate('score' gt 0.5)``.
        v = self.value
        if self.op == "in":
            shown = f"({', '.join(map(repr, v))})"
        elif self.op == "between":
            shown = f"{v[0]!r} and {v[1]!r}"
        else:
            shown = repr(v)
        return f"Predicate({self.field!r} {_OP_NAMES[self.op]} {shown})"


#: The name each :class:`Leaf` operator shows in reprs (upstream's names; ours for the rest).
_OP_NAMES = {
    "==": "eq",
    "!=": "ne",
    "<": "lt",
    "<=": "le",
    ">": "gt",
    ">=": "ge",
    "in": "isin",
    "between": "between",
    "contains": "contains",
}


class FieldProxy:
    """One queryable field; comparing it builds a :class:`Predicate`.

    Args:
        name: The field's name (a manifest column).
        kind: Its manifest kind, when known (``contains`` needs ``"set"`` then).

    Examples:
        >>> FieldProxy("score") > 0.5
        Predicate('score' gt 0.5)
        >>> FieldProxy("score").between(0, 1)
        Predicate('score' between 0 and 1)
    """

    __hash__ = None  # type: ignore[assignment]

    def __init__(self, name: str, kind: str | None = None) -> None:
        self._name = name
        self.kind = kind

    @property
    def name(self) -> str:
        """The field's name."""
        return self._name

    def __eq__(self, v: Any) -> Predicate:  # type: ignore[override]
        return Leaf(self._name, "==", v)

    def __ne__(self, v: Any) -> Predicate:  # type: ignore[override]
        return Leaf(self._name, "!=", v)

    def __lt__(self, v: Any) -> Predicate:
        return Leaf(self._name, "<", v)

    def __le__(self, v: Any) -> Predicate:
        return Leaf(self._name, "<=", v)

    def __gt__(self, v: Any) -> Predicate:
        return Leaf(self._name, ">", v)

    def __ge__(self, v: Any) -> Predicate:
        return Leaf(self._name, ">=", v)

    def isin(self, values: Any) -> Predicate:
        """The field equals one of ``values``."""
        if isinstance(values, (str, bytes)):
            raise ConfigError(f"isin() takes a list of values, got the string {values!r}")
        return Leaf(self._name, "in", tuple(values))

    def between(self, low: Any, high: Any) -> Predicate:
        """``low <= field <= high``."""
        return Leaf(self._name, "between", (low, high))

    def contains(self, value: str) -> Predicate:
        """A ``list[str]`` (set) field holds ``value``."""
        if self.kind is not None and self.kind != "set":
            raise SchemaError(f"contains() needs a list[str] field; {self._name!r} is {self.kind}")
        return Leaf(self._name, "contains", value)

    def __repr__(self) -> str:
        return f"FieldProxy({self._name!r})"


FieldRef = FieldProxy  # the name used inside the package


class FieldSet:
    """Attribute access to the queryable fields of a schema (``Q.label``); unknown names raise
    :class:`~atdata.UnknownFieldError` (an ``AttributeError``, so ``hasattr`` answers False)."""

    def __init__(self, kinds: dict[str, str], owner: str = "") -> None:
        self._kinds = dict(kinds)
        self._owner = owner

    def __getattr__(self, name: str) -> FieldProxy:
        if name.startswith("_"):
            raise AttributeError(name)
        return self[name]

    def __getitem__(self, name: str) -> FieldProxy:
        kind = self._kinds.get(name)
        if kind is None:
            raise UnknownFieldError(
                f"{name!r} is not a queryable field of {self._owner or 'this dataset'}; "
                f"queryable: {', '.join(self._kinds) or '(none)'}"
            )
        return FieldProxy(name, kind)

    def __dir__(self) -> list[str]:
        return list(self._kinds)

    def list_fields(self) -> list[str]:
        """Queryable field names."""
        return list(self._kinds)

    def __repr__(self) -> str:
        fields = ", ".join(f"{k}: {v}" for k, v in self._kinds.items())
        return f"FieldSet({self._owner or '?'}: {fields})"


class _AnyField(FieldSet):
    """``F``: a proxy for any field name, without a schema (``F.label == "dog"``)."""

    def __init__(self) -> None:
        super().__init__({}, "F")

    def __getitem__(self, name: str) -> FieldProxy:
        return FieldProxy(name)

    def __repr__(self) -> str:
        return "F"


#: Proxies for any field name: ``F.confidence > 0.9`` (use :func:`query_fields` for checked names).
F: FieldSet = _AnyField()


def query_fields(sample_type: type) -> FieldSet:
    """Field proxies for typed predicates over ``sample_type``'s manifests.

    Raises:
        SchemaError: (a ``TypeError``) When ``sample_type`` is not a sample type.

    Examples:
        >>> import atdata
        >>> @atdata.packable
        ... class P:
        ...     name: str
        ...     blob: bytes
        >>> Q = query_fields(P)
        >>> Q.name == "x", hasattr(Q, "blob")
        (Predicate('name' eq 'x'), False)
    """
    from atdata.manifest._fields import resolve_manifest_fields

    kinds = {k: str(f.aggregate) for k, f in resolve_manifest_fields(sample_type).items()}
    return FieldSet(kinds, getattr(sample_type, "__name__", ""))
