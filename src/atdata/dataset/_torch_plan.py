"""The per-epoch order of :class:`~atdata.dataset._torch.TorchDataset`: which sample positions a
rank reads, in which order, for both reading modes.

Everything here is a pure function of the configuration (sizes, rank, seed, epoch), never of the
number of DataLoader workers, so a position in a rank's order identifies what was delivered.

- ``"random"`` mode: one global permutation of the positions, cut to equal per-rank lengths by the
  ``policy`` and dealt to ranks round-robin (:func:`rank_slots`); the permutation is a seeded
  Feistel network (:class:`Permutation`), so any slot's position is computed on its own and no
  order array is kept.
- ``"stream"`` mode: shards in a seeded order, concatenated; each rank takes one contiguous span
  (so it touches about ``1/world_size`` of the shards), shuffled within consecutive windows of
  ``window`` samples, the first few smaller (:func:`window_bounds`): every shard is needed during
  one window only. :class:`StreamWalk` produces the span window by window and asks for a shard's
  count only when it reaches it, so one rank can start on shards of unknown size.

Examples:
    >>> rank_slots(7, 0, 3, "drop_last", None, 0), rank_slots(7, 2, 3, "pad", None, 0)
    ([0, 3], [2, 5, 1])
    >>> stream_slots([4, 3], 1, 2, "pad", None, 0, 8).tolist()  # shards of 4 and 3 samples
    [4, 5, 6, 0]
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence

import numpy as np

from atdata._errors import ConfigError

__all__ = [
    "Permutation",
    "StreamWalk",
    "item_count",
    "per_rank",
    "rank_order",
    "rank_positions",
    "rank_slots",
    "shard_order",
    "stream_slots",
    "window_bounds",
]

POLICIES = ("drop_last", "pad")
_STREAM_SALT = 0x5EED


def item_count(n: int, start: int, size: int, drop_last: bool) -> int:
    """Items of ``size`` slots from slot ``start`` of ``n`` (the last one shorter, or dropped).

    Examples:
        >>> item_count(10, 0, 4, False), item_count(10, 0, 4, True), item_count(10, 8, 4, False)
        (3, 2, 1)
    """
    left = max(0, n - start)
    return left // size if drop_last else -(-left // size)


def per_rank(n: int, world_size: int, policy: str) -> int:
    """Samples each rank gets from ``n`` (the same for every rank): with ``"drop_last"`` 0 when
    there are fewer samples than ranks, and 0 for an empty dataset under either policy, so every
    rank runs the same (empty) epoch and steps the same number of times.

    Raises:
        ConfigError: Unknown policy.

    Examples:
        >>> per_rank(10, 4, "drop_last"), per_rank(10, 4, "pad"), per_rank(3, 4, "drop_last")
        (2, 3, 0)
        >>> per_rank(0, 1, "drop_last"), per_rank(0, 2, "pad")
        (0, 0)
    """
    if policy not in POLICIES:
        raise ConfigError(f"policy must be 'drop_last' or 'pad', got {policy!r}")
    if policy == "drop_last":
        return n // world_size
    return -(-n // world_size)


def _check_rank(rank: int, world_size: int) -> None:
    if world_size < 1 or not 0 <= rank < world_size:
        raise ConfigError(f"rank {rank} is not in range for world_size {world_size}")


def _rng(*parts: int) -> np.random.Generator:
    return np.random.default_rng([p & 0xFFFFFFFFFFFFFFFF for p in parts])


_ROUNDS = 4
_PERM_SALT = 0xFE15


def _mix(z: np.ndarray) -> np.ndarray:
    """A 64-bit mixing function (splitmix64's finaliser) over ``uint64`` arrays."""
    z = z * np.uint64(0xBF58476D1CE4E5B9)
    z ^= z >> np.uint64(31)
    z = z * np.uint64(0x94D049BB133111EB)
    return z ^ (z >> np.uint64(29))


class Permutation:
    """A seeded bijection of ``range(n)`` evaluated element by element in O(1) memory: a
    balanced Feistel network over the smallest even power of two >= ``n``, walked in cycles
    until the value falls inside ``range(n)`` (fewer than four steps on average).

    Examples:
        >>> p = Permutation(10, 5, 0)
        >>> sorted(p(np.arange(10)).tolist()) == list(range(10))
        True
    """

    def __init__(self, n: int, seed: int, epoch: int) -> None:
        bits = max(2, (n - 1).bit_length())
        bits += bits & 1
        self.n = n
        self.half = np.uint64(bits // 2)
        self.mask = np.uint64((1 << (bits // 2)) - 1)
        self.keys = _rng(seed, epoch, _PERM_SALT).integers(
            0, np.iinfo(np.uint64).max, size=_ROUNDS, dtype=np.uint64, endpoint=True
        )

    def _step(self, x: np.ndarray) -> np.ndarray:
        h, m = self.half, self.mask
        left, right = x >> h, x & m
        for k in self.keys:
            left, right = right, left ^ (_mix(right ^ k) & m)
        return (left << h) | right

    def __call__(self, idx: np.ndarray) -> np.ndarray:
        """The images of ``idx`` (integers in ``range(n)``)."""
        x = self._step(np.asarray(idx, dtype=np.uint64))
        out = x >= self.n
        while out.any():
            x[out] = self._step(x[out])
            out = x >= self.n
        return x.astype(np.int64)


def rank_positions(
    universe: np.ndarray | None,
    n: int,
    rank: int,
    world_size: int,
    policy: str,
    seed: int | None,
    epoch: int,
    slots: np.ndarray,
) -> np.ndarray:
    """Random-access mode: the positions at ``slots`` of rank ``rank``'s order in ``epoch``,
    computed from the slots alone (O(1) memory beyond ``universe``).

    The order is a seeded permutation of the ``n`` positions (``universe``, default
    ``range(n)``), cut to ``per_rank * world_size`` slots (padding repeats from the start) and
    dealt to ranks round-robin.
    """
    g = np.asarray(slots, dtype=np.int64) * world_size + rank
    g %= n  # padding wraps around; drop_last never gets there
    p = g if seed is None else Permutation(n, seed, epoch)(g)
    return p if universe is None else universe[p]


def rank_order(
    universe: np.ndarray,
    rank: int,
    world_size: int,
    policy: str,
    seed: int | None,
    epoch: int,
) -> np.ndarray:
    """Random-access mode: the positions (entries of ``universe``) rank ``rank`` reads in ``epoch``.

    Raises:
        ConfigError: An unknown policy, or a rank out of range.
    """
    _check_rank(rank, world_size)
    per = per_rank(len(universe), world_size, policy)
    return rank_positions(
        universe, len(universe), rank, world_size, policy, seed, epoch, np.arange(per)
    )


def rank_slots(
    n: int, rank: int, world_size: int, policy: str, seed: int | None, epoch: int
) -> list[int]:
    """The sample positions of ``range(n)`` rank ``rank`` reads in ``epoch`` (random-access mode).

    Raises:
        ConfigError: An unknown policy, or a rank out of range.

    Examples:
        >>> rank_slots(10, 0, 4, "drop_last", None, 0)
        [0, 4]
    """
    return rank_order(np.arange(n), rank, world_size, policy, seed, epoch).tolist()


def stream_slots(
    counts: Sequence[int] | np.ndarray,
    rank: int,
    world_size: int,
    policy: str,
    seed: int | None,
    epoch: int,
    window: int,
    universe: np.ndarray | None = None,
) -> np.ndarray:
    """Streaming mode: the positions rank ``rank`` reads in ``epoch``.

    Args:
        counts: Samples per shard, in the dataset's shard order (positions count through them).
        rank: This rank.
        world_size: Number of ranks.
        policy: ``"drop_last"`` or ``"pad"``.
        seed: Shuffle seed, or ``None`` for the stored order.
        epoch: The epoch (a new order each epoch when shuffling).
        window: Samples shuffled together (the shuffle buffer).
        universe: Sorted positions that take part (a selection or a filter); default all.

    Raises:
        ConfigError: An unknown policy, or a rank out of range.
    """
    _check_rank(rank, world_size)
    if window < 1:
        raise ConfigError(f"shuffle window must be >= 1 sample, got {window}")
    counts = np.asarray(counts, dtype=np.int64)
    starts = np.concatenate(([0], np.cumsum(counts)))
    if universe is None:
        universe = np.arange(int(starts[-1]), dtype=np.int64)
    bounds = np.searchsorted(universe, starts)
    kept = [universe[bounds[s] : bounds[s + 1]] - starts[s] for s in range(len(counts))]
    per = per_rank(len(universe), world_size, policy)
    walk = StreamWalk(
        shard_order(len(counts), seed, epoch),
        lambda s: len(kept[s]),
        lambda s: (s << SHIFT) | kept[s],
        rank * per,
        per,
        None if seed is None else (seed, epoch, rank),
        window,
    )
    parts = [w for _lo, w in walk.windows()]
    codes = np.concatenate(parts) if parts else np.zeros(0, dtype=np.int64)
    return starts[codes >> SHIFT] + (codes & _LOW)


# -- streaming mode, walked lazily -----------------------------------------------------------
SHIFT = 32  # a sample is coded ``shard << SHIFT | index in shard`` (shards of < 2**32 samples)
_LOW = (1 << SHIFT) - 1
_RAMP = 16  # the first window of an epoch holds window // _RAMP samples; each next one twice that


def window_bounds(window: int, upto: int) -> list[int]:
    """Slot boundaries ``[0, b1, b2, ...]`` of the shuffle windows up to the first >= ``upto``.

    The first windows of an epoch ramp up (``window // 16``, then twice that, ... up to
    ``window``), so the first item needs one shard's worth of samples, not a whole window's.

    Examples:
        >>> window_bounds(16, 40)
        [0, 1, 3, 7, 15, 31, 47]
    """
    out, size = [0], max(1, window // _RAMP)
    while out[-1] < upto:
        out.append(out[-1] + size)
        size = min(window, size * 2)
    return out


def shard_order(num_shards: int, seed: int | None, epoch: int) -> list[int]:
    """Streaming mode's shard order in ``epoch`` (seeded, or the stored order)."""
    if seed is None:
        return list(range(num_shards))
    return _rng(seed, epoch, _STREAM_SALT).permutation(num_shards).tolist()


class StreamWalk:
    """One rank's sample codes in one epoch of streaming mode, produced window by window.

    The rank reads the slots ``[lo, lo + length)`` of the shards concatenated in ``order``
    (wrapping around to the start when padding), shuffled within windows (:func:`window_bounds`).
    Counts come from ``count(shard)``, called only when the walk reaches that shard, so a walk
    over shards of unknown size fetches each one as it goes (``length=None``: to the end).

    Args:
        order: Shard indices in this epoch's order.
        count: Samples of a shard that take part (may fetch the shard).
        codes: The codes of a shard's samples that take part (after ``count``).
        lo: The rank's first slot in the concatenation.
        length: Slots of the rank (``None``: all from ``lo``, however many there are).
        rng_parts: ``(seed, epoch, rank)`` for the window shuffles, or ``None``: no shuffle.
        window: The shuffle window in samples.
    """

    def __init__(
        self,
        order: list[int],
        count: Callable[[int], int],
        codes: Callable[[int], np.ndarray],
        lo: int,
        length: int | None,
        rng_parts: tuple[int, int, int] | None,
        window: int,
    ) -> None:
        self.order, self.count, self.codes = order, count, codes
        self.lo, self.length = lo, length
        self.rng_parts, self.window = rng_parts, window
        self.at = 0  # index into ``seq()`` of the last shard the walk has touched

    def _visits(self) -> Iterator[tuple[int, int, int]]:
        """``(shard, first, end)``: the part of each shard the span covers, in walk order."""
        pos, end = 0, None if self.length is None else self.lo + self.length
        while self.order:
            before = pos
            for s in self.order:
                n = self.count(s)
                a, b = max(self.lo, pos), pos + n if end is None else min(end, pos + n)
                if b > a or (n == 0 and pos >= self.lo):  # empty shards too: indexes match seq()
                    yield s, max(0, a - pos), max(0, b - pos)
                pos += n
                if end is not None and pos >= end:
                    return
            if end is None or pos == before:
                return  # an unbounded walk ends with the shards; padding wraps around

    def seq(self) -> list[int]:
        """The shards in the order the walk needs them (for prefetching); with a known
        ``length`` exactly those of the span, else the whole order."""
        if self.length is None:
            return list(self.order)
        return [s for s, _a, _b in self._visits()]

    def windows(self, start: int = 0) -> Iterator[tuple[int, np.ndarray]]:
        """``(first slot, codes)`` of each window from the one holding slot ``start``;
        ``at`` follows the index into :meth:`seq` of the shard last read."""
        bounds = window_bounds(self.window, start + 1)
        k = len(bounds) - 2  # the window holding ``start``
        size = bounds[k + 1] - bounds[k]
        wlo = skip = bounds[k]
        buf: list[np.ndarray] = []
        have = 0
        for j, (s, a, b) in enumerate(self._visits()):
            if skip >= b - a:
                skip -= b - a
                continue
            part = self.codes(s)[a + skip : b]
            skip = 0
            self.at = j
            buf.append(part)
            have += len(part)
            while have >= size:
                flat = np.concatenate(buf) if len(buf) > 1 else buf[0]
                yield wlo, self._shuffled(k, flat[:size])
                rest = flat[size:]
                buf, have = ([rest] if len(rest) else []), len(rest)
                wlo, k = wlo + size, k + 1
                size = min(self.window, size * 2)
        if have:
            yield wlo, self._shuffled(k, np.concatenate(buf))

    def _shuffled(self, k: int, codes: np.ndarray) -> np.ndarray:
        if self.rng_parts is None:
            return codes
        out = codes.copy()
        _rng(*self.rng_parts, _STREAM_SALT + 1, k).shuffle(out)
        return out
