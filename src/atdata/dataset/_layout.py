"""Batches straight from undecoded payloads that share one byte layout (``to_torch`` batches).

The payloads of a batch usually differ only in their array elements and in the values of their
other fields: the keys, the bin headers and the array headers are the same bytes in each.
:class:`Layout` records that layout from one payload (walked with msgpack's own parser) as
steps, in payload order: a fixed byte run, then what follows it: an array's element bytes (a
hole of known size), a *variable* value (any field that is not an array: its encoded length may
differ per payload), or an optional array (nil, or a fixed header and a hole). After the last
array comes the tail: the remaining map entries.

A payload matches when, walked step by step, each fixed run is byte for byte the layout's at
its place (which shifts by the lengths of the variable values before it), each variable value
ends where its msgpack header says (see :mod:`atdata.dataset._span`), and its variable values
and tail decode, together as one map with the same entry count, up to the payload's end.
msgpack then decodes the payload to the same map except for the array bytes, so
:func:`fast_batch` copies the element bytes straight into the batch arrays (one copy, no
``bytes`` object per array) and decodes only the rest. A batch with any payload that does not
match, or any value the checked path would refuse, is left to the checked path
(:meth:`SampleBatch._from_raw`), which decodes every payload; errors are only ever its own.

Left to the checked path, besides payloads that do not decode: batches whose payloads differ in
their keys, key order, array dtypes, shapes or formats; lists and maps of more than
:data:`~atdata.dataset._span.MAX_ITEMS` values before the last array (walking them would cost
more than decoding); ``.npy`` arrays in Fortran order or of a non-native byte order (the
checked path stacks those into native order); a value of another type than its field's (the
checked path names it and the batch).

Examples:
    >>> import numpy as np, msgpack, atdata
    >>> from atdata._wire.arrays import encode_array
    >>> @atdata.packable
    ... class S:
    ...     id: str
    ...     x: atdata.NDArray
    ...     n: int
    >>> pay = [msgpack.packb({"id": "s" * i, "x": encode_array(np.full(2, i, "<i4")), "n": i})
    ...        for i in range(3)]
    >>> b = fast_batch(S, [("a.tar", str(i), memoryview(p), 0, len(p)) for i, p in enumerate(pay)])
    >>> b.x.tolist(), b.id, b.n, b.keys
    ([[0, 0], [1, 1], [2, 2]], ['', 's', 'ss'], [0, 1, 2], ['0', '1', '2'])
    >>> fast_batch(S, [("a.tar", "0", memoryview(pay[0][:-1]), 0, len(pay[0]) - 1)]) is None
    True
"""

from __future__ import annotations

from typing import Any

import msgpack

from atdata._errors import AtdataError, DecodeError
from atdata.dataset._batch import SampleBatch, _column
from atdata.dataset._span import SIZE, value_end

__all__ = ["Layout", "fast_batch"]

_unpackb = msgpack.unpackb
_BIN_LEN = {0xC4: 1, 0xC5: 2, 0xC6: 4}  # bin 8/16/32: bytes of the length after the type byte
_NPY = b"\x93NUMPY"
_HOLE, _VAR, _OPT = 0, 1, 2  # what follows a fixed run (see Layout.steps)
_NIL = 0xC0

Entry = tuple[str, str, Any, int, int]  # (shard, key, view, offset, size)


