"""Batches straight from undecoded payloads (dataset/_layout.py): whenever ``fast_batch`` makes a
batch, it is the batch the checked path (msgpack, then ``SampleBatch._from_raw``) makes of the
same payloads; payloads that do not share the layout, or do not decode, are left to that path."""

from __future__ import annotations

import math
import struct

import msgpack
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import atdata
from atdata._errors import AtdataError, SchemaError
from atdata._wire.arrays import encode_array
from atdata.dataset._batch import SampleBatch
from atdata.dataset._layout import Layout, fast_batch


@atdata.packable
class LayRow:
    img: atdata.NDArray
    emb: atdata.NDArray
    label: str
    score: float
    idx: int


@atdata.packable
class LeadRow:  # a scalar before the arrays
    tag: str
    img: atdata.NDArray
    n: int


def _payload(i, shape=(2, 3), dtype="<u1", label=None, order=None, extra=None):
    m = {
        "img": encode_array(np.full(shape, i % 251, dtype=dtype)),
        "emb": encode_array(np.arange(4, dtype="<f4") * i),
        "label": label if label is not None else f"c{i % 10}",
        "score": i / 7,
        "idx": i * 1000,  # int encodings of several widths in one batch
    }
    if order is not None:
        m = {k: m[k] for k in order}
    if extra:
        m.update(extra)
    return msgpack.packb(m)


def _entries(payloads, pad=0):
    """Entries over one buffer holding every payload (``pad`` bytes between them)."""
    buf, ents, at = bytearray(), [], 0
    for i, p in enumerate(payloads):
        buf += b"\x00" * pad + p
        at += pad
        ents.append(["s.tar", f"{i:08d}", None, at, len(p)])
        at += len(p)
    view = memoryview(bytes(buf))
    return [(s, k, view, o, n) for s, k, _v, o, n in ents]


def _checked(sample_type, payloads):
    """The checked path's batch, or ``"error"`` (with the message of an atdata error)."""
    try:
        raws = [msgpack.unpackb(p) for p in payloads]
        if any(type(r) is not dict for r in raws):
            return "error"
        return SampleBatch._from_raw(sample_type, raws, [f"{i:08d}" for i in range(len(raws))])
    except AtdataError as exc:
        return ("error", type(exc), str(exc))
    except Exception:
        return "error"


def _fast(sample_type, entries, cache=None):
    try:
        return fast_batch(sample_type, entries, None, cache)
    except AtdataError as exc:
        return ("error", type(exc), str(exc))


def _agree(sample_type, payloads, pad=0, cache=None):
    """``fast_batch`` gives up, or gives what the checked path gives (a batch or an error)."""
    fast = _fast(sample_type, _entries(payloads, pad), cache)
    if isinstance(fast, tuple):
        assert fast == _checked(sample_type, payloads)
    elif fast is not None:
        _same(fast, _checked(sample_type, payloads), sample_type)
    return fast


def _col(v):
    if isinstance(v, np.ndarray):
        return ("array", v.dtype.str, v.shape, v.tobytes())
    return [
        (type(x).__name__, struct.pack("<d", x) if type(x) is float else x) for x in v
    ]  # (NaN compares by its bits)


def _same(fast, checked, sample_type):
    assert checked != "error"
    assert fast.keys == checked.keys and len(fast) == len(checked)
    for spec in sample_type.atdata_fields():
        assert _col(getattr(fast, spec.name)) == _col(getattr(checked, spec.name)), spec.name


def test_fixed_layout_batch_is_the_checked_batch():
    pays = [_payload(i) for i in range(70)]
    cache = [None]
    b = fast_batch(LayRow, _entries(pays, pad=3), None, cache)
    assert b is not None and isinstance(cache[0], Layout)
    _same(b, _checked(LayRow, pays), LayRow)
    assert b.img.shape == (70, 2, 3) and b.img[5].tolist() == [[5, 5, 5], [5, 5, 5]]
    assert b.idx[:3] == [0, 1000, 2000] and b.label[11] == "c1"
    assert [s.idx for s in b.samples[:2]] == [0, 1000]  # samples rebuilt from the columns
    assert cache[0].count == 3 and cache[0].fixed == {}


