"""Factories for tests: ``make_samples`` (deterministic samples of any ``@packable`` type),
``make_dataset`` (samples written to a shard) and ``mock_index`` (an index in a temp dir).

Examples:
    >>> import atdata, tempfile
    >>> @atdata.packable
    ... class P:
    ...     name: str
    ...     n: int
    >>> [(p.name, p.n) for p in make_samples(P, n=2)]
    [('name_0', 0), ('name_1', 1)]
    >>> len(list(make_dataset(tempfile.mkdtemp(), make_samples(P, n=3)).ordered()))
    3
"""

from __future__ import annotations

import dataclasses
import os
import tempfile
import types
import typing
from collections.abc import Sequence
from typing import Any

__all__ = ["make_dataset", "make_samples", "mock_index"]


def _value(tp: Any, name: str, i: int, rng: Any) -> Any:
    import numpy as np

    origin = typing.get_origin(tp)
    if origin in (typing.Union, types.UnionType):  # Optional[X]: a value of X
        args = [a for a in typing.get_args(tp) if a is not type(None)]
        return _value(args[0], name, i, rng) if args else None
    if tp is bool:
        return i % 2 == 0
    if tp is int:
        return i
    if tp is float:
        return float(rng.random())
    if tp is str:
        return f"{name}_{i}"
    if tp is bytes:
        return rng.bytes(16)
    if tp is list or origin is list:
        (item,) = typing.get_args(tp) or (str,)
        return [_value(item, f"{name}{j}", i + j, rng) for j in range(3)]
    text = str(tp)
    if "ndarray" in text or "NDArray" in text:
        return rng.standard_normal((4, 4)).astype(np.float32)
    return f"{name}_{i}"  # a type without a rule: a string


def make_samples(sample_type: type, n: int = 10, seed: int = 0) -> list[Any]:
    """``n`` deterministic samples of ``sample_type`` (per field: ``str`` -> ``"<field>_<i>"``,
    ``int`` -> ``i``, ``bool`` -> ``i`` even, ``float`` -> seeded random, ``bytes`` -> 16 seeded
    bytes, ``list`` -> 3 items, NDArray -> a seeded 4x4 float32 array).
    """
    import numpy as np

    rng = np.random.default_rng(seed)
    hints = typing.get_type_hints(sample_type)
    out = []
    for i in range(n):
        kwargs = {}
        for f in dataclasses.fields(sample_type):
            if f.name.startswith("_"):
                continue
            kwargs[f.name] = _value(hints.get(f.name, str), f.name, i, rng)
        out.append(sample_type(**kwargs))
    return out


def make_dataset(
    path: str | os.PathLike[str], samples: Sequence[Any], *, sample_type: type | None = None
) -> Any:
    """Write ``samples`` to one shard under ``path``; the :class:`~atdata.Dataset` over it.

    Raises:
        ValueError: When ``samples`` is empty (a ``ConfigError``).
    """
    from atdata._errors import ConfigError
    from atdata.dataset._write import write_samples

    if not samples:
        raise ConfigError("make_dataset needs a non-empty list of samples")
    os.makedirs(path, exist_ok=True)
    fd, shard = tempfile.mkstemp(prefix="data-", suffix=".tar", dir=os.fspath(path))
    os.close(fd)
    ds = write_samples(list(samples), shard)
    if sample_type is not None:
        from atdata.dataset._dataset import Dataset

        ds = Dataset(ds.list_shards(), sample_type=sample_type)
    return ds


def mock_index(path: str | os.PathLike[str] | None = None, **kwargs: Any) -> Any:
    """An :class:`~atdata.Index` on SQLite in ``path`` (default: a new temp directory)."""
    from atdata.index import Index

    base = os.fspath(path) if path is not None else tempfile.mkdtemp(prefix="atdata-index-")
    os.makedirs(base, exist_ok=True)
    return Index(path=os.path.join(base, "index.db"), **kwargs)
