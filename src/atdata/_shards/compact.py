"""Compact in-memory member indexes: integer arrays for offsets and sizes, one packed string
for the keys (:class:`MemberKeys`), and a :class:`KeyLookup` of 64-bit key hashes for lookups
by key (see :mod:`atdata._shards.members`, which builds and persists them).

Examples:
    >>> idx = ShardIndex(["a", "b"], [512, 1536], [10, 20])
    >>> list(idx.keys), list(idx.offsets), idx.position("b"), idx.as_dict()["a"]
    (['a', 'b'], [512, 1536], 1, (512, 10))
    >>> compact_ints([1, 2]).typecode, compact_ints([1 << 40]).typecode
    ('I', 'q')
"""

from __future__ import annotations

import bisect
import itertools
import operator
from array import array
from collections.abc import Iterable, Iterator, Sequence
from typing import Any, overload

__all__ = ["KeyLookup", "MemberKeys", "ShardIndex", "compact_ints"]

_key_hash = hash  # 64-bit, per process (tests replace it to force collisions)


_U32 = array("I").itemsize  # 4 on every platform numpy supports; checked, not assumed


def compact_ints(values: Iterable[int]) -> array:
    """``values`` as a compact array: 4 bytes each when all fit in ``uint32``, else 8 (signed).

    Raises:
        OverflowError: For a value outside the signed 64-bit range.
    """
    import numpy as np

    if isinstance(values, (list, tuple, array, np.ndarray)):
        a = np.asarray(values, dtype=np.int64)
    else:
        a = np.fromiter(values, dtype=np.int64)
    if _U32 != 4 or (a.size and (int(a.min()) < 0 or int(a.max()) > 0xFFFFFFFF)):
        return array("q", a.tobytes())
    return array("I", a.astype(np.uint32).tobytes())


class MemberKeys(Sequence[str]):
    """The keys of one shard, packed: one string holding them all and an array of where each
    ends (about ``len(key) + 4`` bytes per key instead of a Python ``str`` each)."""

    __slots__ = ("_ends", "_text")

    def __init__(self, keys: Iterable[str]) -> None:
        keys = list(keys) if not isinstance(keys, list) else keys
        self._text = "".join(keys)
        self._ends = compact_ints(itertools.accumulate(map(len, keys)))

    def __len__(self) -> int:
        return len(self._ends)

    @overload
    def __getitem__(self, i: int) -> str: ...
    @overload
    def __getitem__(self, i: slice) -> list[str]: ...
    def __getitem__(self, i: int | slice) -> str | list[str]:
        ends = self._ends
        if type(i) is int and i > 0:  # the hot path (ds[i], to_torch): ends[i] checks the range
            return self._text[ends[i - 1] : ends[i]]
        if isinstance(i, slice):
            return [self[j] for j in range(*i.indices(len(self)))]
        i = operator.index(i)
        if i < 0:
            i += len(ends)
            if i < 0:
                raise IndexError(f"member position {i - len(ends)} out of range ({len(ends)})")
        end = ends[i]  # raises IndexError when out of range
        return self._text[ends[i - 1] if i else 0 : end]

    def __iter__(self) -> Iterator[str]:
        text, start = self._text, 0
        for end in self._ends:
            yield text[start:end]
            start = end

    def __eq__(self, other: object) -> bool:
        if isinstance(other, MemberKeys):
            return self._text == other._text and list(self._ends) == list(other._ends)
        if isinstance(other, (list, tuple)):
            return len(other) == len(self) and all(a == b for a, b in zip(self, other, strict=True))
        return NotImplemented

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        return repr(list(self))

    def nbytes(self) -> int:
        """Bytes held by the packed keys (not counting the object headers)."""
        return len(self._text.encode("utf-8")) + self._ends.itemsize * len(self._ends)


