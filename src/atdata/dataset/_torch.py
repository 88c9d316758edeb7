"""PyTorch integration: :class:`TorchDataset`, an ``IterableDataset`` split across workers and ranks.

Design. Each epoch has one global, deterministic order of sample positions (the identity, or a
permutation seeded by ``seed`` and the epoch). It is cut to equal per-rank lengths by an explicit
``policy`` (``"drop_last"`` drops the tail, ``"pad"`` repeats samples from the start) and dealt to
ranks round-robin: rank ``r`` owns *slots* ``0..n-1`` of its own list. The slots a rank has not yet
consumed are dealt round-robin to its DataLoader workers. ``state_dict()`` records the epoch and
the consumed slots, so a resumed run yields exactly the samples not yet delivered, whatever its
number of workers.

Consumption is recorded when an item reaches the training loop: by iterating the dataset directly
or through ``DataLoader(tds, batch_size=None, num_workers=0)``, or, with worker processes, through
:meth:`TorchDataset.loader` (a DataLoader that tags each item with its slots and records them).

Samples are read by random access through the per-shard member index (``len`` is exact, shards and
sample ranges split alike, and a single shard still feeds many workers).

Examples:
    >>> import os, tempfile, atdata
    >>> d = tempfile.mkdtemp()
    >>> ds = atdata.write_samples([{"i": i} for i in range(10)], os.path.join(d, "s.tar"), key="index")
    >>> tds = ds.to_torch(rank=1, world_size=3)  # doctest: +SKIP
    >>> [s["i"] for s in tds]  # doctest: +SKIP
    [1, 4, 7]
"""

from __future__ import annotations

import random
from collections.abc import Callable, Iterator
from typing import Any

from atdata._errors import ConfigError
from atdata._extras import require

__all__ = ["TorchDataset", "rank_slots"]

_POLICIES = ("drop_last", "pad")
_STATE_VERSION = 1


