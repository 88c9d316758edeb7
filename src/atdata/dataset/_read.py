"""Reading a :class:`~atdata.Dataset`'s samples (as functions of it): decoding raw maps, applying
its filters/maps/lenses, batching, shuffling, positions and lengths.

Each function takes the dataset and uses only what :class:`~atdata.Dataset` declares; the
dataset's methods (``ds.ordered()``, ``ds.shuffled()``, ``ds[i]``, ``len(ds)`` ...) call them.

Examples:
    >>> import os, tempfile, atdata
    >>> d = tempfile.mkdtemp()
    >>> ds = atdata.write_samples([{"x": i} for i in range(5)], os.path.join(d, "a.tar"), key="index")
    >>> [s.x for s in emit(ds, iter(list(ds._raws())[1:3]), None, False)]
    [1, 2]
    >>> positions(ds, [-1, 0]), exact_len(ds.subset([0, 1]))
    ([4, 0], 2)
"""

from __future__ import annotations

import itertools
import operator
import random
from collections.abc import Iterable, Iterator, Sequence
from typing import TYPE_CHECKING, Any

from atdata._errors import (
    ArgumentTypeError,
    AtdataError,
    ConfigError,
    LengthUnknownError,
    SampleIndexError,
    SampleKeyError,
    count_arg,
    in_sample,
)
from atdata._wire.sample import DictSample, set_key
from atdata.dataset._stream import lens_map, shuffle_buffer

if TYPE_CHECKING:
    from atdata.dataset._dataset import Dataset
    from atdata.lens._lens import LensNetwork
    from atdata.manifest._locations import SampleLocation

__all__ = [
    "as_type",
    "count_arg",
    "decoded",
    "emit",
    "exact_len",
    "getitem",
    "guarded_len",
    "locate",
    "locate_pos",
    "positions",
    "raws",
    "read_one",
    "shuffled",
    "shuffled_raws",
    "with_ops",
]


# -- decoding and the dataset's operations -----------------------------------------------------
def decoded(ds: Dataset[Any], raws: Iterable[tuple[str, str, dict]]) -> Iterator[Any]:
    """``ds``'s decoded samples from ``(shard, key, raw map)`` triples (bad ones go to
    ``ds._bad``: raised, or recorded and skipped)."""
    if hasattr(ds._decode_type, "atdata_fields"):
        from atdata._wire.decode import decoder_for

        dec = decoder_for(ds._decode_type, ds.copy_arrays)
        for shard, key, raw in raws:
            try:
                obj = dec(raw, "", key)
            except AtdataError as exc:
                ds._bad(shard, key, in_sample(exc, shard, key))
                continue
            yield obj
        return
    fw = ds._decode_type._from_wire
    for shard, key, raw in raws:
        try:
            obj = fw(raw)
        except AtdataError as exc:
            ds._bad(shard, key, in_sample(exc, shard, key))
            continue
        set_key(obj, key)
        yield obj


def with_ops(ops: tuple[tuple[str, Any], ...], it: Iterator[Any]) -> Iterator[Any]:
    """``it`` through ``ops`` (``("filter" | "map" | "lens", fn)``), in order."""
    for op, fn in ops:
        if op == "filter":
            it = filter(fn, it)
        elif op == "map":
            it = map(fn, it)
        else:
            it = lens_map(fn, it)
    return it


def as_type(ds: Dataset[Any], view: type, network: LensNetwork | None) -> Dataset[Any]:
    """``ds.as_type(view)``: decoded straight into ``view`` when possible, else through a lens."""
    if view is ds.sample_type:
        return ds
    if ds.sample_type is DictSample and not ds._ops and hasattr(view, "atdata_fields"):
        return ds._derive(sample_type=view, _decode_type=view)  # decode straight into the view
    from atdata.lens._lens import LensNetwork

    lz = (network or LensNetwork.default()).find(ds.sample_type, view)
    return ds._derive(_ops=(*ds._ops, ("lens", lz)), sample_type=view)


def raws(ds: Dataset[Any], shards: Sequence[str] | None) -> Iterator[tuple[str, str, dict]]:
    """Raw triples of ``ds``'s selection, or of ``shards`` (default: all) in order."""
    if ds._selection is not None:
        return ds._shared.raw_selection(ds._selection)
    return ds._raw_stream(ds.list_shards() if shards is None else shards)