def test_cached_layout_is_replaced_when_it_does_not_fit():
    cache = [None]
    fast_batch(LayRow, _entries([_payload(i) for i in range(3)]), None, cache)
    first = cache[0]
    pays = [_payload(i, shape=(4,), dtype="<i8") for i in range(3)]
    b = fast_batch(LayRow, _entries(pays), None, cache)
    assert cache[0] is not first and b is not None and b.img.dtype == np.dtype("<i8")
    _same(b, _checked(LayRow, pays), LayRow)


def test_alloc_places_the_arrays():
    made = []

    def alloc(shape, dtype):
        made.append((shape, dtype.str))
        return np.zeros(shape, dtype)

    b = fast_batch(LayRow, _entries([_payload(i) for i in range(4)]), alloc)
    assert made == [((4, 2, 3), "|u1"), ((4, 4), "<f4")]
    assert b.emb[3].tolist() == [0.0, 3.0, 6.0, 9.0]


def test_leading_scalar_is_fixed_while_equal_and_else_checked():
    same = [
        msgpack.packb({"tag": "t", "img": encode_array(np.full(3, i, "<u2")), "n": i})
        for i in range(5)
    ]
    b = fast_batch(LeadRow, _entries(same))
    assert b is not None and b.tag == ["t"] * 5 and b.n == [0, 1, 2, 3, 4]
    _same(b, _checked(LeadRow, same), LeadRow)
    differ = [
        *same[:4],
        msgpack.packb({"tag": "u", "img": encode_array(np.zeros(3, "<u2")), "n": 4}),
    ]
    assert fast_batch(LeadRow, _entries(differ)) is None


@pytest.mark.parametrize(
    "odd",
    [
        _payload(1, shape=(3, 2)),  # another shape: ragged
        _payload(1, dtype="<u2"),  # another dtype
        _payload(1, order=["emb", "img", "label", "score", "idx"]),  # another key order
        _payload(1, extra={"img2": b"x"}),  # one more entry
        msgpack.packb(
            {
                "img": encode_array(np.zeros((2, 3), "<u1")),
                "emb": None,
                "label": "c",
                "score": 0.0,
                "idx": 1,
            }
        ),
        _payload(1)[:-1],  # truncated
        _payload(1) + b"\x00",  # trailing bytes
        b"\x95" + _payload(1)[1:],  # an array, not a map
        b"\xc1" + _payload(1)[1:],  # not msgpack
    ],
)
def test_a_payload_off_the_layout_leaves_the_batch_to_the_checked_path(odd):
    pays = [_payload(0), odd, _payload(2)]
    assert fast_batch(LayRow, _entries(pays)) is None


def test_a_tail_value_of_another_type_raises_the_checked_error():
    pays = [_payload(0), _payload(1, extra={"label": 5})]
    with pytest.raises(SchemaError, match=r"LayRow.'label' should hold str .* sample '00000001'"):
        fast_batch(LayRow, _entries(pays))
    assert isinstance(_agree(LayRow, pays), tuple)


def test_payloads_without_a_layout():
    npy = msgpack.packb(
        {
            "img": b"\x93NUMPY" + bytes(20),
            "emb": encode_array(np.zeros(4, "<f4")),
            "label": "a",
            "score": 0.0,
            "idx": 0,
        }
    )
    dup = (
        b"\x86"
        + _payload(0)[1:]
        + b"\xa3img"
        + msgpack.packb(encode_array(np.zeros((2, 3), "<u1")))
    )
    for pay in (npy, dup, msgpack.packb([1, 2]), msgpack.packb({1: 2}), b""):
        assert Layout.of(pay, frozenset({"img", "emb"})) is None
        assert fast_batch(LayRow, _entries([pay])) is None
    assert _checked(LayRow, [dup]) != "error"  # (msgpack keeps the later value: not this path's)
    assert fast_batch(LayRow, [("s", "k", _payload(0), 0, 10)]) is None  # not a memoryview
    assert fast_batch(LayRow, []) is None


