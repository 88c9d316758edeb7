"""Where a msgpack value ends (dataset/_span.py): where msgpack itself says, for every kind of
value, or ``-1`` past the item limit."""

from __future__ import annotations

import msgpack
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from atdata.dataset._span import MAX_ITEMS, SIZE, value_end

_leaf = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-(2**63), 2**64 - 1),
    st.floats(width=32),  # float 32 or float 64, as packed
    st.text(max_size=300),
    st.binary(max_size=70000),
    st.builds(msgpack.ExtType, st.integers(0, 127), st.binary(max_size=300)),
)
_value = st.recursive(
    _leaf,
    lambda c: st.lists(c, max_size=20) | st.dictionaries(st.text(max_size=4), c, max_size=20),
    max_leaves=80,
)


def _values(v):
    if isinstance(v, list):
        return 1 + sum(_values(x) for x in v)
    if isinstance(v, dict):
        return 1 + sum(1 + _values(x) for x in v.values())
    return 1


@settings(max_examples=300, deadline=None)
@given(v=_value, single=st.booleans(), after=st.binary(max_size=8))
def test_the_end_is_msgpacks(v, single, after):
    b = msgpack.packb(v, use_single_float=single)
    u = msgpack.Unpacker()
    u.feed(b + after)
    u.skip()
    want = u.tell() if _values(v) <= MAX_ITEMS + 1 else -1
    assert value_end(b + after, 0) == want == (len(b) if want >= 0 else -1)
    assert value_end(memoryview(b"xy" + b + after), 2) == (want + 2 if want >= 0 else -1)


@pytest.mark.parametrize(
    ("value", "size"),
    [
        (0, 1),
        (-32, 1),
        (-33, 2),
        (255, 2),
        (256, 3),
        (2**32, 9),
        (-(2**63), 9),
        (1.5, 9),
        (None, 1),
        (True, 1),
        ("a" * 31, 32),
        ("a" * 32, 0),  # str 8: a length follows
        (b"", 0),
        ([], 0),
        (msgpack.ExtType(1, b"abcd"), 6),
    ],
)
def test_sizes_by_the_first_byte(value, size):
    b = msgpack.packb(value)
    assert SIZE[b[0]] == size
    assert value_end(b, 0) == len(b)


def test_a_byte_msgpack_never_uses_and_short_buffers():
    assert SIZE[0xC1] == 0 and value_end(b"\xc1", 0) == -1
    assert value_end(b"\x92\x01\xc1", 0) == -1
    with pytest.raises(IndexError):
        value_end(b"\x92\x01", 0)  # the second item's header is missing
    assert value_end(b"\xd9\x05ab", 0) == 7  # (the string's bytes are not read: the end is)
