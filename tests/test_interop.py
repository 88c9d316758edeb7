"""Interop with upstream atdata 0.7.0b1: read its shards exactly, and write shards it can read."""

from __future__ import annotations

import base64
import json
import pathlib
import struct
import subprocess
import tarfile
import textwrap

import msgpack
import numpy as np
import pytest

import atdata
from atdata import DictSample
from tests._helpers import InteropImage, InteropVectors
from tests._upstream import upstream_python


def _expected_value(v):
    """Turn an expected.json value into the Python value a typed reader must produce."""
    if isinstance(v, dict) and "ndarray" in v:
        return np.asarray(v["ndarray"], dtype=np.dtype(v["dtype"])).reshape(v["shape"])
    if isinstance(v, dict) and "bytes_b64" in v:
        return base64.b64decode(v["bytes_b64"])
    return v


def _assert_field(name, got, want_json):
    want = _expected_value(want_json)
    if isinstance(want, np.ndarray):
        assert isinstance(got, np.ndarray), name
        assert got.dtype.str == want_json["dtype"], name
        assert list(got.shape) == want_json["shape"], name
        assert np.array_equal(got, want), name
    else:
        assert type(got) is type(want), (name, got, want)
        assert got == want, name


@pytest.fixture(scope="module")
def expected(interop_dir):
    return json.loads((interop_dir / "expected.json").read_text())


CASES = [("images", InteropImage), ("vectors", InteropVectors)]


def _urls(interop_dir, name, expected):
    return [str(interop_dir / name / s) for s in expected[name]["shards"]]


@pytest.mark.parametrize(("name", "typ"), CASES)
def test_typed_read_matches_expected(interop_dir, expected, name, typ):
    ds = atdata.Dataset[typ](_urls(interop_dir, name, expected))
    got = list(ds.ordered())
    want = expected[name]["samples"]
    assert len(got) == len(want) == len(ds)
    assert len(want) == {"images": 25, "vectors": 12}[name]
    for s, w in zip(got, want, strict=True):
        assert isinstance(s, typ)
        assert set(w) == {f.name for f in typ.atdata_fields()}
        for field, wv in w.items():
            _assert_field(field, getattr(s, field), wv)
        assert len(s.__key__) == 36  # upstream keys are uuid1 strings


def test_images_expected_dtypes_and_optional_mask(expected):
    samples = expected["images"]["samples"]
    assert {s["image"]["dtype"] for s in samples} == {"|u1"}
    assert {tuple(s["image"]["shape"]) for s in samples} == {(3, 8, 8)}
    masks = [s["mask"] for s in samples]
    assert sum(m is None for m in masks) == 9
    assert {(m["dtype"], tuple(m["shape"])) for m in masks if m is not None} == {("|b1", (8, 8))}


@pytest.mark.parametrize(("name", "typ"), CASES)
def test_dictsample_read_matches_expected(interop_dir, expected, name, typ):
    ds = atdata.Dataset(_urls(interop_dir, name, expected))
    want = expected[name]["samples"]
    got = list(ds)
    assert len(got) == len(want)
    for s, w in zip(got, want, strict=True):
        assert isinstance(s, DictSample)
        assert sorted(s.keys()) == sorted(w)
        for field, wv in w.items():
            raw = s[field]
            if isinstance(wv, dict) and "ndarray" in wv:
                assert type(raw) is bytes  # arrays stay raw bytes without a schema
                _assert_field(field, atdata.decode_array(raw), wv)
                _assert_field(field, s.array(field), wv)
            else:
                _assert_field(field, raw, wv)
        typed = s.as_type(typ)
        assert typed.__key__ == s.__key__
        for field, wv in w.items():
            _assert_field(field, getattr(typed, field), wv)


def test_dictsample_dataset_as_type(interop_dir, expected):
    ds = atdata.Dataset(_urls(interop_dir, "vectors", expected)).as_type(InteropVectors)
    names = [s.name for s in ds]
    assert names == [s["name"] for s in expected["vectors"]["samples"]]


def test_upstream_member_layout(interop_dir, expected):
    """Upstream shards: one `<uuid>.msgpack` member per sample, payload a msgpack map."""
    path = interop_dir / "vectors" / "vectors.tar"
    with tarfile.open(path) as tf:
        members = tf.getmembers()
        assert len(members) == 12
        for m in members:
            key, ext = m.name.split(".", 1)
            assert ext == "msgpack" and len(key) == 36
            payload = msgpack.unpackb(tf.extractfile(m).read(), raw=False)
            assert list(payload) == ["vec32", "mat64", "ints", "name", "blob"]
            assert payload["vec32"][:4] == b"\x03<f4"


def test_upstream_batches(interop_dir, expected):
    ds = atdata.Dataset[InteropImage](_urls(interop_dir, "images", expected))
    batches = list(ds.ordered(batch_size=10))
    assert [len(b) for b in batches] == [10, 10, 5]
    assert batches[0].image.shape == (10, 3, 8, 8)
    assert batches[0].image.dtype == np.uint8
    assert batches[0].label == [s["label"] for s in expected["images"]["samples"][:10]]


# -- shards we write, read by plain tarfile + msgpack -----------------------------------------


def _compact(arr: np.ndarray) -> bytes:
    """The compact array format, built independently of atdata (wire-format spec)."""
    ds = arr.dtype.str.encode()
    out = bytes([len(ds)]) + ds + bytes([arr.ndim])
    for d in arr.shape:
        out += struct.pack("<q", d)
    return out + np.ascontiguousarray(arr).tobytes()


