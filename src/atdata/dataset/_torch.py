"""PyTorch integration: :class:`TorchDataset`, an ``IterableDataset`` split across workers and ranks.

Order. Each epoch gives every rank one deterministic list of sample positions, a pure function
of (seed, epoch, rank, world size), never of the number of DataLoader workers (see
:mod:`atdata.dataset._torch_plan`). The list is cut into items (batches of ``batch_size``, or
single samples) and item ``k`` of what is left is made by worker ``k % num_workers``; the
DataLoader hands items over in that round-robin order, so the training loop sees the same items
in the same order whatever the number of workers.

Two ways to read:

- ``mode="random"`` (local shards): one ``pread`` per sample through the per-shard member index;
  the order is a full permutation of the samples.
- ``mode="stream"`` (HTTP, S3, ATProto blobs, any other :class:`~atdata.DataSource`): each shard is
  fetched whole, with one sequential request, into a local shard cache shared by the workers (a
  shard crosses the network once; the cache is capped by ``cache_limit``), indexed while it
  arrives, and read through a memory map; shards come in a seeded order, each rank takes one
  contiguous span of them, shuffled within windows of ``shuffle_buffer`` samples (the first
  windows of an epoch smaller, so the first batch waits for one shard, not a window's worth).
  Iterated without workers (and without a ``cache_dir``), shards are held in memory instead of
  cache files (one copy of the bytes instead of three; a later epoch fetches them again).
  Shard sizes come from shard infos or manifests published beside the shards; a single rank
  streams shards of unknown size without counting them first (``len()`` then counts them when
  asked), several ranks count them up front (they need the total to split it).

``mode="auto"`` (the default) picks ``"random"`` when every shard is a local file, else
``"stream"``.

Resume. :meth:`TorchDataset.state_dict` holds the epoch, the seed and the number of samples this
rank has delivered (a few hundred bytes, whatever the dataset size); the rest of the epoch is
recomputed from them, so a resumed run yields exactly what was not delivered, with any number
of workers. Delivery is recorded when an item reaches the training loop: by iterating the dataset
in the main process (directly or through ``DataLoader(tds, num_workers=0)``) or through
:meth:`TorchDataset.loader`, a DataLoader (any ``num_workers``, ``persistent_workers``,
``prefetch_factor``, ``pin_memory``) that records what it hands over. A plain
``DataLoader(tds, num_workers=N)`` with ``N > 0`` is refused: its workers cannot say what reached
the training loop.

Examples:
    >>> import os, tempfile, atdata
    >>> d = tempfile.mkdtemp()
    >>> ds = atdata.write_samples([{"i": i} for i in range(10)], os.path.join(d, "s.tar"), key="index")
    >>> tds = ds.to_torch(rank=1, world_size=3)  # doctest: +SKIP
    >>> [s["i"] for s in tds]  # doctest: +SKIP
    [1, 4, 7]
"""

from __future__ import annotations

import operator
import os
import warnings
import weakref
from collections.abc import Callable, Iterator
from typing import Any

import numpy as np

from atdata._errors import ArgumentTypeError, ConfigError
from atdata._extras import require
from atdata.dataset._torch_out import SKIPPED, batch_to_torch, convert, sample_to_torch
from atdata.dataset._torch_plan import (
    POLICIES,
    StreamWalk,
    item_count,
    per_rank,
    rank_positions,
    rank_slots,
    shard_order,
)
from atdata.dataset._torch_read import Reader

__all__ = ["TorchDataset", "rank_slots"]

_STATE_VERSION = 3
_MODES = ("auto", "random", "stream")
_OUTPUTS = ("sample", "torch")
_DEFAULT_WINDOW = 10_000
_PLAIN_WINDOW = 1_024  # the walk's window without shuffling (see ``_walk``)
_PLAIN_LOADER = (
    "a plain DataLoader(tds, num_workers={n}) cannot record which items reached the training "
    "loop, so state_dict() would replay the epoch; use tds.loader(num_workers={n}, ...) (it takes "
    "the same arguments), or num_workers=0"
)


