"""Typed field expressions for queries: ``(Q.label == "dog") & (Q.score > 0.5)``.

An expression evaluates to a boolean mask over a manifest DataFrame and, from a shard's
aggregates alone, says whether the shard *may* hold a match, so shards that cannot are pruned.
Simple SQL ``WHERE`` clauses are translated into the same expressions for pruning.

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
    ((label IN ('dog', 'cat') AND score > 0.5) OR NOT tags CONTAINS 't0')
    >>> aggs = {"label": {"type": "categorical", "value_counts": {"bird": 4}},
    ...         "score": {"type": "numeric", "min": 0.1, "max": 0.9, "count": 4}}
    >>> (Q.label == "dog").may_match(aggs, 4), (Q.score.between(0.2, 0.3)).may_match(aggs, 4)
    (False, True)
    >>> where_to_expr("label IN ('dog','cat') AND score > 0.9 AND (idx = 3 OR idx = 4)")
    (label IN ('dog', 'cat') AND score > 0.9)
"""

from __future__ import annotations

import math
import re
from typing import Any

from atdata._errors import ConfigError, SchemaError

__all__ = ["Expr", "FieldRef", "FieldSet", "query_fields", "where_to_expr"]


def _label(v: Any) -> str:
    return v if isinstance(v, str) else str(v)


def _is_num(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool)


def _num(agg: dict, key: str) -> float | None:
    v = agg.get(key)
    return float(v) if v is not None else None


class Expr:
    """A boolean condition over manifest fields. Combine with ``&``, ``|`` and ``~``."""

    def __and__(self, other: Expr) -> Expr:
        return And(self, _expr(other))

    def __or__(self, other: Expr) -> Expr:
        return Or(self, _expr(other))

    def __invert__(self) -> Expr:
        return Not(self)

    def __bool__(self) -> bool:
        raise ConfigError("combine query expressions with & | ~, not and/or/not")

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


def _expr(x: Any) -> Expr:
    if not isinstance(x, Expr):
        raise ConfigError(f"expected a query expression, got {type(x).__name__}: {x!r:.60}")
    return x


class And(Expr):
    def __init__(self, *parts: Expr) -> None:
        self.parts = parts

    def fields(self) -> set[str]:
        return set().union(*(p.fields() for p in self.parts))

    def mask(self, df: Any) -> Any:
        m = self.parts[0].mask(df)
        for p in self.parts[1:]:
            m = m & p.mask(df)
        return m

    def arrow_mask(self, table: Any) -> Any:
        import pyarrow.compute as pc

        m = self.parts[0].arrow_mask(table)
        for p in self.parts[1:]:
            m = pc.and_(m, p.arrow_mask(table))
        return m

    def may_match(self, aggs: dict[str, Any], n: int, negated: bool = False) -> bool:
        if negated:  # NOT (a AND b) == NOT a OR NOT b
            return any(p.may_match(aggs, n, True) for p in self.parts)
        return all(p.may_match(aggs, n) for p in self.parts)

    def __repr__(self) -> str:
        return "(" + " AND ".join(map(repr, self.parts)) + ")"


class Or(And):
    def mask(self, df: Any) -> Any:
        m = self.parts[0].mask(df)
        for p in self.parts[1:]:
            m = m | p.mask(df)
        return m

    def arrow_mask(self, table: Any) -> Any:
        import pyarrow.compute as pc

        m = self.parts[0].arrow_mask(table)
        for p in self.parts[1:]:
            m = pc.or_(m, p.arrow_mask(table))
        return m

    def may_match(self, aggs: dict[str, Any], n: int, negated: bool = False) -> bool:
        if negated:
            return all(p.may_match(aggs, n, True) for p in self.parts)
        return any(p.may_match(aggs, n) for p in self.parts)

    def __repr__(self) -> str:
        return "(" + " OR ".join(map(repr, self.parts)) + ")"


class Not(Expr):
    def __init__(self, inner: Expr) -> None:
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
        return f"NOT {self.inner!r}"