class KeyLookup:
    """Key -> position over the keys of one or more shards in order: a sorted array of 64-bit
    key hashes, the positions they belong to, and a bucket table over the top hash bits that
    narrows each search to a few entries (about 14-18 bytes per key in all). A hit is confirmed
    against the stored key, so a hash collision never misleads; among equal keys the first
    position (the first shard) wins. Hashes are per process: a pickled lookup is rebuilt.

    Args:
        parts: The key sequences, in order (e.g. one per shard).

    Examples:
        >>> look = KeyLookup([["a", "b"], ["c", "a"]])
        >>> look.find("a"), look.find("c"), look.find("z")
        ((0, 0), (1, 0), None)
    """

    __slots__ = ("_buckets", "_hashes", "_order", "_parts", "_shift", "_starts")

    def __init__(self, parts: Sequence[Sequence[str]]) -> None:
        import numpy as np

        self._parts = [p if isinstance(p, MemberKeys) else MemberKeys(p) for p in parts]
        self._starts = list(itertools.accumulate((len(p) for p in self._parts), initial=0))
        total = self._starts[-1]
        hashes = np.fromiter(
            (_key_hash(k) for p in self._parts for k in p), dtype=np.int64, count=total
        )
        order = np.argsort(hashes, kind="stable")  # equal hashes keep position order
        hashes = hashes[order]
        self._hashes = array("q", hashes.tobytes())
        self._order = compact_ints(order.tolist()) if total < 4096 else _np_compact(order)
        bits = max(1, min(30, total.bit_length() - 1))  # one bucket per 1-2 keys
        self._shift = 64 - bits
        top = (hashes.view(np.uint64) ^ np.uint64(1 << 63)) >> np.uint64(self._shift)
        starts = np.searchsorted(top, np.arange((1 << bits) + 1, dtype=np.uint64))
        self._buckets = _np_compact(starts)

    def __reduce__(self) -> tuple[Any, ...]:  # str hashes differ between processes: rebuilt
        return (KeyLookup, (self._parts,))

    def find(self, key: str) -> tuple[int, int] | None:
        """``(part, position in part)`` of the first occurrence of ``key``, or ``None``."""
        hashes, h = self._hashes, _key_hash(key)
        b = (h + (1 << 63)) >> self._shift  # the top bits of the hash read unsigned
        lo, hi = self._buckets[b], self._buckets[b + 1]
        i = bisect.bisect_left(hashes, h, lo, hi)
        starts = self._starts
        while i < hi and hashes[i] == h:
            g = self._order[i]
            p = bisect.bisect_right(starts, g) - 1
            j = g - starts[p]
            part = self._parts[p]
            ends = part._ends
            if part._text[ends[j - 1] if j else 0 : ends[j]] == key:
                return p, j
            i += 1
        return None


def _np_compact(a: Any) -> array:
    """A numpy integer array as a compact :class:`array.array` (see :func:`compact_ints`)."""
    import numpy as np

    if len(a) and (int(a.min()) < 0 or int(a.max()) > 0xFFFFFFFF):
        return array("q", a.astype(np.int64).tobytes())
    return array("I", a.astype(np.uint32).tobytes())


class ShardIndex:
    """The ``.msgpack`` members of one shard, in tar order, held compactly: offsets and sizes in
    integer arrays (4 bytes each, 8 past 4 GiB), keys packed in one string (:class:`MemberKeys`);
    about 12 bytes plus the key length per member. Lookups by key build a :class:`KeyLookup` on
    first use."""

    __slots__ = ("_look", "keys", "offsets", "sizes")

    def __init__(self, keys: Iterable[str], offsets: Iterable[int], sizes: Iterable[int]) -> None:
        self.keys = keys if isinstance(keys, MemberKeys) else MemberKeys(keys)
        self.offsets = compact_ints(offsets)  # 4 bytes each below 4 GiB, else 8
        self.sizes = compact_ints(sizes)
        self._look: KeyLookup | None = None

    def __len__(self) -> int:
        return len(self.keys)

    def __reduce__(self) -> tuple[Any, ...]:  # the key lookup hashes per process: rebuilt
        return (ShardIndex, (self.keys, self.offsets, self.sizes))

    def position(self, key: str) -> int | None:
        """Position of ``key`` in the shard, or ``None`` (a lookup built on first use)."""
        look = self._look
        if look is None:
            look = self._look = KeyLookup([self.keys])
        hit = look.find(key)
        return None if hit is None else hit[1]

    def as_dict(self) -> dict[str, tuple[int, int]]:
        """Key -> ``(offset, size)`` (a new dict; the first of duplicated keys wins)."""
        out: dict[str, tuple[int, int]] = {}
        for k, o, s in zip(self.keys, self.offsets, self.sizes, strict=True):
            out.setdefault(k, (o, s))
        return out