def getitem(ds: Dataset[Any], item: int | str | slice) -> Any:
    """``ds[key]``, ``ds[position]`` or ``ds[start:stop:step]`` (a dataset of a selection)."""
    if isinstance(item, str):
        return ds.get(item)
    if isinstance(item, slice):
        if item.step == 0:
            raise ConfigError(f"ds[{_slice_text(item)}]: a slice step cannot be zero")
        try:
            return ds.subset(range(*item.indices(exact_len(ds))))
        except TypeError as exc:
            if isinstance(exc, AtdataError):
                raise
            raise ArgumentTypeError(
                f"ds[{_slice_text(item)}]: slice bounds must be integers or None"
            ) from None
    try:
        i = operator.index(item)
    except TypeError:
        hint = (
            "; for several positions use ds.select([...]) (a list) or ds.subset([...]) (a dataset)"
            if _iterable(item)
            else ""
        )
        raise ArgumentTypeError(
            f"ds[...] takes a position (int), a sample key (str) or a slice, got "
            f"{item!r:.60} ({type(item).__name__}){hint}"
        ) from None
    if ds._selection is not None:
        i = ds._selection[_in_range(i, len(ds._selection), "selection")]
    shard, key, pos = ds._shared.locate_pos(i)
    return read_one(ds, shard, key, pos)


def _slice_text(sl: slice) -> str:
    """``sl`` as written in brackets (``"1:5"``, ``"::0"``)."""
    parts = ["" if p is None else repr(p) for p in (sl.start, sl.stop, sl.step)]
    return ":".join(parts if parts[2] else parts[:2])


def _iterable(x: Any) -> bool:
    return isinstance(x, Iterable) and not isinstance(x, (str, bytes))


def locate_pos(ds: Dataset[Any], key: str) -> tuple[str, int]:
    """``(shard, member position)`` of the first shard of ``ds`` that stores ``key``.

    Raises:
        SampleKeyError: When no shard holds the key.
    """
    hit = ds._shared.locate_key(key)
    if hit is None:
        n = len(ds.list_shards())
        raise SampleKeyError(f"no sample with key {key!r} in {n} shard(s) of {ds.url}")
    return hit


def locate(ds: Dataset[Any], key: str) -> SampleLocation:
    """Where ``key`` is stored: shard, payload offset and size, from the shard's member index.

    Raises:
        SampleKeyError: When no shard holds the key.
    """
    from atdata.manifest._locations import SampleLocation

    shard, pos = locate_pos(ds, key)
    idx = ds._shared.shard_index(shard)
    return SampleLocation(shard, key, idx.offsets[pos], idx.sizes[pos])


def read_one(ds: Dataset[Any], shard: str, key: str, pos: int | None = None) -> Any:
    """The sample ``key`` of ``shard`` (at member position ``pos`` when known), read by one
    ranged read and passed through ``ds``'s operations.

    Raises:
        SampleKeyError: When a filter of ``ds`` excludes it.
    """
    read = ds._shared.read_member
    if not ds._ops and ds.on_error == "raise" and hasattr(ds._decode_type, "atdata_fields"):
        from atdata._wire.decode import decoder_for

        raw = read(shard, key, pos)
        try:
            return decoder_for(ds._decode_type, ds.copy_arrays)(raw, "", key)
        except AtdataError as exc:
            raise in_sample(exc, shard, key) from None
    raws = iter([(shard, key, read(shard, key, pos))])
    if not ds._ops:
        for obj in decoded(ds, raws):
            return obj
        out = []
    else:
        out = list(with_ops(ds._ops, decoded(ds, raws)))
    if not out:
        raise SampleKeyError(
            f"sample {key!r} in shard {shard} is excluded by this dataset's filter"
        )
    return out[0]


# -- iteration ---------------------------------------------------------------------------------
def emit(
    ds: Dataset[Any], raws: Iterator[Any], batch_size: int | None, drop_last: bool
) -> Iterator[Any]:
    """Samples (``batch_size=None``) or :class:`~atdata.SampleBatch` es from raw triples."""
    if batch_size is None:
        return with_ops(ds._ops, decoded(ds, raws))
    batch_size = count_arg("batch_size", batch_size, 1)
    return _batches(ds, raws, batch_size, drop_last)


