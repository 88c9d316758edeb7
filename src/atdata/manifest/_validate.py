"""Type checks of manifests read from disk or the network, before anything uses their values.

A manifest is input like any other: a header whose ``num_samples`` is ``"5"`` or ``-1``, or a
parquet whose ``__size__`` is ``2**40``, must give a clear :class:`~atdata.IntegrityError` naming
the field and the fix, never a ``TypeError`` deep in a query or a read sized by the lie.

Examples:
    >>> check_header_types({"num_samples": 3, "size_bytes": 10}, "a.manifest.json", "rebuild it")
    >>> check_header_types({"num_samples": "3"}, "a.manifest.json", "rebuild it")
    Traceback (most recent call last):
    ...
    atdata._errors.IntegrityError: manifest header a.manifest.json is corrupt: 'num_samples' is 3, not a sample count; rebuild it
"""

from __future__ import annotations

from typing import Any

from atdata._errors import IntegrityError

__all__ = ["check_columns", "check_header_types"]


def _is_count(v: Any) -> bool:
    return type(v) is int and v >= 0


def check_header_types(header: dict[str, Any], jpath: str, fix: str) -> None:
    """Refuse a header whose fields have the wrong JSON types.

    Raises:
        IntegrityError: Naming the field, what it should be, and ``fix``.
    """

    def bad(field: str, want: str) -> IntegrityError:
        got = str(header.get(field))[:60]
        return IntegrityError(
            f"manifest header {jpath} is corrupt: {field!r} is {got}, not {want}; {fix}"
        )

    if not _is_count(header.get("num_samples")):
        raise bad("num_samples", "a sample count")
    if header.get("size_bytes") is not None and not _is_count(header["size_bytes"]):
        raise bad("size_bytes", "a byte count")
    for field in ("offset_kind", "manifest_token", "shard_sha256"):
        if header.get(field) is not None and not isinstance(header[field], str):
            raise bad(field, "a string")
    aggs = header.get("aggregates")
    if aggs is not None and not (
        isinstance(aggs, dict) and all(isinstance(a, dict) for a in aggs.values())
    ):
        raise bad("aggregates", "an object of per-field objects")
    fields = header.get("fields")
    if fields is not None and not (
        isinstance(fields, dict) and all(isinstance(k, str) for k in fields.values())
    ):
        raise bad("fields", "an object of field kinds")


def check_columns(table: Any, path: str, fix: str) -> None:
    """The system columns must be a non-null string key and non-negative integer offset/size.

    Raises:
        IntegrityError: Naming the column and what is wrong with it.
    """
    import pyarrow as pa
    import pyarrow.compute as pc

    want = {
        "__key__": lambda t: pa.types.is_string(t) or pa.types.is_large_string(t),
        "__offset__": pa.types.is_integer,
        "__size__": pa.types.is_integer,
    }
    for name, ok in want.items():
        col = table.column(name)
        problem = None
        if not ok(col.type):
            problem = f"has type {col.type}"
        elif col.null_count:
            problem = "has nulls"
        elif name != "__key__" and len(col) and pc.min(col).as_py() < 0:
            problem = "has negative values"
        if problem:
            raise IntegrityError(
                f"manifest parquet {path} is corrupt: column {name} {problem}; {fix}"
            )
