"""IEEE NaN comparisons for SQL queries run by DuckDB.

Every query path compares NaN the IEEE way, as pandas, numpy and Python do: ``NaN`` is neither
smaller, larger nor equal to any value (itself included), so ``<``, ``<=``, ``>``, ``>=``, ``=``,
``BETWEEN`` and ``IN`` are false for it and ``!=`` is true; ``NOT`` then flips that as usual.
DuckDB instead orders NaN above every number and equal to itself, so a clause is rewritten
before DuckDB runs it: each comparison whose operands read a floating-point column is guarded by
``isnan`` checks of its floating-point operands (:func:`ieee_where`). The rewrite goes through DuckDB's own parser
(``json_serialize_sql``), so it follows any clause DuckDB accepts; a clause that cannot be
rewritten runs unchanged. Other NaN tests (``isnan(x)``, ``x IS NULL`` is false for NaN) are
DuckDB's.

Examples:
    >>> import duckdb
    >>> con = duckdb.connect()
    >>> ieee_where(con, "score > 1 AND idx % 2 = 0", {"score"}) != "score > 1 AND idx % 2 = 0"
    True
    >>> ieee_where(con, "idx > 1", {"score"})
    'idx > 1'
"""

from __future__ import annotations

import copy
import json
from typing import Any

__all__ = ["ieee_where"]

_ORDERED = {
    "COMPARE_LESSTHAN",
    "COMPARE_LESSTHANOREQUALTO",
    "COMPARE_GREATERTHAN",
    "COMPARE_GREATERTHANOREQUALTO",
    "COMPARE_EQUAL",
}
_HOLE = "__atdata_nan_hole__"


def _where_of(con: Any, sql: str) -> dict:
    """The parsed ``WHERE`` node of ``SELECT * FROM t WHERE sql`` (DuckDB's JSON form)."""
    out = con.execute("SELECT json_serialize_sql(?)", [f"SELECT * FROM t WHERE {sql}"]).fetchall()[
        0
    ][0]
    tree = json.loads(out)
    if tree.get("error"):
        raise ValueError(tree.get("error_message", "unparsed"))
    return tree["statements"][0]["node"]["where_clause"]


def _fill(node: Any, holes: dict[str, dict]) -> Any:
    """``node`` with each column reference named in ``holes`` replaced by its subtree."""
    if isinstance(node, dict):
        if node.get("class") == "COLUMN_REF" and node.get("column_names", [""])[-1] in holes:
            return copy.deepcopy(holes[node["column_names"][-1]])
        return {k: _fill(v, holes) for k, v in node.items()}
    if isinstance(node, list):
        return [_fill(v, holes) for v in node]
    return node


class _Rewriter:
    """Rewrites one parsed clause; ``floats`` are the lower-cased floating-point column names."""

    def __init__(self, con: Any, floats: set[str]) -> None:
        self.floats = floats
        self.nan, self.and_not, self.or_ = _templates(con)
        self.changed = False

    def reads_float(self, node: Any) -> bool:
        if isinstance(node, dict):
            if node.get("class") == "COLUMN_REF":
                names = node.get("column_names") or [""]
                return str(names[-1]).lower() in self.floats
            if node.get("class") == "SUBQUERY":
                return False
            return any(self.reads_float(v) for v in node.values())
        if isinstance(node, list):
            return any(self.reads_float(v) for v in node)
        return False

    def any_nan(self, operands: list[Any]) -> dict | None:
        checks = [_fill(self.nan, {f"{_HOLE}0": o}) for o in operands if self.reads_float(o)]
        if not checks:
            return None
        out = checks[0]
        for c in checks[1:]:
            out = _fill(self.or_, {f"{_HOLE}0": out, f"{_HOLE}1": c})
        return out

    def walk(self, node: Any) -> Any:
        if isinstance(node, list):
            return [self.walk(v) for v in node]
        if not isinstance(node, dict):
            return node
        if node.get("class") == "SUBQUERY":
            return node
        node = {k: self.walk(v) for k, v in node.items()}
        typ = node.get("type")
        if typ in _ORDERED or typ == "COMPARE_NOTEQUAL":
            operands = [node.get("left"), node.get("right")]
        elif typ == "COMPARE_BETWEEN":
            operands = [node.get("input"), node.get("lower"), node.get("upper")]
        elif typ == "COMPARE_IN":
            operands = list(node.get("children") or [])
        else:
            return node
        nan = self.any_nan(operands)
        if nan is None:
            return node
        self.changed = True
        if typ == "COMPARE_NOTEQUAL":  # NaN differs from everything
            return _fill(self.or_, {f"{_HOLE}0": node, f"{_HOLE}1": nan})
        return _fill(self.and_not, {f"{_HOLE}0": node, f"{_HOLE}1": nan})


