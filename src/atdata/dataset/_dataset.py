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
import os
import warnings
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from typing import TYPE_CHECKING, Any, Generic, TypeVar, overload

from atdata._shards.sources import DataSource
from atdata._shards.writer import ShardInfo
from atdata._wire.sample import DictSample
from atdata.dataset import _arrow, _arrow_hf, _export, _read, _runs
from atdata.dataset._access import ShardTable
from atdata.dataset._alias import DatasetAlias, dataset_args
from atdata.dataset._meta import check_content_metadata, wrap_raw, wrap_raw_batch
from atdata.dataset._stream import raw_stream

if TYPE_CHECKING:
    from atdata.dataset._batch import SampleBatch
    from atdata.dataset._torch import TorchDataset
    from atdata.lens._lens import LensNetwork
    from atdata.manifest._expr import FieldSet
    from atdata.manifest._query import QueryExecutor, QueryResult, SampleLocation

__all__ = ["Dataset"]

if TYPE_CHECKING:  # type checkers: Dataset("x.tar") is a Dataset[DictSample] (PEP 696 default)
    import typing_extensions

    T = typing_extensions.TypeVar("T", default=DictSample)
else:
    T = TypeVar("T")
V = TypeVar("V")


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
        num_samples: The total sample count when a catalogue already records it (e.g. an ATProto
            entry's ``size.samples``); ``len(ds)`` then needs no shard access.
        url: The shards, as a keyword (same as ``source``).
        metadata_url: A msgpack map of dataset metadata (path or URL), read by :attr:`metadata`.
            As the second positional argument a string is taken as ``metadata_url``.

    Attributes:
        source: The :class:`~atdata.DataSource` the shards are read through.
        sample_type: The type samples come out as.
        on_error: ``"raise"`` or ``"skip"``.
        copy_arrays: Whether decoded arrays own their memory.
    """

    source: DataSource
    sample_type: type[Any]
    on_error: str
    copy_arrays: bool
    _decode_type: type[Any]  # payloads decode as this; views (lenses) come from _ops
    _ops: tuple[tuple[str, Any], ...]  # ("filter" | "map" | "lens", fn), applied in order
    _selection: list[int] | None  # overall positions (select / slicing), read by random access
    _shared: ShardTable  # counts, indexes, positions, skipped: shared with derived datasets
    _known_total: int | None  # a catalogue's sample count (len without shard access)
    _infos: dict[str, ShardInfo]  # shard -> recorded size/sha256/count
    _query_executor: QueryExecutor | None  # built by the first query (see _export.executor)
    metadata_url: str | None
    _metadata: dict[str, Any] | None  # fetched from metadata_url on first use
    _content_metadata: Any  # set by write_samples(content_metadata=) or by the caller

    def __class_getitem__(cls, item: Any) -> Any:
        return DatasetAlias(cls, item)

    def __init__(
        self,
        source: str | os.PathLike[str] | Sequence[str] | DataSource | None = None,
        sample_type: type[T] | str | None = None,
        *,
        url: str | os.PathLike[str] | Sequence[str] | None = None,
        metadata_url: str | None = None,
        on_error: str = "raise",
        shard_infos: Iterable[ShardInfo] | None = None,
        copy_arrays: bool = True,
        num_samples: int | None = None,
    ) -> None:
        self.source, self.sample_type, self.metadata_url = dataset_args(
            source, sample_type, url, metadata_url, on_error
        )
        self._metadata = None
        self._content_metadata = None
        self.on_error = on_error
        self._decode_type = self.sample_type
        self.copy_arrays = copy_arrays
        self._ops = ()
        self._selection = None
        self._shared = ShardTable(self.source, on_error)
        self._known_total = num_samples
        self._infos = {i.path: i for i in (shard_infos or ())}
        for p, i in self._infos.items():
            self._shared.counts[p] = i.num_samples
        self._query_executor = None

    # -- derivation ---------------------------------------------------------------------------
    def _derive(self, **changes: Any) -> Dataset[Any]:
        new = object.__new__(type(self))
        new.__dict__.update(self.__dict__)
        new.__dict__.update(changes)
        return new

    def filter(self, predicate: Callable[[T], bool]) -> Dataset[T]:
        """A dataset of the samples for which ``predicate(sample)`` is true (kept under batching,
        shuffling and ``as_type``)."""
        return self._derive(_ops=(*self._ops, ("filter", predicate)))

    # map and process_shards (see _runs.py: the work runs in _process.py)
    map = _runs.map
    process_shards = _runs.process_shards

    def as_type(self, other: type[V], *, network: LensNetwork | None = None) -> Dataset[V]:
        """View this dataset as another sample type through a lens (direct or composed).

        Raises:
            LensNotFoundError: When no lens chain exists.
        """
        return _read.as_type(self, other, network)

    # -- shards -------------------------------------------------------------------------------
    @property
    def shards(self) -> Iterator[str]:
        """Shard identifiers (lazy)."""
        return iter(self.source.list_shards())

    def list_shards(self) -> list[str]:
        """Shard identifiers, in order."""
        return list(self.source.list_shards())

    @property
    def shard_list(self) -> list[str]:
        """Deprecated alias of :meth:`list_shards` (warns)."""
        warnings.warn(
            "Dataset.shard_list is deprecated, use list_shards()", DeprecationWarning, stacklevel=2
        )
        return self.list_shards()

    @property
    def url(self) -> str:
        """The shards as one spec ``Dataset()`` accepts again (brace notation where possible)."""
        return _export.url(self)

    @property
    def metadata(self) -> dict[str, Any] | None:
        """The msgpack map at ``metadata_url`` (fetched once), or ``None`` without one.

        Raises:
            StorageError: When it cannot be fetched. DecodeError: When it is not a msgpack map.
        """
        return _export.metadata(self)

    @property
    def content_metadata(self) -> Any:
        """Dataset-level content metadata (a ``@packable`` sample or a dict), or ``None``."""
        return self._content_metadata

    @content_metadata.setter
    def content_metadata(self, value: Any) -> None:
        self._content_metadata = check_content_metadata(value)

    @property
    def batch_type(self) -> Any:
        """``SampleBatch[T]``: the type ``ordered(batch_size=n)`` yields."""
        return _export.batch_type(self)

    @property
    def column_names(self) -> list[str]:
        """Field names of the sample type (empty for :class:`~atdata.DictSample`)."""
        return list(_export.schema(self))

    def wrap(self, sample: Mapping[str, Any]) -> T:
        """This dataset's sample from a raw WebDataset dict (``{"__key__", "msgpack"}``), through
        its lenses and maps. Raises DecodeError (a ``ValueError``) for a bad dict."""
        return wrap_raw(self._decode_type, self._ops, sample)

    def wrap_batch(self, batch: Mapping[str, Any]) -> Any:
        """A ``SampleBatch[T]`` from a raw WebDataset batch (``{"msgpack": [payload, ...]}``)."""
        return wrap_raw_batch(self._decode_type, self._ops, self.sample_type, batch)

    @property
    def shard_infos(self) -> Iterator[ShardInfo]:
        """Recorded :class:`~atdata.ShardInfo` of shards (lazy; only those known)."""
        return iter(self._infos.values())

    def list_shard_infos(self) -> list[ShardInfo]:
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
    def _bad(self, shard: str, key: str | None, err: Exception) -> None:
        """Record ``err`` and return (``on_error="skip"``) or raise it (``"raise"``)."""
        self._shared.bad(shard, key, err)

    def _raw_stream(self, shards: Iterable[str], dec: Any = None) -> Iterator[Any]:
        """``(shard, key, raw map)`` per sample; with ``dec`` (a generated decoder) the samples."""
        return raw_stream(self.source, shards, self._bad, dec)

    def _decoded(self, raws: Iterable[tuple[str, str, dict]]) -> Iterator[Any]:
        return _read.decoded(self, raws)

    def _with_ops(self, it: Iterator[Any]) -> Iterator[Any]:
        return _read.with_ops(self._ops, it)

    def _raws(self, shards: Sequence[str] | None = None) -> Iterator[tuple[str, str, dict]]:
        return _read.raws(self, shards)

    # -- sizes and random access (positions: see _access.ShardTable) ------------------------------
    def select(self, indices: Iterable[int]) -> list[T]:
        """The samples at these positions, as a list in the order asked (repeats repeat).

        Each sample is read by random access (one ranged read, not a pass over the shards).
        ``indices`` holds integers (negative ones count from the end) or is a boolean mask
        with one entry per sample. For a lazy dataset of those positions (to stream, batch,
        filter or feed to ``to_torch``), use :meth:`subset`.

        Raises:
            SampleIndexError: (an ``IndexError``) For a position outside the dataset.
            ArgumentTypeError: (a ``TypeError``) For a position that is not an integer.
            SampleKeyError: When a filter of this dataset excludes a sample asked for.

        Examples:
            >>> import os, tempfile, atdata
            >>> d = tempfile.mkdtemp()
            >>> ds = atdata.write_samples([{"x": i} for i in range(6)], os.path.join(d, "a.tar"))
            >>> [s["x"] for s in ds.select([0, 5, -2])]
            [0, 5, 4]
        """
        sub = self.subset(indices)
        if not any(kind == "filter" for kind, _fn in self._ops):
            return list(sub)
        n = len(sub._selection or ())  # (one read each: a sample the filter excludes raises)
        return [_read.getitem(sub, i) for i in range(n)]

    def subset(self, indices: Iterable[int]) -> Dataset[T]:
        """A lazy dataset of the samples at these positions, in this order (repeats repeat),
        read by random access: iterate, batch, filter, map or ``to_torch`` it like any dataset.

        Takes what :meth:`select` takes; ``ds[a:b:c]`` is ``ds.subset(range(a, b, c))``.

        Examples:
            >>> import os, tempfile, atdata
            >>> d = tempfile.mkdtemp()
            >>> ds = atdata.write_samples([{"x": i} for i in range(6)], os.path.join(d, "a.tar"))
            >>> sub = ds.subset([4, 1, 1])
            >>> len(sub), [s["x"] for s in sub], [s["x"] for s in sub.select([-1])]
            (3, [4, 1, 1], [1])
        """
        return self._derive(_selection=_read.positions(self, indices))

    def __len__(self) -> int:
        return _read.guarded_len(self)

    def count(self) -> int:
        """The exact number of samples, counting however it takes.

        Local shards are counted from their member indexes (a header-only scan, cached); remote
        shards whose counts are not known are streamed once, and their counts remembered, so
        ``len(ds)`` works afterwards. A filtered dataset is read through and its samples counted.

        Examples:
            >>> import os, tempfile, atdata
            >>> d = tempfile.mkdtemp()
            >>> ds = atdata.write_samples([{"x": i} for i in range(4)], os.path.join(d, "a.tar"))
            >>> ds.count(), ds.filter(lambda s: s["x"] % 2 == 0).count()
            (4, 2)
        """
        return _read.count(self)

    def get(self, key: str) -> T:
        """The sample stored under ``key`` (a per-shard member index is built once and reused).

        Raises:
            SampleKeyError: When no shard holds the key.
        """
        shard, pos = _read.locate_pos(self, key)
        return _read.read_one(self, shard, key, pos)

    def locate(self, key: str) -> SampleLocation:
        """Where the sample stored under ``key`` lives (shard, payload offset and size), from
        the shard's member index; nothing is decoded, and ``ds.get_sample(loc)`` reads it.

        Raises:
            SampleKeyError: When no shard holds the key.

        Examples:
            >>> import os, tempfile, atdata
            >>> p = os.path.join(tempfile.mkdtemp(), "s-%06d.tar")
            >>> ds = atdata.write_samples([{"x": i} for i in range(6)], p, maxcount=4, key="index")
            >>> loc = ds.locate("00000005")
            >>> os.path.basename(loc.shard), ds.get_sample(loc).x
            ('s-000001.tar', 5)
        """
        return _read.locate(self, key)

    @overload
    def __getitem__(self, item: int | str) -> T: ...
    @overload
    def __getitem__(self, item: slice) -> Dataset[T]: ...

    def __getitem__(self, item: int | str | slice) -> T | Dataset[T]:
        return _read.getitem(self, item)

    # -- iteration ----------------------------------------------------------------------------
    def __iter__(self) -> Iterator[T]:
        return self.ordered()

    @overload
    def ordered(self, batch_size: None = None, *, drop_last: bool = False) -> Iterator[T]: ...
    @overload
    def ordered(self, batch_size: int, *, drop_last: bool = False) -> Iterator[SampleBatch[T]]: ...

    def ordered(self, batch_size: int | None = None, *, drop_last: bool = False) -> Iterator[Any]:
        """Iterate samples in shard order, or :class:`~atdata.SampleBatch` es of ``batch_size``."""
        return _read.ordered(self, batch_size, drop_last)

    @overload
    def shuffled(
        self,
        buffer_shards: int = 100,
        buffer_samples: int = 10_000,
        batch_size: None = None,
        *,
        seed: int | None = None,
        drop_last: bool = False,
        buffer: int | None = None,
    ) -> Iterator[T]: ...
    @overload
    def shuffled(
        self,
        buffer_shards: int = 100,
        buffer_samples: int = 10_000,
        batch_size: int = ...,
        *,
        seed: int | None = None,
        drop_last: bool = False,
        buffer: int | None = None,
    ) -> Iterator[SampleBatch[T]]: ...

    def shuffled(
        self,
        buffer_shards: int = 100,
        buffer_samples: int = 10_000,
        batch_size: int | None = None,
        *,
        seed: int | None = None,
        drop_last: bool = False,
        buffer: int | None = None,
    ) -> Iterator[Any]:
        """Iterate in shuffled order (samples, or :class:`~atdata.SampleBatch` es of
        ``batch_size``); the documented signature, plus ``seed``, ``drop_last`` and ``buffer``.

        Local shards are read in a uniformly random permutation of all samples (through the
        member index, one ranged read per sample: perfect shuffle quality, memory independent of
        the buffers). Other sources read the shards in a random order (of all of them: at least
        as random as any ``buffer_shards``), then shuffle samples through a buffer of
        ``buffer_samples`` (``buffer`` is our shorter name for it). The same ``seed`` gives the
        same order on every run.
        """
        return _read.shuffled(
            self, buffer_shards, buffer_samples, batch_size, seed, drop_last, buffer
        )

    def _emit(self, raws: Iterator[Any], batch_size: int | None, drop_last: bool) -> Iterator[Any]:
        return _read.emit(self, raws, batch_size, drop_last)

    # -- manifest queries (see manifest/_query.py) and export (see _export.py) -------------------
    def query(self, where: Any = None, *, limit: int | None = None) -> QueryResult:
        """Find samples through the shards' manifests: a lambda over the manifest DataFrame, a
        predicate (``ds.fields`` or ``atdata.manifest.F``) or a SQL ``WHERE`` string.

        Returns:
            A :class:`~atdata.QueryResult`: the list of matching :class:`~atdata.SampleLocation` s
            (``.samples`` reads the samples themselves, ``.stats`` says what was pruned).

        Raises:
            DataNotFoundError: (a ``FileNotFoundError``) When the shards have no manifests (the
                message says how to build them).
        """
        _export.check_plain(self, "query")
        return _export.executor(self).query(where, limit=limit)

    @property
    def fields(self) -> FieldSet:
        """Queryable fields for typed query expressions: ``Q = ds.fields; Q.label == "dog"``."""
        return _export.fields(self)

    def get_sample(self, loc: SampleLocation) -> T:
        """The sample at a :class:`~atdata.SampleLocation`, read by one ranged read."""
        return _export.get_sample(self, loc)

    def to_torch(self, **kwargs: Any) -> TorchDataset:
        """This dataset as a ``torch.utils.data.IterableDataset`` split across DataLoader workers
        and distributed ranks, with ``set_epoch`` and an O(1) mid-epoch ``state_dict`` resume.
        Needs ``atdata[torch]``.

        Keyword arguments (documented on :class:`~atdata.dataset._torch.TorchDataset`):
        ``batch_size``, ``drop_last_batch``, ``shuffle``, ``seed``, ``rank``, ``world_size``,
        ``policy``, ``mode``, ``shuffle_buffer``, ``cache_dir``, ``cache_limit``,
        ``sample_transform``, ``collate_fn``, ``transform``, ``output`` and ``verify``. Iterate
        it in the main process, through ``tds.loader(num_workers=..., ...)``, or through
        ``DataLoader(tds, num_workers=0)``; a plain ``DataLoader`` with worker processes is
        refused (it could not record what was delivered). A streamed shard is checked against
        the sha256 recorded for it (``shard_infos``, index entries, published manifests) as it
        arrives; ``verify=False`` streams without the check.

        Raises:
            ConfigError: When an argument is out of range. (A dataset with fewer samples than
                ranks under ``policy="drop_last"``, or an empty one, gives every rank an empty
                epoch instead: ``len() == 0`` on all ranks.)
            IntegrityError: While iterating, when a streamed shard's bytes differ from its
                recorded size or sha256.

        Examples:
            >>> tds = ds.to_torch(batch_size=64, shuffle=True)  # doctest: +SKIP
            >>> loader = tds.loader(num_workers=4)  # doctest: +SKIP
            >>> unchecked = ds.to_torch(batch_size=64, verify=False)  # doctest: +SKIP
        """
        return _export.to_torch(self, kwargs)

    def head(self, n: int = 5) -> list[T]:
        """The first ``n`` samples (``n`` >= 0)."""
        return list(itertools.islice(self.ordered(), _read.count_arg("n", n, 0)))

    @property
    def schema(self) -> dict[str, str]:
        """Field name -> type, for typed datasets (empty for :class:`DictSample`)."""
        return _export.schema(self)

    def describe(self) -> dict[str, Any]:
        """``sample_type``, ``fields``, ``num_shards``, ``shards`` (the list), ``url``,
        ``metadata``, ``samples``, ``bytes`` and ``schema``, without decoding samples."""
        return _export.describe(self)

    def to_dict(self, limit: int | None = None, *, with_keys: bool = False) -> dict[str, list[Any]]:
        """Columns: field name -> values, for all samples or the first ``limit`` (``with_keys``
        adds ``__key__``)."""
        return _export.to_dict(self, limit, with_keys=with_keys)

    def to_pandas(self, limit: int | None = None, *, with_keys: bool = False) -> Any:
        """A pandas DataFrame, one row per sample (arrays kept as objects). Needs ``atdata[query]``."""
        return _export.to_pandas(self, limit, with_keys)

    # Arrow (see _arrow.py: streaming batches, PyCapsule stream; _arrow_hf.py: Hugging Face)
    to_arrow_reader = _arrow.to_arrow_reader
    to_parquet = _arrow.to_parquet
    to_arrow = _arrow.to_arrow
    to_polars = _arrow.to_polars
    to_hf = _arrow_hf.to_hf
    __arrow_c_stream__ = _arrow.arrow_c_stream

    def verify(self) -> list[dict[str, Any]]:
        """Check every shard: recorded size and sha256 when known, and a full decode.

        Returns:
            One report per shard: ``{"shard", "samples", "ok", "error"}``.
        """
        return _export.verify(self)

    def __repr__(self) -> str:
        tn = getattr(self.sample_type, "__name__", "?")
        return f"Dataset[{tn}]({self.url!r})"