class Leaf(Expr):
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
        col, op, v = df[self.field], self.op, self.value
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
        if op == "in":
            return col.isin(list(v))
        if op == "between":
            return col.between(v[0], v[1])
        return col.map(lambda xs: xs is not None and v in list(xs)).astype(bool)  # contains

    def arrow_mask(self, table: Any) -> Any:
        import pyarrow as pa
        import pyarrow.compute as pc

        if self.field not in table.column_names:
            raise SchemaError(
                f"field {self.field!r} is not in the manifest (columns: "
                f"{', '.join(c for c in table.column_names if not c.startswith('__'))})"
            )
        col, op, v = table.column(self.field), self.op, self.value
        if op == "contains":
            m = pa.array([xs is not None and v in xs for xs in col.to_pylist()], pa.bool_())
        elif op == "in":
            m = pc.is_in(col, value_set=pa.array(list(v)))
        elif op == "between":
            m = pc.and_(pc.greater_equal(col, v[0]), pc.less_equal(col, v[1]))
        else:
            fn = {
                "==": pc.equal,
                "!=": pc.not_equal,
                "<": pc.less,
                "<=": pc.less_equal,
                ">": pc.greater,
                ">=": pc.greater_equal,
            }[op]
            m = fn(col, v)
        return pc.fill_null(m, False)

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
        nulls = n > count
        if negated and nulls:
            return True
        lo, hi = _num(agg, "min"), _num(agg, "max")
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
        v = self.value
        if self.op == "in":
            return f"{self.field} IN ({', '.join(map(repr, v))})"
        if self.op == "between":
            return f"{self.field} BETWEEN {v[0]!r} AND {v[1]!r}"
        if self.op == "contains":
            return f"{self.field} CONTAINS {v!r}"
        return f"{self.field} {self.op} {v!r}"


class FieldRef:
    """A queryable field; comparisons build :class:`Expr` conditions."""

    def __init__(self, name: str, kind: str) -> None:
        self.name, self.kind = name, kind

    def __eq__(self, v: Any) -> Expr:  # type: ignore[override]
        return Leaf(self.name, "==", v)

    def __ne__(self, v: Any) -> Expr:  # type: ignore[override]
        return Leaf(self.name, "!=", v)

    def __lt__(self, v: Any) -> Expr:
        return Leaf(self.name, "<", v)

    def __le__(self, v: Any) -> Expr:
        return Leaf(self.name, "<=", v)

    def __gt__(self, v: Any) -> Expr:
        return Leaf(self.name, ">", v)

    def __ge__(self, v: Any) -> Expr:
        return Leaf(self.name, ">=", v)

    __hash__ = None  # type: ignore[assignment]

    def isin(self, values: Any) -> Expr:
        """The field equals one of ``values``."""
        if isinstance(values, (str, bytes)):
            raise ConfigError(f"isin() takes a list of values, got the string {values!r}")
        return Leaf(self.name, "in", tuple(values))

    def between(self, lo: Any, hi: Any) -> Expr:
        """``lo <= field <= hi``."""
        return Leaf(self.name, "between", (lo, hi))

    def contains(self, value: str) -> Expr:
        """A ``list[str]`` (set) field holds ``value``."""
        if self.kind != "set":
            raise SchemaError(f"contains() needs a list[str] field; {self.name!r} is {self.kind}")
        return Leaf(self.name, "contains", value)

    def __repr__(self) -> str:
        return f"FieldRef({self.name!r}, {self.kind!r})"


class FieldSet:
    """Attribute access to the queryable fields of a schema (``Q.label``)."""

    def __init__(self, kinds: dict[str, str], owner: str = "") -> None:
        self._kinds = dict(kinds)
        self._owner = owner

    def __getattr__(self, name: str) -> FieldRef:
        if name.startswith("_"):
            raise AttributeError(name)
        return self[name]

    def __getitem__(self, name: str) -> FieldRef:
        kind = self._kinds.get(name)
        if kind is None:
            raise SchemaError(
                f"{name!r} is not a queryable field of {self._owner or 'this dataset'}; "
                f"queryable: {', '.join(self._kinds) or '(none)'}"
            )
        return FieldRef(name, kind)

    def __dir__(self) -> list[str]:
        return list(self._kinds)

    def list_fields(self) -> list[str]:
        """Queryable field names."""
        return list(self._kinds)

    def __repr__(self) -> str:
        return f"FieldSet({self._kinds!r})"


def query_fields(sample_type: type) -> FieldSet:
    """Field references for typed query expressions over ``sample_type``'s manifests.

    Examples:
        >>> import atdata
        >>> @atdata.packable
        ... class P:
        ...     name: str
        >>> query_fields(P).name == "x"
        name == 'x'
    """
    from atdata.manifest._fields import manifest_fields

    return FieldSet(manifest_fields(sample_type), getattr(sample_type, "__name__", ""))


# -- SQL WHERE -> expressions (for pruning only; DuckDB evaluates the SQL itself) ---------------

