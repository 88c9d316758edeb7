"""The per-epoch order of :class:`~atdata.dataset._torch.TorchDataset`: which sample positions a
rank reads, in which order, for both reading modes.

Everything here is a pure function of the configuration (sizes, rank, seed, epoch), never of the
number of DataLoader workers, so a position in a rank's order identifies what was delivered.

- ``"random"`` mode: one global permutation of the positions, cut to equal per-rank lengths by the
  ``policy`` and dealt to ranks round-robin (:func:`rank_slots`).
- ``"stream"`` mode: shards in a seeded order, concatenated; each rank takes one contiguous span
  (so it touches about ``1/world_size`` of the shards), shuffled within consecutive windows of
  ``window`` samples (:func:`stream_slots`): every shard is needed during one window only.

Examples:
    >>> rank_slots(7, 0, 3, "drop_last", None, 0), rank_slots(7, 2, 3, "pad", None, 0)
    ([0, 3], [2, 5, 1])
    >>> stream_slots([4, 3], 1, 2, "pad", None, 0, 8).tolist()  # shards of 4 and 3 samples
    [4, 5, 6, 0]
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from atdata._errors import ConfigError

__all__ = ["per_rank", "rank_order", "rank_slots", "stream_slots"]

POLICIES = ("drop_last", "pad")
_STREAM_SALT = 0x5EED


def per_rank(n: int, world_size: int, policy: str) -> int:
    """Samples each rank gets from ``n`` (the same for every rank).

    Raises:
        ConfigError: Unknown policy, or no sample for some rank.
    """
    if policy not in POLICIES:
        raise ConfigError(f"policy must be 'drop_last' or 'pad', got {policy!r}")
    if policy == "drop_last":
        per = n // world_size
        if per == 0:
            raise ConfigError(
                f"a dataset of {n} samples cannot give each of {world_size} ranks a sample with "
                "policy='drop_last'; use policy='pad' or fewer ranks"
            )
        return per
    if n == 0:
        raise ConfigError("an empty dataset cannot be padded across ranks")
    return -(-n // world_size)


def _check_rank(rank: int, world_size: int) -> None:
    if world_size < 1 or not 0 <= rank < world_size:
        raise ConfigError(f"rank {rank} is not in range for world_size {world_size}")


def _cut(order: np.ndarray, world_size: int, policy: str) -> np.ndarray:
    """``order`` trimmed (drop_last) or wrapped (pad) to ``per_rank * world_size`` entries."""
    total = per_rank(len(order), world_size, policy) * world_size
    if total <= len(order):
        return order[:total]
    return np.resize(order, total)  # repeats from the start


def _rng(*parts: int) -> np.random.Generator:
    return np.random.default_rng([p & 0xFFFFFFFFFFFFFFFF for p in parts])


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
        ConfigError: When the configuration cannot give every rank the same number of samples.
    """
    _check_rank(rank, world_size)
    order = universe if seed is None else _rng(seed, epoch).permutation(universe)
    return _cut(order, world_size, policy)[rank::world_size]


def rank_slots(
    n: int, rank: int, world_size: int, policy: str, seed: int | None, epoch: int
) -> list[int]:
    """The sample positions of ``range(n)`` rank ``rank`` reads in ``epoch`` (random-access mode).

    Raises:
        ConfigError: When the configuration cannot give every rank the same number of samples.

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
        ConfigError: When the configuration cannot give every rank the same number of samples.
    """
    _check_rank(rank, world_size)
    if window < 1:
        raise ConfigError(f"shuffle window must be >= 1 sample, got {window}")
    cum = np.cumsum(np.asarray(counts, dtype=np.int64))
    if universe is None:
        universe = np.arange(int(cum[-1]) if len(cum) else 0, dtype=np.int64)
    bounds = np.searchsorted(universe, np.concatenate(([0], cum)))
    shards = np.arange(len(cum))
    if seed is not None:
        shards = _rng(seed, epoch, _STREAM_SALT).permutation(shards)
    parts = [universe[bounds[s] : bounds[s + 1]] for s in shards]
    order = np.concatenate(parts) if parts else universe[:0]
    per = per_rank(len(order), world_size, policy)
    span = _cut(order, world_size, policy)[rank * per : (rank + 1) * per]
    if seed is None:
        return span
    rng = _rng(seed, epoch, rank, _STREAM_SALT + 1)
    out = span.copy()
    for lo in range(0, len(out), window):
        rng.shuffle(out[lo : lo + window])
    return out
