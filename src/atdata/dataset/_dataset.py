"""``Dataset[T]``: typed streaming over tar shards, with batching, shuffling, lenses and indexing.

Examples:
    >>> import os, tempfile, numpy as np, atdata
    >>> @atdata.packable
    ... class Img:
    ...     pixels: atdata.NDArray
    ...     label: str
    >>> d = tempfile.mkdtemp()
    >>> samples = [Img(pixels=np.full((2, 2), i, dtype="u1"), label=str(i % 2)) for i in range(6)]
    >>> ds = atdata.write_samples(samples, os.path.join(d, "img-%02d.tar"), maxcount=4, key="index")
    >>> len(ds), ds.list_shards() == sorted(ds.list_shards())
    (6, True)
    >>> batch = next(iter(ds.ordered(batch_size=4)))
    >>> batch.pixels.shape, batch.label
    ((4, 2, 2), ['0', '1', '0', '1'])
    >>> [s.label for s in ds.filter(lambda s: s.label == "1")]
    ['1', '1', '1']
    >>> ds["00000004"].pixels[0, 0], ds[-1].__key__
    (np.uint8(4), '00000005')
"""

from __future__ import annotations

import itertools
import logging
import os
import random
from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import Any, TypeVar

import msgpack

from atdata._errors import AtdataError, ConfigError, DecodeError, ShardError, in_sample
from atdata._shards.sources import DataSource, URLSource
from atdata._shards.tar import iter_tar
from atdata._wire.sample import DictSample, set_key
from atdata.dataset._access import RandomAccessMixin
from atdata.dataset._export import ExportMixin

__all__ = ["Dataset"]

T = TypeVar("T")
log = logging.getLogger("atdata")
_unpackb = msgpack.unpackb


class _DatasetAlias:
    """``Dataset[T]``: calling it builds a dataset whose samples decode as ``T``."""

    def __init__(self, origin: type, arg: Any) -> None:
        self.__origin__ = origin
        self.__args__ = (arg,)

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        arg = self.__args__[0]
        if not isinstance(arg, TypeVar):
            kwargs.setdefault("sample_type", arg)
        return self.__origin__(*args, **kwargs)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.__origin__, name)

    def __mro_entries__(self, bases: tuple) -> tuple:
        return (self.__origin__,)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, _DatasetAlias) and (other.__origin__, other.__args__) == (
            self.__origin__,
            self.__args__,
        )

    def __hash__(self) -> int:
        return hash((self.__origin__, self.__args__))

    def __repr__(self) -> str:
        a = self.__args__[0]
        return f"{self.__origin__.__name__}[{getattr(a, '__name__', repr(a))}]"


class _Shared:
    """Caches shared by a dataset and the datasets derived from it."""

    def __init__(self) -> None:
        self.counts: dict[str, int] = {}
        self.members: dict[str, dict[str, tuple[int, int]]] = {}
        self.key_lists: dict[str, list[str]] = {}
        self.skipped: list[dict[str, str]] = []
        self.indexes: dict[str, Any] = {}  # shard -> _members.ShardIndex
        self.cum: tuple[list[str], list[int]] | None = None  # shards, cumulative counts
        self.fds: Any = None  # _members.FdCache, opened on first ranged read
        self.keymap: dict[str, tuple[str, int]] | None = None  # for get(key)

    def __getstate__(self) -> dict[str, Any]:  # DataLoader workers (spawn): open their own files
        return {**self.__dict__, "fds": None}


