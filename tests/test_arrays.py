"""The compact array codec and the legacy .npy reader."""

from __future__ import annotations

import io
import struct

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

import atdata
from atdata import DecodeError
from atdata._wire.arrays import decode_array_into, is_array_bytes, parse_header


def _npy(arr, version=(1, 0)):
    buf = io.BytesIO()
    np.lib.format.write_array(buf, arr, version=version, allow_pickle=False)
    return buf.getvalue()


def test_encode_layout():
    b = atdata.encode_array(np.array([[1, 2, 3]], dtype="<u2"))
    assert b[0] == 3 and b[1:4] == b"<u2" and b[4] == 2
    assert struct.unpack_from("<2q", b, 5) == (1, 3)
    assert b[21:] == b"\x01\x00\x02\x00\x03\x00"
    assert len(b) == 1 + 3 + 1 + 16 + 6


def test_encode_non_contiguous_and_lists():
    a = np.arange(12, dtype="<i4").reshape(3, 4)
    assert atdata.decode_array(atdata.encode_array(a.T)).tolist() == a.T.tolist()
    assert atdata.decode_array(atdata.encode_array(a[:, ::2])).tolist() == [[0, 2], [4, 6], [8, 10]]
    assert atdata.decode_array(atdata.encode_array([1.5, 2.5])).tolist() == [1.5, 2.5]


def test_encode_refuses_object_dtype():
    with pytest.raises(DecodeError, match=r"object-dtype"):
        atdata.encode_array(np.array([{}, 1], dtype=object))


def test_decode_copy_and_zero_copy():
    b = atdata.encode_array(np.arange(4, dtype="<f8"))
    a = atdata.decode_array(b)
    a[0] = 9.0  # writable and owned
    assert a.tolist() == [9.0, 1.0, 2.0, 3.0]
    v = atdata.decode_array(b, copy=False)
    assert not v.flags.writeable and v.tolist() == [0.0, 1.0, 2.0, 3.0]
    with pytest.raises(ValueError):
        v[0] = 1.0


def test_decode_big_endian_keeps_dtype():
    a = atdata.decode_array(atdata.encode_array(np.array([1, 258], dtype=">i2")))
    assert a.dtype.str == ">i2" and a.tolist() == [1, 258]


def test_parse_header():
    b = atdata.encode_array(np.zeros((2, 5), dtype="<f4"))
    dt, shape, off = parse_header(b)
    assert (dt.str, shape, off) == ("<f4", (2, 5), 21)


def test_is_array_bytes():
    assert is_array_bytes(atdata.encode_array(np.zeros(3)))
    assert is_array_bytes(_npy(np.zeros(3)))
    assert not is_array_bytes(b"hello world")
    assert not is_array_bytes("text")
    assert not is_array_bytes(b"")


def test_decode_rejects_non_bytes():
    with pytest.raises(DecodeError, match=r"expected array bytes, got str"):
        atdata.decode_array("abc")  # type: ignore[arg-type]


def test_decode_where_is_in_message():
    with pytest.raises(DecodeError, match=r"in field 'x' of sample 'k'"):
        atdata.decode_array(
            b"\x03<f4\x01" + struct.pack("<q", 2) + b"\0\0\0\0", where=" in field 'x' of sample 'k'"
        )


@pytest.mark.parametrize(
    "arr",
    [
        np.arange(6, dtype="<f4").reshape(2, 3),
        np.asfortranarray(np.arange(6, dtype="<i2").reshape(2, 3)),
        np.array(True),
        np.zeros((0, 3), dtype="<f8"),
    ],
)
def test_npy_versions(arr):
    for version in ((1, 0), (2, 0), (3, 0)):
        got = atdata.decode_array(_npy(arr, version))
        assert got.dtype == arr.dtype and got.shape == arr.shape
        assert got.tolist() == arr.tolist()


def test_npy_refuses_pickled_object_arrays():
    buf = io.BytesIO()
    np.save(buf, np.array([1, "a"], dtype=object), allow_pickle=True)
    with pytest.raises(DecodeError, match=r"object-dtype"):
        atdata.decode_array(buf.getvalue())


def test_npy_structured_dtype_refused():
    data = _npy(np.zeros(2, dtype=[("a", "<i4"), ("b", "<f4")]))
    with pytest.raises(DecodeError, match=r"unsupported .npy dtype"):
        atdata.decode_array(data)


def test_decode_array_into():
    out = np.empty((2, 3), dtype="<f4")
    decode_array_into(atdata.encode_array(np.ones((3,), "<f4")), out[1])
    assert out[1].tolist() == [1.0, 1.0, 1.0]
    decode_array_into(_npy(np.full(3, 2.0, "<f4")), out[0])
    assert out[0].tolist() == [2.0, 2.0, 2.0]
    with pytest.raises(DecodeError, match=r"ragged"):
        decode_array_into(atdata.encode_array(np.ones((4,), "<f4")), out[0])


_dtypes = st.sampled_from(
    [
        "|b1",
        "|u1",
        "|i1",
        "<u2",
        "<i2",
        "<u4",
        "<i4",
        "<u8",
        "<i8",
        "<f2",
        "<f4",
        "<f8",
        ">f8",
        ">i4",
        "<c8",
        "<c16",
        "<M8[s]",
        "<m8[ms]",
        "|S3",
        "<U2",
    ]
)


@settings(max_examples=150, deadline=None)
@given(
    _dtypes.flatmap(
        lambda d: hnp.arrays(
            np.dtype(d), hnp.array_shapes(min_dims=0, max_dims=4, min_side=0, max_side=5)
        )
    )
)
def test_roundtrip_property(arr):
    b = atdata.encode_array(arr)
    got = atdata.decode_array(b)
    assert got.dtype.str == arr.dtype.str and got.shape == arr.shape
    assert got.tobytes() == np.ascontiguousarray(arr).tobytes()
    npy = atdata.decode_array(_npy(arr))
    assert npy.tobytes() == np.ascontiguousarray(arr).tobytes() and npy.shape == arr.shape


def test_encode_refuses_structured_dtype_instead_of_dropping_its_fields():
    arr = np.zeros(2, dtype=[("a", "<i4"), ("b", "<f8")])
    with pytest.raises(DecodeError, match=r"structured.*'a', 'b'.*one field per column"):
        atdata.encode_array(arr)

    @atdata.packable
    class Rec:
        x: atdata.NDArray

    with pytest.raises(atdata.SchemaError, match=r"field Rec.'x'.*structured"):
        Rec(x=arr).packed  # noqa: B018
    plain_void = np.frombuffer(b"abcdefgh", "|V4")  # no field names: nothing to lose
    assert atdata.decode_array(atdata.encode_array(plain_void)).tobytes() == b"abcdefgh"
