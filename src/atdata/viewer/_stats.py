"""A dataset's manifest summary for the viewer: merged per-shard aggregates and histograms.

Each shard's manifest header carries aggregates of its queryable fields (numeric min/max/mean/
count, categorical value counts, set values). The viewer merges them over the shards and adds a
histogram of each numeric field, computed from the manifest rows the query engine reads
(``ds.query()``), so no sample is decoded.

Examples:
    >>> merge_aggregates([{"type": "numeric", "min": 1, "max": 2, "mean": 1.5, "count": 2},
    ...                   {"type": "numeric", "min": 0, "max": 4, "mean": 4.0, "count": 1}])
    {'type': 'numeric', 'min': 0, 'max': 4, 'mean': 2.3333333333333335, 'count': 3}
    >>> merge_aggregates([{"type": "categorical", "cardinality": 1, "value_counts": {"a": 2}},
    ...                   {"type": "categorical", "cardinality": 2, "value_counts": {"a": 1, "b": 5}}])
    {'type': 'categorical', 'cardinality': 2, 'value_counts': {'b': 5, 'a': 3}, 'cut': False}
    >>> merge_aggregates([{"type": "categorical", "value_counts": {"x" * 100: 1}}])["value_counts"]
    {'xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx…': 1}
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from atdata._errors import AtdataError

if TYPE_CHECKING:
    from atdata.dataset._dataset import Dataset

__all__ = ["histogram", "manifest_summary", "merge_aggregates", "numbers"]

HIST_BINS = 20
LABEL_LIMIT = 80  # characters of a categorical value shown


def merge_aggregates(aggs: Sequence[dict[str, Any]], top: int = 40) -> dict[str, Any]:
    """One field's aggregates over several shards (categorical values: the ``top`` most common)."""
    kind = aggs[0].get("type", "categorical") if aggs else "categorical"
    if kind == "numeric":
        have = [a for a in aggs if a.get("count")]
        if not have:
            return {"type": "numeric", "min": None, "max": None, "mean": None, "count": 0}
        count = sum(int(a["count"]) for a in have)
        mean = sum(float(a["mean"]) * int(a["count"]) for a in have) / count
        return {
            "type": "numeric",
            "min": min(a["min"] for a in have),
            "max": max(a["max"] for a in have),
            "mean": mean,
            "count": count,
        }
    if kind == "set":
        values: set[str] = set()
        for a in aggs:
            values.update(str(v) for v in a.get("all_values") or ())
        ordered = sorted(values)
        return {"type": "set", "all_values": ordered[:top], "count": len(ordered),
                "cut": len(ordered) > top}  # fmt: skip
    counts: dict[str, int] = {}
    complete = True
    card = 0
    for a in aggs:
        card = max(card, int(a.get("cardinality") or 0))
        vc = a.get("value_counts")
        if vc is None:
            complete = False
            continue
        for k, v in vc.items():
            counts[str(k)] = counts.get(str(k), 0) + int(v)
    ranked = sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))
    out: dict[str, Any] = {"type": "categorical", "cardinality": max(card, len(counts))}
    if complete:
        shown: dict[str, int] = {}
        for k, v in ranked[:top]:  # long values are cut (and marked) like any text cell
            label = k if len(k) <= LABEL_LIMIT else k[: LABEL_LIMIT - 1] + "…"
            shown[label] = shown.get(label, 0) + v
        out["value_counts"] = shown
        out["cut"] = len(ranked) > top
    return out


def histogram(values: Any, bins: int = HIST_BINS) -> dict[str, Any] | None:
    """``{"edges": [...], "counts": [...]}`` of the finite values (``None`` when there are none).

    Examples:
        >>> histogram([0.0, 1.0, 1.0, 2.0], bins=2)
        {'edges': [0.0, 1.0, 2.0], 'counts': [1, 3]}
    """
    import numpy as np

    arr = np.asarray(values, dtype=np.float64)
    arr = arr[np.isfinite(arr)]
    if not arr.size:
        return None
    lo, hi = float(arr.min()), float(arr.max())
    if hi == lo:
        return {"edges": [lo, hi], "counts": [int(arr.size)]}
    counts, edges = np.histogram(arr, bins=bins, range=(lo, hi))
    return {"edges": [float(e) for e in edges], "counts": [int(c) for c in counts]}


def _json_num(v: Any) -> Any:
    if isinstance(v, float) and not math.isfinite(v):
        return None
    return v


def manifest_summary(ds: Dataset[Any], top: int = 40) -> dict[str, Any]:
    """``{"available", "fields", "aggregates", "histograms"}`` of ``ds``'s manifests, or
    ``{"available": False, "reason": ...}`` when they are missing or unreadable."""
    from atdata.dataset._export import executor

    try:
        manifests = executor(ds).list_manifests()
    except AtdataError as exc:
        return {"available": False, "reason": str(exc)}
    fields: dict[str, str] = {}
    per_field: dict[str, list[dict[str, Any]]] = {}
    for m in manifests:
        for k, kind in m.kinds.items():
            fields.setdefault(k, kind)
        for k, a in m.aggregates.items():
            per_field.setdefault(k, []).append(a)
    aggregates = {}
    for k, aggs in per_field.items():
        merged = merge_aggregates(aggs, top)
        aggregates[k] = {n: _json_num(v) for n, v in merged.items()}
    histograms: dict[str, Any] = {}
    numeric = [k for k, kind in fields.items() if kind == "numeric"]
    if numeric:
        try:  # the rows the query engine reads (checked against their shards, cached by it)
            src = executor(ds).source
            for m in manifests:
                m.check_fresh()
            tables = [m.arrow(src) for m in manifests]
        except (AtdataError, ImportError) as exc:
            return {"available": True, "fields": fields, "aggregates": aggregates,
                    "histograms": {}, "reason": str(exc)}  # fmt: skip
        for k in numeric:
            h = histogram(numbers([t.column(k) for t in tables if k in t.column_names]))
            if h is not None:
                histograms[k] = h
    return {"available": True, "fields": fields, "aggregates": aggregates, "histograms": histograms}


def numbers(columns: Sequence[Any]) -> Any:
    """The non-null values of numeric pyarrow columns as one float64 numpy array.

    Read from the Arrow buffers: pyarrow's own ``to_numpy`` goes through its pandas conversion
    layer, which imports pandas (about 50 MB) into a server that never needs it.

    Examples:
        >>> import pyarrow as pa
        >>> numbers([pa.chunked_array([pa.array([1, None, 3])]), pa.array([0.5])]).tolist()
        [1.0, 3.0, 0.5]
    """
    import numpy as np
    import pyarrow as pa
    import pyarrow.compute as pc

    parts = []
    for col in columns:
        chunks = col.chunks if isinstance(col, pa.ChunkedArray) else [col]
        for chunk in chunks:
            try:
                arr = pc.drop_null(chunk).cast(pa.float64(), safe=False)
            except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
                continue  # not numbers after all: no histogram from this chunk
            if len(arr):
                buf = arr.buffers()[1]
                parts.append(np.frombuffer(buf, "<f8", count=len(arr), offset=arr.offset * 8))
    return np.concatenate(parts) if parts else np.empty(0)
