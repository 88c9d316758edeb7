"""Which fields of a sample type go into a manifest, and with which aggregate.

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
    ...     note: Annotated[str, ManifestField("categorical", exclude=True)]
    >>> manifest_fields(Row)
    {'label': 'categorical', 'score': 'numeric', 'tags': 'set', 'code': 'categorical'}
    >>> resolve_manifest_fields(Row)["code"]
    ManifestField(aggregate='categorical', exclude=False)
"""

from __future__ import annotations

import dataclasses
from typing import Any, Literal, get_args

from atdata._errors import ConfigError, SchemaError
from atdata.manifest._aggregates import category_label

__all__ = [
    "KINDS",
    "AggregateKind",
    "ManifestField",
    "category_label",
    "infer_kind",
    "manifest_fields",
    "resolve_manifest_fields",
]

AggregateKind = Literal["categorical", "numeric", "set"]
KINDS: tuple[str, ...] = get_args(AggregateKind)


@dataclasses.dataclass(frozen=True)
class ManifestField:
    """Annotation extra that sets how (or whether) a field appears in manifests.

    Args:
        aggregate: ``"categorical"``, ``"numeric"`` or ``"set"`` (``None``: derived from the type).
        exclude: Leave the field out of manifests.

    Examples:
        >>> ManifestField("numeric")
        ManifestField(aggregate='numeric', exclude=False)
        >>> ManifestField(aggregate="set").kind
        'set'
        >>> ManifestField("text")
        Traceback (most recent call last):
        ...
        atdata._errors.ConfigError: ManifestField aggregate must be one of categorical, numeric, set; got 'text'
    """

    aggregate: AggregateKind | None = None
    exclude: bool = False

    def __post_init__(self) -> None:
        if self.aggregate is not None and self.aggregate not in KINDS:
            raise ConfigError(
                f"ManifestField aggregate must be one of {', '.join(KINDS)}; got {self.aggregate!r}"
            )

    @property
    def kind(self) -> str | None:
        """Alias of :attr:`aggregate`."""
        return self.aggregate


def _kind_of_spec(spec: Any) -> str | None:
    if spec.kind in ("str", "bool"):
        return "categorical"
    if spec.kind in ("int", "float"):
        return "numeric"
    if spec.kind == "list" and spec.item is not None and spec.item.kind == "str":
        return "set"
    return None


def resolve_manifest_fields(sample_type: type) -> dict[str, ManifestField]:
    """The manifest fields of a ``@packable`` type: name -> :class:`ManifestField`, in order.

    Fields without an explicit ``ManifestField`` get the kind their type implies.

    Raises:
        SchemaError: (a ``TypeError``) When ``sample_type`` is not a sample type, or a
            ``ManifestField`` asks for a kind its field's type cannot hold.
    """
    get = getattr(sample_type, "atdata_fields", None)
    if get is None:
        if dataclasses.is_dataclass(sample_type) and isinstance(sample_type, type):
            from atdata._wire.sample import packable

            typed: Any = packable(type(sample_type.__name__, (sample_type,), {}))
            get = typed.atdata_fields
        else:
            raise SchemaError(
                f"{getattr(sample_type, '__name__', sample_type)!r} is not a sample type; "
                "manifest fields come from an @atdata.packable class"
            )
    out: dict[str, ManifestField] = {}
    for spec in get():
        hint = next((m for m in spec.metadata if isinstance(m, ManifestField)), None)
        if hint is not None and hint.exclude:
            continue
        derived = _kind_of_spec(spec)
        kind = hint.aggregate if hint is not None and hint.aggregate is not None else derived
        if kind is None:
            continue
        if hint is not None and hint.aggregate is not None:
            ok = {
                "categorical": spec.kind in ("str", "bool", "int", "float"),
                "numeric": spec.kind in ("int", "float", "bool"),
                "set": spec.kind == "list",
            }[kind]
            if not ok:
                raise SchemaError(
                    f"field {sample_type.__name__}.{spec.name} of type {spec.type_name} cannot be a "
                    f"{kind} manifest field"
                )
            out[spec.name] = hint
        else:
            out[spec.name] = ManifestField(kind)  # type: ignore[arg-type]
    return out


def manifest_fields(sample_type: type) -> dict[str, str]:
    """Queryable fields of a sample type: name -> manifest kind (``{}`` for untyped data).

    Raises:
        SchemaError: When a ``ManifestField`` asks for a kind the field's type cannot hold.
    """
    if getattr(sample_type, "atdata_fields", None) is None:
        return {}
    return {k: str(f.aggregate) for k, f in resolve_manifest_fields(sample_type).items()}


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
