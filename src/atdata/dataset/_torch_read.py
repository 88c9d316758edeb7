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
    >>> r.release(os.getpid())  # (a TorchDataset does this when it goes away)
"""

from __future__ import annotations

import bisect
import contextlib
import itertools
import os
import threading
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import numpy as np

from atdata._errors import AtdataError, ConfigError, DecodeError, IntegrityError
from atdata._shards.sources import is_remote
from atdata.dataset._forks import fresh_after_fork
from atdata.dataset._torch_cache import ShardCache, _unpackb, checked_unpack
from atdata.dataset._torch_digest import (
    Expected,
    check_stamp,
    from_infos,
    from_manifest,
    stamps,
)
from atdata.dataset._torch_plan import _LOW, SHIFT, StreamWalk, item_count
from atdata.dataset._torch_prefetch import Prefetch
from atdata.dataset._torch_tmp import cache_place, release_owner

__all__ = ["Reader"]

_COUNT_THREADS = 4
_GROUP = 4096  # random mode: slots whose positions are computed in one go


class Reader:
    """Sizes and sample reading of one dataset in one mode (built in the main process).

    In stream mode, counts the plan needs come from shard infos, then from manifests published
    beside remote shards; when neither knows a shard and the plan can do without (one rank, no
    selection or filter), the shard is counted when the walk reaches it (``lazy``), else every
    unknown shard is fetched into the cache and counted up front.

    Args:
        dataset: The :class:`~atdata.Dataset` (selections and filters allowed).
        mode: ``"random"`` or ``"stream"``.
        cache_dir: Stream mode's shard cache (default: a private temporary directory, on
            ``/dev/shm`` where there is one, removed when the
            :class:`~atdata.dataset._torch.TorchDataset` goes away).
        cache_limit: Bytes the cache directory may hold (default: 8 GiB for a ``cache_dir``; for
            the temporary one a quarter of the free space of its file system, at most 8 GiB).
        need_counts: Count every shard now (several ranks need the total to split it).
        verify: Check each fetched shard against the size and sha256 recorded for it (by its
            shard info or index entry, or by a manifest published beside it, when one is read
            for its count); shards with no recorded sha256 are not checked.
    """

    def __init__(
        self,
        dataset: Any,
        mode: str,
        cache_dir: str | os.PathLike[str] | None,
        cache_limit: int | None,
        need_counts: bool = False,
        verify: bool = True,
    ) -> None:
        if cache_limit is not None and cache_limit < 1:
            raise ConfigError(f"cache_limit must be a positive number of bytes, got {cache_limit}")
        self.mode = mode
        self.verify = verify
        selection = dataset._selection
        self.dataset = dataset._derive(_selection=None) if selection is not None else dataset
        self.shards: list[str] = self.dataset.list_shards()
        self._pid = os.getpid()
        self._fds: dict[int, tuple[int, int, list[str], list[int], list[int]]] = {}
        self._stamps: dict[str, tuple[int, int]] = {}  # random mode: the local shards read
        if mode == "random" and self.dataset._shared.local():
            self._stamps = stamps(self.shards)
        self._memory = False  # stream mode, iterating: shards held in memory, not in files
        self._temp = cache_dir is None and mode == "stream"
        self._owner: int | None = None  # the private temporary cache's owner lock (_torch_tmp)
        self.cache: ShardCache | None = None
        filtered = any(op == "filter" for op, _ in self.dataset._ops)
        self.counts: np.ndarray | None = None  # stream mode: samples per shard, -1 unknown
        self.starts: np.ndarray | None = None
        self.lazy = False
        self._size: int | None = None
        self._selection: np.ndarray | None = None
        self.kept: np.ndarray | None = None  # sorted positions that take part (None: all)
        self._kept_by: list[np.ndarray] | None = None  # stream mode: kept indexes per shard
        if mode == "stream":
            directory, limit, self._owner = cache_place(cache_dir, cache_limit)
            self.cache = ShardCache(directory, limit, direct=self.dataset._shared.local())
            if verify:
                self.cache.expect = from_infos(self.dataset._infos)
        try:
            self._plan(selection, filtered, need_counts)
        except BaseException:  # (a private temporary cache made above goes with the failure)
            self.release(self._pid)
            raise
        if verify and self.cache is not None:  # (shards whose manifest was not read for counts)
            self.cache.lookup = PublishedDigests(self.dataset.source)

    def _plan(self, selection: Any, filtered: bool, need_counts: bool) -> None:
        """Counts, the positions that take part and the size (see the class notes)."""
        if self.mode == "stream":
            known = self.dataset._shared.counts
            self.counts = np.asarray([known.get(s, -1) for s in self.shards], dtype=np.int64)
            self._given = self.counts >= 0  # counts the shards must be checked against
            if need_counts or selection is not None or filtered:
                self.ensure_counts()
            else:
                self.lazy = bool((self.counts < 0).any())
            total = -1 if self.lazy else int(self.counts.sum())
        else:
            total = self.dataset._shared.base_len()
        if selection is not None:
            self._selection = np.asarray(selection, dtype=np.int64)
            if len(self._selection) and (
                self._selection.min() < 0 or self._selection.max() >= total
            ):
                raise ConfigError(f"a selected position is out of range for {total} samples")
            self.kept = np.sort(self._selection)
        if filtered:  # (a selection's survivors keep its order: random mode reads them so)
            passed = self._filter_pass(self._selection, total)
            self._selection = passed if self._selection is not None else None
            self.kept = np.sort(passed)
        if self.kept is not None and self.starts is not None:
            b = np.searchsorted(self.kept, self.starts)
            self._kept_by = [
                self.kept[b[s] : b[s + 1]] - self.starts[s] for s in range(len(self.shards))
            ]
        if not self.lazy:
            self._size = total if self.kept is None else len(self.kept)

    # -- sizes ---------------------------------------------------------------------------------
    @property
    def size(self) -> int:
        """Samples that take part (stream mode with unknown counts: counts every shard first)."""
        if self._size is None:
            self.ensure_counts()
            assert self.counts is not None
            self._size = int(self.counts.sum())
        return self._size

    def ensure_counts(self) -> None:
        """Know every shard's count: manifests beside remote shards, else fetch and count."""
        counts, cache, src = self.counts, self.cache, self.dataset.source
        assert counts is not None and cache is not None
        todo = [j for j in range(len(self.shards)) if counts[j] < 0]
        if todo:
            with ThreadPoolExecutor(min(_COUNT_THREADS, len(todo))) as pool:
                found = pool.map(lambda j: _published(src, self.shards[j]), todo)
                for j, hit in zip(todo, found, strict=True):
                    if hit is not None:
                        counts[j] = hit[0]
                        self._given[j] = True
                    if self.verify:  # (its manifest, or that there is none, is known now)
                        cache.settle(self.shards[j], None if hit is None else hit[1])
                rest = [j for j in todo if counts[j] < 0]
                # into the cache directory: counting every shard never holds them all in memory
                counted = pool.map(lambda j: self.count_of(j, False), rest)
                for j, n in zip(rest, counted, strict=True):
                    counts[j] = n
        self.starts = np.concatenate(([0], np.cumsum(counts)))
        self.lazy = False

    def count_of(self, s: int, memory: bool | None = None) -> int:
        """Samples of shard ``s`` that take part (a shard of unknown size is fetched to count it:
        into memory while a single process iterates, else into the cache directory)."""
        if self._kept_by is not None:
            return len(self._kept_by[s])
        counts = self.counts
        assert counts is not None
        n = int(counts[s])
        if n < 0:
            assert self.cache is not None
            shard = self.shards[s]
            held = self._memory if memory is None else memory
            n = counts[s] = self.cache.count(self.dataset.source, shard, held)
            self.dataset._shared.counts[shard] = n
        return n

    def codes_of(self, s: int) -> np.ndarray:
        """The codes (see :class:`~atdata.dataset._torch_plan.StreamWalk`) of shard ``s``."""
        if self._kept_by is not None:
            return (s << SHIFT) | self._kept_by[s]
        return (s << SHIFT) | np.arange(self.count_of(s), dtype=np.int64)

    def _check(self, s: int) -> None:
        """A shard whose count came from shard infos or a manifest must hold that many."""
        assert self.cache is not None and self.counts is not None
        shard = self.shards[s]
        n = self.cache.count(self.dataset.source, shard, self._memory)
        if self._given[s] and n != self.counts[s]:
            raise IntegrityError(
                f"shard {shard} holds {n} samples but its shard info or manifest says "
                f"{int(self.counts[s])}; fix or drop the stale record (shard_infos=, "
                f"atdata manifest build {shard} --force)"
            )

    def _filter_pass(self, candidates: np.ndarray | None, total: int) -> np.ndarray:
        """Positions (among ``candidates``, default all) whose sample the dataset's filter keeps."""
        ds = self.dataset
        positions = range(total) if candidates is None else candidates.tolist()
        kept = []
        for p in positions:  # (one at a time: a sample on_error="skip" leaves out has no raw)
            for _ in ds._with_ops(ds._decoded(self._raws((p,)))):
                kept.append(p)
        return np.asarray(kept, dtype=np.int64)

    def universe(self) -> np.ndarray | None:
        """Random mode's positions, in the dataset's own order (a selection keeps its order);
        ``None``: all of them, in order."""
        if self._selection is not None:
            return self._selection
        return self.kept

    # -- reading -------------------------------------------------------------------------------
    def __getstate__(self) -> dict[str, Any]:  # spawned workers open their own files
        return {**self.__dict__, "_fds": {}}

    def _raws(self, positions: Any) -> Iterator[tuple[str, str, dict]]:
        """``(shard, key, payload map)`` of each position, in order (a payload that does not
        decode raises, or under ``on_error="skip"`` is recorded and left out)."""
        if self.cache is None:
            if self.dataset._shared.local():
                yield from self._local_raws(positions)
            else:
                yield from self.dataset._shared.raw_selection(positions)
            return
        starts, shards, src, cache = self.starts, self.shards, self.dataset.source, self.cache
        assert starts is not None
        for p in positions:
            s = int(np.searchsorted(starts, p, side="right")) - 1
            try:
                key, raw = cache.raw(src, shards[s], int(p - starts[s]))
            except DecodeError as exc:
                self._unreadable(shards[s], int(p - starts[s]), exc, False)
                continue
            yield shards[s], key, raw

    def _unreadable(self, shard: str, i: int, exc: DecodeError, memory: bool) -> None:
        """Sample ``i`` of ``shard`` (in the shard cache) does not decode: raise ``exc``, or
        under ``on_error="skip"`` record it, and its item goes without it."""
        assert self.cache is not None
        key = self.cache.entry(self.dataset.source, shard, i, memory)[1]
        self.dataset._bad(shard, key, exc)

    def _local_raws(self, positions: Any, payloads: bool = False) -> Iterator[Any]:
        """Random mode over local files: one ``pread`` per sample through the member indexes
        (a read that comes back short or does not decode to a map is read again the checked
        way, which raises the error that names it). With ``payloads``, entries as
        :meth:`entries` gives them."""
        shared = self.dataset._shared
        shards, ends = shared.cumulative()
        fds = self._fds
        for p in positions:
            s = bisect.bisect_right(ends, p)
            shard = shards[s]
            hit = fds.get(s)
            if hit is None:
                if len(fds) >= 256:
                    self.close_files()
                path = shard[7:] if shard.startswith("file://") else shard
                try:
                    fd = os.open(path, os.O_RDONLY | getattr(os, "O_CLOEXEC", 0))
                except OSError:  # the checked read raises the error that names it
                    fd = -1
                    idx = shared.shard_index(shard)
                else:
                    check_stamp(fd, shard, self._stamps.get(shard))
                    try:  # (the table's index may predate a change made before to_torch())
                        idx = shared.index_for_fd(shard, fd)
                    except BaseException:
                        os.close(fd)
                        raise
                hit = fds[s] = (fd, ends[s - 1] if s else 0, idx.keys, idx.offsets, idx.sizes)
            fd, begin, keys, offsets, sizes = hit
            i = p - begin
            size = sizes[i]
            raw: Any = None
            if fd >= 0:
                data = os.pread(fd, size, offsets[i])
                if len(data) == size:
                    if payloads:  # decoded by the caller (see entries)
                        yield shard, keys[i], memoryview(data), 0, size
                        continue
                    try:
                        raw = _unpackb(data)
                    except Exception:
                        raw = None
            if type(raw) is not dict:
                try:
                    raw = shared.read_member(shard, keys[i], i)
                except DecodeError as exc:  # (raised, or on_error="skip": recorded, left out)
                    self.dataset._bad(shard, keys[i], exc)
                    continue
            yield (shard, keys[i], raw, 0, 0) if payloads else (shard, keys[i], raw)

    def entries_ok(self) -> bool:
        """Whether :meth:`items` and :meth:`stream_items` can give undecoded payloads."""
        return self.cache is not None or self.dataset._shared.local()

    def decoded(self, entries: list[tuple[str, str, Any, int, int]]) -> list[tuple[str, str, dict]]:
        """``(shard, key, payload map)`` of undecoded entries ``(shard, key, view, offset,
        size)`` (a payload map in place of ``view`` is taken as it is), in order.

        Raises:
            DecodeError: For the first payload that is not a msgpack map, as reading it decoded
                would (the error names the shard and the sample).
        """
        out = []
        shared = self.dataset._shared
        raw: Any
        for shard, key, view, off, size in entries:
            if type(view) is dict:
                raw = view
            elif self.cache is not None:
                raw = checked_unpack(view, off, size, shard, key)
            else:  # random mode: what _local_raws does with a read that does not decode
                try:
                    raw = _unpackb(view[off : off + size])
                except Exception:
                    raw = None
                if type(raw) is not dict:
                    raw = shared.read_member(shard, key)
            out.append((shard, key, raw))
        return out

    def close_files(self) -> None:
        """Close the shard files random mode opened."""
        for hit in self._fds.values():
            if hit[0] >= 0:
                with contextlib.suppress(OSError):
                    os.close(hit[0])
        self._fds.clear()

    def _after_fork(self) -> None:
        if os.getpid() != self._pid:  # a forked worker: drop connections the parent opened
            hook = getattr(self.dataset.source, "after_fork", None)
            if hook is not None:
                hook()
            self._pid = os.getpid()

    def items(
        self,
        positions: Callable[[np.ndarray], np.ndarray],
        span: tuple[int, int, int, bool],
        worker: tuple[int, int],
        assemble: Callable[[list[Any]], Any],
        payloads: bool = False,
    ) -> Iterator[tuple[int, Any]]:
        """Random mode: ``(hi, item)`` for the items of ``span`` (``(start, end, size,
        drop_last)`` in slots) that fall to ``worker`` (``(id, count)``: item ``k`` goes to
        worker ``k % count``); ``positions`` maps slots to dataset positions. ``assemble``
        takes the item's ``(shard, key, payload map)`` triples, or with ``payloads`` its
        undecoded entries (see :meth:`decoded`; local shards only, see :meth:`entries_ok`)."""
        self._after_fork()
        self.close_files()  # (each loop opens them again: a shard replaced since is seen)
        start, end, size, drop_last = span
        wid, nw = worker
        mine = range(wid, item_count(end, start, size, drop_last), nw)
        group = max(1, _GROUP // size)  # items whose positions are computed together
        for g in range(0, len(mine), group):
            los = [start + k * size for k in mine[g : g + group]]
            bounds = [(lo, min(lo + size, end)) for lo in los]
            pos = positions(np.concatenate([np.arange(lo, hi) for lo, hi in bounds])).tolist()
            off = 0
            for lo, hi in bounds:
                part = pos[off : off + hi - lo]
                if payloads:
                    yield hi, assemble(self._read_entries(part))
                else:
                    yield hi, assemble(list(self._raws(part)))
                off += hi - lo

    def _read_entries(self, positions: list[int]) -> list[tuple[str, str, Any, int, int]]:
        """Random mode: the undecoded entries of ``positions`` (an error met while reading
        comes after those of the payloads read before it, as when reading them decoded)."""
        entries: list[tuple[str, str, Any, int, int]] = []
        try:
            entries.extend(self._local_raws(positions, True))
        except Exception:
            self.decoded(entries)
            raise
        return entries

    def stream_items(
        self,
        walk: StreamWalk,
        start: int,
        size: int,
        drop_last: bool,
        worker: tuple[int, int],
        assemble: Callable[[list[Any]], Any],
        window: int,
        memory: bool = False,
        payloads: bool = False,
    ) -> Iterator[tuple[int, Any]]:
        """Stream mode: ``(hi, item)`` for the items from slot ``start`` (``size`` slots each,
        the last one shorter or, with ``drop_last``, dropped) that fall to ``worker``
        (``(id, count)``: item ``k`` goes to worker ``k % count``; ``memory``: remote shards
        held in this process's memory instead of cache files, for a single reading process).
        ``assemble`` takes the item's ``(shard, key, payload map)`` triples, or with
        ``payloads`` its undecoded entries (see :meth:`decoded`), whose views it must not keep."""
        self._after_fork()
        wid, nw = worker
        shards, src, cache = self.shards, self.dataset.source, self.cache
        assert cache is not None
        self._memory = memory
        seq = [shards[s] for s in walk.seq()]
        pre = Prefetch(cache, src, seq, self._ahead(window), memory)
        pre.start()
        wins = walk.windows(start)
        cur, cur_lo, done = np.zeros(0, dtype=np.int64), -1, False
        checked: set[int] = set()
        try:
            for k in itertools.count():
                lo = start + k * size
                hi = lo + size
                while not done and (cur_lo < 0 or cur_lo + len(cur) < hi):
                    nxt = next(wins, None)
                    if nxt is None:
                        done = True
                        break
                    if cur_lo < 0:
                        cur_lo, cur = nxt
                    else:
                        cur = np.concatenate((cur[lo - cur_lo :], nxt[1]))
                        cur_lo = lo
                    pre.ahead = self._ahead(window)
                    # the shards still read (bincount: np.unique imports numpy.ma, ~60 ms)
                    rest = np.flatnonzero(np.bincount(cur[lo - cur_lo :] >> SHIFT)).tolist()
                    cache.trim(pre.advance(walk.at + 1, {shards[s] for s in rest}))
                hi = min(hi, cur_lo + len(cur))
                if cur_lo < 0 or hi <= lo or (drop_last and hi - lo < size):
                    return
                if k % nw != wid:
                    continue
                codes = cur[lo - cur_lo : hi - cur_lo].tolist()
                raws: list[Any]
                if payloads:  # (their shards stay open until the item is made)
                    raws = self._stream_entries(codes, checked, memory)
                else:
                    raws = []
                    for c in codes:
                        s = c >> SHIFT
                        if s not in checked:
                            self._check(s)
                            checked.add(s)
                        try:
                            key, raw = cache.raw(src, shards[s], c & _LOW, memory)
                        except DecodeError as exc:
                            self._unreadable(shards[s], c & _LOW, exc, memory)
                            continue
                        raws.append((shards[s], key, raw))
                try:
                    item = assemble(raws)
                finally:
                    raws = []  # (views into shards the next step may close)
                    cache.pinned.clear()
                yield hi, item
        finally:
            pre.stop()
            cache.pinned.clear()
            self._memory = False

    def _stream_entries(
        self, codes: list[int], checked: set[int], memory: bool
    ) -> list[tuple[str, str, Any, int, int]]:
        """Stream mode: the undecoded entries of ``codes`` (an error met while reading comes
        after those of the payloads read before it, as when reading them decoded)."""
        shards, src, cache = self.shards, self.dataset.source, self.cache
        assert cache is not None
        entries: list[tuple[str, str, Any, int, int]] = []
        add = entries.append
        held: dict[int, tuple[str, Any, Any, Any, Any]] = {}  # this batch's shards, open
        try:
            for c in codes:
                s = c >> SHIFT
                hit = held.get(s)
                if hit is None:
                    if s not in checked:
                        self._check(s)
                        checked.add(s)
                    cache.pinned.add(shards[s])
                    loc = cache.local(src, shards[s], memory)
                    hit = held[s] = (shards[s], loc.keys, loc.view, loc.offsets, loc.sizes)
                shard, keys, view, offs, sizes = hit
                i = c & _LOW
                add((shard, keys[i], view, offs[i], sizes[i]))
        except Exception:
            self.decoded(entries)
            raise
        return entries

    def _ahead(self, window: int) -> int:
        """Shards to fetch ahead of the walk: the next window's worth, and two more."""
        counts = self.counts
        assert counts is not None
        known = counts[counts > 0]
        if not len(known):  # nothing counted yet: set again after the first window
            return 3
        mean = max(1, int(known.mean()))
        return 2 + min(len(self.shards), -(-window // mean))

    def release(self, owner_pid: int) -> None:
        """Close files; remove a private temporary cache (only in the process that made it)."""
        self.close_files()
        if self.cache is None:
            return
        self.cache.close()
        if self._temp and os.getpid() == owner_pid:
            self.cache.remove()
            release_owner(self._owner)
            self._owner = None


def _published(source: Any, shard: str) -> tuple[int, Expected | None] | None:
    """Samples in a remote shard according to a manifest published beside it, and the shard
    digest it records (``None``: no such manifest)."""
    if not is_remote(shard):
        return None
    from atdata.manifest._read import load_manifest

    try:
        m = load_manifest(shard, source)
    except (AtdataError, OSError, ValueError):
        return None
    if m is None or m.legacy or not isinstance(m.num_samples, int):
        return None
    return m.num_samples, from_manifest(m)


class PublishedDigests:
    """The digest a manifest published beside a remote shard records, looked up before the
    shard is fetched (a shard streamed without counts, whose manifest was never read). Where the
    first shard looked up has no manifest, none is looked for again: one request per dataset,
    not one per shard, for shards published without manifests."""

    def __init__(self, source: Any) -> None:
        self.source = source
        self._none = False
        self._first = True
        self._mu = threading.Lock()
        fresh_after_fork(self, "_mu")

    def __getstate__(self) -> dict[str, Any]:  # (a worker looks up for itself)
        return {"source": self.source}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__init__(state["source"])  # type: ignore[misc]

    def __call__(self, shard: str) -> Expected | None:
        if self._none:
            return None
        with self._mu:
            first, self._first = self._first, False
            if first:  # (alone: the others wait to know whether any is published)
                hit = _published(self.source, shard)
                self._none = hit is None
                return None if hit is None else hit[1]
        if self._none:
            return None
        hit = _published(self.source, shard)
        return None if hit is None else hit[1]
