"""Hypothesis strategies for ``@packable`` sample types.

Examples:
    >>> import atdata
    >>> from atdata.testing import strategy_for
    >>> @atdata.packable
    ... class Tag:
    ...     name: str
    ...     weight: float | None
    >>> from hypothesis import given, settings
    >>> @settings(max_examples=20, database=None)
    ... @given(strategy_for(Tag))
    ... def round_trips(tag):
    ...     assert Tag.from_bytes(tag.packed) == tag
    >>> round_trips()
"""

from __future__ import annotations

import importlib
from types import ModuleType
from typing import Any

from atdata._errors import ConfigError, MissingExtraError

__all__ = ["hypothesis_module", "strategy_for"]

# dtypes drawn for an NDArray field that names none (all round-trip through the wire format)
_DEFAULT_DTYPES = ("<f4", "<f8", "<i8", "<i4", "|u1", "|b1")
_INT64 = (-(2**63), 2**63 - 1)


def hypothesis_module(name: str = "hypothesis") -> ModuleType:
    """Import a hypothesis module or raise :class:`~atdata.MissingExtraError` saying how to get it."""
    try:
        return importlib.import_module(name)
    except ImportError as exc:
        raise MissingExtraError(
            "hypothesis is needed for atdata.testing's property-based helpers but is not installed; "
            "install it with: pip install hypothesis"
        ) from exc


def _array_strategy(st: Any, dtype: Any, max_side: int) -> Any:
    hnp = hypothesis_module("hypothesis.extra.numpy")
    import numpy as np

    def arrays_of(dt: Any) -> Any:
        dt = np.dtype(dt)
        kw: dict[str, Any] = {}
        if dt.kind in "fc":
            kw = {"allow_nan": False, "allow_infinity": False}
        return hnp.arrays(
            dt,
            hnp.array_shapes(min_dims=0, max_dims=3, min_side=0, max_side=max_side),
            elements=hnp.from_dtype(dt, **kw),
        )

    if dtype is not None:
        return arrays_of(dtype)
    return st.sampled_from(_DEFAULT_DTYPES).flatmap(arrays_of)


def _any_scalar(st: Any) -> Any:
    return st.one_of(
        st.none(),
        st.booleans(),
        st.integers(*_INT64),
        st.floats(allow_nan=False),
        st.text(max_size=10),
    )


def _field_strategy(spec: Any, st: Any, max_size: int, depth: int) -> Any:
    kind = spec.kind
    if kind == "str":
        base = st.text(max_size=max_size * 4)
    elif kind == "int":
        base = st.integers(*_INT64)
    elif kind == "float":
        base = st.floats(allow_nan=False)
    elif kind == "bool":
        base = st.booleans()
    elif kind == "bytes":
        base = st.binary(max_size=max_size * 4)
    elif kind == "ndarray":
        base = _array_strategy(st, spec.dtype, max_side=max_size)
    elif kind == "list":
        item = _field_strategy(spec.item, st, max_size, depth) if spec.item else _any_scalar(st)
        base = st.lists(item, max_size=max_size)
    elif kind == "dict":
        item = _field_strategy(spec.item, st, max_size, depth) if spec.item else _any_scalar(st)
        base = st.dictionaries(st.text(max_size=8), item, max_size=max_size)
    elif kind == "sample":
        if depth > 8:
            raise ConfigError(f"{spec.sample_type.__name__} nests too deeply for strategy_for")
        base = _sample_strategy(spec.sample_type, st, max_size, depth + 1)
    else:  # "any"
        base = _any_scalar(st)
    return st.one_of(st.none(), base) if spec.optional else base


def _sample_strategy(sample_type: type[Any], st: Any, max_size: int, depth: int) -> Any:
    fields = {
        spec.name: _field_strategy(spec, st, max_size, depth)
        for spec in sample_type.atdata_fields()
    }
    return st.builds(sample_type, **fields)


def strategy_for(sample_type: type, *, max_size: int = 4) -> Any:
    """A hypothesis strategy drawing instances of a ``@packable`` type.

    Every field kind is covered: scalars, ``bytes``, ``NDArray`` (through
    ``hypothesis.extra.numpy``; the annotated dtype, or one of several when none is named),
    ``list``, ``dict``, nested ``@packable`` types and ``X | None``. Floats are finite, so drawn
    samples compare equal to their own round trip.

    Args:
        sample_type: A ``@packable`` class.
        max_size: Largest length of strings/lists/dicts (x4 for text and bytes) and array sides.

    Raises:
        ConfigError: When ``sample_type`` is not a ``@packable`` type.
        MissingExtraError: When hypothesis is not installed.
    """
    if not getattr(sample_type, "__atdata_sample__", False) or not hasattr(
        sample_type, "atdata_fields"
    ):
        raise ConfigError(f"strategy_for needs a @packable type, got {sample_type!r}")
    st = hypothesis_module("hypothesis.strategies")
    return _sample_strategy(sample_type, st, max_size, 0)
