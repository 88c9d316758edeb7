"""The benchmark workload (issue 3) and the hand-written baselines it is compared with.

20,000 samples of ``{image: uint8 (3,64,64), embedding: float32 (256,), label: str, score: float,
idx: int}`` in 20 shards of 1,000, written once under ``benchmarks/_data/`` and reused
(``ATDATA_BENCH_SAMPLES=100000``: that many, a multiple of 1,000, for runs long enough that
start-up weighs little).
"""

from __future__ import annotations

import glob
import os
import struct

import msgpack
import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
DATA = os.path.join(HERE, "_data")
N_SAMPLES = int(os.environ.get("ATDATA_BENCH_SAMPLES", 20_000))
PER_SHARD = 1_000
LABELS = [f"class_{i}" for i in range(10)]


def sample_type() -> type:
    """The sample type (module-level once built, so DataLoader workers can pickle samples)."""
    st = globals().get("BenchSample")
    if st is not None:
        return st
    import atdata

    @atdata.packable
    class BenchSample:
        image: atdata.NDArray
        embedding: atdata.NDArray
        label: str
        score: float
        idx: int

    BenchSample.__qualname__ = "BenchSample"
    globals()["BenchSample"] = BenchSample
    return BenchSample


def make_samples(n: int, start: int = 0) -> list:
    st = sample_type()
    rng = np.random.default_rng(0)
    img = rng.integers(0, 255, size=(64, 3, 64, 64), dtype=np.uint8)
    emb = rng.standard_normal((64, 256)).astype(np.float32)
    return [
        st(image=img[i % 64], embedding=emb[i % 64], label=LABELS[i % 10], score=i / 7, idx=i)
        for i in range(start, start + n)
    ]


def data_dir(n: int = N_SAMPLES) -> str:
    """Directory holding ``n`` samples in shards of 1,000 (written on first use)."""
    d = os.path.join(DATA, f"n{n}")
    if len(glob.glob(os.path.join(d, "bench-*.tar"))) == n // PER_SHARD:
        return d
    import atdata

    os.makedirs(d, exist_ok=True)
    atdata.write_samples(
        make_samples(n),
        os.path.join(d, "bench-%06d.tar"),
        maxcount=PER_SHARD,
        key="index",
        fsync=False,
    )
    return d


def shard_paths(d: str) -> list[str]:
    return sorted(glob.glob(os.path.join(d, "bench-*.tar")))


def warm(paths: list[str]) -> int:
    """Read every shard once (warm page cache); return the total byte size."""
    total = 0
    for p in paths:
        with open(p, "rb") as f:
            while b := f.read(1 << 22):
                total += len(b)
    return total


# -- the compact array format, decoded by hand the way a user of plain webdataset would -------
def np_decode(b: bytes, copy: bool = True) -> np.ndarray:
    dl = b[0]
    dt = np.dtype(b[1 : 1 + dl].decode())
    nd = b[1 + dl]
    off = 2 + dl
    shape = struct.unpack_from(f"<{nd}q", b, off)
    a = np.frombuffer(b, dtype=dt, offset=off + 8 * nd).reshape(shape)
    return a.copy() if copy else a


def np_encode(a: np.ndarray) -> bytes:
    ds = a.dtype.str.encode()
    return (
        bytes((len(ds),))
        + ds
        + bytes((a.ndim,))
        + struct.pack(f"<{a.ndim}q", *a.shape)
        + a.tobytes()
    )


def wds_decode(s: dict) -> dict:
    raw = msgpack.unpackb(s["msgpack"])
    return {
        "__key__": s["__key__"],
        "image": np_decode(raw["image"]),
        "embedding": np_decode(raw["embedding"]),
        "label": raw["label"],
        "score": raw["score"],
        "idx": raw["idx"],
    }


def wds_pipeline(paths: list[str], shuffle: int = 0, batch: int = 0):
    import webdataset as wds

    ds = wds.WebDataset(paths, shardshuffle=100 if shuffle else False, empty_check=False)
    if shuffle:
        ds = ds.shuffle(shuffle)
    ds = ds.map(wds_decode)
    if batch:
        ds = ds.to_tuple("image", "embedding", "label", "score", "idx").batched(batch)
    return ds


# -- tarwalk: bare 512-byte header loop with zero-copy views ------------------------------------
def tarwalk(paths: list[str]):
    unpackb = msgpack.unpackb
    frombuffer = np.frombuffer
    u8, f4 = np.dtype("u1"), np.dtype("<f4")
    for p in paths:
        with open(p, "rb") as f:
            buf = f.read()
        mv = memoryview(buf)
        pos = 0
        n = len(buf)
        while pos + 512 <= n:
            hdr = buf[pos : pos + 512]
            if hdr[0] == 0:
                break
            size = int(hdr[124:135], 8)
            name = hdr[:100].rstrip(b"\0")
            start = pos + 512
            raw = unpackb(mv[start : start + size])
            yield (
                name,
                frombuffer(raw["image"], u8, offset=29).reshape(3, 64, 64),
                frombuffer(raw["embedding"], f4, offset=13),
                raw["label"],
                raw["score"],
                raw["idx"],
            )
            pos = start + ((size + 511) & ~511)


def member_offsets(paths: list[str]) -> list[tuple[str, int, int]]:
    out = []
    for p in paths:
        with open(p, "rb") as f:
            buf = f.read()
        pos = 0
        while pos + 512 <= len(buf) and buf[pos] != 0:
            size = int(buf[pos + 124 : pos + 135], 8)
            out.append((p, pos + 512, size))
            pos += 512 + ((size + 511) & ~511)
    return out


def pread_reads(locs: list[tuple[str, int, int]]):
    """One ``os.pread`` per sample at known offsets (fds opened beforehand), then decode."""
    fds = {p: os.open(p, os.O_RDONLY) for p in {loc[0] for loc in locs}}
    unpackb = msgpack.unpackb
    try:
        for p, off, size in locs:
            raw = unpackb(os.pread(fds[p], size, off))
            yield np_decode(raw["image"]), np_decode(raw["embedding"]), raw["label"]
    finally:
        for fd in fds.values():
            os.close(fd)
