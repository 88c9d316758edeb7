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

import bisect
import itertools
import logging
import os
import random
from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import Any, Generic, TypeVar

import msgpack

from ._errors import AtdataError, ConfigError, DecodeError, SampleKeyError, ShardError
from ._sample import DictSample
from ._sources import DataSource, URLSource, is_remote
from ._tar import iter_tar

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


def _set_key(obj: Any, key: str) -> None:
    try:
        obj.__dict__["__key__"] = key
    except AttributeError:
        try:
            object.__setattr__(obj, "__key__", key)
        except (AttributeError, TypeError):
            pass


class Dataset(Generic[T]):
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
    ) -> None:
        if on_error not in ("raise", "skip"):
            raise ConfigError(f"on_error must be 'raise' or 'skip', got {on_error!r}")
        if hasattr(source, "list_shards") and hasattr(source, "open_shard"):
            self.source: Any = source
        else:
            self.source = URLSource(source)  # type: ignore[arg-type]
        self.sample_type: type = sample_type if sample_type is not None else DictSample
        if self.sample_type is not DictSample and not hasattr(self.sample_type, "_from_wire"):
            raise ConfigError(f"sample_type {self.sample_type!r} is not a @packable type or DictSample")
        self.on_error = on_error
        self._decode_type: type = self.sample_type  # payloads decode as this; views come from _ops
        self.copy_arrays = copy_arrays
        self._ops: tuple[tuple[str, Any], ...] = ()
        self._selection: list[int] | None = None
        self._shared = _Shared()
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
        return self._derive(_ops=(*self._ops, ("map", fn)), sample_type=sample_type or self.sample_type)

    def as_type(self, view: type, *, network: Any = None) -> Dataset:
        """View this dataset as another sample type through a lens (direct or composed).

        Raises:
            LensNotFoundError: When no lens chain exists.
        """
        if view is self.sample_type:
            return self
        if self.sample_type is DictSample and not self._ops and hasattr(view, "atdata_fields"):
            return self._derive(sample_type=view, _decode_type=view)  # decode straight into the view
        from ._lens import LensNetwork

        lz = (network or LensNetwork.default()).find(self.sample_type, view)
        return self._derive(_ops=(*self._ops, ("lens", lz)), sample_type=view)

    def select(self, indices: Iterable[int]) -> Dataset[T]:
        """A dataset of the samples at these positions (in this order), read by random access."""
        n = None
        idx = []
        for i in indices:
            i = int(i)
            if i < 0:
                n = n if n is not None else self._base_len()
                i += n
            idx.append(i)
        if self._selection is not None:
            sel = self._selection
            idx = [sel[i] for i in idx]
        return self._derive(_selection=idx)

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

    def _raw_stream(self, shards: Iterable[str], dec: Any = None) -> Iterator[Any]:
        """``(shard, key, raw map)`` per sample; with ``dec`` (a generated decoder) the samples."""
        skip = self.on_error == "skip"
        src = self.source
        for shard in shards:
            try:
                f = src.open_shard(shard)
            except AtdataError as exc:
                if skip:
                    self._skip(shard, None, exc)
                    continue
                raise
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
                        err = DecodeError(f"payload is not valid msgpack ({exc}){where}, sample {key!r}")
                        if skip:
                            self._skip(shard, key, err)
                            continue
                        raise err from None
                    if type(raw) is not dict:
                        err = DecodeError(f"payload is not a msgpack map{where}, sample {key!r}")
                        if skip:
                            self._skip(shard, key, err)
                            continue
                        raise err
                    if dec is None:
                        yield shard, key, raw
                        continue
                    try:
                        obj = dec(raw, "", key)
                    except AtdataError as exc:
                        err = type(exc)(f"{exc} (shard {shard}, sample {key!r})")
                        if skip:
                            self._skip(shard, key, err)
                            continue
                        raise err from None
                    yield obj
            except ShardError as exc:
                if skip:
                    self._skip(shard, None, exc)
                    continue
                raise
            finally:
                f.close()

    def _decoded(self, raws: Iterable[tuple[str, str, dict]]) -> Iterator[Any]:
        skip = self.on_error == "skip"
        if hasattr(self._decode_type, "atdata_fields"):
            from ._decode import decoder_for

            dec = decoder_for(self._decode_type, self.copy_arrays)
            for shard, key, raw in raws:
                try:
                    obj = dec(raw, "", key)
                except AtdataError as exc:
                    err = type(exc)(f"{exc} (shard {shard}, sample {key!r})")
                    if skip:
                        self._skip(shard, key, err)
                        continue
                    raise err from None
                yield obj
            return
        fw = self._decode_type._from_wire
        for shard, key, raw in raws:
            try:
                obj = fw(raw)
            except AtdataError as exc:
                err = type(exc)(f"{exc} (shard {shard}, sample {key!r})")
                if skip:
                    self._skip(shard, key, err)
                    continue
                raise err from None
            _set_key(obj, key)
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
        if batch_size is None and self._selection is None and hasattr(self._decode_type, "atdata_fields"):
            from ._decode import decoder_for

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
        from ._batch import SampleBatch

        st = self.sample_type
        if not self._ops and hasattr(st, "atdata_fields") and self.on_error == "raise":
            while True:
                chunk = list(itertools.islice(raws, batch_size))
                if not chunk or (drop_last and len(chunk) < batch_size):
                    return
                try:
                    yield SampleBatch._from_raw(st, [c[2] for c in chunk], [c[1] for c in chunk])
                except AtdataError as exc:
                    raise type(exc)(f"{exc} (batch starting at shard {chunk[0][0]}, sample {chunk[0][1]!r})") from None
        samples = self._with_ops(self._decoded(raws))
        while True:
            chunk = list(itertools.islice(samples, batch_size))
            if not chunk or (drop_last and len(chunk) < batch_size):
                return
            yield SampleBatch(chunk, sample_type=st)

    # -- sizes and random access --------------------------------------------------------------
    def _shard_index(self, shard: str) -> Any:
        """The member index of ``shard`` (persisted beside local shards; see ``_members``)."""
        idx = self._shared.indexes.get(shard)
        if idx is None:
            from ._members import load_index

            idx = load_index(shard, self.source)
            self._shared.indexes[shard] = idx
            self._shared.counts[shard] = len(idx)
            self._shared.key_lists[shard] = idx.keys
        return idx

    def _members(self, shard: str) -> dict[str, tuple[int, int]]:
        cache = self._shared.members
        m = cache.get(shard)
        if m is None:
            m = cache[shard] = self._shard_index(shard).as_dict()
        return m

    def _shard_count(self, shard: str) -> int:
        n = self._shared.counts.get(shard)
        if n is None:
            from ._manifest_read import manifest_count  # a fresh manifest saves the shard scan

            n = manifest_count(shard)
            if n is None:
                try:
                    n = len(self._members(shard))
                except AtdataError:
                    if self.on_error != "skip":
                        raise
                    return 0  # unreadable: counts as empty; iterating reports it in list_skipped()
            else:
                self._shared.counts[shard] = n
        return n

    def _base_len(self) -> int:
        return sum(self._shard_count(s) for s in self.list_shards())

    def __len__(self) -> int:
        if any(op == "filter" for op, _ in self._ops):
            raise TypeError(
                "the length of a filtered dataset is unknown until it is read; "
                "use sum(1 for _ in ds) to count it"
            )
        if self._selection is not None:
            return len(self._selection)
        return self._base_len()

    def _read_member(self, shard: str, key: str, pos: int | None = None) -> dict:
        idx = self._shard_index(shard)
        if pos is None:
            pos = idx.positions[key]
        off, size = idx.offsets[pos], idx.sizes[pos]
        where = f" in shard {shard}, sample {key!r}"
        if not is_remote(shard) and type(self.source) is URLSource:
            if self._shared.fds is None:
                from ._members import FdCache

                self._shared.fds = FdCache()
            data = self._shared.fds.pread(shard, off, size)
        elif hasattr(self.source, "read_range"):
            data = self.source.read_range(shard, off, size)
        else:
            f = self.source.open_shard(shard)
            try:
                data = next(bytes(d) for n, _o, d in iter_tar(f.read, where) if n.startswith(key + "."))
            finally:
                f.close()
        try:
            raw = _unpackb(data)
        except Exception as exc:
            raise DecodeError(f"payload is not valid msgpack ({exc}){where}") from None
        if type(raw) is not dict:
            raise DecodeError(f"payload is not a msgpack map{where}")
        return raw

    def _local(self) -> bool:
        """Whether every shard is a local file read through pread (random access is cheap)."""
        return type(self.source) is URLSource and not any(is_remote(s) for s in self.list_shards())

    def _cumulative(self) -> tuple[list[str], list[int]]:
        c = self._shared.cum
        if c is None:
            shards = self.list_shards()
            c = self._shared.cum = (shards, list(itertools.accumulate(self._shard_count(s) for s in shards)))
        return c

    def _locate_pos(self, i: int) -> tuple[str, str, int]:
        shards, cum = self._cumulative()
        total = cum[-1] if cum else 0
        if i < 0:
            i += total
        if not 0 <= i < total:
            raise IndexError(f"sample index {i} out of range for a dataset of {total} samples")
        si = bisect.bisect_right(cum, i)
        shard = shards[si]
        local = i - (cum[si - 1] if si else 0)
        return shard, self._shard_index(shard).keys[local], local

    def _locate(self, i: int) -> tuple[str, str]:
        shard, key, _ = self._locate_pos(i)
        return shard, key

    def _raw_selection(self, indices: Iterable[int]) -> Iterator[tuple[str, str, dict]]:
        for i in indices:
            shard, key, pos = self._locate_pos(i)
            yield shard, key, self._read_member(shard, key, pos)

    def get(self, key: str) -> T:
        """The sample stored under ``key`` (a per-shard member index is built once and reused).

        Raises:
            SampleKeyError: When no shard holds the key.
        """
        keymap = self._shared.keymap
        if keymap is None:  # key -> (shard, position), first shard wins; built on the first get
            keymap = {}
            for shard in self.list_shards():
                for key_, pos_ in self._shard_index(shard).positions.items():
                    keymap.setdefault(key_, (shard, pos_))
            self._shared.keymap = keymap
        hit = keymap.get(key)
        if hit is not None:
            return self._one(hit[0], key, hit[1])
        shards = self.list_shards()
        raise SampleKeyError(f"no sample with key {key!r} in {len(shards)} shard(s) of {self.url}")

    def _one(self, shard: str, key: str, pos: int | None = None) -> Any:
        if not self._ops and self.on_error == "raise" and hasattr(self._decode_type, "atdata_fields"):
            from ._decode import decoder_for

            raw = self._read_member(shard, key, pos)
            try:
                return decoder_for(self._decode_type, self.copy_arrays)(raw, "", key)
            except AtdataError as exc:
                raise type(exc)(f"{exc} (shard {shard}, sample {key!r})") from None
        raws = iter([(shard, key, self._read_member(shard, key, pos))])
        if not self._ops:
            for obj in self._decoded(raws):
                return obj
            out = []
        else:
            out = list(self._with_ops(self._decoded(raws)))
        if not out:
            raise SampleKeyError(f"sample {key!r} in shard {shard} is excluded by this dataset's filter")
        return out[0]

    def __getitem__(self, item: int | str | slice) -> Any:
        if isinstance(item, str):
            return self.get(item)
        if isinstance(item, slice):
            return self.select(range(*item.indices(len(self))))
        if self._selection is not None:
            item = self._selection[item]
        shard, key, pos = self._locate_pos(int(item))
        return self._one(shard, key, pos)

    # -- manifest queries (see _query.py) -----------------------------------------------------
    def query(self, where: Any = None, *, limit: int | None = None) -> Any:
        """Find samples through the shards' manifests: a lambda over the manifest DataFrame, a
        field expression (``ds.fields``) or a SQL ``WHERE`` string. Returns a
        :class:`~atdata._query.QueryResult` of :class:`~atdata.SampleLocation` s.

        Raises:
            ConfigError: When the shards have no manifests (the message says how to build them).
        """
        from ._query import QueryExecutor

        return QueryExecutor.for_dataset(self).query(where, limit=limit)

    @property
    def fields(self) -> Any:
        """Queryable fields for typed query expressions: ``Q = ds.fields; Q.label == "dog"``."""
        from ._query_expr import FieldSet, query_fields

        if hasattr(self.sample_type, "atdata_fields"):
            return query_fields(self.sample_type)
        from ._query import QueryExecutor

        return FieldSet(QueryExecutor.for_dataset(self).fields(), "this dataset")

    def get_sample(self, loc: Any) -> T:
        """The sample at a :class:`~atdata.SampleLocation`, read by one ranged read."""
        from ._query import fetch_sample

        return fetch_sample(self.source, self.sample_type, loc)

    def to_torch(self, **kwargs: Any) -> Any:
        """This dataset as a ``torch.utils.data.IterableDataset`` split across DataLoader workers
        and distributed ranks, with ``set_epoch`` and mid-epoch ``state_dict`` resume.

        Keyword arguments: ``batch_size``, ``shuffle``, ``seed``, ``rank``/``world_size`` (default
        from ``torch.distributed``), ``policy`` (``"drop_last"`` or ``"pad"``), ``drop_last_batch``,
        ``transform``. See :class:`atdata._torch.TorchDataset`. Needs ``atdata[torch]``.

        Raises:
            ConfigError: When the configuration cannot give every rank the same number of samples.
        """
        from ._extras import require

        require("torch", "torch", "Dataset.to_torch")
        from ._torch import TorchDataset

        return TorchDataset(self, **kwargs)

    def head(self, n: int = 5) -> list[T]:
        """The first ``n`` samples."""
        return list(itertools.islice(self.ordered(), n))

    # -- description and export ---------------------------------------------------------------
    @property
    def schema(self) -> dict[str, str]:
        """Field name -> type, for typed datasets (empty for :class:`DictSample`)."""
        if hasattr(self.sample_type, "atdata_fields"):
            return {s.name: s.type_name for s in self.sample_type.atdata_fields()}
        return {}

    def describe(self) -> dict[str, Any]:
        """Shards, sample count, bytes and schema, without decoding samples."""
        shards = self.list_shards()
        size = 0
        for s in shards:
            info = self._infos.get(s)
            sz = info.size if info is not None else getattr(self.source, "shard_size", lambda _s: None)(s)
            size += sz or 0
        return {
            "sample_type": getattr(self.sample_type, "__name__", str(self.sample_type)),
            "shards": len(shards),
            "samples": self._base_len() if self._selection is None else len(self._selection),
            "bytes": size,
            "schema": self.schema,
        }

    def to_dict(self) -> dict[str, list[Any]]:
        """Columns: field name -> list of values, plus ``__key__``."""
        cols: dict[str, list[Any]] = {"__key__": []}
        for s in self.ordered():
            row = s.to_dict()
            cols["__key__"].append(getattr(s, "__key__", None))
            for k, v in row.items():
                cols.setdefault(k, []).append(v)
        return cols

    def to_pandas(self) -> Any:
        """A pandas DataFrame, one row per sample (arrays kept as objects). Needs ``atdata[query]``."""
        from ._extras import require

        pd = require("pandas", "query", "Dataset.to_pandas")
        return pd.DataFrame(self.to_dict())

    def to_parquet(self, path: str | os.PathLike[str]) -> str:
        """Write the dataset as one parquet file (arrays as nested lists). Needs ``atdata[query]``."""
        from ._extras import require

        pa = require("pyarrow", "query", "Dataset.to_parquet")
        pq = require("pyarrow.parquet", "query", "Dataset.to_parquet")
        cols = self.to_dict()
        for k, vals in cols.items():
            cols[k] = [v.tolist() if type(v).__name__ == "ndarray" else v for v in vals]
        path = os.fspath(path)
        pq.write_table(pa.table(cols), path)
        return path

    def verify(self) -> list[dict[str, Any]]:
        """Check every shard: recorded size and sha256 when known, and a full decode.

        Returns:
            One report per shard: ``{"shard", "samples", "ok", "error"}``.
        """
        import hashlib

        reports = []
        for shard in self.list_shards():
            rep: dict[str, Any] = {"shard": shard, "samples": 0, "ok": True, "error": ""}
            try:
                info = self._infos.get(shard)
                if info is not None and not is_remote(shard):
                    h = hashlib.sha256()
                    with open(shard, "rb") as f:
                        for block in iter(lambda f=f: f.read(1 << 20), b""):
                            h.update(block)
                    if os.path.getsize(shard) != info.size or h.hexdigest() != info.sha256:
                        raise AtdataError(f"checksum mismatch for shard {shard}")
                for _ in self._decoded(self._raw_stream([shard])):
                    rep["samples"] += 1
            except AtdataError as exc:
                rep["ok"], rep["error"] = False, str(exc)
            reports.append(rep)
        return reports

    def __repr__(self) -> str:
        tn = getattr(self.sample_type, "__name__", "?")
        return f"Dataset[{tn}]({self.url!r})"


def _lens_map(lz: Any, it: Iterator[Any]) -> Iterator[Any]:
    get = lz.get
    for s in it:
        v = get(s)
        k = getattr(s, "__key__", None)
        if k is not None:
            _set_key(v, k)
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