def test_a_tail_key_repeating_a_fixed_key_is_checked():
    # the tail repeats "emb": msgpack keeps the later value, so the hole bytes are not the array
    tail_dup = msgpack.packb(
        {
            "img": encode_array(np.zeros((2, 3), "<u1")),
            "emb": encode_array(np.zeros(4, "<f4")),
            "label": "a",
            "score": 0.0,
        }
    )
    tail_dup = b"\x85" + tail_dup[1:] + b"\xa3emb" + msgpack.packb(encode_array(np.ones(4, "<f4")))
    good = msgpack.packb(
        {
            "img": encode_array(np.zeros((2, 3), "<u1")),
            "emb": encode_array(np.zeros(4, "<f4")),
            "label": "a",
            "score": 0.0,
            "idx": 1,
        }
    )
    assert fast_batch(LayRow, _entries([good])) is not None
    assert fast_batch(LayRow, _entries([good, tail_dup])) is None
    assert msgpack.unpackb(tail_dup)["emb"] == encode_array(np.ones(4, "<f4"))


_scalar = st.one_of(
    st.text(max_size=40),
    st.integers(-(2**63), 2**64 - 1),
    st.floats(allow_nan=True),
    st.booleans(),
    st.none(),
    st.binary(max_size=20),
)


@settings(max_examples=150, deadline=None)
@given(
    n=st.integers(1, 8),
    shape=st.lists(st.integers(0, 4), max_size=3),
    dtype=st.sampled_from(["<u1", "<f4", ">i2", "<c8", "|b1"]),
    labels=st.lists(_scalar, min_size=8, max_size=8),
    extra=st.dictionaries(st.sampled_from(["a", "b", "zz"]), _scalar, max_size=2),
    order=st.permutations(["img", "emb", "label", "score", "idx"]),
    pad=st.integers(0, 3),
    data=st.data(),
)
def test_fast_batch_is_the_checked_batch(n, shape, dtype, labels, extra, order, pad, data):
    """Random payloads, then random byte edits: a batch that comes out equals the checked one."""
    pays = [_payload(i, tuple(shape), dtype, labels[i], order, extra) for i in range(n)]
    fast = _agree(LayRow, pays, pad)
    last = max(order.index("img"), order.index("emb"))
    vals = {
        "label": [v if v is not None else f"c{i % 10}" for i, v in enumerate(labels[:n])],
        "score": [i / 7 for i in range(n)],
        "idx": [i * 1000 for i in range(n)],
    }
    if all(len({repr(v) for v in vals[k]}) == 1 for k in order[:last] if k in vals):
        assert fast is not None  # what precedes the last array is the same in every payload
    j = data.draw(st.integers(0, n - 1))
    edit = data.draw(
        st.one_of(
            st.tuples(st.just("set"), st.integers(0, len(pays[j]) - 1), st.integers(0, 255)),
            st.tuples(st.just("cut"), st.integers(0, len(pays[j]) - 1), st.just(0)),
            st.tuples(st.just("add"), st.integers(0, len(pays[j])), st.integers(0, 255)),
        )
    )
    kind, at, byte = edit
    p = bytearray(pays[j])
    if kind == "set":
        p[at] = byte
    elif kind == "cut":
        del p[at:]
    else:
        p[at:at] = bytes((byte,))
    pays[j] = bytes(p)
    cache = [None]
    _fast(LayRow, _entries([pays[0]]), cache)  # a cached layout, maybe stale
    _agree(LayRow, pays, pad, cache)


def test_scores_keep_their_bits():
    pays = [_payload(0, extra={"score": math.nan}), _payload(1, extra={"score": -0.0})]
    b = fast_batch(LayRow, _entries(pays))
    assert math.isnan(b.score[0]) and math.copysign(1, b.score[1]) == -1