def _dist_rank_world() -> tuple[int, int]:
    import torch.distributed as dist

    if dist.is_available() and dist.is_initialized():
        return dist.get_rank(), dist.get_world_size()
    return 0, 1


try:  # this module is imported only by to_torch(), which requires torch first
    from torch.utils.data import IterableDataset as _Base
except ImportError:  # pragma: no cover - lets doctest collection import the module without torch
    _Base = object


class TorchDataset(_Base):
    """A :class:`~atdata.Dataset` as a ``torch.utils.data.IterableDataset`` (see the module notes).

    Build it with :meth:`atdata.Dataset.to_torch`, which passes these keyword arguments.

    Args:
        dataset: The :class:`~atdata.Dataset` to read.
        batch_size: Items are batches of this size (default: single samples).
        drop_last_batch: Drop a short last batch.
        shuffle: A new order each epoch (``set_epoch``), the same on every run and for any
            number of workers.
        seed: The shuffle seed.
        rank: This process's rank (default from ``torch.distributed``; with ``world_size``).
        world_size: The number of ranks; every rank gets the same number of samples.
        policy: ``"drop_last"`` or ``"pad"``: how ranks are made equal. Fewer samples than
            ranks with ``"drop_last"`` (with a warning), or an empty dataset, give every rank
            an empty epoch (``len() == 0``), so all ranks still step the same number of times.
        mode: ``"auto"`` (default: ``"random"`` for local shards, ``"stream"`` otherwise),
            ``"random"`` (one read per sample, a seeded permutation computed per slot) or
            ``"stream"`` (whole shards fetched once each, shuffled within ``shuffle_buffer``
            samples; one rank needs no shard counts up front).
        shuffle_buffer: Samples per shuffle window in ``"stream"`` mode (the first windows of
            an epoch are smaller); about two windows of shards are held at a time.
        cache_dir: The local shard cache of ``"stream"`` mode, shared by the workers (default
            a temporary directory on ``/dev/shm`` where there is one; read without workers,
            shards are then held in memory instead). A given ``cache_dir`` keeps its shards.
        cache_limit: Bytes the shard cache may hold (default a quarter of its free space).
        sample_transform: Called on each sample in the worker, before batching (batches of its
            results are made by ``collate_fn``, default ``torch``'s ``default_collate``).
        collate_fn: Combines ``sample_transform`` results into a batch.
        transform: Called on each item (the batch, or the sample) in the worker.
        output: ``"sample"`` (default: samples and :class:`~atdata.SampleBatch` es) or
            ``"torch"`` (dicts of tensors and lists, with ``"__key__"``, which the default
            collate and ``pin_memory`` take).
        verify: ``"stream"`` mode checks each shard it fetches against the size and sha256
            recorded for it (shard infos, index entries, manifests read for counts) as the bytes
            arrive; a mismatch raises :class:`~atdata.IntegrityError` and the shard is never
            used. ``False`` streams without the check (a shard with no recorded sha256 is never
            checked).
    """

    def __init__(
        self,
        dataset: Any,
        *,
        batch_size: int | None = None,
        shuffle: bool = False,
        seed: int = 0,
        rank: int | None = None,
        world_size: int | None = None,
        policy: str = "drop_last",
        drop_last_batch: bool = False,
        transform: Callable[[Any], Any] | None = None,
        sample_transform: Callable[[Any], Any] | None = None,
        collate_fn: Callable[[list[Any]], Any] | None = None,
        output: str = "sample",
        mode: str = "auto",
        shuffle_buffer: int = _DEFAULT_WINDOW,
        cache_dir: str | os.PathLike[str] | None = None,
        cache_limit: int | None = None,
        verify: bool = True,
    ) -> None:
        if batch_size is not None and batch_size < 1:
            raise ConfigError(f"batch_size must be >= 1, got {batch_size}")
        if (rank is None) != (world_size is None):
            raise ConfigError(
                "pass both rank and world_size, or neither (torch.distributed decides)"
            )
        if output not in _OUTPUTS:
            raise ConfigError(f"output must be 'sample' or 'torch', got {output!r}")
        if mode not in _MODES:
            raise ConfigError(f"mode must be 'auto', 'random' or 'stream', got {mode!r}")
        if shuffle_buffer < 1:
            raise ConfigError(f"shuffle_buffer must be >= 1 sample, got {shuffle_buffer}")
        if collate_fn is not None and sample_transform is None:
            raise ConfigError(
                "collate_fn combines the results of sample_transform; without one, batches are "
                "assembled by atdata (use transform= to change whole batches)"
            )
        if policy not in POLICIES:  # (checked here too: one lazy rank never splits a total)
            raise ConfigError(f"policy must be 'drop_last' or 'pad', got {policy!r}")
        if rank is None:
            rank, world_size = _dist_rank_world()
        assert world_size is not None
        self.dataset = dataset
        self.batch_size = batch_size
        self.shuffle = shuffle
        self.seed = seed
        self.rank, self.world_size = rank, world_size
        self.policy = policy
        self.drop_last_batch = drop_last_batch
        self.transform = transform
        self.sample_transform = sample_transform
        self.collate_fn = collate_fn
        self.output = output
        self.shuffle_buffer = int(shuffle_buffer)
        self.mode = mode if mode != "auto" else ("random" if dataset._shared.local() else "stream")
        self.epoch = 0
        self._pos = 0  # samples of this rank's order delivered in this epoch
        self._resumed = False  # restored by load_state_dict: honour the position even at the end
        self._finished = False  # the last iteration ran to the end of the epoch
        self._loop = 0  # the number of the latest loop over this dataset (see overtaken())
        if not 0 <= rank < world_size:
            raise ConfigError(f"rank {rank} is not in range for world_size {world_size}")
        self._reader = Reader(
            dataset, self.mode, cache_dir, cache_limit, need_counts=world_size > 1, verify=verify
        )
        self._fin = weakref.finalize(self, self._reader.release, os.getpid())
        ds = self._reader.dataset
        # batches of dicts of tensors straight from undecoded payloads (see _layout)
        self._payloads = (
            batch_size is not None
            and output == "torch"
            and sample_transform is None
            and not ds._ops
            and ds.on_error == "raise"
            and hasattr(ds.sample_type, "atdata_fields")
            and self._reader.entries_ok()
        )
        self._layout: list[Any] = [None]  # the payload layout of the last batch
        if not self._reader.lazy:
            n = self._reader.size
            if n and not per_rank(n, world_size, policy):
                warnings.warn(
                    f"to_torch: {n} samples for {world_size} ranks with policy='drop_last' "
                    "gives every rank an empty epoch; use policy='pad' or fewer ranks",
                    stacklevel=4,  # the caller of Dataset.to_torch
                )

    def __getstate__(self) -> dict[str, Any]:  # spawned workers: no finalizer
        return {
            **{k: v for k, v in self.__dict__.items() if k != "_fin"},
            "_layout": [None],
        }

    # -- order and state ------------------------------------------------------------------------
    def _positions(self, epoch: int) -> Callable[[np.ndarray], np.ndarray]:
        """Random mode: slots of this rank's order in ``epoch`` -> dataset positions."""
        r = self._reader
        universe, n = r.universe(), r.size
        seed = self.seed if self.shuffle else None
        rank, ws, policy = self.rank, self.world_size, self.policy
        return lambda slots: rank_positions(universe, n, rank, ws, policy, seed, epoch, slots)

    def _walk(self, epoch: int) -> StreamWalk:
        """Stream mode: this rank's walk through ``epoch`` (one rank over shards of unknown
        size: to the end, however long it is)."""
        r = self._reader
        seed = self.seed if self.shuffle else None
        lo, length = 0, None
        if not r.lazy:
            length = per_rank(r.size, self.world_size, self.policy)
            lo = self.rank * length
        return StreamWalk(
            shard_order(len(r.shards), seed, epoch),
            r.count_of,
            r.codes_of,
            lo,
            length,
            None if seed is None else (seed, epoch, self.rank),
            # unshuffled, the order does not depend on the window: a small one holds only the
            # shards being read (a whole ``shuffle_buffer`` would keep ~10 shards in memory)
            self.shuffle_buffer if self.shuffle else min(self.shuffle_buffer, _PLAIN_WINDOW),
        )

    def _slots(self) -> int:
        """This rank's samples (slots) per epoch."""
        return per_rank(self._reader.size, self.world_size, self.policy)

    def _left(self, start: int) -> int:
        """Items from slot ``start`` to the epoch's end."""
        n = self._slots()
        return item_count(n, start, self.batch_size or 1, self.drop_last_batch)

    def _begin(self) -> int:
        """The position the next iteration starts from: a restored one as it is, else a
        finished epoch starts over."""
        self._loop += 1
        if self._resumed:
            self._resumed = False
        elif self._finished or (not self._reader.lazy and not self._left(self._pos)):
            self._pos = 0
        self._finished = False
        return self._pos

    def __len__(self) -> int:
        """Items the next iteration yields (batches when ``batch_size`` is set), for any workers.

        Exact. Streaming shards whose sizes nothing records (no shard infos, no manifests) with
        one rank starts without counting them; asking for the length then fetches and counts
        every shard first (into the shard cache, which the epoch then reads).
        """
        left = self._left(self._pos)
        if self._finished and not self._resumed:
            return self._left(0)
        return left if left or self._resumed else self._left(0)

    def set_epoch(self, epoch: int) -> None:
        """Start epoch ``epoch`` (its own order when shuffling) from its beginning.

        Right after :meth:`load_state_dict`, ``set_epoch`` of the saved epoch keeps the saved
        position (a training loop calls it at the top of every epoch, resumed ones included).

        Raises:
            ArgumentTypeError: When ``epoch`` is not an integer (Python, numpy or a 0-d tensor).
        """
        try:
            value = None if isinstance(epoch, bool) else operator.index(epoch)
        except TypeError:
            value = None
        if value is None:
            raise ArgumentTypeError(
                f"set_epoch() takes an integer, got {epoch!r}; pass the epoch number"
            )
        epoch = value
        if self._resumed and epoch == self.epoch:
            return
        self.epoch = epoch
        self._pos = 0
        self._resumed = False
        self._finished = False

    def state_dict(self) -> dict[str, Any]:
        """Where this rank is: epoch, samples delivered, and the settings that fix the order.

        Small (a few hundred bytes) and JSON-serialisable, whatever the dataset size.
        """
        return {
            "version": _STATE_VERSION,
            "epoch": self.epoch,
            "position": self._pos,
            "seed": self.seed,
            "shuffle": self.shuffle,
            "rank": self.rank,
            "world_size": self.world_size,
            "policy": self.policy,
            "mode": self.mode,
            "shuffle_buffer": self.shuffle_buffer,
            "num_shards": len(self._reader.shards),
            "num_samples": None if self._reader.lazy else self._reader.size,
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Resume from :meth:`state_dict`: the next iteration yields only what was not delivered.

        The batch size and the number of workers may differ from the saved run's.

        Raises:
            ConfigError: When the state belongs to another configuration (seed, ranks, dataset).
        """
        if state.get("version") != _STATE_VERSION:
            raise ConfigError(
                f"unsupported TorchDataset state version {state.get('version')!r} "
                f"(this atdata reads version {_STATE_VERSION})"
            )
        keys = ["seed", "shuffle", "rank", "world_size", "policy", "mode"]
        if self.mode == "stream" and self.shuffle:
            keys.append("shuffle_buffer")
        for k in (*keys, "num_shards", "num_samples", "epoch", "position"):
            if k not in state:
                raise ConfigError(f"state has no {k!r}; pass a dict that state_dict() returned")
        for k in keys:
            if state[k] != getattr(self, k):
                raise ConfigError(
                    f"state was saved with {k}={state[k]!r} but this dataset has {k}={getattr(self, k)!r}"
                )
        if state["num_shards"] != len(self._reader.shards):
            raise ConfigError(
                f"state was saved for {state['num_shards']} shards but the dataset now has "
                f"{len(self._reader.shards)}"
            )
        saved = state["num_samples"]
        if saved is not None and not self._reader.lazy and saved != self._reader.size:
            raise ConfigError(
                f"state was saved for {saved} samples but the dataset now has {self._reader.size}"
            )
        epoch, pos = state["epoch"], state["position"]
        if not _is_int(epoch):
            raise ConfigError(f"state has epoch={epoch!r}, not an integer")
        top = None if self._reader.lazy else self._slots()
        if not _is_int(pos) or pos < 0 or (top is not None and pos > top):
            raise ConfigError(
                f"state has position={pos!r}, not a number of samples delivered"
                + ("" if top is None else f" (0 to {top}: this rank's samples per epoch)")
            )
        self.epoch = int(epoch)
        self._pos = int(pos)
        self._resumed = True

    # -- iteration -----------------------------------------------------------------------------
    def _produce(
        self, epoch: int, start: int, wid: int, nw: int, ipc: bool = False
    ) -> Iterator[tuple[int, Any]]:
        """``(end position, item)`` for the items of worker ``wid`` of ``nw`` from ``start``
        (``ipc``: made to cross to the training process, see :mod:`._torch_ipc`)."""
        assemble = self._ipc_assemble if ipc else self._assemble
        if self.mode == "stream":
            walk = self._walk(epoch)
            return self._reader.stream_items(
                walk,
                start,
                self.batch_size or 1,
                self.drop_last_batch,
                (wid, nw),
                assemble,
                self.shuffle_buffer if self.shuffle else 1,
                memory=not ipc and self._reader._temp,  # one reading process: no cache files
                payloads=self._payloads,
            )
        n = per_rank(self._reader.size, self.world_size, self.policy)
        return self._reader.items(
            self._positions(epoch),
            (start, n, self.batch_size or 1, self.drop_last_batch),
            (wid, nw),
            assemble,
            payloads=self._payloads,
        )

    def _ipc_assemble(self, raws: list[Any]) -> Any:
        """:meth:`_assemble` in a worker: arrays in shared memory, packed to cross processes."""
        from atdata.dataset._torch_ipc import pack, shm_alloc

        registry: dict[int, Any] = {}
        alloc = shm_alloc(registry, self.__dict__.setdefault("_arena", [0]))
        item = self._assemble(raws, alloc, registry)
        if item is SKIPPED:
            return item
        item = pack(item, registry)
        # Can it be sent? (An item the DataLoader cannot pickle is dropped: a hang or a silent
        # loss.) Every item when a transform decides what items are (~30 us a batch), else the
        # first of this worker (the types are then fixed).
        if self.transform or self.sample_transform or not self.__dict__.get("_sent"):
            from atdata.dataset._torch_ipc import check_item

            check_item(item)
            self.__dict__["_sent"] = True
        return item

    def _assemble(self, raws: list[Any], alloc: Any = None, registry: Any = None) -> Any:
        """One item from the raw payloads of its samples (decoding, transforms, output);
        ``alloc`` places batch arrays (in shared memory, noted in ``registry``). ``raws`` are
        ``(shard, key, payload map)`` triples, or undecoded entries (see
        :meth:`Reader.decoded`) when ``_payloads`` is set."""
        ds = self._reader.dataset
        st = self.sample_transform
        if self.batch_size is None:
            item = next(iter(ds._emit(iter(raws), None, False)), SKIPPED)
            if item is SKIPPED:
                return item
            if st is not None:
                item = st(item)
            elif self.output == "torch":
                item = sample_to_torch(item)
        elif st is not None:
            samples = [st(s) for s in ds._emit(iter(raws), None, False)]
            if not samples:
                return SKIPPED
            if self.collate_fn is not None:
                item = self.collate_fn(samples)
            else:
                from torch.utils.data import default_collate

                item = default_collate(samples)
        else:
            item = self._batch(raws, alloc)
            if item is SKIPPED:
                return item
            if self.output == "torch":
                item = batch_to_torch(item, registry or {})
        tf = self.transform
        return tf(item) if tf is not None else item

    def _batch(self, raws: list[Any], alloc: Any) -> Any:
        ds = self._reader.dataset
        st = ds.sample_type
        if self._payloads:
            from atdata.dataset._layout import fast_batch

            batch = fast_batch(st, raws, alloc, self._layout)
            if batch is not None:
                return batch
            raws = self._reader.decoded(raws)  # the checked path
        if not raws:
            return SKIPPED
        if alloc is None or ds._ops or ds.on_error != "raise" or not hasattr(st, "atdata_fields"):
            return next(iter(ds._emit(iter(raws), len(raws), False)), SKIPPED)
        from atdata._errors import AtdataError
        from atdata.dataset._batch import SampleBatch

        try:
            return SampleBatch._from_raw(st, [r[2] for r in raws], [r[1] for r in raws], alloc)
        except AtdataError as exc:
            raise type(exc)(
                f"{exc} (batch starting at shard {raws[0][0]}, sample {raws[0][1]!r})"
            ) from None

    def __iter__(self) -> Iterator[Any]:
        from torch.utils.data import get_worker_info

        info = get_worker_info()
        if info is not None:
            raise ConfigError(_PLAIN_LOADER.format(n=info.num_workers))
        start = self._begin()
        loop = self._loop
        items = self._produce(self.epoch, start, 0, 1)
        for end, item in items:
            self._pos = end  # before handing it over: a checkpoint taken now counts this item
            if item is not SKIPPED:
                yield item
                if self._loop != loop:
                    getattr(items, "close", lambda: None)()  # (its prefetch stops now)
                    raise overtaken()
        self._finished = True

    def loader(self, **kwargs: Any) -> Any:
        """A ``torch.utils.data.DataLoader`` over this dataset that records what it delivers.

        Takes DataLoader arguments (``num_workers``, ``persistent_workers``, ``prefetch_factor``,
        ``pin_memory``, ``multiprocessing_context``, ...). Batching is done here (``batch_size``
        of :meth:`~atdata.Dataset.to_torch`), so the DataLoader's ``batch_size`` is ``None``.
        Iterate it once per epoch (after :meth:`set_epoch`); :meth:`state_dict` is exact at any
        point. One loop at a time: the dataset has one position, so a loop (over the loader or
        the dataset) that goes on after a later one started raises :class:`~atdata.ConfigError`
        instead of delivering items twice.

        Raises:
            ConfigError: For ``batch_size`` or ``in_order=False`` (items must arrive in order).
            WorkerPickleError: When workers could not receive the dataset or a function
                (``spawn``/``forkserver``), or send the items back (a sample type defined inside
                a function): a DataLoader would hang on an item it cannot pickle.
        """
        import multiprocessing.sharedctypes

        require("torch.utils.data", "torch", "TorchDataset.loader")
        if kwargs.get("batch_size") is not None:
            raise ConfigError(
                "batch inside the dataset: pass batch_size to to_torch(), not to loader()"
            )
        if kwargs.get("in_order") is False:
            raise ConfigError(
                "in_order=False lets items overtake each other, so the delivered position is "
                "unknown; leave it on"
            )
        kwargs["batch_size"] = None
        kwargs.setdefault("collate_fn", convert)
        ctl = multiprocessing.sharedctypes.RawArray("q", 2)
        if kwargs.get("num_workers", 0) > 0:
            from atdata.dataset._torch_ipc import check_workers

            check_workers(self, kwargs)
        from atdata.dataset._torch_loader import RecordingLoader, Tagged

        return RecordingLoader(Tagged(self, ctl), **kwargs)


def overtaken() -> ConfigError:
    """The error of a loop that goes on after a later loop over the same dataset started."""
    return ConfigError(
        "another loop over this dataset started before this one ended; the dataset has one "
        "position (state_dict()), which the later loop now carries on from, so this one stops "
        "rather than deliver its items twice: end or leave a loop before starting the next, "
        "or call to_torch() again for a second, independent stream"
    )


def _is_int(x: Any) -> bool:
    """An integer of a saved state (a JSON or numpy one), not a bool, float or string."""
    return isinstance(x, (int, np.integer)) and not isinstance(x, bool)
