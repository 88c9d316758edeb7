"""Exact deduplication by content hash: a compact set of 16-byte digests.

Each kept row's key fields are hashed (BLAKE2b, 16 bytes) and the digest goes into
:class:`DigestSet`, an open-addressing table over two ``array('Q')`` columns: 16 bytes a slot,
at most 70% full, so a million keys take about 32 MB (a Python ``set`` of ``bytes`` would take
about three times that). The table doubles in place, so growing never holds two tables. The digests kept since the last sealed shard are appended to a log
file when the shard is sealed; a resumed run rebuilds the set from the log.

Examples:
    >>> s = DigestSet()
    >>> d = key_digest(b"row-1")
    >>> s.add(d), s.add(d), s.add(key_digest(b"row-2")), len(s)
    (True, False, True, 2)
    >>> d in s, key_digest(b"row-3") in s
    (True, False)
"""

from __future__ import annotations

import hashlib
from array import array
from collections.abc import Callable, Iterator, Sequence
from typing import Any

from atdata._errors import ConfigError

__all__ = ["DIGEST_SIZE", "DigestSet", "key_digest", "make_keyer"]

DIGEST_SIZE = 16
_blake = hashlib.blake2b
_ZERO = (0,)
_SPARE = 64  # slots past the end that probes run into (no wrap-around)
_SPARE_ZEROS = array("Q", _ZERO) * _SPARE
_GROW_ZEROS = array("Q", _ZERO) * (1 << 13)  # 64 KiB: growth extends a column in these


def key_digest(data: bytes) -> bytes:
    """The 16-byte BLAKE2b digest dedup compares."""
    return _blake(data, digest_size=DIGEST_SIZE).digest()


def _chunks(col: array, n: int) -> Iterator[int]:
    """The first ``n`` values of ``col``, read in slices of the growth chunk (no full copy)."""
    step = len(_GROW_ZEROS)
    for k in range(0, n, step):
        yield from col[k : min(n, k + step)]


