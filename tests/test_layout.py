"""Batches straight from undecoded payloads (dataset/_layout.py): whenever ``fast_batch`` makes a
batch, it is the batch the checked path (msgpack, then ``SampleBatch._from_raw``) makes of the
same payloads; payloads that do not share the layout, or do not decode, are left to that path."""

from __future__ import annotations

import math
import struct
from typing import Any

import msgpack
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import atdata
from atdata._errors import AtdataError, SchemaError
from atdata._wire.arrays import encode_array
from atdata.dataset._batch import SampleBatch
from atdata.dataset._layout import Layout, _match, fast_batch


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


def _canon(v):
    """``v`` with every type and bit spelled out (NaN and -0.0 compare by their bits, True is
    not 1, an array by dtype, shape, bytes and whether it owns writable C-order memory)."""
    t = type(v)
    if t is np.ndarray:
        flags = (v.flags.c_contiguous, v.flags.writeable, v.flags.owndata)
        return ("ndarray", v.dtype.str, v.shape, v.tobytes(), flags)
    if t is float:
        return ("float", struct.pack("<d", v))
    if t is list:
        return ("list", [_canon(x) for x in v])
    if t is dict:
        return ("dict", [(_canon(k), _canon(x)) for k, x in v.items()])
    return (t.__name__, v)


def _same(fast, checked, sample_type):
    assert checked != "error"
    assert fast.keys == checked.keys and len(fast) == len(checked)
    for spec in sample_type.atdata_fields():
        assert _canon(getattr(fast, spec.name)) == _canon(getattr(checked, spec.name)), spec.name


def test_fixed_layout_batch_is_the_checked_batch():
    pays = [_payload(i) for i in range(70)]
    cache = [None]
    b = fast_batch(LayRow, _entries(pays, pad=3), None, cache)
    assert b is not None and isinstance(cache[0], Layout)
    _same(b, _checked(LayRow, pays), LayRow)
    assert b.img.shape == (70, 2, 3) and b.img[5].tolist() == [[5, 5, 5], [5, 5, 5]]
    assert b.idx[:3] == [0, 1000, 2000] and b.label[11] == "c1"
    assert [s.idx for s in b.samples[:2]] == [0, 1000]  # samples rebuilt from the columns
    assert (
        cache[0].count == 3 and cache[0].nvar == 0 and cache[0].starts == [28, 53]
    )  # header, key, bin 8 and array header before


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


def test_a_leading_scalar_may_differ_per_payload():
    pays = [
        msgpack.packb({"tag": "t" * (i * 20), "img": encode_array(np.full(3, i, "<u2")), "n": i})
        for i in range(5)
    ]  # tags of 0, 20 (fixstr) and 40, 60, 80 (str 8) bytes: the image shifts per payload
    cache = [None]
    b = fast_batch(LeadRow, _entries(pays, pad=2), None, cache)
    assert b is not None and b.tag == ["t" * (i * 20) for i in range(5)] and b.n == [0, 1, 2, 3, 4]
    assert b.img.tolist() == [[i] * 3 for i in range(5)] and b.img.dtype == np.dtype("<u2")
    _same(b, _checked(LeadRow, pays), LeadRow)
    assert cache[0].nvar == 1 and cache[0].count == 1 and cache[0].runs is None


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


@pytest.mark.parametrize("order", [None, ["label", "img", "emb", "score", "idx"]])
def test_a_value_of_another_type_is_left_to_the_checked_path(order):
    pays = [_payload(0, order=order), _payload(1, order=order, label=5)]
    assert fast_batch(LayRow, _entries(pays)) is None  # its error names the batch too
    with pytest.raises(SchemaError, match=r"LayRow.'label' should hold str .* sample '00000001'"):
        SampleBatch._from_raw(LayRow, [msgpack.unpackb(p) for p in pays], ["00000000", "00000001"])


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
    label = [v if v is not None else f"c{i % 10}" for i, v in enumerate(labels[:n])]
    assert (fast is not None) == all(type(v) is str for v in label)  # wherever the fields lie
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


@atdata.packable
class OptRow:
    img: atdata.NDArray
    mask: atdata.NDArray | None
    n: int


OPT_ARRAYS, OPT = frozenset({"img", "mask"}), frozenset({"mask"})


def _npy(a, fortran=False):
    import io

    f = io.BytesIO()
    np.save(f, np.asfortranarray(a) if fortran else a)
    return f.getvalue()


def _opt_payload(i, mask=True, npy=False):
    enc = _npy if npy else encode_array
    return msgpack.packb(
        {
            "img": enc(np.full((2, 2), i, "<i2")),
            "mask": enc(np.array([i % 2, 1, 0], "|b1")) if mask else None,
            "n": i,
        }
    )


