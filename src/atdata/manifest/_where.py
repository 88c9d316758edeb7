"""SQL ``WHERE`` clauses -> field predicates, for pruning shards by their aggregates.

DuckDB evaluates the SQL itself; the translation only decides which shards can be skipped (and,
when it covers the whole clause, filters simple queries without a DuckDB round trip).

Examples:
    >>> where_to_expr("label IN ('dog','cat') AND score > 0.9 AND (idx = 3 OR upper(s) = 'A')")
    (Predicate('label' isin ('dog', 'cat')) & Predicate('score' gt 0.9))
    >>> where_to_expr("idx = 3 OR (label = 'cat' AND score < 0.5)", complete=True)
    (Predicate('idx' eq 3) | (Predicate('label' eq 'cat') & Predicate('score' lt 0.5)))
    >>> where_to_expr("NOT idx = 3") is None
    True
"""

from __future__ import annotations

import functools
import operator
import re
from typing import Any

from atdata.manifest._expr import Leaf, Predicate

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


class _Unparsed(Exception):
    """The clause's structure is not one this translation follows (DuckDB decides alone)."""


class _Parser:
    """``OR`` of ``AND`` of (``NOT`` | ``( ... )`` | term), SQL precedence. Each rule returns
    ``(expr, exact)``: ``expr`` holds whenever the SQL does (``None``: no constraint known) and
    ``exact`` says it selects the very same rows."""

    def __init__(self, toks: list[tuple[str, Any]]) -> None:
        self.t, self.i = toks, 0

    def peek(self) -> tuple[str, Any] | None:
        return self.t[self.i] if self.i < len(self.t) else None

    def or_(self) -> tuple[Expr | None, bool]:
        parts = [self.and_()]
        while self.peek() == ("kw", "OR"):
            self.i += 1
            parts.append(self.and_())
        if len(parts) == 1:
            return parts[0]
        exprs = [e for e, _ in parts if e is not None]
        if len(exprs) != len(parts):
            return None, False  # a disjunct with no known constraint: the OR constrains nothing
        return functools.reduce(operator.or_, exprs), all(x for _, x in parts)

    def and_(self) -> tuple[Expr | None, bool]:
        parts = [self.not_()]
        while self.peek() == ("kw", "AND"):
            self.i += 1
            parts.append(self.not_())
        exprs = [e for e, _ in parts if e is not None]
        exact = all(x for _, x in parts)
        return (functools.reduce(operator.and_, exprs) if exprs else None), exact

    def not_(self) -> tuple[Expr | None, bool]:
        if self.peek() == ("kw", "NOT"):
            # SQL's NOT keeps NULL rows out, a predicate's ~ lets them in: DuckDB decides
            self.i += 1
            self.not_()
            return None, False
        return self.atom()

    def atom(self) -> tuple[Expr | None, bool]:
        if self.peek() == ("op", "("):
            self.i += 1
            got = self.or_()
            if self.peek() != ("op", ")"):
                raise _Unparsed
            self.i += 1
            return got
        start, depth, between = self.i, 0, False
        while self.i < len(self.t):  # one term: up to AND/OR/")" outside its own parentheses
            tok = self.t[self.i]
            if tok == ("op", "("):
                depth += 1
            elif tok == ("op", ")"):
                if depth == 0:
                    break
                depth -= 1
            elif depth == 0 and tok == ("kw", "OR"):
                break
            elif depth == 0 and tok == ("kw", "BETWEEN"):
                between = True
            elif depth == 0 and tok == ("kw", "AND"):
                if not between:
                    break
                between = False
            self.i += 1
        if self.i == start:
            raise _Unparsed
        leaf = _conjunct(self.t[start : self.i])
        return leaf, leaf is not None


def where_to_expr(sql: str, *, complete: bool = False) -> Expr | None:
    """A field predicate that holds wherever a SQL ``WHERE`` clause does, or ``None``.

    Terms of the forms ``f <op> literal``, ``f IN (...)``, ``f BETWEEN a AND b`` and
    ``list_contains(f, 'v')`` are translated, combined with ``AND``, ``OR`` and parentheses;
    an untranslated term (a function, ``NOT``, ``IS NULL``, ``LIKE``) drops out of an ``AND`` and
    empties an ``OR``, so pruning by the result never drops a matching shard. With
    ``complete=True`` the result is ``None`` unless every term was translated, so the
    expression alone selects the same rows as the SQL (``NULL`` s match nothing in either).
    """
    toks = _tokens(sql)
    if not toks:
        return None
    p = _Parser(toks)
    try:
        expr, exact = p.or_()
    except _Unparsed:
        return None
    if p.i != len(toks) or (complete and not exact):
        return None
    return expr
