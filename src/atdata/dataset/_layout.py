"""Batches straight from undecoded payloads that share one byte layout (``to_torch`` batches).

The payloads of a batch usually differ only in their array elements and in the fields after
the last array: the keys, the bin headers and the array headers are the same bytes in each.
:class:`Layout` records that layout from one payload (walked with msgpack's own parser): the
fixed byte runs, where each array's element bytes lie, and how many map entries follow the
last array (the tail). A payload matches when its fixed runs are byte for byte the layout's
and its tail decodes as exactly that many entries, with keys of their own, up to the
payload's end. msgpack then decodes it to the same map as the layout's payload except for the
element bytes, so :func:`fast_batch` copies those straight into the batch arrays (one copy,
no ``bytes`` object per array) and decodes only the tail. A batch with any payload that does
not match is left to the checked path, which decodes every payload (errors name the shard,
the sample and the field).

Examples:
    >>> import numpy as np, msgpack, atdata
    >>> from atdata._wire.arrays import encode_array
    >>> @atdata.packable
    ... class S:
    ...     x: atdata.NDArray
    ...     name: str
    >>> pay = [msgpack.packb({"x": encode_array(np.full(2, i, "<i4")), "name": f"s{i}"})
    ...        for i in range(3)]
    >>> b = fast_batch(S, [("a.tar", str(i), memoryview(p), 0, len(p)) for i, p in enumerate(pay)])
    >>> b.x.tolist(), b.name, b.keys
    ([[0, 0], [1, 1], [2, 2]], ['s0', 's1', 's2'], ['0', '1', '2'])
    >>> fast_batch(S, [("a.tar", "0", memoryview(pay[0][:-1]), 0, len(pay[0]) - 1)]) is None
    True
"""

from __future__ import annotations

from typing import Any

import msgpack

from atdata.dataset._batch import SampleBatch, _column

__all__ = ["Layout", "fast_batch"]

_unpackb = msgpack.unpackb
_BIN_LEN = {0xC4: 1, 0xC5: 2, 0xC6: 4}  # bin 8/16/32: bytes of the length after the type byte
_IMMUTABLE = (str, int, float, bool, bytes, type(None))  # fixed values shared by every row


class Layout:
    """The byte layout of one payload (see the module notes); built by :meth:`of`.

    Attributes:
        runs: ``(start, stop, bytes)`` of each fixed byte run before ``end``.
        arrays: Array field -> ``(start of its element bytes, byte count, dtype, shape)``.
        end: Where the tail (the entries after the last array) starts.
        tail: The msgpack map header of the tail's entry count.
        count: Entries in the tail.
        fixed: Decoded values of the entries before ``end`` that are not arrays.
        names: Keys of the entries before ``end``.
    """

    __slots__ = ("arrays", "count", "end", "fixed", "names", "runs", "tail")

    def __init__(
        self,
        runs: list[tuple[int, int, bytes]],
        arrays: dict[str, tuple[int, int, Any, tuple[int, ...]]],
        end: int,
        count: int,
        fixed: dict[str, Any],
    ) -> None:
        self.runs, self.arrays, self.end, self.count = runs, arrays, end, count
        self.fixed = fixed
        self.names = frozenset(arrays) | frozenset(fixed)
        self.tail = bytes((0x80 | count,)) if count < 16 else b"\xde" + count.to_bytes(2, "big")

    @classmethod
    def of(cls, payload: bytes, array_fields: frozenset[str]) -> Layout | None:
        """The layout of ``payload``, or ``None`` when it has none this fast path handles: not
        a map of string keys, a key twice, an array field missing or not in atdata's compact
        array format, a non-scalar value before the last array, more than 65535 tail entries.
        """
        from atdata._wire.arrays import parse_header

        try:
            u = msgpack.Unpacker(max_buffer_size=max(len(payload), 1))
            u.feed(payload)
            n = u.read_map_header()
            arrays: dict[str, tuple[int, int, Any, tuple[int, ...]]] = {}
            before: dict[str, Any] = {}  # non-array entries, in order
            holes: list[tuple[int, int]] = []
            seen: set[str] = set()
            end, after = 0, 0
            for _ in range(n):
                key = u.unpack()
                if type(key) is not str or key in seen:
                    return None
                seen.add(key)
                start = u.tell()
                if key in array_fields:
                    width = _BIN_LEN.get(payload[start])
                    if width is None:
                        return None
                    u.skip()
                    stop = u.tell()
                    data = payload[start + 1 + width : stop]
                    if data[:6] == b"\x93NUMPY":
                        return None
                    dt, shape, off = parse_header(data)
                    if dt.hasobject:
                        return None
                    arrays[key] = (start + 1 + width + off, len(data) - off, dt, shape)
                    holes.append((start + 1 + width + off, stop))
                    end, after = stop, 0
                else:
                    before[key] = u.unpack()
                    after += 1
            if u.tell() != len(payload) or set(arrays) != array_fields or after > 0xFFFF:
                return None
        except Exception:
            return None
        fixed = dict(list(before.items())[: len(before) - after])
        if any(not isinstance(v, _IMMUTABLE) for v in fixed.values()):
            return None
        runs, at = [], 0
        for lo, hi in holes:
            if lo > at:
                runs.append((at, lo, payload[at:lo]))
            at = hi
        return cls(runs, arrays, end, after, fixed)


