"""``output="torch"`` of :class:`~atdata.dataset._torch.TorchDataset`: samples and batches as
dicts of tensors, and :func:`convert`, the collate function of ``TorchDataset.loader()`` (what
the DataLoader's ``default_convert`` makes of an item, faster for lists of plain values).

Examples:
    >>> import pytest
    >>> _ = pytest.importorskip("torch")  # the 3.12/3.13 CI runs have no torch
    >>> convert({"a": (1, 2), "b": ["x", "y"]})
    {'a': [1, 2], 'b': ['x', 'y']}
"""

from __future__ import annotations

from typing import Any

import numpy as np

__all__ = ["SKIPPED", "batch_to_torch", "convert", "sample_to_torch"]

_PLAIN_TYPES = frozenset((str, int, float, bool, type(None), bytes))


def convert(item: Any) -> Any:
    """What the DataLoader's ``default_convert`` makes of an item (numpy arrays to tensors,
    tuples to lists), without walking lists of plain values one element at a time."""
    from torch.utils.data import default_convert

    t = type(item)
    if t is dict:
        return {k: convert(v) for k, v in item.items()}
    if t is list and set(map(type, item)) <= _PLAIN_TYPES:
        return item
    if t is tuple or t is list:
        return [convert(v) for v in item]
    if t.__module__ == "torch":
        return item
    return default_convert(item)


def _tensor_col(col: Any, registry: dict[int, Any]) -> Any:
    import torch

    if isinstance(col, np.ndarray):
        hit = registry.get(col.ctypes.data)
        if hit is not None and hit[0] is col:  # decoded into shared memory: that tensor
            return hit[1]
        return torch.from_numpy(col if col.flags.writeable else col.copy())
    if col and type(col[0]) in (int, float, bool) and len(set(map(type, col))) == 1:
        t0 = type(col[0])  # through numpy: torch.tensor(list) costs ~10 us per column more
        dt = _NP_DTYPES[t0] if t0 is not float else _float_dtype(torch)
        try:
            return torch.from_numpy(np.array(col, dtype=dt))
        except OverflowError:  # an int beyond int64: torch's own error
            return torch.tensor(col)
    return col


_NP_DTYPES: dict[type, Any] = {int: np.int64, bool: np.bool_}


def _float_dtype(torch: Any) -> Any:
    """The numpy dtype of ``torch.tensor`` of Python floats (torch's default dtype)."""
    return np.float64 if torch.get_default_dtype() == torch.float64 else np.float32


def batch_to_torch(batch: Any, registry: dict[int, Any]) -> dict[str, Any]:
    """A :class:`~atdata.SampleBatch` as ``{field: tensor or list, "__key__": keys}``."""
    out = {k: _tensor_col(v, registry) for k, v in batch.to_dict().items()}
    out["__key__"] = list(batch.keys)
    return out


def sample_to_torch(sample: Any) -> dict[str, Any]:
    """A sample as ``{field: tensor or value, "__key__": key}`` (what ``default_collate`` takes)."""
    import torch

    d = sample.to_dict() if hasattr(sample, "to_dict") else dict(sample)
    out = {}
    for k, v in d.items():
        if isinstance(v, np.ndarray):
            v = torch.from_numpy(v if v.flags.writeable else v.copy())
        out[k] = v
    out["__key__"] = getattr(sample, "__key__", None)
    return out


class _Skipped:
    """The type of :data:`SKIPPED`: pickled by name, so it is the same object after crossing
    from a DataLoader worker."""

    def __reduce__(self) -> str:
        return "SKIPPED"


#: An item whose every sample ``on_error="skip"`` left out: its position counts as delivered,
#: but nothing reaches the training loop.
SKIPPED = _Skipped()