def test_an_optional_array_nil_in_some_payloads_is_a_list_as_decoded():
    pays = [_opt_payload(i, mask=i != 2) for i in range(4)]
    b = fast_batch(OptRow, _entries(pays, pad=1))
    assert b is not None and b.img.shape == (4, 2, 2) and b.n == [0, 1, 2, 3]
    assert [m if m is None else m.tolist() for m in b.mask] == [
        [False, True, False],
        [True, True, False],
        None,
        [True, True, False],
    ]
    assert all(m.flags.owndata and m.flags.writeable for m in b.mask if m is not None)
    _same(b, _checked(OptRow, pays), OptRow)
    every = [_opt_payload(i) for i in range(3)]  # none nil: stacked
    assert fast_batch(OptRow, _entries(every)).mask.shape == (3, 3)
    nil = [_opt_payload(i, mask=False) for i in range(2)]
    cache = [None]
    assert fast_batch(OptRow, _entries(nil), None, cache).mask == [None, None]
    assert cache[0].arrays["mask"] == (1, 0, None, ())  # no array seen there yet
    _same(fast_batch(OptRow, _entries(pays[2:]), None, cache), _checked(OptRow, pays[2:]), OptRow)
    assert cache[0].arrays["mask"] == (1, 3, np.dtype("|b1"), (3,))  # learnt from payload 3


def test_an_optional_array_is_learnt_only_when_it_is_one():
    img = encode_array(np.zeros((2, 2), "<i2"))
    pays = [_opt_payload(0, mask=False), msgpack.packb({"img": img, "mask": b"xx", "n": 1})]
    lay = Layout.of(pays[0], OPT_ARRAYS, OPT)
    assert _match(lay, _entries(pays)) is None and lay.arrays["mask"][2] is None


def test_a_required_array_that_is_nil_is_left_to_the_checked_path():
    pays = [_opt_payload(0), _opt_payload(1, mask=False)]
    lay = Layout.of(pays[0], OPT_ARRAYS)  # mask taken as required
    assert _match(lay, _entries(pays[:1])) is not None and _match(lay, _entries(pays)) is None
    assert isinstance(_checked(OptRow, pays), SampleBatch)  # (mask | None: fine)


def test_npy_arrays_in_c_order_have_a_layout():
    pays = [_opt_payload(i, npy=True) for i in range(3)]
    b = fast_batch(OptRow, _entries(pays))
    assert b is not None and b.img[2].tolist() == [[2, 2], [2, 2]] and b.mask.dtype == np.bool_
    _same(b, _checked(OptRow, pays), OptRow)
    fortran = msgpack.packb({"img": _npy(np.ones((2, 2), "<i2"), fortran=True), "mask": None})
    assert Layout.of(fortran, OPT_ARRAYS, OPT) is None
    mixed = [pays[0], _opt_payload(1)]  # .npy, then compact: another header
    assert fast_batch(OptRow, _entries(mixed)) is None


_INT = st.one_of(
    st.integers(-40, 300),
    st.sampled_from([127, 128, 255, 256, 65535, 65536, 2**32 - 1, 2**32, -32, -33, -128, -129]),
    st.sampled_from([-(2**15), -(2**15) - 1, -(2**31), -(2**31) - 1, -(2**63), 2**64 - 1]),
    st.integers(-(2**63), 2**64 - 1),
)  # every msgpack int width, and each side of its bounds
_TEXT = st.one_of(st.text(max_size=3), st.text(min_size=29, max_size=34), st.text(min_size=250))
_LEAF = st.one_of(st.none(), st.booleans(), _INT, st.floats(), st.text(max_size=5), st.binary())
_NESTED = st.recursive(
    _LEAF, lambda c: st.lists(c, max_size=3) | st.dictionaries(st.text(max_size=3), c), max_leaves=8
)
# kind -> (annotation, values of that type on the wire)
_KINDS = {
    "str": (str, _TEXT),
    "int": (int, _INT),
    "float": (float, st.one_of(st.floats(), _INT)),  # an int on the wire decodes to a float
    "bool": (bool, st.booleans()),
    "bytes": (bytes, st.one_of(st.binary(max_size=3), st.binary(min_size=250, max_size=300))),
    "opt": (int | None, st.one_of(st.none(), _INT)),
    "list": (list[int], st.lists(_INT, max_size=70)),  # past 64 items: not walked
    "any": (Any, _NESTED),
}
_TYPES: dict[tuple, type] = {}


def _mixed_type(fields):
    """A ``@packable`` type of ``(name, kind)`` fields, in that order (made once per fields)."""
    st_ = _TYPES.get(fields)
    if st_ is None:
        ann = {
            n: atdata.NDArray
            if k == "array"
            else atdata.NDArray | None
            if k == "optarray"
            else _KINDS[k][0]
            for n, k in fields
        }
        ns = {"__annotations__": ann, "__module__": __name__}
        st_ = _TYPES[fields] = atdata.packable(type("MixedRow", (), ns))
    return st_


_kinds = st.lists(st.sampled_from(sorted(_KINDS)), max_size=3)