def _batches(
    ds: Dataset[Any], raws: Iterator[Any], batch_size: int, drop_last: bool
) -> Iterator[Any]:
    from atdata.dataset._batch import SampleBatch

    st = ds.sample_type
    if not ds._ops and hasattr(st, "atdata_fields") and ds.on_error == "raise":
        while True:
            chunk = list(itertools.islice(raws, batch_size))
            if not chunk or (drop_last and len(chunk) < batch_size):
                return
            try:
                yield SampleBatch._from_raw(st, [c[2] for c in chunk], [c[1] for c in chunk])
            except AtdataError as exc:
                raise type(exc)(
                    f"{exc} (batch starting at shard {chunk[0][0]}, sample {chunk[0][1]!r})"
                ) from None
    samples = with_ops(ds._ops, decoded(ds, raws))
    while True:
        chunk = list(itertools.islice(samples, batch_size))
        if not chunk or (drop_last and len(chunk) < batch_size):
            return
        bad = next((x for x in chunk if not hasattr(x, "_to_wire")), None)
        if bad is not None:
            raise ConfigError(
                f"batch_size needs samples, but this dataset's map/lens gives "
                f"{type(bad).__name__} values (e.g. {bad!r:.60}); return a @packable sample "
                "or a DictSample from the map function, or iterate without batch_size and "
                "group the values yourself"
            )
        yield SampleBatch(chunk, sample_type=type(chunk[0]) if ds._ops else st)


def shuffled(
    ds: Dataset[Any],
    buffer_shards: int,
    buffer_samples: int,
    batch_size: int | None,
    seed: int | None,
    drop_last: bool,
    buffer: int | None,
) -> Iterator[Any]:
    """``ds.shuffled(...)`` (see :meth:`~atdata.Dataset.shuffled`)."""
    if buffer_shards < 1:
        raise ConfigError(f"buffer_shards must be >= 1, got {buffer_shards}")
    size = buffer if buffer is not None else buffer_samples
    return emit(ds, shuffled_raws(ds, size, seed), batch_size, drop_last)


def shuffled_raws(ds: Dataset[Any], buffer: int, seed: int | None) -> Iterator[Any]:
    """Raw triples of ``ds`` in a shuffled order (see :meth:`~atdata.Dataset.shuffled`)."""
    if buffer < 1:
        raise ConfigError(f"buffer must be >= 1, got {buffer}")
    rng = random.Random(seed)
    if ds._selection is not None:
        sel = list(ds._selection)
        rng.shuffle(sel)
        return ds._shared.raw_selection(sel)
    if ds.on_error == "raise" and ds._shared.local():
        order = list(range(ds._shared.base_len()))
        rng.shuffle(order)
        return ds._shared.raw_selection(order)
    shards = ds.list_shards()
    rng.shuffle(shards)
    return shuffle_buffer(ds._raw_stream(shards), buffer, rng)


# -- positions and lengths ---------------------------------------------------------------------
def positions(ds: Dataset[Any], indices: Iterable[int]) -> list[int]:
    """Overall positions of ``indices`` (relative to ``ds``'s selection; negative from the end).

    ``indices`` holds integers (Python or numpy), or is a boolean mask with one entry per sample
    of ``ds`` (a list of bools or a numpy/torch bool array), as in numpy.

    Raises:
        SampleIndexError: (an ``IndexError``) For a negative index beyond the start, an index
            outside the selection or past the end (of remote shards not yet counted: when it
            is read), or a mask of the wrong length.
        ArgumentTypeError: (a ``TypeError``) For a position that is not an integer (a float,
            ``None``, a string), booleans mixed with integers, or a single integer.
    """
    idx_in = _as_ints(ds, indices)
    sel = ds._selection
    if sel is not None:
        return [sel[_in_range(i, len(sel), "selection")] for i in idx_in]
    n = None
    idx = []
    for i in idx_in:
        if i < 0:
            n = n if n is not None else ds._shared.base_len()
            i = _in_range(i, n, "dataset")
        idx.append(i)
    if idx and n is None and _counted_cheaply(ds):
        n = ds._shared.base_len()
    if n is not None and idx and max(idx) >= n:
        _in_range(next(i for i in idx if i >= n), n, "dataset")
    return idx


def _counted_cheaply(ds: Dataset[Any]) -> bool:
    """Whether ``ds``'s length is known without reading remote shards (local files, or counts
    recorded for every shard), so positions can be checked when selected, not when read."""
    t = ds._shared
    return t.local() or all(s in t.counts for s in ds.list_shards())


def _in_range(i: int, n: int, what: str) -> int:
    """``i`` as a position in ``0..n-1`` (negative: from the end), else ``SampleIndexError``."""
    j = i + n if i < 0 else i
    if not 0 <= j < n:
        raise SampleIndexError(f"sample index {i} out of range for a {what} of {n} samples")
    return j


