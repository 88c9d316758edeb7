"""Golden wire-format files: our encoder must write these bytes, and they must decode to fixed values.

Regenerate with ``uv run python tests/golden/make_golden.py`` (only for an intended format change).
"""

from __future__ import annotations

import pathlib
import tarfile

import msgpack
import numpy as np
import pytest

import atdata
from atdata import DictSample
from atdata._shards.tar import iter_tar
from tests.golden import make_golden as g

GOLDEN = pathlib.Path(__file__).resolve().parent / "golden"


def _same_array(a: np.ndarray, b: np.ndarray) -> None:
    assert a.dtype.str == b.dtype.str
    assert a.shape == b.shape
    assert np.array_equal(a, b, equal_nan=a.dtype.kind in "fc")


@pytest.mark.parametrize("name", sorted(g.array_cases()))
def test_array_encoder_writes_golden_bytes(name):
    arr = g.array_cases()[name]
    assert atdata.encode_array(arr) == (GOLDEN / "arrays" / f"{name}.bin").read_bytes()


@pytest.mark.parametrize("name", sorted(g.array_cases()))
def test_golden_array_decodes(name):
    got = atdata.decode_array((GOLDEN / "arrays" / f"{name}.bin").read_bytes())
    _same_array(got, g.array_cases()[name])
    assert got.flags.writeable and got.flags.c_contiguous


def test_golden_array_files_cover_the_dtypes():
    kinds = {a.dtype.str for a in g.array_cases().values()}
    assert {"|b1", "|u1", "|i1", "<i2", "<f2", "<f4", "<f8", ">f8", "<c8", "<c16"} <= kinds


@pytest.mark.parametrize(
    ("name", "hexbytes"),
    [
        # len 3, "|b1", ndim 1, dim 3 (int64 LE), data 01 00 01
        ("bool_1d", "037c623101" + "0300000000000000" + "010001"),
        # 0-d: ndim 0, no dims, 8 data bytes (42.25 as <f8)
        ("scalar_0d", "033c663800" + "0000000000204540"),
        # empty (0,) float32: one dim of 0, no data
        ("empty_1d", "033c663401" + "0000000000000000"),
        ("empty_2x0", "037c693102" + "0200000000000000" + "0000000000000000"),
        ("float16", "033c663201" + "0300000000000000" + "0038" + "00c0" + "ff7b"),
        ("float64_be", "033e663801" + "0200000000000000" + "3ff8000000000000" + "4004000000000000"),
    ],
)
def test_golden_array_bytes_by_hand(name, hexbytes):
    assert (GOLDEN / "arrays" / f"{name}.bin").read_bytes().hex() == hexbytes


@pytest.mark.parametrize("name", sorted(g.npy_cases()))
def test_golden_npy_decodes(name):
    data = (GOLDEN / "npy" / f"{name}.npy").read_bytes()
    arr, version = g.npy_cases()[name]
    assert data[:6] == b"\x93NUMPY" and data[6] == version[0]
    assert data == g.npy_bytes(arr, version)  # numpy's writer is stable
    got = atdata.decode_array(data)
    _same_array(got, np.array(arr, order="C"))
    assert got.flags.c_contiguous


def test_golden_npy_fortran_order_values():
    data = (GOLDEN / "npy" / "v1_fortran_int16.npy").read_bytes()
    assert b"'fortran_order': True" in data[:128]
    got = atdata.decode_array(data)
    assert got.tolist() == [[0, 1, 2], [3, 4, 5]]
    assert got.dtype.str == "<i2"


@pytest.mark.parametrize("name", sorted(g.payload_cases()))
def test_golden_payload_decodes(name):
    sample, _exact = g.payload_cases()[name]
    data = (GOLDEN / "payloads" / f"{name}.msgpack").read_bytes()
    got = type(sample).from_bytes(data)
    assert got == sample
    assert got.__key__ is None


@pytest.mark.parametrize("name", sorted(n for n, (_s, exact) in g.payload_cases().items() if exact))
def test_payload_encoder_writes_golden_bytes(name):
    sample, _exact = g.payload_cases()[name]
    assert sample.packed == (GOLDEN / "payloads" / f"{name}.msgpack").read_bytes()


def test_golden_payload_structure():
    raw = msgpack.unpackb((GOLDEN / "payloads" / "nested.msgpack").read_bytes(), raw=False)
    assert list(raw) == ["name", "origin", "corners", "pixels", "hint"]
    assert raw["origin"] == {"x": 0.0, "y": 0.0}
    assert raw["corners"] == [{"x": 1.0, "y": 0.0}, {"x": 1.0, "y": 1.0}]
    assert raw["pixels"][:5] == b"\x03|u1\x02"
    none = msgpack.unpackb((GOLDEN / "payloads" / "optionals_none.msgpack").read_bytes())
    assert none == {"name": "a", "note": None, "count": 7, "arr": None}
    absent = (GOLDEN / "payloads" / "optionals_absent.msgpack").read_bytes()
    assert msgpack.unpackb(absent) == {"name": "c"}
    got = g.Optionals.from_bytes(absent)
    assert (got.note, got.count, got.arr) == (None, 7, None)


def test_golden_payloads_as_dictsample():
    d = DictSample.from_bytes((GOLDEN / "payloads" / "nested.msgpack").read_bytes())
    assert d.name == "square" and d["origin"] == {"x": 0.0, "y": 0.0}
    assert type(d.pixels) is bytes
    assert d.array("pixels").tolist() == [[1, 0], [0, 1]]
    assert d.as_type(g.Shape) == g.payload_cases()["nested"][0]
    legacy = DictSample.from_bytes((GOLDEN / "payloads" / "legacy_npy_field.msgpack").read_bytes())
    assert legacy.arr[:6] == b"\x93NUMPY"
    assert atdata.decode_array(legacy.arr).tolist() == [[0.0, 1.0], [2.0, 3.0]]


def test_tar_writer_writes_golden_shard():
    assert g.shard_bytes() == (GOLDEN / "golden.tar").read_bytes()


def test_golden_shard_reads_everywhere(tmp_path):
    path = GOLDEN / "golden.tar"
    want = g.shard_samples()
    # our Dataset
    got = list(atdata.Dataset[g.Scalars](str(path)))
    assert got == want
    assert [s.__key__ for s in got] == g.SHARD_KEYS
    # python's tarfile
    with tarfile.open(path) as tf:
        ms = tf.getmembers()
        assert [m.name for m in ms] == [k + ".msgpack" for k in g.SHARD_KEYS]
        assert [m.mtime for m in ms] == [0, 0, 0]
        assert [g.Scalars.from_bytes(tf.extractfile(m).read()) for m in ms] == want
    # our low-level reader, offsets aligned to 512
    with open(path, "rb") as f:
        members = [(m.name, m.offset, bytes(m.data)) for m in iter_tar(f.read)]
    assert [m[1] for m in members] == [512, 1536, 2560]
    assert [m[2] for m in members] == [s.packed for s in want]
