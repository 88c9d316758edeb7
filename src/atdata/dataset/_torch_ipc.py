"""Moving items from DataLoader workers to the training process cheaply.

A DataLoader worker sends each item through a pipe. A numpy array is pickled into it (copied
twice, and again on the other side); a tensor is moved to a new shared-memory segment first (one
copy, one segment and one file descriptor per tensor). Both cost more than decoding for image
batches. So, in a worker:

- batches are decoded straight into shared memory (:func:`shm_alloc`), one segment per array
  column: sending them copies nothing;
- a tensor that views such a buffer (``torch.from_numpy(batch.image)`` in a transform) is sent as
  the shared tensor itself;
- small tensors (labels, indices) travel inline, as numpy, and become tensors again on arrival
  (a segment and a descriptor each would cost more than the copy);
- a :class:`~atdata.SampleBatch` travels without its raw payloads (its samples are rebuilt from the
  columns if asked for).

:func:`pack` runs in the worker, :func:`unpack` in the training process; what the training loop
receives is what it would have received without workers.

Examples:
    >>> import numpy as np, pytest
    >>> _ = pytest.importorskip("torch")  # the 3.12/3.13 CI runs have no torch
    >>> unpack(pack({"a": [1, 2], "b": np.zeros(3)}, {}))["b"].tolist()
    [0.0, 0.0, 0.0]
"""

from __future__ import annotations

from typing import Any

import numpy as np

__all__ = ["pack", "shm_alloc", "unpack"]

_INLINE = 1 << 16  # tensors below this many bytes travel inline


class _AsTensor:
    """A small tensor sent inline as numpy."""

    __slots__ = ("a",)

    def __init__(self, a: np.ndarray) -> None:
        self.a = a


class _AsArray:
    """A numpy array sent as the shared-memory tensor holding it."""

    __slots__ = ("t",)

    def __init__(self, t: Any) -> None:
        self.t = t


def shm_alloc(registry: dict[int, tuple[np.ndarray, Any]]) -> Any:
    """An ``alloc(shape, dtype) -> ndarray`` placing arrays in shared memory (noted in
    ``registry``: data address -> (array, tensor)); dtypes torch lacks get plain arrays."""
    import torch

    def alloc(shape: tuple[int, ...], dtype: np.dtype) -> np.ndarray:
        try:
            tdt = torch.from_numpy(np.empty(0, dtype=dtype)).dtype
        except TypeError:
            return np.empty(shape, dtype=dtype)
        n = 1
        for d in shape:
            n *= d
        st = torch.UntypedStorage._new_shared(max(n * dtype.itemsize, 1))
        strides = []
        acc = 1
        for d in reversed(shape):
            strides.append(acc)
            acc *= d
        t = torch.empty(0, dtype=tdt).set_(st, 0, shape, tuple(reversed(strides)))
        a = t.numpy()
        registry[a.ctypes.data] = (a, t)
        return a

    return alloc


def pack(item: Any, registry: dict[int, tuple[np.ndarray, Any]]) -> Any:
    """``item`` made cheap to send (see the module notes)."""
    import torch

    from atdata.dataset._batch import SampleBatch

    def walk(x: Any) -> Any:
        tx = type(x)
        if tx is torch.Tensor:
            if x.device.type != "cpu" or x.requires_grad:
                return x
            hit = registry.get(x.data_ptr())
            if hit is not None and not x.is_shared():
                t = hit[1]
                if t.dtype == x.dtype and t.shape == x.shape and t.stride() == x.stride():
                    return t
            if x.nbytes < _INLINE and not x.is_shared():
                return _AsTensor(x.numpy())
            return x
        if tx is np.ndarray:
            hit = registry.get(x.ctypes.data)
            if hit is not None and hit[0] is x:
                return _AsArray(hit[1])
            return x
        if tx is dict:
            return {k: walk(v) for k, v in x.items()}
        if tx is list:
            return [walk(v) for v in x]
        if tx is tuple:
            return tuple(walk(v) for v in x)
        if isinstance(x, SampleBatch):
            return x._for_transport(walk)
        return x

    return walk(item)


def unpack(item: Any) -> Any:
    """The item :func:`pack` was given."""
    from atdata.dataset._batch import SampleBatch

    def walk(x: Any) -> Any:
        tx = type(x)
        if tx is _AsTensor:
            import torch

            return torch.from_numpy(x.a)
        if tx is _AsArray:
            return x.t.numpy()
        if tx is dict:
            return {k: walk(v) for k, v in x.items()}
        if tx is list:
            return [walk(v) for v in x]
        if tx is tuple:
            return tuple(walk(v) for v in x)
        if isinstance(x, SampleBatch):
            return x._for_transport(walk)
        return x

    return walk(item)