class DigestSet:
    """A set of 16-byte digests in two ``array('Q')`` columns (open addressing, linear probing).

    A digest's home slot is its first 8 bytes masked to the table size; probing runs forward
    without wrapping into a few spare slots past the end, and the last slot is always empty, so a
    probe needs no bounds check. Growth doubles the columns in place: the spare tail is lifted
    out, each column is extended (one at a time, in small zero chunks), then every old slot is
    re-placed in one forward pass (a re-placed digest lands either at or before the slot it left,
    which the pass has already visited, or in the new upper half, which holds only re-placed
    digests). The old and the new table are never held together, so growing from ``n`` to
    ``2n`` slots peaks at ``2n`` slots, not ``3n``.

    Args:
        capacity: Initial number of slots (rounded up to a power of two).

    Examples:
        >>> s = DigestSet(16)
        >>> all(s.add(key_digest(str(i).encode())) for i in range(100))
        True
        >>> len(s), s.nbytes >= 16 * 128, key_digest(b"7") in s
        (100, True, True)
    """

    __slots__ = ("_hi", "_limit", "_lo", "_mask", "_n")

    def __init__(self, capacity: int = 1 << 16) -> None:
        size = 1 << max(4, (capacity - 1).bit_length())
        self._hi = array("Q", _ZERO) * (size + _SPARE)
        self._lo = array("Q", _ZERO) * (size + _SPARE)
        self._mask = size - 1
        self._n = 0
        self._limit = size * 7 // 10

    def __len__(self) -> int:
        return self._n

    @staticmethod
    def _split(digest: bytes) -> tuple[int, int]:
        hi = int.from_bytes(digest[:8], "little") or 1  # 0 marks an empty slot
        return hi, int.from_bytes(digest[8:16], "little")

    def __contains__(self, digest: object) -> bool:
        if not isinstance(digest, bytes):
            return False
        hi, lo = self._split(digest)
        t_hi, t_lo = self._hi, self._lo
        i = hi & self._mask
        while True:  # the last slot is empty: the probe stops before the end
            h = t_hi[i]
            if h == 0:
                return False
            if h == hi and t_lo[i] == lo:
                return True
            i += 1

    def add(self, digest: bytes) -> bool:
        """Add ``digest``; ``True`` when it was new, ``False`` when already present."""
        hi, lo = self._split(digest)
        t_hi, t_lo = self._hi, self._lo
        i = hi & self._mask
        while True:
            h = t_hi[i]
            if h == 0:
                break
            if h == hi and t_lo[i] == lo:
                return False
            i += 1
        t_hi[i] = hi
        t_lo[i] = lo
        if i == len(t_hi) - 1:
            self._spare()
        self._n += 1
        if self._n > self._limit:
            self._grow()
        return True

    def _spare(self) -> None:
        """Append spare slots so the last slot is empty again (a cluster reached the end)."""
        self._hi.extend(_SPARE_ZEROS)
        self._lo.extend(_SPARE_ZEROS)

    def _place(self, hi: int, lo: int) -> None:
        t_hi = self._hi
        i = hi & self._mask
        while t_hi[i]:
            i += 1
        t_hi[i] = hi
        self._lo[i] = lo
        if i == len(t_hi) - 1:
            self._spare()

    def _grow(self) -> None:
        t_hi, t_lo = self._hi, self._lo
        old = self._mask + 1
        # The spare tail holds digests of the old table's last clusters: lift them out (a few).
        lifted = [(t_hi[j], t_lo[j]) for j in range(old, len(t_hi)) if t_hi[j]]
        del t_hi[old:], t_lo[old:]
        for col in (t_hi, t_lo):  # one column at a time, in chunks: no second full table
            for _ in range(old // len(_GROW_ZEROS)):
                col.extend(_GROW_ZEROS)
            col.extend(_GROW_ZEROS[: old % len(_GROW_ZEROS)])
            col.extend(_SPARE_ZEROS)
        self._mask = mask = 2 * old - 1
        self._limit = (2 * old) * 7 // 10
        last = len(t_hi) - 1
        for j, hi in enumerate(_chunks(t_hi, old)):
            if not hi:
                continue
            i = hi & mask
            if i == j:
                continue
            # Clear slot j first: the digest's new place is then at or before j (every slot
            # from its home up to j was visited already) or in the upper half (re-placed only).
            lo = t_lo[j]
            t_hi[j] = t_lo[j] = 0
            while t_hi[i]:
                i += 1
            t_hi[i] = hi
            t_lo[i] = lo
            if i == last:
                self._spare()
                last = len(t_hi) - 1
        for hi, lo in lifted:
            self._place(hi, lo)

    def add_log(self, data: bytes) -> None:
        """Add every digest of a log (concatenated 16-byte digests)."""
        if len(data) % DIGEST_SIZE:
            data = data[: len(data) - len(data) % DIGEST_SIZE]
        add = self.add
        for k in range(0, len(data), DIGEST_SIZE):
            add(data[k : k + DIGEST_SIZE])

    @property
    def nbytes(self) -> int:
        """Bytes held by the table's columns."""
        return 2 * 8 * len(self._hi)


def _canon(v: Any) -> Any:
    """A msgpack-able form of a field value (arrays as their wire bytes, samples as dicts)."""
    if isinstance(v, (str, int, float, bytes, bool)) or v is None:
        return v
    if hasattr(v, "dtype") and hasattr(v, "tobytes"):
        from atdata._wire.arrays import encode_array

        return encode_array(v)
    if hasattr(v, "_to_wire"):
        return v._to_wire()
    if isinstance(v, (list, tuple)):
        return [_canon(x) for x in v]
    if isinstance(v, dict):
        return {k: _canon(x) for k, x in v.items()}
    return v


def _pack(value: Any) -> bytes:
    from atdata._wire.payload import _packb

    try:
        return _packb(_canon(value))
    except Exception:
        return repr(value).encode("utf-8")


def make_keyer(dedup_on: Any, field_names: Sequence[str]) -> Callable[[Any, dict], bytes] | None:
    """The function ``(sample, wire) -> digest`` for a ``dedup_on`` choice (``None``: no dedup).

    ``dedup_on`` is a field name, a list of field names, ``True`` (every field) or a callable
    ``sample -> value`` (bytes/str are hashed as they are, other values through msgpack).

    Raises:
        ConfigError: For a field name the sample type does not have.

    Examples:
        >>> k = make_keyer("text", ["text", "n"])
        >>> k(None, {"text": "a", "n": 1}) == k(None, {"text": "a", "n": 2})
        True
        >>> make_keyer(["nope"], ["text"])
        Traceback (most recent call last):
        ...
        atdata._errors.ConfigError: dedup_on names field 'nope', which the sample type does not have (its fields: ['text']); ...
    """
    if dedup_on is None or dedup_on is False:
        return None
    if callable(dedup_on):
        fn = dedup_on

        def by_callable(sample: Any, wire: dict) -> bytes:
            v = fn(sample)
            if isinstance(v, str):
                v = v.encode("utf-8")
            return key_digest(v if isinstance(v, bytes) else _pack(v))

        return by_callable
    names = list(field_names) if dedup_on is True else (
        [dedup_on] if isinstance(dedup_on, str) else list(dedup_on)
    )  # fmt: skip
    for n in names:
        if n not in field_names:
            raise ConfigError(
                f"dedup_on names field {n!r}, which the sample type does not have (its fields: "
                f"{list(field_names)}); pass one of those, a list of them, or a callable"
            )
    if len(names) == 1:
        only = names[0]

        def by_field(sample: Any, wire: dict) -> bytes:
            v = wire[only]
            if isinstance(v, str):
                return key_digest(v.encode("utf-8"))
            return key_digest(_pack(v))

        return by_field

    def by_fields(sample: Any, wire: dict) -> bytes:
        return key_digest(_pack([wire[n] for n in names]))

    return by_fields
