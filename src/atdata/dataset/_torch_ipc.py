"""Moving items from DataLoader workers to the training process cheaply.

A DataLoader worker sends each item through a pipe. A numpy array is pickled into it (copied
twice, and again on the other side); a tensor is moved to a new shared-memory segment first (one
copy, one segment and one file descriptor per tensor). Both cost more than decoding for image
batches. So, in a worker:

- batches are decoded straight into shared memory (:func:`shm_alloc`), the array columns of a
  batch as views into one segment (an arena): sending them copies nothing and passes one file
  descriptor per batch (torch's resource sharer opens one socket connection per descriptor);
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

import io
import pickle
from typing import Any

import numpy as np

__all__ = ["check_item", "check_workers", "pack", "pickle_problem", "shm_alloc", "unpack"]

_INLINE = 1 << 16  # tensors below this many bytes travel inline
_ALIGN = 64  # arena offsets (a multiple of every itemsize)


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


class _ShapePickler(pickle.Pickler):
    """Pickles everything but array and tensor data (left out: they always pickle, and sharing a
    tensor's storage for a trial would hand out a descriptor nobody collects)."""

    def persistent_id(self, obj: Any) -> Any:
        tx = type(obj)
        if tx is np.ndarray or (
            tx.__module__.startswith("torch")
            and tx.__name__ in ("Tensor", "UntypedStorage", "TypedStorage")
        ):
            return id(obj)
        return None


def pickle_problem(obj: Any) -> str | None:
    """Why ``obj`` cannot be pickled (a DataLoader worker pickles what it sends and, under the
    ``spawn`` and ``forkserver`` start methods, the dataset it receives), or ``None``.

    Examples:
        >>> pickle_problem({"f": len}) is None
        True
        >>> "<lambda>" in pickle_problem(lambda x: x)
        True
    """
    try:
        _ShapePickler(io.BytesIO(), pickle.HIGHEST_PROTOCOL).dump(obj)
    except Exception as exc:  # any failure to pickle is the answer
        return f"{type(exc).__name__}: {exc}"
    return None


_AT_MODULE_LEVEL = (
    "define it at module level (not inside a function, not a lambda: workers import it by "
    "name), or use num_workers=0"
)


def _start_method(ctx: Any) -> str:
    import multiprocessing

    if ctx is None:
        return multiprocessing.get_start_method()
    return ctx if isinstance(ctx, str) else ctx.get_start_method()


def check_workers(tds: Any, kwargs: dict[str, Any]) -> None:
    """Before DataLoader workers start: raise :class:`~atdata.WorkerPickleError` for what they
    could not receive (``spawn``/``forkserver``: the :class:`TorchDataset` ``tds`` and the loader's
    functions) or send back (``output="sample"`` items carry the sample type); left alone, a
    worker's item that cannot be pickled is dropped and the training loop waits forever."""
    from atdata._errors import WorkerPickleError

    method = _start_method(kwargs.get("multiprocessing_context"))
    ds = tds._reader.dataset
    st = ds.sample_type
    sends = [] if tds.transform or tds.sample_transform or tds.output != "sample" else [st]
    fns = {"the sample type": st, "transform": tds.transform}
    fns |= {"sample_transform": tds.sample_transform, "collate_fn": tds.collate_fn}
    fns |= {f"the {op} function": fn for op, fn in ds._ops}
    fns |= {f"loader {k}": kwargs.get(k) for k in ("worker_init_fn", "collate_fn")}
    fix = _AT_MODULE_LEVEL
    if method != "fork":
        found = [(k, v, pickle_problem(v)) for k, v in fns.items() if v is not None]
        found = [f for f in found if f[2]]
        if not found and (why := pickle_problem(tds)):
            found = [("the dataset", ds, why)]
        fix += ", or multiprocessing_context='fork' (where available: workers then inherit it)"
    else:
        found = [("the sample type", v, why) for v in sends if (why := pickle_problem(v))]
        fix = fix.replace("(not", "(workers send its instances; not")
    if found:
        what, obj, why = found[0]
        name = getattr(obj, "__qualname__", type(obj).__qualname__)
        raise WorkerPickleError(
            f"DataLoader workers ({method} start method) cannot pickle {what} {name!r} ({why}); "
            f"{fix}"
        )


def check_item(item: Any) -> None:
    """In a worker: raise :class:`~atdata.WorkerPickleError` if ``item`` cannot be sent (the
    DataLoader would drop it and hang)."""
    from atdata._errors import WorkerPickleError

    why = pickle_problem(item)
    if why is not None:
        raise WorkerPickleError(
            f"a DataLoader worker cannot send the item a transform made ({type(item).__name__}: "
            f"{why}); return tensors, arrays and plain values from transforms, with their types "
            "defined at module level, or use num_workers=0"
        )


def shm_alloc(registry: dict[int, tuple[np.ndarray, Any]], hint: list[int] | None = None) -> Any:
    """An ``alloc(shape, dtype) -> ndarray`` placing arrays in shared memory (noted in
    ``registry``: data address -> (array, tensor)); dtypes torch lacks get plain arrays.

    The arrays of one batch are views into one arena (a shared storage) sized by ``hint[0]``,
    the most bytes a batch has taken so far (updated here): one descriptor crosses to the
    training process per batch, not one per column (sending two views of one storage sends
    the storage once). An array that does not fit gets an arena of its own.
    """
    import torch

    hint = hint if hint is not None else [0]
    arena: list[Any] = [None, 0, 0]  # storage, bytes used, bytes this batch took

    def alloc(shape: tuple[int, ...], dtype: np.dtype) -> np.ndarray:
        try:
            tdt = torch.from_numpy(np.empty(0, dtype=dtype)).dtype
        except TypeError:
            return np.empty(shape, dtype=dtype)
        n = 1
        for d in shape:
            n *= d
        nbytes = n * dtype.itemsize
        if nbytes == 0:  # no data address of its own: not registered
            return np.empty(shape, dtype=dtype)
        st, off = arena[0], -(-arena[1] // _ALIGN) * _ALIGN
        if st is None or off + nbytes > st.nbytes():
            st, off = torch.UntypedStorage._new_shared(max(nbytes, hint[0] - arena[2])), 0
            arena[0] = st
        arena[1] = off + nbytes
        arena[2] += -(-nbytes // _ALIGN) * _ALIGN
        hint[0] = max(hint[0], arena[2])
        strides = []
        acc = 1
        for d in reversed(shape):
            strides.append(acc)
            acc *= d
        t = torch.empty(0, dtype=tdt).set_(
            st, off // dtype.itemsize, shape, tuple(reversed(strides))
        )
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