@settings(max_examples=300, deadline=None)
@given(
    before=_kinds,
    between=_kinds,
    after=_kinds,
    second=st.sampled_from(["array", "optarray"]),
    n=st.integers(1, 6),
    shape=st.lists(st.integers(0, 3), max_size=2),
    dtype=st.sampled_from(["<u1", ">f8", "<i4"]),
    npy=st.booleans(),
    pad=st.integers(0, 2),
    data=st.data(),
)
def test_mixed_fields_batch_is_the_checked_batch(
    before, between, after, second, n, shape, dtype, npy, pad, data
):
    """Fields of every kind before, between and after two arrays (compact or ``.npy``), values
    differing per row (and in encoded length), a wrongly typed value now and then, then random
    byte edits: a batch that comes out is the checked batch, bit for bit; well typed rows
    always make one."""
    kinds = [*before, "array", *between, second, *after]
    fields = tuple((f"f{i}", k) for i, k in enumerate(kinds))
    last = f"f{len(before) + 1 + len(between)}"  # the second array, nil in some rows
    st_ = _mixed_type(fields)
    nil = data.draw(st.lists(st.sampled_from([False, False, True]), min_size=n, max_size=n))
    one = st.tuples(st.integers(0, n - 1), st.sampled_from(fields))
    wrong = data.draw(st.integers(0, 3).flatmap(lambda k: st.just(()) if k else st.tuples(one)))
    pays, well_typed, handled = [], True, not (npy and dtype[0] == ">")  # (np.stack: native)
    for i in range(n):
        row = {}
        for name, kind in fields:
            if kind in ("array", "optarray"):
                if name == last and nil[i]:
                    row[name] = None
                    well_typed &= kind == "optarray"
                else:
                    row[name] = (_npy if npy else encode_array)(np.full(shape, i * 37, dtype))
            elif (i, (name, kind)) in wrong:
                row[name] = data.draw(_LEAF)
                well_typed &= kind == "any"
            else:
                row[name] = data.draw(_KINDS[kind][1])
                handled &= kind != "list" or len(row[name]) <= 64
        pays.append(msgpack.packb(row))
    fast = _agree(st_, pays, pad)
    if well_typed and handled:
        assert fast is not None
    j = data.draw(st.integers(0, n - 1))
    p = bytearray(pays[j])
    at = data.draw(st.integers(0, len(p) - 1))
    kind = data.draw(st.sampled_from(["set", "cut", "add", "int"]))
    if kind == "set":
        p[at] = data.draw(st.integers(0, 255))
    elif kind == "cut":
        del p[at:]
    elif kind == "add":
        p[at:at] = bytes((data.draw(st.integers(0, 255)),))
    else:  # a header byte of another msgpack type, length kept or not
        p[at] = data.draw(st.sampled_from([0xC0, 0xC1, 0xC3, 0xCA, 0xCC, 0xD9, 0xDC, 0x91, 0x81]))
    pays[j] = bytes(p)
    cache = [None]
    _fast(st_, _entries(pays[:1]), cache)  # a cached layout, maybe of the edited payload
    _agree(st_, pays, pad, cache)


def test_ext_values_before_an_array_decode_as_msgpack_does():
    st_ = _mixed_type((("f0", "any"), ("f1", "array"), ("f2", "opt")))
    vals = [msgpack.ExtType(5, b"xyz"), msgpack.Timestamp(1, 2), msgpack.ExtType(1, b"a" * 300)]
    pays = [
        msgpack.packb({"f0": v, "f1": encode_array(np.zeros(2, "<u1")), "f2": i}, datetime=False)
        for i, v in enumerate(vals)
    ]
    b = fast_batch(st_, _entries(pays))
    assert b is not None and b.f0 == vals and b.f2 == [0, 1, 2]
    _same(b, _checked(st_, pays), st_)


def test_npy_arrays_the_checked_path_stacks_into_another_dtype_are_checked():
    pays = [
        msgpack.packb({"img": _npy(np.full(2, i, ">f8")), "mask": None, "n": i}) for i in (0, 1)
    ]
    assert fast_batch(OptRow, _entries(pays)) is None
    assert _checked(OptRow, pays).img.dtype.str == "<f8"  # np.stack made it native
    compact = [msgpack.packb({"img": encode_array(np.full(2, 7, ">f8")), "mask": None, "n": 0})]
    assert fast_batch(OptRow, _entries(compact)).img.dtype.str == ">f8"  # as the checked path
    assert _checked(OptRow, compact).img.dtype.str == ">f8"


@atdata.packable
class Stamped:
    t: atdata.NDArray
    dt: atdata.NDArray | None = None


@pytest.mark.parametrize("dtype", ["<M8[ns]", "<m8[s]"])
def test_datetime_arrays_batch_as_the_checked_path_does(dtype):
    pays = [
        msgpack.packb(
            {
                "t": encode_array(np.arange(3).astype(dtype) + i),
                "dt": encode_array(np.arange(2).astype(dtype)),
            },
            use_bin_type=True,
        )
        for i in range(4)
    ]
    b = fast_batch(Stamped, _entries(pays))
    assert b is not None
    _same(b, _checked(Stamped, pays), Stamped)
    assert b.t.dtype.str == dtype and b.t[2].astype("i8").tolist() == [2, 3, 4]
