"""Fuzzing every decoder (only AtdataError may escape) and round-trip properties."""

from __future__ import annotations

import contextlib
import io
import os
import pathlib
import tempfile

import msgpack
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

import atdata
from atdata import AtdataError, DictSample, NDArray
from atdata._shards.tar import TarWriter, iter_tar


@atdata.packable
class Sub:
    a: int
    b: list[str]


@atdata.packable
class Full:
    s: str
    i: int
    f: float
    flag: bool
    raw: bytes
    arr: NDArray
    opt_arr: NDArray | None
    opt_i: int | None
    floats: list[float]
    table: dict[str, int]
    anything: dict
    sub: Sub
    subs: list[Sub]
    maybe_sub: Sub | None = None


_DTYPES = [
    "|b1",
    "|u1",
    "|i1",
    "<u2",
    "<i2",
    ">i2",
    "<u4",
    "<i4",
    "<u8",
    "<i8",
    "<f2",
    "<f4",
    "<f8",
    ">f8",
    "<c8",
    "<c16",
]
arrays = st.sampled_from(_DTYPES).flatmap(
    lambda d: hnp.arrays(
        np.dtype(d), hnp.array_shapes(min_dims=0, max_dims=3, min_side=0, max_side=4)
    )
)
text = st.text(max_size=20)
i64 = st.integers(min_value=-(2**63), max_value=2**64 - 1)
floats = st.floats(allow_nan=False, width=64)
subs = st.builds(Sub, a=i64, b=st.lists(text, max_size=3))
json_like = st.recursive(
    st.none() | st.booleans() | i64 | floats | text | st.binary(max_size=8),
    lambda c: st.lists(c, max_size=3) | st.dictionaries(text, c, max_size=3),
    max_leaves=8,
)
fulls = st.builds(
    Full,
    s=text,
    i=i64,
    f=floats,
    flag=st.booleans(),
    raw=st.binary(max_size=32),
    arr=arrays,
    opt_arr=st.none() | arrays,
    opt_i=st.none() | i64,
    floats=st.lists(floats, max_size=4),
    table=st.dictionaries(text, i64, max_size=3),
    anything=st.dictionaries(text, json_like, max_size=3),
    sub=subs,
    subs=st.lists(subs, max_size=3),
    maybe_sub=st.none() | subs,
)

FUZZ = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@st.composite
def mutated(draw, base: bytes):
    data = bytearray(base)
    for _ in range(draw(st.integers(1, 6))):
        op = draw(st.sampled_from(["flip", "set", "cut", "insert", "delete"]))
        if not data and op != "insert":
            op = "insert"
        if op == "insert":
            pos = draw(st.integers(0, len(data)))
            data[pos:pos] = draw(st.binary(min_size=1, max_size=16))
            continue
        pos = draw(st.integers(0, len(data) - 1))
        if op == "flip":
            data[pos] ^= 1 << draw(st.integers(0, 7))
        elif op == "set":
            data[pos] = draw(st.sampled_from([0x00, 0xFF, 0x7F, 0x80, 0xC1, 0x93, 0x30]))
        elif op == "cut":
            del data[pos:]
        else:
            del data[pos : pos + draw(st.integers(1, 64))]
    return bytes(data)


_SAMPLE = Full(
    s="s",
    i=1,
    f=0.5,
    flag=True,
    raw=b"r",
    arr=np.arange(6, dtype="<f4").reshape(2, 3),
    opt_arr=np.array([True]),
    opt_i=None,
    floats=[1.0],
    table={"t": 1},
    anything={"x": [1]},
    sub=Sub(a=1, b=["x"]),
    subs=[Sub(a=2, b=[])],
)
_PAYLOAD = _SAMPLE.packed


def _npy(arr):
    buf = io.BytesIO()
    np.lib.format.write_array(buf, arr, allow_pickle=False)
    return buf.getvalue()


_ARRAY_SEEDS = [
    atdata.encode_array(np.arange(12, dtype="<i4").reshape(3, 4)),
    atdata.encode_array(np.array(1.5)),
    atdata.encode_array(np.zeros((0, 2), "|u1")),
    _npy(np.arange(6, dtype="<f8").reshape(2, 3)),
    _npy(np.asfortranarray(np.eye(2, dtype="<i2"))),
]