class Layout:
    """The byte layout of one payload (see the module notes); built by :meth:`of`.

    Attributes:
        steps: ``(run, len(run), kind, arg)`` up to ``end``: the fixed bytes ``run``, then by
            ``kind``: ``_HOLE``, the element bytes of an array (``arg`` bytes); ``_VAR``, a variable
            value (its key is the last ``arg`` bytes of ``run``); ``_OPT``, an optional array,
            nil or ``arg = (field, bin and array header bytes, element bytes)`` (header
            ``None`` until a payload with an array there shows it: see :meth:`learn`).
        arrays: Array field -> ``(hole number, byte count, dtype, shape)`` (dtype ``None``
            while unknown).
        fields: The field specs of the sample type it was made for (set by :func:`fast_batch`).
        names: The array fields (a tail key among them leaves the batch to the checked path).
        end: Where the tail starts in the layout's own payload.
        nvar: Variable values before ``end``.
        count: Entries in the tail.
        head: The msgpack map header of ``nvar + count`` entries.
        runs: ``(start, stop, bytes)`` of the fixed runs when every step is a hole (nothing
            shifts: the runs and holes lie at the same offsets in every payload), else ``None``.
        starts: Where each hole starts, when ``runs`` is set.
    """

    __slots__ = (
        "arrays",
        "count",
        "end",
        "fields",
        "head",
        "names",
        "nvar",
        "runs",
        "starts",
        "steps",
    )

    def __init__(
        self,
        steps: list[tuple[bytes, int, int, Any]],
        arrays: dict[str, tuple[int, int, Any, tuple[int, ...]]],
        end: int,
        count: int,
    ) -> None:
        self.steps, self.arrays = steps, arrays
        self.end, self.count = end, count
        self.fields: Any = None
        self.names = frozenset(arrays)
        self.nvar = sum(kind == _VAR for _r, _n, kind, _a in steps)
        self.head = _map_header(self.nvar + count)
        self.runs: list[tuple[int, int, bytes]] | None = None
        self.starts: list[int] = []
        if all(kind == _HOLE for _r, _n, kind, _a in steps):
            self.runs, at = [], 0
            for run, n, _k, nbytes in steps:
                self.runs.append((at, at + n, run))
                self.starts.append(at + n)
                at += n + nbytes

    @classmethod
    def of(
        cls, payload: bytes, array_fields: frozenset[str], optional: frozenset[str] = frozenset()
    ) -> Layout | None:
        """The layout of ``payload``, or ``None`` when it has none this fast path handles: not
        a map of string keys, a key twice, an array field missing, or holding anything but a
        compact or C-order ``.npy`` array (or nil, when it is optional).

        Args:
            payload: One sample's msgpack payload.
            array_fields: The sample type's array fields.
            optional: Those of them that may be nil (``NDArray | None``).

        Examples:
            >>> import numpy as np, msgpack
            >>> from atdata._wire.arrays import encode_array
            >>> pay = msgpack.packb({"id": "a", "x": encode_array(np.zeros(3, "<u1")), "k": 1})
            >>> lay = Layout.of(pay, frozenset({"x"}))
            >>> [kind for _run, _n, kind, _arg in lay.steps], lay.steps[0][0], lay.nvar, lay.count
            ([1, 0], b'\\x83\\xa2id', 1, 1)
        """
        try:
            u = msgpack.Unpacker(max_buffer_size=max(len(payload), 1))
            u.feed(payload)
            ents: list[tuple[str, int, int, int]] = []  # key, where it and its value start, end
            for _ in range(u.read_map_header()):
                k0 = u.tell()
                key = u.unpack()
                if type(key) is not str or any(key == e[0] for e in ents):
                    return None
                v0 = u.tell()
                u.skip()
                ents.append((key, k0, v0, u.tell()))
            if u.tell() != len(payload):
                return None
        except Exception:
            return None
        found = [i for i, e in enumerate(ents) if e[0] in array_fields]
        if len(found) != len(array_fields):
            return None
        steps: list[tuple[bytes, int, int, Any]] = []
        arrays: dict[str, tuple[int, int, Any, tuple[int, ...]]] = {}
        at = 0
        for key, k0, v0, v1 in ents[: found[-1] + 1]:
            if key not in array_fields:
                steps.append((payload[at:v0], v0 - at, _VAR, v0 - k0))
                at = v1
                continue
            if key in optional and payload[v0] == _NIL:
                arrays[key] = (len(arrays), 0, None, ())
                steps.append((payload[at:v0], v0 - at, _OPT, (key, None, 0)))
                at = v1
                continue
            head = _array_head(payload, v0, v1)
            if head is None:
                return None
            lo, dt, shape = head
            arrays[key] = (len(arrays), v1 - lo, dt, shape)
            if key in optional:
                steps.append((payload[at:v0], v0 - at, _OPT, (key, payload[v0:lo], v1 - lo)))
            else:
                steps.append((payload[at:lo], lo - at, _HOLE, v1 - lo))
            at = v1
        return cls(steps, arrays, at, len(ents) - found[-1] - 1)

    def learn(self, name: str, view: Any, pos: int) -> tuple[bytes, int] | None:
        """Take the array at ``view[pos]`` as the layout of optional array ``name`` (nil in
        the layout's payload): ``(its bin and array header bytes, element bytes)``, or ``None``
        when it is not an array this path handles. Later payloads are matched against it."""
        width = _BIN_LEN.get(view[pos])
        if width is None:
            return None
        v1 = pos + 1 + width + int.from_bytes(view[pos + 1 : pos + 1 + width], "big")
        head = _array_head(view, pos, v1)
        if head is None:
            return None
        lo, dt, shape = head
        hdr, nbytes = view[pos:lo].tobytes(), v1 - lo
        for i, (run, n, kind, arg) in enumerate(self.steps):
            if kind == _OPT and arg[0] == name:
                self.steps[i] = (run, n, _OPT, (name, hdr, nbytes))
        self.arrays[name] = (self.arrays[name][0], nbytes, dt, shape)
        return hdr, nbytes


