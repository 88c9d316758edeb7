"""SQL ``WHERE`` clauses -> field predicates, for pruning shards by their aggregates.

DuckDB evaluates the SQL itself; the translation only decides which shards can be skipped (and,
when it covers the whole clause, filters simple queries without a DuckDB round trip).

Examples:
    >>> where_to_expr("label IN ('dog','cat') AND score > 0.9 AND (idx = 3 OR idx = 4)")
    (label IN ('dog', 'cat') & score > 0.9)
    >>> where_to_expr("idx = 3 OR idx = 4") is None
    True
"""

from __future__ import annotations

import re
from typing import Any

from atdata.manifest._expr import And, Leaf, Predicate

__all__ = ["where_to_expr"]

Expr = Predicate

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