def _shard_bytes() -> bytes:
    buf = io.BytesIO()
    w = TarWriter(buf, mtime=0)
    for k in range(3):
        w.add(f"k{k}.msgpack", _SAMPLE.packed)
    w.close()
    return buf.getvalue()


_SHARD = _shard_bytes()


def _only_atdata_errors(fn, *args):
    with contextlib.suppress(AtdataError):
        fn(*args)


# -- decoders under random and mutated input ---------------------------------------------------


@FUZZ
@given(st.binary(max_size=200) | st.sampled_from(_ARRAY_SEEDS).flatmap(mutated))
def test_decode_array_fuzz(data):
    _only_atdata_errors(atdata.decode_array, data)
    _only_atdata_errors(lambda d: atdata.decode_array(d, copy=False), data)


@FUZZ
@given(
    st.sampled_from(
        [
            "<f4",
            "|u1",
            "|S0",
            "|V0",
            "<U0",
            "|S3",
            "<M8[D]",
            "(2,)i4",
            "i4,f4",
            "O",
            "|O",
            "V",
            "<U1",
        ]
    ),
    st.lists(st.integers(0, 3), max_size=3),
    st.binary(max_size=32),
)
def test_decode_array_any_dtype_string(dstr, shape, tail):
    d = dstr.encode()
    data = (
        bytes([len(d)])
        + d
        + bytes([len(shape)])
        + b"".join(x.to_bytes(8, "little") for x in shape)
        + tail
    )
    _only_atdata_errors(atdata.decode_array, data)


@FUZZ
@given(st.binary(max_size=300) | mutated(_PAYLOAD))
def test_payload_decoders_fuzz(data):
    _only_atdata_errors(Full.from_bytes, data)
    _only_atdata_errors(Sub.from_bytes, data)
    _only_atdata_errors(DictSample.from_bytes, data)
    try:
        d = DictSample.from_bytes(data)
    except AtdataError:
        return
    _only_atdata_errors(d.as_type, Full)


@FUZZ
@given(
    st.dictionaries(
        st.sampled_from([f.name for f in Full.atdata_fields()] + ["extra"]),
        st.none()
        | st.booleans()
        | i64
        | st.text(max_size=4)
        | st.binary(max_size=24)
        | st.lists(i64, max_size=2)
        | st.dictionaries(st.text(max_size=2), i64, max_size=2)
        | st.sampled_from(_ARRAY_SEEDS),
    )
)
def test_wrong_types_in_valid_msgpack(raw):
    base = msgpack.unpackb(_PAYLOAD)
    base.update(raw)
    _only_atdata_errors(Full.from_bytes, msgpack.packb(base))


@FUZZ
@given(st.binary(max_size=2048) | mutated(_SHARD), st.sampled_from([1, 100, 512, 1 << 20]))
def test_iter_tar_fuzz(data, chunk):
    def walk():
        for m in iter_tar(io.BytesIO(data).read, chunk=chunk):
            bytes(m.data)

    _only_atdata_errors(walk)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(mutated(_SHARD), st.sampled_from([None, 2]))
def test_dataset_over_mutated_shard(data, batch_size):
    fd, path = tempfile.mkstemp(suffix=".tar")
    try:
        os.write(fd, data)
        os.close(fd)
        for typ in (Full, DictSample):
            ds = atdata.Dataset(path, sample_type=typ)
            _only_atdata_errors(
                lambda ds=ds: [
                    len(b) if batch_size else b for b in ds.ordered(batch_size=batch_size)
                ]
            )
            _only_atdata_errors(lambda ds=ds: len(ds))
            # a mutated shard may hold fewer samples: IndexError is the sequence protocol
            with contextlib.suppress(IndexError):
                _only_atdata_errors(lambda ds=ds: ds[1])
            _only_atdata_errors(lambda ds=ds: ds.get("k2"))
            skipping = atdata.Dataset(path, sample_type=typ, on_error="skip")
            list(skipping)  # never raises
    finally:
        os.unlink(path)