def _array_head(payload: Any, v0: int, v1: int) -> tuple[int, Any, tuple[int, ...]] | None:
    """``(start of the element bytes, dtype, shape)`` of the array value ``payload[v0:v1]``
    (a bin of compact array bytes, or of a C-order ``.npy`` whose dtype ``np.stack`` keeps:
    the checked path stacks those, turning a non-native byte order native), else ``None``."""
    import numpy as np

    from atdata._wire.arrays import npy_header, parse_header

    width = _BIN_LEN.get(payload[v0])
    if width is None:
        return None
    data = payload[v0 + 1 + width : v1]
    try:
        if bytes(data[:6]) == _NPY:
            dt, shape, fortran, off = npy_header(data)
            if fortran or np.stack([np.empty(0, dt)]).dtype.str != dt.str:
                return None
        else:
            dt, shape, off = parse_header(data)
    except DecodeError:
        return None
    return v0 + 1 + width + off, dt, shape


def _map_header(n: int) -> bytes:
    if n < 16:
        return bytes((0x80 | n,))
    if n <= 0xFFFF:
        return b"\xde" + n.to_bytes(2, "big")
    return b"\xdf" + n.to_bytes(4, "big")


def fast_batch(
    sample_type: type,
    entries: list[Entry],
    alloc: Any = None,
    cache: list[Layout | None] | None = None,
) -> SampleBatch | None:
    """The batch :meth:`SampleBatch._from_raw` would make of these payloads, when they all
    match one layout and it would raise no error; else ``None`` (decode them and take the
    checked path).

    Args:
        sample_type: A ``@packable`` type with at least one array field.
        entries: ``(shard, key, view, offset, size)``: the payload of each sample is
            ``view[offset:offset + size]`` (a ``memoryview``; anything else does not match).
        alloc: ``alloc(shape, dtype)`` makes the batch arrays (default ``np.empty``).
        cache: A one-element list holding the layout of an earlier batch (tried first,
            replaced by the layout of this batch's first payload when it does not fit).

    Returns:
        The batch (its samples are made from its columns if asked for), or ``None``.
    """
    if not entries:
        return None
    fields = sample_type.atdata_fields()  # type: ignore[attr-defined]
    lay = cache[0] if cache else None
    got = None
    if lay is not None and lay.fields is fields:  # (the type's cached field specs)
        got = _match(lay, entries)
    if lay is None or got is None:
        array_fields = frozenset(s.name for s in fields if s.kind == "ndarray")
        optional = frozenset(s.name for s in fields if s.kind == "ndarray" and s.optional)
        _s, _k, view, off, size = entries[0]
        if not array_fields or type(view) is not memoryview:
            return None
        lay = Layout.of(view[off : off + size].tobytes(), array_fields, optional)
        if lay is None:
            return None
        lay.fields = fields
        got = _match(lay, entries)
        if got is None:
            return None
        if cache:
            cache[0] = lay
    try:
        return _assemble(sample_type, fields, lay, entries, *got, alloc)
    except AtdataError:  # a value of another type: the checked path says which, in its words
        return None