def rank_slots(
    n: int, rank: int, world_size: int, policy: str, seed: int | None, epoch: int
) -> list[int]:
    """The sample positions rank ``rank`` reads in ``epoch``, in order (slot ``i`` is item ``i``).

    Raises:
        ConfigError: When the configuration cannot give every rank the same number of samples.

    Examples:
        >>> rank_slots(7, 0, 3, "drop_last", None, 0), rank_slots(7, 2, 3, "pad", None, 0)
        ([0, 3], [2, 5, 1])
    """
    if policy not in _POLICIES:
        raise ConfigError(f"policy must be 'drop_last' or 'pad', got {policy!r}")
    if world_size < 1 or not 0 <= rank < world_size:
        raise ConfigError(f"rank {rank} is not in range for world_size {world_size}")
    order = list(range(n))
    if seed is not None:
        random.Random(seed * 1_000_003 + epoch).shuffle(order)
    if policy == "drop_last":
        per = n // world_size
        if per == 0:
            raise ConfigError(
                f"a dataset of {n} samples cannot give each of {world_size} ranks a sample with "
                "policy='drop_last'; use policy='pad' or fewer ranks"
            )
        order = order[: per * world_size]
    else:
        if n == 0:
            raise ConfigError("an empty dataset cannot be padded across ranks")
        per = -(-n // world_size)
        extra = per * world_size - n
        order = order + (order * (extra // n + 1))[:extra]
    return order[rank::world_size]


def _dist_rank_world() -> tuple[int, int]:
    import torch.distributed as dist

    if dist.is_available() and dist.is_initialized():
        return dist.get_rank(), dist.get_world_size()
    return 0, 1


try:  # this module is imported only by to_torch(), which requires torch first
    from torch.utils.data import IterableDataset as _Base
except ImportError:  # pragma: no cover - lets doctest collection import the module without torch
    _Base = object


class _Tagged(_Base):
    """What :meth:`TorchDataset.loader` hands the DataLoader: items come out as ``(slots, item)``."""

    def __init__(self, tds: TorchDataset) -> None:
        self.tds = tds

    def __iter__(self) -> Iterator[Any]:
        return self.tds._items(tag=True, record=False)


class TorchDataset(_Base):
    """A :class:`~atdata.Dataset` as a ``torch.utils.data.IterableDataset`` (see the module notes).

    Build it with :meth:`atdata.Dataset.to_torch`.
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
    ) -> None:
        if batch_size is not None and batch_size < 1:
            raise ConfigError(f"batch_size must be >= 1, got {batch_size}")
        if (rank is None) != (world_size is None):
            raise ConfigError(
                "pass both rank and world_size, or neither (torch.distributed decides)"
            )
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
        self.epoch = 0
        self._consumed: set[int] = set()
        if any(op == "filter" for op, _ in getattr(dataset, "_ops", ())):
            raise ConfigError(
                "to_torch() needs the exact sample count, which a filtered dataset does not have; "
                "filter in the training loop or with transform=, or select() the wanted indices"
            )
        self._n = dataset.count()  # streams uncounted remote shards once
        self._slots()  # validate the configuration now, not in a worker

    # -- order and state ------------------------------------------------------------------------
    def _slots(self) -> list[int]:
        return rank_slots(
            self._n,
            self.rank,
            self.world_size,
            self.policy,
            self.seed if self.shuffle else None,
            self.epoch,
        )

    def __len__(self) -> int:
        """Items this rank yields per epoch (batches when ``batch_size`` is set, single-process)."""
        n = len(self._slots())
        if self.batch_size is None:
            return n
        return n // self.batch_size if self.drop_last_batch else -(-n // self.batch_size)

    def set_epoch(self, epoch: int) -> None:
        """Start epoch ``epoch`` (its own order when shuffling); forgets consumption."""
        self.epoch = int(epoch)
        self._consumed = set()

    def state_dict(self) -> dict[str, Any]:
        """The epoch and the slots consumed so far (JSON-serialisable)."""
        return {
            "version": _STATE_VERSION,
            "epoch": self.epoch,
            "seed": self.seed,
            "shuffle": self.shuffle,
            "rank": self.rank,
            "world_size": self.world_size,
            "policy": self.policy,
            "num_samples": self._n,
            "consumed": sorted(self._consumed),
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Resume from :meth:`state_dict`: the next iteration yields only unconsumed samples.

        Raises:
            ConfigError: When the state belongs to another configuration (seed, ranks, dataset).
        """
        if state.get("version") != _STATE_VERSION:
            raise ConfigError(f"unsupported TorchDataset state version {state.get('version')!r}")
        for k in ("seed", "shuffle", "rank", "world_size", "policy"):
            if state[k] != getattr(self, k):
                raise ConfigError(
                    f"state was saved with {k}={state[k]!r} but this dataset has {k}={getattr(self, k)!r}"
                )
        if state["num_samples"] != self._n:
            raise ConfigError(
                f"state was saved for {state['num_samples']} samples but the dataset now has {self._n}"
            )
        self.epoch = int(state["epoch"])
        self._consumed = set(state["consumed"])

    def _record(self, slots: tuple[int, ...]) -> None:
        self._consumed.update(slots)

    # -- iteration -----------------------------------------------------------------------------
    def _remaining(self) -> tuple[list[int], list[int]]:
        order = self._slots()
        if len(self._consumed) >= len(order):  # the epoch was finished: run it again
            self._consumed = set()
        todo = [i for i in range(len(order)) if i not in self._consumed]
        return order, todo

    def _items(self, tag: bool, record: bool) -> Iterator[Any]:
        from torch.utils.data import get_worker_info

        order, todo = self._remaining()
        info = get_worker_info()
        if info is not None:
            todo = todo[info.id :: info.num_workers]
        ds = self.dataset
        tf = self.transform
        bs = self.batch_size
        if bs is None:
            for slot in todo:
                item = ds[order[slot]]
                if tf is not None:
                    item = tf(item)
                if record:
                    self._consumed.add(slot)
                yield ((slot,), item) if tag else item
            return
        for start in range(0, len(todo), bs):
            chunk = todo[start : start + bs]
            if self.drop_last_batch and len(chunk) < bs:
                return
            batch = next(iter(ds.select([order[s] for s in chunk]).ordered(batch_size=len(chunk))))
            if tf is not None:
                batch = tf(batch)
            if record:
                self._consumed.update(chunk)
            yield (tuple(chunk), batch) if tag else batch

    def __iter__(self) -> Iterator[Any]:
        return self._items(tag=False, record=True)

    def loader(self, **kwargs: Any) -> Any:
        """A ``torch.utils.data.DataLoader`` over this dataset that records what it delivers, so
        :meth:`state_dict` is exact with worker processes. Takes DataLoader arguments
        (``num_workers``, ``multiprocessing_context``, ``pin_memory``, ...); batching is done
        here (``batch_size`` of :meth:`~atdata.Dataset.to_torch`), so ``batch_size`` is ``None``.
        """
        data = require("torch.utils.data", "torch", "TorchDataset.loader")
        if kwargs.get("batch_size") is not None:
            raise ConfigError(
                "batch inside the dataset: pass batch_size to to_torch(), not to loader()"
            )
        if kwargs.get("persistent_workers"):
            raise ConfigError(
                "persistent_workers=True would keep each worker's first epoch and position; "
                "leave it off so set_epoch() and load_state_dict() reach the workers"
            )
        kwargs["batch_size"] = None
        tds = self

        loader_base: Any = data.DataLoader

        class _Loader(loader_base):
            def __iter__(self) -> Iterator[Any]:
                tds._remaining()  # resets a finished epoch before workers copy the state
                for slots, item in super().__iter__():
                    tds._record(slots)
                    yield item

        return _Loader(_Tagged(self), **kwargs)