def _is_bool(v: Any) -> bool:
    return isinstance(v, bool) or type(v).__name__ in ("bool", "bool_")  # numpy's bool scalars


def _as_ints(ds: Dataset[Any], indices: Any) -> list[int]:
    """``indices`` (integers, or a boolean mask over ``ds``) as a list of Python ints."""
    if isinstance(indices, range):
        return list(indices)
    if not _iterable(indices):
        raise ArgumentTypeError(
            f"select() takes a sequence of sample positions or a boolean mask, got "
            f"{indices!r:.60} ({type(indices).__name__}); for one sample use ds[i]"
        )
    if getattr(indices, "dtype", None) is not None and not isinstance(indices, list):
        import numpy as np  # numpy and torch arrays: their elements as Python values

        arr = np.asarray(indices)
        if arr.ndim != 1:
            raise ArgumentTypeError(
                f"select() takes a 1-D sequence of positions, got an array of shape "
                f"{arr.shape}; flatten it first"
            )
        items = arr.tolist()
    else:
        items = list(indices)
    out: list[int] = []
    bools = 0
    for k, v in enumerate(items):
        if type(v) is int:
            out.append(v)
            continue
        if _is_bool(v):
            bools += 1
            continue
        try:
            out.append(operator.index(v))
        except TypeError:
            raise ArgumentTypeError(
                f"sample positions must be integers, got {v!r:.40} ({type(v).__name__}) at "
                f"entry {k}; convert them first (e.g. [int(i) for i in ...]), or pass a "
                "boolean mask"
            ) from None
    if not bools:
        return out
    if out:
        raise ArgumentTypeError(
            f"select() got {bools} booleans mixed with {len(out)} integers; pass either "
            "integer positions or a boolean mask with one entry per sample"
        )
    n = len(ds._selection) if ds._selection is not None else ds._shared.base_len()
    if len(items) != n:
        what = "selection" if ds._selection is not None else "dataset"
        raise SampleIndexError(
            f"a boolean mask of {len(items)} entries for a {what} of {n} samples; "
            "a mask needs one entry per sample"
        )
    return [k for k, v in enumerate(items) if v]


def _filtered(ds: Dataset[Any]) -> bool:
    return any(op == "filter" for op, _ in ds._ops)


def exact_len(ds: Dataset[Any]) -> int:
    """``len`` without the guard against streaming shards (for explicit requests).

    Raises:
        LengthUnknownError: (a ``TypeError``) For a filtered dataset (its length is unknown
            until read).
    """
    if _filtered(ds):
        raise LengthUnknownError(
            "the length of a filtered dataset is unknown until it is read; "
            "use sum(1 for _ in ds) or ds.count() to count it"
        )
    if ds._selection is not None:
        return len(ds._selection)
    if ds._known_total is not None:
        return ds._known_total
    return ds._shared.base_len()


def guarded_len(ds: Dataset[Any]) -> int:
    """``len(ds)``: refuses (:class:`~atdata.LengthUnknownError`, a ``TypeError``) when it would
    download remote shards to count them."""
    # list(ds), tuple(ds), ... ask len() for a size hint before iterating; a TypeError makes
    # them fall back, so an uncounted remote shard is never downloaded just to count it.
    if ds._selection is None and ds._known_total is None and not _filtered(ds):
        costly = [s for s in ds.list_shards() if ds._shared.streams_to_count(s)]
        if costly:
            raise LengthUnknownError(
                f"the length of this dataset is unknown without downloading {len(costly)} "
                f"remote shard(s) (first: {costly[0]}); call ds.count() to count them "
                "once (len(ds) works afterwards)"
            )
    return exact_len(ds)


def count(ds: Dataset[Any]) -> int:
    """The exact count (a filtered dataset is read through)."""
    if _filtered(ds):
        return sum(1 for _ in ds)
    return exact_len(ds)


def ordered(ds: Dataset[Any], batch_size: int | None, drop_last: bool) -> Iterator[Any]:
    """``ds``'s samples (or batches) in shard order (see :meth:`~atdata.Dataset.ordered`)."""
    if batch_size is None and ds._selection is None and hasattr(ds._decode_type, "atdata_fields"):
        from atdata._wire.decode import decoder_for

        dec = decoder_for(ds._decode_type, ds.copy_arrays)
        return with_ops(ds._ops, ds._raw_stream(ds.list_shards(), dec))
    return emit(ds, ds._raws(), batch_size, drop_last)