def _interop_samples(expected):
    out = []
    for w in expected["vectors"]["samples"]:
        out.append(InteropVectors(**{k: _expected_value(v) for k, v in w.items()}))
    return out


def test_our_shards_decode_with_plain_tarfile(tmp_path, expected):
    samples = _interop_samples(expected)
    ds = atdata.write_samples(samples, tmp_path / "v.tar", key="index")
    with tarfile.open(ds.list_shards()[0]) as tf:
        members = tf.getmembers()
        assert [m.name for m in members] == [f"{i:08d}.msgpack" for i in range(12)]
        for m, s in zip(members, samples, strict=True):
            assert m.isfile()
            payload = msgpack.unpackb(tf.extractfile(m).read(), raw=False)
            assert list(payload) == ["vec32", "mat64", "ints", "name", "blob"]
            assert payload["vec32"] == _compact(s.vec32)
            assert payload["mat64"] == _compact(s.mat64)
            assert payload["ints"] == _compact(s.ints)
            assert payload["name"] == s.name and payload["blob"] == s.blob
            # byte by byte: dtype length, dtype, ndim, int64 dims, data
            b = payload["mat64"]
            assert b[0] == 3 and b[1:4] == b"<f8" and b[4] == 2
            assert struct.unpack_from("<2q", b, 5) == (2, 3)
            assert np.frombuffer(b[21:], "<f8").tolist() == s.mat64.ravel().tolist()


def test_our_payload_equals_upstream_payload_bytes(interop_dir, expected):
    """Re-encoding an upstream sample with our encoder gives the identical msgpack bytes."""
    with tarfile.open(interop_dir / "vectors" / "vectors.tar") as tf:
        upstream = [tf.extractfile(m).read() for m in tf.getmembers()]
    for raw, s in zip(upstream, _interop_samples(expected), strict=True):
        assert s.packed == raw
    with tarfile.open(interop_dir / "images" / "images-000000.tar") as tf:
        raws = [tf.extractfile(m).read() for m in tf.getmembers()]
    for raw in raws:
        assert InteropImage.from_bytes(raw).packed == raw


# -- upstream reads what we write (needs an interpreter with atdata 0.7.0b1) --------------------

_UPSTREAM_SCRIPT = textwrap.dedent(
    """
    import json, sys
    import numpy as np
    from numpy.typing import NDArray
    import atdata

    @atdata.packable
    class InteropVectors:
        vec32: NDArray
        mat64: NDArray
        ints: NDArray
        name: str
        blob: bytes

    @atdata.packable
    class InteropImage:
        image: NDArray
        mask: NDArray | None
        label: str
        score: float
        idx: int
        tags: list[str]
        flag: bool

    ds = atdata.Dataset[InteropVectors](sys.argv[1])
    out = []
    for s in ds.ordered():
        out.append({"vec32": s.vec32.tolist(), "dt": s.vec32.dtype.str, "mat64": s.mat64.tolist(),
                    "ints": s.ints.tolist(), "name": s.name, "blob": s.blob.hex()})
    imgs = []
    for s in atdata.Dataset[InteropImage](sys.argv[2]).ordered():
        imgs.append({"image": s.image.tolist(), "dt": s.image.dtype.str,
                     "mask": None if s.mask is None else s.mask.tolist(), "label": s.label,
                     "score": s.score, "idx": s.idx, "tags": s.tags, "flag": s.flag})
    print(json.dumps({"vectors": out, "images": imgs}))
    """
)


def test_upstream_reads_our_shards(tmp_path, expected):
    py = upstream_python()
    samples = _interop_samples(expected)
    ds = atdata.write_samples(samples, tmp_path / "ours.tar")
    images = [
        InteropImage(**{k: _expected_value(v) for k, v in w.items()})
        for w in expected["images"]["samples"]
    ]
    ids = atdata.write_samples(images, tmp_path / "imgs-%02d.tar", maxcount=10)
    script = tmp_path / "read.py"
    script.write_text(_UPSTREAM_SCRIPT)
    res = subprocess.run(
        [py, str(script), ds.list_shards()[0], str(tmp_path / "imgs-{00..02}.tar")],
        capture_output=True,
        text=True,
        check=True,
        cwd=pathlib.Path(py).resolve().anchor,
    )
    both = json.loads(res.stdout.strip().splitlines()[-1])
    got = both["vectors"]
    assert len(ids) == 25
    assert len(got) == 12
    for g, s in zip(got, samples, strict=True):
        assert g["dt"] == "<f4"
        assert g["vec32"] == s.vec32.tolist()
        assert g["mat64"] == s.mat64.tolist()
        assert g["ints"] == s.ints.tolist()
        assert g["name"] == s.name
        assert bytes.fromhex(g["blob"]) == s.blob
    assert len(both["images"]) == 25
    for g, w in zip(both["images"], expected["images"]["samples"], strict=True):
        assert g["dt"] == "|u1"
        assert g["image"] == w["image"]["ndarray"]
        assert g["mask"] == (None if w["mask"] is None else w["mask"]["ndarray"])
        assert (g["label"], g["score"], g["idx"], g["tags"], g["flag"]) == (
            w["label"],
            w["score"],
            w["idx"],
            w["tags"],
            w["flag"],
        )