def _assemble(
    sample_type: type,
    fields: Any,
    lay: Layout,
    entries: list[Entry],
    tails: list[dict],
    rows: list[list[int]] | None,
    alloc: Any,
) -> SampleBatch:
    """The batch of matched payloads: arrays from the element bytes (at ``rows[i][hole]`` of
    payload ``i``, or at the layout's fixed ``starts``), the other columns from ``tails``."""
    import numpy as np

    n = len(entries)
    empty = alloc if alloc is not None else np.empty
    keys: list[Any] = [e[1] for e in entries]
    b: SampleBatch = SampleBatch(None, sample_type=sample_type)
    b._keys = keys
    for spec in fields:
        name = spec.name
        if name not in lay.arrays:
            b._columns[name] = _column(sample_type, spec, tails, keys)
            continue
        hole, nbytes, dt, shape = lay.arrays[name]
        if rows is None:  # at the same offset in every payload
            out = empty((n, *shape), dt)
            if nbytes:
                dest = memoryview(out.reshape(-1).view(np.uint8))  # type: ignore[arg-type]
                i, start = 0, lay.starts[hole]
                for e in entries:
                    o = e[3] + start
                    dest[i : i + nbytes] = e[2][o : o + nbytes]
                    i += nbytes
            b._columns[name] = out
            continue
        at = [r[hole] for r in rows]
        if -1 in at:  # nil in some payloads: a list of arrays and None, as decoded one by one
            count = nbytes // dt.itemsize if dt is not None else 0
            b._columns[name] = [
                np.frombuffer(e[2], dt, count, o).reshape(shape).copy() if o >= 0 else None
                for e, o in zip(entries, at, strict=True)
            ]
            continue
        out = empty((n, *shape), dt)
        if nbytes:
            dest = memoryview(out.reshape(-1).view(np.uint8))  # type: ignore[arg-type]
            i = 0
            for e, o in zip(entries, at, strict=True):
                dest[i : i + nbytes] = e[2][o : o + nbytes]
                i += nbytes
        b._columns[name] = out
    return b


def _match(lay: Layout, entries: list[Entry]) -> tuple[list[dict], list[list[int]] | None] | None:
    """``(tails, rows)`` when every payload matches ``lay``: the decoded entries of each that
    are not arrays, and where each array's element bytes start in it (``-1`` for nil; ``rows``
    is ``None`` when they start at the layout's ``starts``); else ``None``."""
    if lay.runs is not None:
        tails = _match_fixed(lay, entries)
        return None if tails is None else (tails, None)
    return _match_walk(lay, entries)


def _match_fixed(lay: Layout, entries: list[Entry]) -> list[dict] | None:
    """The tails of payloads whose runs and holes all lie at the layout's offsets."""
    runs, end, count, head, names = lay.runs or (), lay.end, lay.count, lay.head, lay.names
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
        out.append(t)
    return out


def _match_walk(lay: Layout, entries: list[Entry]) -> tuple[list[dict], list[list[int]]] | None:
    """Tails and element starts of payloads walked step by step (see :func:`_match`)."""
    steps, head, names, decode = lay.steps, lay.head, lay.names, lay.nvar + lay.count
    size_of, hole, var = SIZE, _HOLE, _VAR
    tails, rows = [], []
    for _s, _k, view, off, size in entries:
        if type(view) is not memoryview:
            return None
        pos, stop = off, off + size
        row: list[int] = []
        pieces: list[Any] = [head]
        try:
            for run, n, kind, arg in steps:
                if view[pos : pos + n].tobytes() != run:
                    return None
                pos += n
                if kind == hole:
                    row.append(pos)
                    pos += arg
                elif kind == var:
                    w = size_of[view[pos]]
                    e = pos + w if w else value_end(view, pos)
                    if e < 0:
                        return None
                    pieces.append(view[pos - arg : e])  # its key and value
                    pos = e
                elif view[pos] == _NIL:
                    row.append(-1)
                    pos += 1
                else:
                    name, hdr, nbytes = arg
                    if hdr is None:
                        got = lay.learn(name, view, pos)
                        if got is None:
                            return None
                        hdr, nbytes = got
                    n = len(hdr)
                    if view[pos : pos + n].tobytes() != hdr:
                        return None
                    row.append(pos + n)
                    pos += n + nbytes
        except IndexError:  # walked off the end of the buffer
            return None
        if pos > stop:
            return None
        if decode:
            pieces.append(view[pos:stop])
            try:
                t = _unpackb(b"".join(pieces))
            except Exception:
                return None
            if not names.isdisjoint(t):  # an array's key again: msgpack would keep that value
                return None  # (a variable key again: the later value wins in both decodings)
        elif pos != stop:
            return None
        else:
            t = {}
        tails.append(t)
        rows.append(row)
    return tails, rows