_CACHE: dict[tuple[str, frozenset[str]], str] = {}


def _rewrite(con: Any, sql: str, floats: frozenset[str]) -> str:
    try:
        where = _where_of(con, sql)
        rw = _Rewriter(con, set(floats))
        new = rw.walk(where)
        if not rw.changed:
            return sql
        stmt = {
            "error": False,
            "statements": [
                {
                    "node": {
                        **_select_node(con),
                        "where_clause": new,
                    }
                }
            ],
        }
        out = con.execute("SELECT json_deserialize_sql(?::JSON)", [json.dumps(stmt)]).fetchall()[0][
            0
        ]
        i = out.find(" WHERE ")
        return str(out[i + 7 :]) if out.startswith("SELECT") and i >= 0 else sql
    except Exception:  # a clause DuckDB's serializer cannot round-trip runs as is
        return sql


_PARSED: dict[str, Any] = {}  # the templates, parsed once per process (read-only afterwards)


def _templates(con: Any) -> tuple[dict, dict, dict]:
    """The parsed NaN check, ``a AND NOT b`` and ``a OR b`` with holes for their operands."""
    if "nan" not in _PARSED:
        _PARSED["or"] = _where_of(con, f"{_HOLE}0 OR {_HOLE}1")
        _PARSED["and_not"] = _where_of(con, f"{_HOLE}0 AND NOT {_HOLE}1")
        _PARSED["nan"] = _where_of(
            con,
            f"coalesce(typeof({_HOLE}0) IN ('DOUBLE', 'FLOAT') "
            f"AND isnan(TRY_CAST({_HOLE}0 AS DOUBLE)), false)",
        )  # a float operand only: a VARCHAR 'nan' is text
    return _PARSED["nan"], _PARSED["and_not"], _PARSED["or"]


def _select_node(con: Any) -> dict:
    node = _PARSED.get("select")
    if node is None:
        text = con.execute("SELECT json_serialize_sql('SELECT * FROM t WHERE 1')").fetchall()[0][0]
        node = json.loads(text)["statements"][0]["node"]
        node = _PARSED["select"] = {k: v for k, v in node.items() if k != "where_clause"}
    return node


def ieee_where(con: Any, sql: str, floats: set[str]) -> str:
    """``sql`` (a ``WHERE`` clause) rewritten so that DuckDB compares NaN the IEEE way in the
    columns named in ``floats`` (unchanged when it compares none of them).

    Args:
        con: A DuckDB connection (used for parsing only).
        sql: The clause, without ``WHERE``.
        floats: Names of the table's floating-point columns.
    """
    low = frozenset(f.lower() for f in floats)
    if not low or not any(f in sql.lower() for f in low):
        return sql
    key = (sql, low)
    out = _CACHE.get(key)
    if out is None:
        cur = con.cursor()  # a cursor of its own: other threads may query the connection
        try:
            out = _rewrite(cur, sql, low)
        finally:
            cur.close()
        if len(_CACHE) >= 256:
            _CACHE.clear()
        _CACHE[key] = out
    return out
