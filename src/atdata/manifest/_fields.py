"""Which fields of a sample type go into a manifest, and their per-shard aggregates.

A field is *queryable* when its type maps to a manifest kind: ``str`` and ``bool`` are
``categorical``, ``int`` and ``float`` are ``numeric``, ``list[str]`` is a ``set``. Arrays, bytes,
dicts and nested samples are left out. ``Annotated[T, ManifestField(...)]`` overrides the choice.

Examples:
    >>> from typing import Annotated
    >>> import atdata
    >>> @atdata.packable
    ... class Row:
    ...     label: str
    ...     score: float
    ...     tags: list[str]
    ...     code: Annotated[int, ManifestField("categorical")]
    ...     note: Annotated[str, ManifestField(exclude=True)]
    >>> manifest_fields(Row)
    {'label': 'categorical', 'score': 'numeric', 'tags': 'set', 'code': 'categorical'}
    >>> agg = Aggregator("numeric")
    >>> for v in (3, 1.5, None, 4.5):
    ...     agg.add(v)
    >>> agg.result()
    {'type': 'numeric', 'min': 1.5, 'max': 4.5, 'mean': 3.0, 'count': 3}
"""

from __future__ import annotations

import dataclasses
import math
from typing import Any

from atdata._errors import ConfigError, SchemaError

__all__ = ["KINDS", "Aggregator", "ManifestField", "infer_kind", "manifest_fields"]

KINDS = ("categorical", "numeric", "set")
#: distinct values a categorical aggregate counts before it keeps only the cardinality
VALUE_COUNT_LIMIT = 1000


@dataclasses.dataclass(frozen=True)
class ManifestField:
    """Annotation extra that sets how (or whether) a field appears in manifests.

    Args:
        kind: ``"categorical"``, ``"numeric"`` or ``"set"`` (``None``: derived from the type).
        exclude: Leave the field out of manifests.

    Examples:
        >>> ManifestField("numeric")
        ManifestField(kind='numeric', exclude=False)
        >>> ManifestField("text")
        Traceback (most recent call last):
        ...
        atdata._errors.ConfigError: ManifestField kind must be one of categorical, numeric, set; got 'text'
    """

    kind: str | None = None
    exclude: bool = False

    def __post_init__(self) -> None:
        if self.kind is not None and self.kind not in KINDS:
            raise ConfigError(
                f"ManifestField kind must be one of {', '.join(KINDS)}; got {self.kind!r}"
            )


def _kind_of_spec(spec: Any) -> str | None:
    if spec.kind in ("str", "bool"):
        return "categorical"
    if spec.kind in ("int", "float"):
        return "numeric"
    if spec.kind == "list" and spec.item is not None and spec.item.kind == "str":
        return "set"
    return None


def manifest_fields(sample_type: type) -> dict[str, str]:
    """Queryable fields of a ``@packable`` type: name -> manifest kind, in declaration order.

    Raises:
        SchemaError: When a ``ManifestField`` asks for a kind the field's type cannot hold.
    """
    get = getattr(sample_type, "atdata_fields", None)
    if get is None:
        return {}
    out: dict[str, str] = {}
    for spec in get():
        hint = next((m for m in spec.metadata if isinstance(m, ManifestField)), None)
        if hint is not None and hint.exclude:
            continue
        derived = _kind_of_spec(spec)
        kind = hint.kind if hint is not None and hint.kind is not None else derived
        if kind is None:
            continue
        if hint is not None and hint.kind is not None:
            ok = {
                "categorical": spec.kind in ("str", "bool", "int", "float"),
                "numeric": spec.kind in ("int", "float", "bool"),
                "set": derived == "set",
            }[kind]
            if not ok:
                raise SchemaError(
                    f"field {sample_type.__name__}.{spec.name} of type {spec.type_name} cannot be a "
                    f"{kind} manifest field"
                )
        out[spec.name] = kind
    return out


def infer_kind(value: Any) -> str | None:
    """Manifest kind of a loose value (for :class:`~atdata.DictSample` data without a schema).

    Examples:
        >>> [infer_kind(v) for v in ("a", True, 3, 2.5, ["x"], b"raw", None)]
        ['categorical', 'categorical', 'numeric', 'numeric', 'set', None, None]
    """
    if isinstance(value, (str, bool)):
        return "categorical"
    if isinstance(value, (int, float)):
        return "numeric"
    if isinstance(value, list) and all(isinstance(v, str) for v in value):
        return "set"
    return None


def category_label(value: Any) -> str:
    """How a categorical value is named in ``value_counts`` (``True`` -> ``"True"``)."""
    return value if isinstance(value, str) else str(value)


class Aggregator:
    """Running per-shard aggregate of one field (``None`` values are not counted).

    Args:
        kind: ``"categorical"``, ``"numeric"`` or ``"set"``.
        limit: Distinct categorical values counted before only the cardinality is kept.

    Examples:
        >>> a = Aggregator("categorical", limit=2)
        >>> for v in "abab":
        ...     a.add(v)
        >>> a.result()
        {'type': 'categorical', 'cardinality': 2, 'value_counts': {'a': 2, 'b': 2}}
        >>> a.add("c"); a.result()
        {'type': 'categorical', 'cardinality': 3}
    """

    def __init__(self, kind: str, limit: int = VALUE_COUNT_LIMIT) -> None:
        if kind not in KINDS:
            raise ConfigError(f"unknown manifest field kind {kind!r}")
        self.kind = kind
        self.limit = limit
        self.counts: dict[str, int] | None = {}
        self.distinct: set[str] | None = None
        self.lo = math.inf
        self.hi = -math.inf
        self.total = 0.0
        self.n = 0
        self.values: set[str] = set()

    def add(self, value: Any) -> None:
        """Count one value."""
        if value is None:
            return
        if self.kind == "numeric":
            v = float(value)
            if math.isnan(v):
                return
            self.lo = min(self.lo, v)
            self.hi = max(self.hi, v)
            self.total += v
            self.n += 1
        elif self.kind == "set":
            self.values.update(category_label(v) for v in value)
        else:
            label = category_label(value)
            counts = self.counts
            if counts is not None:
                counts[label] = counts.get(label, 0) + 1
                if len(counts) > self.limit:
                    self.distinct = set(counts)
                    self.counts = None
            else:
                self.distinct.add(label)  # type: ignore[union-attr]

    def result(self) -> dict[str, Any]:
        """The aggregate in the manifest header's format."""
        if self.kind == "numeric":
            if not self.n:
                return {"type": "numeric", "min": None, "max": None, "mean": None, "count": 0}
            return {
                "type": "numeric",
                "min": self.lo,
                "max": self.hi,
                "mean": self.total / self.n,
                "count": self.n,
            }
        if self.kind == "set":
            return {"type": "set", "all_values": sorted(self.values)}
        if self.counts is None:
            return {"type": "categorical", "cardinality": len(self.distinct or ())}
        ordered = dict(sorted(self.counts.items(), key=lambda kv: (-kv[1], kv[0])))
        return {"type": "categorical", "cardinality": len(ordered), "value_counts": ordered}