_TOKEN = re.compile(
    r"""\s*(?:(?P<str>'(?:[^']|'')*')|(?P<num>-?\d+(?:\.\d*)?(?:[eE][-+]?\d+)?)|"""
    r"""(?P<qid>"(?:[^"]|"")+")|(?P<id>[A-Za-z_][A-Za-z0-9_]*)|(?P<op><=|>=|<>|!=|==|=|<|>|\(|\)|,)|(?P<other>\S))"""
)
_OPS = {"=": "==", "==": "==", "<>": "!=", "!=": "!=", "<": "<", "<=": "<=", ">": ">", ">=": ">="}
_FLIP = {"<": ">", "<=": ">=", ">": "<", ">=": "<=", "==": "==", "!=": "!="}


def _tokens(sql: str) -> list[tuple[str, Any]] | None:
    out: list[tuple[str, Any]] = []
    for m in _TOKEN.finditer(sql):
        kind = m.lastgroup
        text = m.group(kind)  # type: ignore[arg-type]
        if kind == "str":
            out.append(("lit", text[1:-1].replace("''", "'")))
        elif kind == "num":
            out.append(("lit", float(text) if any(c in text for c in ".eE") else int(text)))
        elif kind == "qid":
            out.append(("id", text[1:-1].replace('""', '"')))
        elif kind == "id":
            up = text.upper()
            if up in ("TRUE", "FALSE"):
                out.append(("lit", up == "TRUE"))
            elif up in ("AND", "OR", "NOT", "IN", "BETWEEN", "IS", "NULL", "LIKE"):
                out.append(("kw", up))
            else:
                out.append(("id", text))
        elif kind == "op":
            out.append(("op", text))
        else:
            return None
    return out


def _conjunct(toks: list[tuple[str, Any]]) -> Expr | None:
    t = toks
    if len(t) == 3 and t[1][0] == "op" and t[1][1] in _OPS:
        if t[0][0] == "id" and t[2][0] == "lit":
            return Leaf(t[0][1], _OPS[t[1][1]], t[2][1])
        if t[0][0] == "lit" and t[2][0] == "id":
            return Leaf(t[2][1], _FLIP[_OPS[t[1][1]]], t[0][1])
    if (
        len(t) == 5
        and t[0][0] == "id"
        and t[1] == ("kw", "BETWEEN")
        and t[3] == ("kw", "AND")
        and t[2][0] == "lit"
        and t[4][0] == "lit"
    ):
        return Leaf(t[0][1], "between", (t[2][1], t[4][1]))
    if (
        len(t) >= 5
        and t[0][0] == "id"
        and t[1] == ("kw", "IN")
        and t[2] == ("op", "(")
        and t[-1] == ("op", ")")
    ):
        inner = t[3:-1]
        vals = [x[1] for x in inner[0::2]]
        if all(x[0] == "lit" for x in inner[0::2]) and all(x == ("op", ",") for x in inner[1::2]):
            return Leaf(t[0][1], "in", tuple(vals))
    if (
        len(t) == 6
        and t[0][0] == "id"
        and t[0][1].lower() in ("list_contains", "array_contains", "list_has")
        and t[1] == ("op", "(")
        and t[2][0] == "id"
        and t[3] == ("op", ",")
        and t[4][0] == "lit"
        and t[5] == ("op", ")")
    ):
        return Leaf(t[2][1], "contains", t[4][1])
    return None


def where_to_expr(sql: str, *, complete: bool = False) -> Expr | None:
    """The part of a SQL ``WHERE`` clause that aggregates can prune on, or ``None``.

    Only top-level ``AND`` terms of the forms ``f <op> literal``, ``f IN (...)``,
    ``f BETWEEN a AND b`` and ``list_contains(f, 'v')`` are used; anything else (``OR`` at the top
    level, functions, ``NOT``) is left to DuckDB, so pruning never drops a matching shard.
    With ``complete=True`` the result is ``None`` unless every term was translated, so the
    expression alone decides the same rows as the SQL.
    """
    toks = _tokens(sql)
    if not toks:
        return None
    parts: list[list[tuple[str, Any]]] = [[]]
    depth = 0
    between = False
    for tok in toks:
        if tok == ("op", "("):
            depth += 1
        elif tok == ("op", ")"):
            depth -= 1
        if depth == 0 and tok == ("kw", "OR"):
            return None
        if depth == 0 and tok == ("kw", "BETWEEN"):
            between = True
        elif depth == 0 and tok == ("kw", "AND"):
            if between:
                between = False
            else:
                parts.append([])
                continue
        parts[-1].append(tok)
    leaves = [e for p in parts if (e := _conjunct(p)) is not None]
    if not leaves or (complete and len(leaves) != len(parts)):
        return None
    return leaves[0] if len(leaves) == 1 else And(*leaves)
