"""How :class:`~atdata.dataset._torch.TorchDataset` reads samples: sizes, the positions that take
part (selections, filters), and the raw payloads of an item's samples in either mode.

Random mode reads each sample with one ``pread`` through the dataset's member indexes. Stream
mode reads shards through a :class:`~atdata.dataset._torch_cache.ShardCache` (whole shards, one
sequential request each), with a thread fetching the shards the worker needs next.

Examples:
    >>> import os, tempfile, atdata
    >>> d = tempfile.mkdtemp()
    >>> ds = atdata.write_samples([{"i": i} for i in range(6)], os.path.join(d, "a-%d.tar"), maxcount=4)
    >>> r = Reader(ds.filter(lambda s: s["i"] % 2 == 0), "stream", None, 1 << 30)
    >>> r.size, r.counts.tolist(), r.kept.tolist()
    (3, [4, 2], [0, 2, 4])
"""

from __future__ import annotations

import contextlib
import os
import tempfile
import threading
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import numpy as np

from atdata._errors import ConfigError
from atdata.dataset._torch_cache import ShardCache

__all__ = ["Reader"]

_COUNT_THREADS = 4
_DEFAULT_LIMIT = 8 << 30


class Reader:
    """Sizes and sample reading of one dataset in one mode (built in the main process).

    Args:
        dataset: The :class:`~atdata.Dataset` (selections and filters allowed).
        mode: ``"random"`` or ``"stream"``.
        cache_dir: Stream mode's shard cache (default: a private temporary directory, on
            ``/dev/shm`` where there is one, removed when the
            :class:`~atdata.dataset._torch.TorchDataset` goes away).
        cache_limit: Bytes the cache directory may hold (default: 8 GiB for a ``cache_dir``; for
            the temporary one a quarter of the free space of its file system, at most 8 GiB).
    """

    def __init__(
        self,
        dataset: Any,
        mode: str,
        cache_dir: str | os.PathLike[str] | None,
        cache_limit: int | None,
    ) -> None:
        if cache_limit is not None and cache_limit < 1:
            raise ConfigError(f"cache_limit must be a positive number of bytes, got {cache_limit}")
        self.mode = mode
        selection = dataset._selection
        self.dataset = dataset._derive(_selection=None) if selection is not None else dataset
        self.shards: list[str] = self.dataset.list_shards()
        self._pid = os.getpid()
        self._temp = cache_dir is None and mode == "stream"
        self.cache: ShardCache | None = None
        if mode == "stream":
            directory, limit = _cache_place(cache_dir, cache_limit)
            self.cache = ShardCache(directory, limit, direct=self.dataset._shared.local())
        self.counts: np.ndarray | None = None
        self.starts: np.ndarray | None = None
        if mode == "stream":
            self.counts = np.asarray(self._stream_counts(), dtype=np.int64)
            self.starts = np.concatenate(([0], np.cumsum(self.counts)))
            total = int(self.starts[-1])
        else:
            total = self.dataset._shared.base_len()
        filtered = any(op == "filter" for op, _ in self.dataset._ops)
        self._selection: np.ndarray | None = None
        self.kept: np.ndarray | None = None  # sorted positions that take part (None: all)
        if selection is not None:
            self._selection = np.asarray(selection, dtype=np.int64)
            if len(self._selection) and (
                self._selection.min() < 0 or self._selection.max() >= total
            ):
                raise ConfigError(f"a selected position is out of range for {total} samples")
            self.kept = np.sort(self._selection)
        if filtered:
            self.kept = self._filter_pass(self.kept, total)
            self._selection = None
        self.size = total if self.kept is None else len(self.kept)

    # -- sizes ---------------------------------------------------------------------------------
    def _stream_counts(self) -> list[int]:
        ds, cache = self.dataset, self.cache
        assert cache is not None
        known = ds._shared.counts
        todo = [s for s in self.shards if s not in known]
        if todo:  # fetched into the cache, which the epoch then reads
            with ThreadPoolExecutor(min(_COUNT_THREADS, len(todo))) as pool:
                for s, n in zip(
                    todo, pool.map(lambda s: cache.count(ds.source, s), todo), strict=True
                ):
                    known[s] = n
        return [known[s] for s in self.shards]

    def _filter_pass(self, candidates: np.ndarray | None, total: int) -> np.ndarray:
        """Positions (among ``candidates``, default all) whose sample the dataset's filter keeps."""
        ds = self.dataset
        positions = range(total) if candidates is None else candidates.tolist()
        kept = []
        for p, raw in zip(positions, self._raws(positions), strict=True):
            for _ in ds._with_ops(ds._decoded(iter([raw]))):
                kept.append(p)
        return np.asarray(kept, dtype=np.int64)

    def universe(self) -> np.ndarray:
        """Random mode's positions, in the dataset's own order (a selection keeps its order)."""
        if self._selection is not None:
            return self._selection
        if self.kept is not None:
            return self.kept
        return np.arange(self.size, dtype=np.int64)

    # -- reading -------------------------------------------------------------------------------
    def _raws(self, positions: Any) -> Iterator[tuple[str, str, dict]]:
        """``(shard, key, payload map)`` of each position, in order."""
        if self.cache is None:
            yield from self.dataset._shared.raw_selection(positions)
            return
        starts, shards, src, cache = self.starts, self.shards, self.dataset.source, self.cache
        assert starts is not None
        for p in positions:
            s = int(np.searchsorted(starts, p, side="right")) - 1
            key, raw = cache.raw(src, shards[s], int(p - starts[s]))
            yield shards[s], key, raw

    def items(
        self,
        order: np.ndarray,
        mine: list[tuple[int, int]],
        assemble: Callable[[list[tuple[str, str, dict]]], Any],
        ahead: int,
    ) -> Iterator[tuple[int, Any]]:
        """``(hi, item)`` for each slot range ``(lo, hi)`` of ``mine``."""
        if os.getpid() != self._pid:  # a forked worker: drop connections the parent opened
            hook = getattr(self.dataset.source, "after_fork", None)
            if hook is not None:
                hook()
            self._pid = os.getpid()
        if self.cache is None or not mine:
            for lo, hi in mine:
                yield hi, assemble(list(self._raws(order[lo:hi].tolist())))
            return
        pos = np.concatenate([order[lo:hi] for lo, hi in mine])
        assert self.starts is not None
        sidx = np.searchsorted(self.starts, pos, side="right") - 1
        uniq, first = np.unique(sidx, return_index=True)
        by_use = np.argsort(first)
        seq = [self.shards[s] for s in uniq[by_use]]  # shards in the order this worker needs them
        firsts = first[by_use]
        ends = np.cumsum([hi - lo for lo, hi in mine])
        needed = np.searchsorted(firsts, ends, side="left")  # shards needed through each item
        pre = _Prefetch(self.cache, self.dataset.source, seq, ahead)
        pre.start()
        starts, shards, src, cache = (
            self.starts.tolist(),
            self.shards,
            self.dataset.source,
            self.cache,
        )
        positions, owners = pos.tolist(), sidx.tolist()
        try:
            off = 0
            for k, (lo, hi) in enumerate(mine):
                pre.advance(int(needed[k]))
                raws = []
                for p, s in zip(
                    positions[off : off + hi - lo], owners[off : off + hi - lo], strict=True
                ):
                    key, raw = cache.raw(src, shards[s], p - starts[s])
                    raws.append((shards[s], key, raw))
                off += hi - lo
                yield hi, assemble(raws)
        finally:
            pre.stop()

    def release(self, owner_pid: int) -> None:
        """Close files; remove a private temporary cache (only in the process that made it)."""
        if self.cache is None:
            return
        self.cache.close()
        if self._temp and os.getpid() == owner_pid:
            self.cache.remove()


