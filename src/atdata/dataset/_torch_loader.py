"""The DataLoader that :meth:`~atdata.dataset._torch.TorchDataset.loader` returns.

:class:`Tagged` is what the DataLoader iterates: the dataset's items of a worker, each with the
position it ends at. :class:`RecordingLoader` hands the items to the training loop and records
each position as it does, so ``state_dict()`` is exact however many workers run. A loop that
ends early stops the workers at once (see :meth:`RecordingLoader._stop`).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from atdata.dataset._torch_out import SKIPPED

__all__ = ["RecordingLoader", "Tagged"]

try:  # imported only by TorchDataset.loader(), which requires torch first
    from torch.utils.data import DataLoader as _LoaderBase
    from torch.utils.data import IterableDataset as _Base
except ImportError:  # pragma: no cover - lets doctest collection import the module without torch
    _Base = _LoaderBase = object


class Tagged(_Base):
    """What :meth:`TorchDataset.loader` hands the DataLoader: items come out as ``(end, item)``.

    ``ctl`` (shared memory: epoch, start position) carries the main process's state to workers,
    persistent ones included, at the start of every iteration.
    """

    def __init__(self, tds: Any, ctl: Any) -> None:
        self.tds = tds
        self.ctl = ctl

    def __len__(self) -> int:
        return len(self.tds)

    def __iter__(self) -> Iterator[Any]:
        from torch.utils.data import get_worker_info

        info = get_worker_info()
        wid, nw = (info.id, info.num_workers) if info is not None else (0, 1)
        return self.tds._produce(int(self.ctl[0]), int(self.ctl[1]), wid, nw, info is not None)


class RecordingLoader(_LoaderBase):
    """The DataLoader of :meth:`TorchDataset.loader`: records each item's end position as it
    hands the item over. (A module-level class: one made per call is a reference cycle, which
    kept the dataset and its temporary shard cache until the garbage collector ran.)"""

    _iterator: Any
    _IterableDataset_len_called: int | None

    def __iter__(self) -> Iterator[Any]:
        from atdata.dataset._torch import overtaken
        from atdata.dataset._torch_ipc import unpack

        tagged: Tagged = self.dataset
        tds, ctl = tagged.tds, tagged.ctl
        ctl[0], ctl[1] = tds.epoch, tds._begin()
        loop = tds._loop
        if self._IterableDataset_len_called is not None:  # (torch warns past the last len())
            self._IterableDataset_len_called = len(tds)  # this loop's items
        workers = self.num_workers > 0
        it: Any = super().__iter__()
        try:
            # (checked before each next(): persistent workers serve the later loop now)
            while tds._loop == loop:
                try:
                    end, item = next(it)
                except StopIteration:
                    tds._finished = True
                    return
                tds._pos = end
                if item is not SKIPPED:
                    yield unpack(item) if workers else item
        except BaseException as exc:
            if workers:
                self._stop(it, exc)
            it = None  # (this frame stays in the traceback: it must not hold the workers)
            raise
        if workers:
            self._stop(it, None)
        it = None
        raise overtaken()

    def _stop(self, it: Any, exc: BaseException | None) -> None:
        """The loop over worker iterator ``it`` ended with ``exc`` (``None``: a later loop
        overtook it): stop its workers now (they, the items they sent and the temporary shard
        cache would otherwise wait for a garbage collection). ``GeneratorExit`` (the loop was
        left) and ``None`` keep persistent workers, for the next epoch or the later loop; an
        error stops them too (the next iteration starts fresh ones)."""
        import traceback

        persistent = self.persistent_workers
        if persistent and (exc is None or isinstance(exc, GeneratorExit)):
            return
        if persistent and self._iterator is it:
            self._iterator = None
        stop = getattr(it, "_shutdown_workers", None)
        if stop is not None:
            stop()
        # the iterator's own frames below this one: torch re-raises a worker's error from a
        # frame whose locals hold the error (a reference cycle through the traceback)
        if exc is not None and exc.__traceback__ is not None:
            traceback.clear_frames(exc.__traceback__.tb_next)
