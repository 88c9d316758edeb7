"""Regenerate the golden wire-format files in this directory.

Run ``uv run python tests/golden/make_golden.py`` after an intentional wire-format change, then
review the diff: every file here is a format promise to readers (upstream atdata 0.7 included).

Layout:
    arrays/<name>.bin       compact array bytes (encode_array)
    npy/<name>.npy          legacy .npy array payloads (numpy's own writer; v1, v2, fortran order)
    payloads/<name>.msgpack msgpack sample payloads
    golden.tar              a shard of three samples written by TarWriter with mtime=0
"""

from __future__ import annotations

import io
import pathlib
import sys

import msgpack
import numpy as np

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[2] / "src"))

import atdata
from atdata import NDArray
from atdata._shards.tar import TarWriter

HERE = pathlib.Path(__file__).resolve().parent


@atdata.packable
class Scalars:
    s: str
    i: int
    f: float
    b: bool
    raw: bytes


@atdata.packable
class Optionals:
    name: str
    note: str | None = None
    count: int = 7
    arr: NDArray | None = None


@atdata.packable
class Collections:
    tags: list[str]
    scores: list[float]
    attrs: dict[str, int]
    nested: dict[str, list[int]]
    anything: dict


@atdata.packable
class Point:
    x: float
    y: float


@atdata.packable
class Shape:
    name: str
    origin: Point
    corners: list[Point]
    pixels: NDArray
    hint: Point | None = None


@atdata.packable
class Legacy:
    arr: NDArray
    label: str


def array_cases() -> dict[str, np.ndarray]:
    """Compact-format arrays: name -> value."""
    return {
        "bool_1d": np.array([True, False, True], dtype="|b1"),
        "uint8_2x3": np.arange(6, dtype="|u1").reshape(2, 3),
        "int8_neg": np.array([-128, -1, 0, 127], dtype="|i1"),
        "int16": np.array([1, -2, 300], dtype="<i2"),
        "uint16": np.array([0, 65535], dtype="<u2"),
        "int32_2x2": np.array([[1, -1], [2**31 - 1, -(2**31)]], dtype="<i4"),
        "int64": np.array([2**40, -5], dtype="<i8"),
        "uint64": np.array([2**64 - 1], dtype="<u8"),
        "float16": np.array([0.5, -2.0, 65504.0], dtype="<f2"),
        "float32_3d": np.arange(24, dtype="<f4").reshape(2, 3, 4) / 4,
        "float64": np.array([np.pi, -0.0, 1e300], dtype="<f8"),
        "float64_be": np.array([1.5, 2.5], dtype=">f8"),
        "complex64": np.array([1 + 2j, -3.5j], dtype="<c8"),
        "complex128": np.array([[1 - 1j], [2 + 0.5j]], dtype="<c16"),
        "scalar_0d": np.array(42.25, dtype="<f8"),
        "empty_1d": np.zeros((0,), dtype="<f4"),
        "empty_2x0": np.zeros((2, 0), dtype="|i1"),
    }


def npy_cases() -> dict[str, tuple[np.ndarray, tuple[int, int]]]:
    """Legacy .npy payloads: name -> (value as written, npy format version)."""
    return {
        "v1_c_float32": (np.arange(6, dtype="<f4").reshape(2, 3), (1, 0)),
        "v1_fortran_int16": (np.asfortranarray(np.arange(6, dtype="<i2").reshape(2, 3)), (1, 0)),
        "v1_bool": (np.array([True, False]), (1, 0)),
        "v1_scalar": (np.array(3, dtype="<i8"), (1, 0)),
        "v1_be_float64": (np.array([1.0, -2.0], dtype=">f8"), (1, 0)),
        "v2_uint8": (np.arange(4, dtype="|u1"), (2, 0)),
    }


def npy_bytes(arr: np.ndarray, version: tuple[int, int]) -> bytes:
    buf = io.BytesIO()
    np.lib.format.write_array(buf, arr, version=version, allow_pickle=False)
    return buf.getvalue()


def payload_cases() -> dict[str, tuple[object, bool]]:
    """Payloads: name -> (expected decoded sample, whether our encoder writes exactly these bytes)."""
    return {
        "scalars": (Scalars(s="héllo", i=-(2**40), f=0.1, b=True, raw=b"\x00\xff"), True),
        "optionals_none": (Optionals(name="a"), True),
        "optionals_set": (
            Optionals(name="b", note="n", count=-1, arr=np.array([1, 2], dtype="<i4")),
            True,
        ),
        # written by an older writer that did not know the optional/defaulted fields
        "optionals_absent": (Optionals(name="c"), False),
        "collections": (
            Collections(
                tags=["x", "y"],
                scores=[0.5, 1.0],
                attrs={"a": 1, "b": -2},
                nested={"k": [1, 2, 3], "e": []},
                anything={"mixed": [1, "two", None, 3.5], "flag": False},
            ),
            True,
        ),
        "nested": (
            Shape(
                name="square",
                origin=Point(x=0.0, y=0.0),
                corners=[Point(x=1.0, y=0.0), Point(x=1.0, y=1.0)],
                pixels=np.eye(2, dtype="|u1"),
                hint=Point(x=0.5, y=0.5),
            ),
            True,
        ),
        # a payload whose array field holds a legacy .npy file (read, never written)
        "legacy_npy_field": (
            Legacy(arr=np.arange(4, dtype="<f8").reshape(2, 2), label="old"),
            False,
        ),
    }


def payload_bytes(name: str, sample: object) -> bytes:
    if name == "optionals_absent":
        return msgpack.packb({"name": "c"}, use_bin_type=True)
    if name == "legacy_npy_field":
        return msgpack.packb(
            {"arr": npy_bytes(sample.arr, (1, 0)), "label": sample.label}, use_bin_type=True
        )
    return sample.packed


SHARD_KEYS = ["000000", "000001", "sample-two"]


def shard_samples() -> list[Scalars]:
    return [
        Scalars(s="a", i=0, f=0.0, b=False, raw=b""),
        Scalars(s="b", i=1, f=1.5, b=True, raw=b"\x01"),
        Scalars(s="c" * 300, i=2, f=-1.0, b=False, raw=bytes(range(256))),
    ]


def shard_bytes() -> bytes:
    buf = io.BytesIO()
    w = TarWriter(buf, mtime=0)
    for key, s in zip(SHARD_KEYS, shard_samples(), strict=True):
        w.add(key + ".msgpack", s.packed)
    w.close()
    return buf.getvalue()


def main() -> None:
    (HERE / "arrays").mkdir(exist_ok=True)
    (HERE / "npy").mkdir(exist_ok=True)
    (HERE / "payloads").mkdir(exist_ok=True)
    for name, arr in array_cases().items():
        (HERE / "arrays" / f"{name}.bin").write_bytes(atdata.encode_array(arr))
    for name, (arr, version) in npy_cases().items():
        (HERE / "npy" / f"{name}.npy").write_bytes(npy_bytes(arr, version))
    for name, (sample, _exact) in payload_cases().items():
        (HERE / "payloads" / f"{name}.msgpack").write_bytes(payload_bytes(name, sample))
    (HERE / "golden.tar").write_bytes(shard_bytes())
    print(f"golden files written to {HERE}")


if __name__ == "__main__":
    main()