def fast_batch(
    sample_type: type,
    entries: list[tuple[str, str, Any, int, int]],
    alloc: Any = None,
    cache: list[Layout | None] | None = None,
) -> SampleBatch | None:
    """The batch :meth:`SampleBatch._from_raw` would make of these payloads, when they all
    match one layout; else ``None`` (decode them and take the checked path).

    Args:
        sample_type: A ``@packable`` type with at least one array field.
        entries: ``(shard, key, view, offset, size)``: the payload of each sample is
            ``view[offset:offset + size]`` (a ``memoryview``; anything else does not match).
        alloc: ``alloc(shape, dtype)`` makes the batch arrays (default ``np.empty``).
        cache: A one-element list holding the layout of an earlier batch (tried first,
            replaced when it does not fit).

    Returns:
        The batch (its samples are made from its columns if asked for), or ``None``.
    """
    import numpy as np

    fields = sample_type.atdata_fields()  # type: ignore[attr-defined]
    array_fields = frozenset(s.name for s in fields if s.kind == "ndarray")
    if not entries or not array_fields:
        return None
    lay = cache[0] if cache else None
    if lay is None or set(lay.arrays) != array_fields or _tails(lay, entries[:1]) is None:
        _s, _k, view, off, size = entries[0]
        if type(view) is not memoryview:
            return None
        lay = Layout.of(view[off : off + size].tobytes(), array_fields)
        if lay is None:
            return None
        if cache:
            cache[0] = lay
    tails = _tails(lay, entries)
    if tails is None:
        return None
    n = len(entries)
    empty = alloc if alloc is not None else np.empty
    keys: list[Any] = [e[1] for e in entries]
    b: SampleBatch = SampleBatch(None, sample_type=sample_type)
    b._keys = keys
    for spec in fields:
        name = spec.name
        if name in lay.arrays:
            start, nbytes, dt, shape = lay.arrays[name]
            out = empty((n, *shape), dt)
            if nbytes:
                dest = memoryview(out).cast("B")  # type: ignore[arg-type]
                at = 0
                for e in entries:
                    o = e[3] + start
                    dest[at : at + nbytes] = e[2][o : o + nbytes]
                    at += nbytes
            b._columns[name] = out
        else:
            b._columns[name] = _column(sample_type, spec, tails, keys)
    return b


def _tails(lay: Layout, entries: list[tuple[str, str, Any, int, int]]) -> list[dict] | None:
    """The entries after the last array of each payload (with the layout's fixed values), or
    ``None`` when a payload does not match ``lay``."""
    runs, end, count, head, names, fixed = (
        lay.runs,
        lay.end,
        lay.count,
        lay.tail,
        lay.names,
        lay.fixed,
    )
    out = []
    for _s, _k, view, off, size in entries:
        if type(view) is not memoryview or size < end:
            return None
        for lo, hi, run in runs:
            if view[off + lo : off + hi].tobytes() != run:
                return None
        if count:
            try:
                t = _unpackb(head + view[off + end : off + size])
            except Exception:
                return None
            if not names.isdisjoint(t):  # (a key repeated in the tail wins in both decodings)
                return None
        elif size != end:
            return None
        else:
            t = {}
        if fixed:
            t.update(fixed)
        out.append(t)
    return out
