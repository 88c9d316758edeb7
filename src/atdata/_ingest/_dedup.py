"""Exact deduplication by content hash: a compact set of 16-byte digests.

Each kept row's key fields are hashed (BLAKE2b, 16 bytes) and the digest goes into
:class:`DigestSet`, an open-addressing table over two ``array('Q')`` columns: 16 bytes a slot,
at most 70% full, so a million keys take about 32 MB (a Python ``set`` of ``bytes`` would take
about three times that). The digests kept since the last sealed shard are appended to a log
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
from collections.abc import Callable, Sequence
from typing import Any

from atdata._errors import ConfigError

__all__ = ["DIGEST_SIZE", "DigestSet", "key_digest", "make_keyer"]

DIGEST_SIZE = 16
_blake = hashlib.blake2b
_ZERO = (0,)


def key_digest(data: bytes) -> bytes:
    """The 16-byte BLAKE2b digest dedup compares."""
    return _blake(data, digest_size=DIGEST_SIZE).digest()


class DigestSet:
    """A set of 16-byte digests in two ``array('Q')`` columns (open addressing, linear probing).

    Args:
        capacity: Initial number of slots (rounded up to a power of two).
    """

    __slots__ = ("_hi", "_limit", "_lo", "_mask", "_n")

    def __init__(self, capacity: int = 1 << 16) -> None:
        size = 1 << max(4, (capacity - 1).bit_length())
        self._hi = array("Q", _ZERO) * size
        self._lo = array("Q", _ZERO) * size
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
        t_hi, t_lo, mask = self._hi, self._lo, self._mask
        i = hi & mask
        while True:
            h = t_hi[i]
            if h == 0:
                return False
            if h == hi and t_lo[i] == lo:
                return True
            i = (i + 1) & mask

    def add(self, digest: bytes) -> bool:
        """Add ``digest``; ``True`` when it was new, ``False`` when already present."""
        hi, lo = self._split(digest)
        t_hi, t_lo, mask = self._hi, self._lo, self._mask
        i = hi & mask
        while True:
            h = t_hi[i]
            if h == 0:
                break
            if h == hi and t_lo[i] == lo:
                return False
            i = (i + 1) & mask
        t_hi[i] = hi
        t_lo[i] = lo
        self._n += 1
        if self._n > self._limit:
            self._grow()
        return True

    def _grow(self) -> None:
        old_hi, old_lo = self._hi, self._lo
        size = 2 * (self._mask + 1)
        self._hi = t_hi = array("Q", _ZERO) * size
        self._lo = t_lo = array("Q", _ZERO) * size
        self._mask = mask = size - 1
        self._limit = size * 7 // 10
        for j, hi in enumerate(old_hi):
            if hi:
                i = hi & mask
                while t_hi[i]:
                    i = (i + 1) & mask
                t_hi[i] = hi
                t_lo[i] = old_lo[j]
        del old_hi, old_lo

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
        return 2 * 8 * (self._mask + 1)


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
    from atdata._wire.sample import _packb

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