# -- round trips -----------------------------------------------------------------------------


@settings(max_examples=200, deadline=None)
@given(fulls)
def test_packed_roundtrip(sample):
    got = Full.from_bytes(sample.packed)
    assert got == sample
    assert got.arr.dtype.str == sample.arr.dtype.str and got.arr.shape == sample.arr.shape
    d = DictSample.from_bytes(sample.packed)
    assert d.as_type(Full) == sample
    assert d.packed == sample.packed


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(fulls, min_size=1, max_size=6), st.integers(1, 4))
def test_write_read_roundtrip(samples, maxcount):
    d = tempfile.mkdtemp()
    try:
        ds = atdata.write_samples(
            samples, os.path.join(d, "f-%03d.tar"), maxcount=maxcount, key="index", fsync=False
        )
        got = list(ds.ordered())
        assert got == samples
        assert [s.__key__ for s in got] == [f"{i:08d}" for i in range(len(samples))]
        assert [s.__key__ for s in atdata.Dataset(ds.list_shards())] == [s.__key__ for s in got]
    finally:
        for f in os.listdir(d):
            os.unlink(os.path.join(d, f))
        os.rmdir(d)


@pytest.mark.parametrize("dtype", _DTYPES)
def test_batch_of_each_dtype(tmp_path, dtype):
    arrs = [np.arange(6).astype(dtype).reshape(2, 3) for _ in range(3)]
    base = {f.name: getattr(_SAMPLE, f.name) for f in Full.atdata_fields()}
    samples = [Full(**{**base, "arr": a}) for a in arrs]
    ds = atdata.write_samples(samples, tmp_path / "b.tar", key="index")
    b = next(ds.ordered(batch_size=3))
    assert b.arr.dtype.str == np.dtype(dtype).str and b.arr.shape == (3, 2, 3)
    assert np.array_equal(b.arr, np.stack(arrs))


# -- the checked-in corpus: regression inputs of every decoder ------------------------------------

_CORPUS = pathlib.Path(__file__).parent / "fuzz_corpus"
_CORPUS_FILES = sorted(p for p in _CORPUS.glob("*/*") if p.is_file())


@pytest.fixture(scope="module")
def fuzz_work(tmp_path_factory):
    from atdata.testing._fuzz import seeds

    work = str(tmp_path_factory.mktemp("fuzz"))
    seeds(work)  # writes the fixed shard and manifests once
    return work


def test_corpus_covers_every_decoder():
    from atdata.testing._fuzz import TARGETS

    have = {p.parent.name for p in _CORPUS_FILES}
    assert have == set(TARGETS) == {
        "atproto", "idx", "manifest_json", "manifest_parquet", "npy", "schema", "tar_scan",
        "tar_stream",
    }  # fmt: skip
    assert len(_CORPUS_FILES) >= 90


@pytest.mark.timeout(120)  # a hang fails here instead of stalling the suite
@pytest.mark.parametrize("path", _CORPUS_FILES, ids=lambda p: f"{p.parent.name}/{p.name}")
def test_corpus_input(path, fuzz_work):
    """Only AtdataError escapes, and memory stays near the input's size (tracemalloc peak)."""
    import tracemalloc

    from atdata.testing._fuzz import run_target

    data = path.read_bytes()
    tracemalloc.start()
    try:
        run_target(path.parent.name, data, fuzz_work)  # anything but AtdataError propagates
        _cur, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < (32 << 20) + 64 * len(data), f"{peak} bytes traced for {len(data)} input bytes"


def test_seeds_run_clean(fuzz_work):
    """The fuzzer's seeds are valid inputs: each target reads them without any error at all."""
    import atdata
    from atdata.testing._fuzz import seeds

    s = seeds(fuzz_work)
    assert sorted(s) == sorted(k for k in s if s[k])
    shard = os.path.join(fuzz_work, "base", "s.tar")
    assert len(atdata.Dataset(shard)) == 5
    assert [r["x"] for r in atdata.Dataset(shard).query(lambda df: df["x"] > 2).samples] == [3, 4]