class Dataset(RandomAccessMixin[T], ExportMixin[T]):
    """A typed dataset over WebDataset tar shards.

    Args:
        source: Shard path(s) or URL(s) (brace notation, globs, ``::``-joined patterns, a
            directory) or a :class:`~atdata.DataSource`.
        sample_type: The ``@packable`` type samples decode to (default :class:`DictSample`).
            ``Dataset[T](url)`` sets it.
        on_error: ``"raise"`` (default) or ``"skip"``: continue past corrupt shards and samples,
            recording each in :meth:`list_skipped`.
        shard_infos: Known :class:`~atdata.ShardInfo` records (sizes, checksums, counts).
        copy_arrays: ``True`` (default): decoded arrays are writable and own their memory.
        num_samples: The total sample count when a catalogue already records it (e.g. an ATProto
            entry's ``size.samples``); ``len(ds)`` then needs no shard access.
            ``False``: arrays are read-only zero-copy views of the payload (faster; copy one
            with ``arr.copy()`` before mutating it).
    """

    def __class_getitem__(cls, item: Any) -> Any:
        return _DatasetAlias(cls, item)

    def __init__(
        self,
        source: str | os.PathLike[str] | Sequence[str] | DataSource,
        sample_type: type[T] | None = None,
        *,
        on_error: str = "raise",
        shard_infos: Iterable[Any] | None = None,
        copy_arrays: bool = True,
        num_samples: int | None = None,
    ) -> None:
        if on_error not in ("raise", "skip"):
            raise ConfigError(f"on_error must be 'raise' or 'skip', got {on_error!r}")
        if hasattr(source, "list_shards") and hasattr(source, "open_shard"):
            self.source: Any = source
        else:
            self.source = URLSource(source)  # type: ignore[arg-type]
        self.sample_type: type = sample_type if sample_type is not None else DictSample
        if self.sample_type is not DictSample and not hasattr(self.sample_type, "_from_wire"):
            raise ConfigError(
                f"sample_type {self.sample_type!r} is not a @packable type or DictSample"
            )
        self.on_error = on_error
        self._decode_type: type = self.sample_type  # payloads decode as this; views come from _ops
        self.copy_arrays = copy_arrays
        self._ops: tuple[tuple[str, Any], ...] = ()
        self._selection: list[int] | None = None
        self._shared = _Shared()
        self._known_total = num_samples
        self._infos = {i.path: i for i in (shard_infos or ())}
        for p, i in self._infos.items():
            self._shared.counts[p] = i.num_samples

    # -- derivation ---------------------------------------------------------------------------
    def _derive(self, **changes: Any) -> Dataset:
        new = object.__new__(type(self))
        new.__dict__.update(self.__dict__)
        new.__dict__.update(changes)
        return new

    def filter(self, predicate: Callable[[T], bool]) -> Dataset[T]:
        """A dataset of the samples for which ``predicate(sample)`` is true (kept under batching,
        shuffling and ``as_type``)."""
        return self._derive(_ops=(*self._ops, ("filter", predicate)))

    def map(self, fn: Callable[[T], Any], sample_type: type | None = None) -> Dataset:
        """A dataset of ``fn(sample)``; pass ``sample_type`` when ``fn`` changes the type."""
        return self._derive(
            _ops=(*self._ops, ("map", fn)), sample_type=sample_type or self.sample_type
        )

    def as_type(self, view: type, *, network: Any = None) -> Dataset:
        """View this dataset as another sample type through a lens (direct or composed).

        Raises:
            LensNotFoundError: When no lens chain exists.
        """
        if view is self.sample_type:
            return self
        if self.sample_type is DictSample and not self._ops and hasattr(view, "atdata_fields"):
            return self._derive(
                sample_type=view, _decode_type=view
            )  # decode straight into the view
        from atdata.lens._lens import LensNetwork

        lz = (network or LensNetwork.default()).find(self.sample_type, view)
        return self._derive(_ops=(*self._ops, ("lens", lz)), sample_type=view)

    # -- shards -------------------------------------------------------------------------------
    @property
    def shards(self) -> Iterator[str]:
        """Shard identifiers (lazy)."""
        return iter(self.source.list_shards())

    def list_shards(self) -> list[str]:
        """Shard identifiers, in order."""
        return list(self.source.list_shards())

    @property
    def url(self) -> str:
        """The shard spec this dataset reads (for display)."""
        spec = getattr(self.source, "spec", None)
        return spec if isinstance(spec, str) else ",".join(self.list_shards())

    @property
    def shard_infos(self) -> Iterator[Any]:
        """Recorded :class:`~atdata.ShardInfo` of shards (lazy; only those known)."""
        return iter(self._infos.values())

    def list_shard_infos(self) -> list[Any]:
        """Recorded :class:`~atdata.ShardInfo` of the shards (known after writing)."""
        return list(self._infos.values())

    @property
    def skipped(self) -> Iterator[dict[str, str]]:
        """What ``on_error="skip"`` skipped so far (lazy)."""
        return iter(self._shared.skipped)

    def list_skipped(self) -> list[dict[str, str]]:
        """What ``on_error="skip"`` skipped so far: dicts with shard, key and error."""
        return list(self._shared.skipped)

    # -- raw reading --------------------------------------------------------------------------
    def _skip(self, shard: str, key: str | None, err: Exception) -> None:
        self._shared.skipped.append({"shard": shard, "key": key or "", "error": str(err)})
        log.warning("skipped %s%s: %s", shard, f" sample {key}" if key else "", err)

    def _bad(self, shard: str, key: str | None, err: Exception) -> None:
        """Record ``err`` and return (``on_error="skip"``) or raise it (``"raise"``)."""
        if self.on_error == "skip":
            self._skip(shard, key, err)
            return
        raise err from None

    def _raw_stream(self, shards: Iterable[str], dec: Any = None) -> Iterator[Any]:
        """``(shard, key, raw map)`` per sample; with ``dec`` (a generated decoder) the samples."""
        src = self.source
        for shard in shards:
            try:
                f = src.open_shard(shard)
            except AtdataError as exc:
                self._bad(shard, None, exc)
                continue
            where = f" in shard {shard}"
            try:
                for name, _off, data in iter_tar(f.read, where):
                    dot = name.find(".", name.rfind("/") + 1)
                    if dot < 0 or name[dot + 1 :] != "msgpack":
                        continue
                    key = name[:dot]
                    try:
                        raw = _unpackb(data)
                    except Exception as exc:
                        msg = f"payload is not valid msgpack ({exc}){where}, sample {key!r}"
                        self._bad(shard, key, DecodeError(msg))
                        continue
                    if type(raw) is not dict:
                        msg = f"payload is not a msgpack map{where}, sample {key!r}"
                        self._bad(shard, key, DecodeError(msg))
                        continue
                    if dec is None:
                        yield shard, key, raw
                        continue
                    try:
                        obj = dec(raw, "", key)
                    except AtdataError as exc:
                        self._bad(shard, key, in_sample(exc, shard, key))
                        continue
                    yield obj
            except ShardError as exc:
                self._bad(shard, None, exc)
                continue
            finally:
                f.close()

    def _decoded(self, raws: Iterable[tuple[str, str, dict]]) -> Iterator[Any]:
        if hasattr(self._decode_type, "atdata_fields"):
            from atdata._wire.decode import decoder_for

            dec = decoder_for(self._decode_type, self.copy_arrays)
            for shard, key, raw in raws:
                try:
                    obj = dec(raw, "", key)
                except AtdataError as exc:
                    self._bad(shard, key, in_sample(exc, shard, key))
                    continue
                yield obj
            return
        fw = self._decode_type._from_wire
        for shard, key, raw in raws:
            try:
                obj = fw(raw)
            except AtdataError as exc:
                self._bad(shard, key, in_sample(exc, shard, key))
                continue
            set_key(obj, key)
            yield obj

    def _with_ops(self, it: Iterator[Any]) -> Iterator[Any]:
        for op, fn in self._ops:
            if op == "filter":
                it = filter(fn, it)
            elif op == "map":
                it = map(fn, it)
            else:
                it = _lens_map(fn, it)
        return it

    def _raws(self, shards: Sequence[str] | None = None) -> Iterator[tuple[str, str, dict]]:
        if self._selection is not None:
            return self._raw_selection(self._selection)
        return self._raw_stream(self.list_shards() if shards is None else shards)

    # -- iteration ----------------------------------------------------------------------------
    def __iter__(self) -> Iterator[T]:
        return self.ordered()

    def ordered(self, batch_size: int | None = None, *, drop_last: bool = False) -> Iterator[Any]:
        """Iterate samples in shard order, or :class:`~atdata.SampleBatch` es of ``batch_size``."""
        if (
            batch_size is None
            and self._selection is None
            and hasattr(self._decode_type, "atdata_fields")
        ):
            from atdata._wire.decode import decoder_for

            dec = decoder_for(self._decode_type, self.copy_arrays)
            return self._with_ops(self._raw_stream(self.list_shards(), dec))
        return self._emit(self._raws(), batch_size, drop_last)

    def shuffled(
        self,
        batch_size: int | None = None,
        *,
        buffer: int = 10_000,
        seed: int | None = None,
        drop_last: bool = False,
    ) -> Iterator[Any]:
        """Iterate in shuffled order.

        Local shards are read in a uniformly random permutation of all samples (through the
        member index, one ranged read per sample: perfect shuffle quality, memory independent of
        ``buffer``). Other sources shuffle the shard order, then samples through a buffer of
        ``buffer`` samples. The same ``seed`` gives the same order on every run.
        """
        if buffer < 1:
            raise ConfigError(f"buffer must be >= 1, got {buffer}")
        rng = random.Random(seed)
        if self._selection is not None:
            sel = list(self._selection)
            rng.shuffle(sel)
            raws: Iterator[Any] = self._raw_selection(sel)
        elif self.on_error == "raise" and self._local():
            order = list(range(self._base_len()))
            rng.shuffle(order)
            raws = self._raw_selection(order)
        else:
            shards = self.list_shards()
            rng.shuffle(shards)
            raws = _shuffle_buffer(self._raw_stream(shards), buffer, rng)
        return self._emit(raws, batch_size, drop_last)

    def _emit(self, raws: Iterator[Any], batch_size: int | None, drop_last: bool) -> Iterator[Any]:
        if batch_size is None:
            return self._with_ops(self._decoded(raws))
        if batch_size < 1:
            raise ConfigError(f"batch_size must be >= 1, got {batch_size}")
        return self._batches(raws, batch_size, drop_last)

    def _batches(self, raws: Iterator[Any], batch_size: int, drop_last: bool) -> Iterator[Any]:
        from atdata.dataset._batch import SampleBatch

        st = self.sample_type
        if not self._ops and hasattr(st, "atdata_fields") and self.on_error == "raise":
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
        samples = self._with_ops(self._decoded(raws))
        while True:
            chunk = list(itertools.islice(samples, batch_size))
            if not chunk or (drop_last and len(chunk) < batch_size):
                return
            yield SampleBatch(chunk, sample_type=st)

    def __repr__(self) -> str:
        tn = getattr(self.sample_type, "__name__", "?")
        return f"Dataset[{tn}]({self.url!r})"


def _lens_map(lz: Any, it: Iterator[Any]) -> Iterator[Any]:
    get = lz.get
    for s in it:
        v = get(s)
        k = getattr(s, "__key__", None)
        if k is not None:
            set_key(v, k)
        yield v


def _shuffle_buffer(it: Iterator[Any], size: int, rng: random.Random) -> Iterator[Any]:
    buf: list[Any] = []
    rand = rng.randrange
    for item in it:
        if len(buf) < size:
            buf.append(item)
            continue
        j = rand(size)
        out = buf[j]
        buf[j] = item
        yield out
    rng.shuffle(buf)
    yield from buf
