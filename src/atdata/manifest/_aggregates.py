"""Running per-shard statistics of one manifest field, as stored in the manifest header.

``categorical`` fields count each value, ``numeric`` fields keep min/max/mean/count and ``set``
(``list[str]``) fields keep the union of their values. ``None`` (and NaN) values are not counted.

Examples:
    >>> c = CategoricalAggregate()
    >>> for v in ["dog", "cat", "dog", None]:
    ...     c.add(v)
    >>> c.to_dict()
    {'type': 'categorical', 'cardinality': 2, 'value_counts': {'dog': 2, 'cat': 1}}
    >>> n = create_aggregate("numeric")
    >>> for v in (3, 1.5, 4.5):
    ...     n.add(v)
    >>> n.to_dict()
    {'type': 'numeric', 'min': 1.5, 'max': 4.5, 'mean': 3.0, 'count': 3}
    >>> s = SetAggregate()
    >>> s.add(["b", "a"]); s.add(["a", "c"]); s.to_dict()
    {'type': 'set', 'all_values': ['a', 'b', 'c']}
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Iterable
from typing import Any

from atdata._errors import ConfigError

__all__ = [
    "VALUE_COUNT_LIMIT",
    "Aggregate",
    "CategoricalAggregate",
    "NumericAggregate",
    "SetAggregate",
    "aggregate_values",
    "create_aggregate",
]

#: distinct values a categorical aggregate lists in the header before it keeps only the count
VALUE_COUNT_LIMIT = 1000


def category_label(value: Any) -> str:
    """How a categorical value is named in ``value_counts`` (``True`` -> ``"True"``)."""
    return value if isinstance(value, str) else str(value)


@dataclasses.dataclass
class CategoricalAggregate:
    """Value counts of a categorical (``str``/``bool``) field.

    Attributes:
        value_counts: Value (as text) -> samples holding it, in first-seen order.
        limit: Past this many distinct values the header keeps only the cardinality.
    """

    value_counts: dict[str, int] = dataclasses.field(default_factory=dict)
    limit: int = VALUE_COUNT_LIMIT

    @property
    def cardinality(self) -> int:
        """Distinct values seen."""
        return len(self.value_counts)

    def add(self, value: Any) -> None:
        """Count one value (``None`` is not counted)."""
        if value is None:
            return
        label = category_label(value)
        self.value_counts[label] = self.value_counts.get(label, 0) + 1

    def to_dict(self) -> dict[str, Any]:
        """The header form: ``{"type", "cardinality", "value_counts"}`` (counts up to ``limit``)."""
        out: dict[str, Any] = {"type": "categorical", "cardinality": self.cardinality}
        if self.cardinality <= self.limit:
            out["value_counts"] = dict(self.value_counts)
        return out


@dataclasses.dataclass
class NumericAggregate:
    """Minimum, maximum, mean and count of a numeric (``int``/``float``) field."""

    count: int = 0
    _min: float = math.inf
    _max: float = -math.inf
    _sum: float = 0.0

    @property
    def min(self) -> float:
        """Smallest value seen (``inf`` before any)."""
        return self._min

    @property
    def max(self) -> float:
        """Largest value seen (``-inf`` before any)."""
        return self._max

    @property
    def mean(self) -> float:
        """Mean of the values seen (``0.0`` before any)."""
        return self._sum / self.count if self.count else 0.0

    def add(self, value: float | int | None) -> None:
        """Count one value (``None`` and NaN are not counted)."""
        if value is None:
            return
        v = float(value)
        if math.isnan(v):
            return
        self._min = min(self._min, v)
        self._max = max(self._max, v)
        self._sum += v
        self.count += 1

    def to_dict(self) -> dict[str, Any]:
        """The header form: ``{"type", "min", "max", "mean", "count"}`` (``None`` s when empty)."""
        if not self.count:  # JSON has no infinity: an empty field has no bounds
            return {"type": "numeric", "min": None, "max": None, "mean": None, "count": 0}
        return {
            "type": "numeric",
            "min": self._min,
            "max": self._max,
            "mean": self.mean,
            "count": self.count,
        }


@dataclasses.dataclass
class SetAggregate:
    """Union of the values of a ``list[str]`` (set) field."""

    all_values: set[str] = dataclasses.field(default_factory=set)

    def add(self, values: Iterable[Any] | None) -> None:
        """Add the values of one sample's list (``None`` adds nothing)."""
        if values is None:
            return
        self.all_values.update(category_label(v) for v in values)

    def to_dict(self) -> dict[str, Any]:
        """The header form: ``{"type": "set", "all_values": [sorted values]}``."""
        return {"type": "set", "all_values": sorted(self.all_values)}


Aggregate = CategoricalAggregate | NumericAggregate | SetAggregate

_KINDS: dict[str, type] = {
    "categorical": CategoricalAggregate,
    "numeric": NumericAggregate,
    "set": SetAggregate,
}


def create_aggregate(kind: str) -> Aggregate:
    """A new, empty aggregate for a manifest kind.

    Raises:
        ConfigError: (a ``ValueError``) For a kind other than categorical, numeric or set.
    """
    cls = _KINDS.get(kind)
    if cls is None:
        raise ConfigError(f"Unknown aggregate kind: {kind!r} (use one of {', '.join(_KINDS)})")
    return cls()


def aggregate_values(kind: str, values: Iterable[Any]) -> dict[str, Any]:
    """The header aggregate of ``values`` for a field of ``kind``.

    Examples:
        >>> aggregate_values("categorical", [True, False, True])
        {'type': 'categorical', 'cardinality': 2, 'value_counts': {'True': 2, 'False': 1}}
    """
    agg = create_aggregate(kind)
    add = agg.add
    for v in values:
        add(v)
    return agg.to_dict()