def _cache_place(cache_dir: str | os.PathLike[str] | None, limit: int | None) -> tuple[str, int]:
    """The cache directory and its byte limit (see :class:`Reader`)."""
    if cache_dir is not None:
        directory = os.fspath(cache_dir)
        try:
            os.makedirs(directory, exist_ok=True)
        except OSError as exc:
            raise ConfigError(
                f"cannot create the shard cache {directory}: {exc.strerror}; pass a writable cache_dir"
            ) from None
        return directory, limit if limit is not None else _DEFAULT_LIMIT
    shm = "/dev/shm"
    base = shm if os.path.isdir(shm) and os.access(shm, os.W_OK) else None
    directory = tempfile.mkdtemp(prefix="atdata-shards-", dir=base)
    if limit is None:
        try:
            st = os.statvfs(directory)
            limit = min(_DEFAULT_LIMIT, st.f_bavail * st.f_frsize // 4)
        except (OSError, AttributeError):
            limit = _DEFAULT_LIMIT
    return directory, max(1, limit)


class _Prefetch(threading.Thread):
    """Fetches ``seq`` into the cache, at most ``ahead`` shards beyond what the reader needs."""

    def __init__(self, cache: ShardCache, source: Any, seq: list[str], ahead: int) -> None:
        super().__init__(daemon=True, name="atdata-shard-prefetch")
        self.cache, self.source, self.seq, self.ahead = cache, source, seq, ahead
        self._progress = 0
        self._halt = False
        self._cv = threading.Condition()

    def advance(self, needed: int) -> None:
        with self._cv:
            self._progress = needed
            lo = max(0, needed - self.ahead)
            self.cache.keep = set(self.seq[lo : needed + self.ahead])
            self._cv.notify()

    def stop(self) -> None:
        with self._cv:
            self._halt = True
            self._cv.notify()

    def run(self) -> None:
        for j, shard in enumerate(self.seq):
            with self._cv:
                while not self._halt and j >= self._progress + self.ahead:
                    self._cv.wait()
                if self._halt:
                    return
            with contextlib.suppress(Exception):  # the reader meets the error itself, in order
                self.cache.fetch(self.source, shard)
