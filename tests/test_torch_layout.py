"""to_torch(output="torch") batches made straight from undecoded payloads (dataset/_layout.py)
are the batches of the checked path, bit for bit, and a payload that does not decode raises the
checked path's error, in both modes, with and without workers."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

import atdata
from atdata._errors import DecodeError, SchemaError

pytestmark = [
    pytest.mark.usefixtures("torch_present"),
    pytest.mark.filterwarnings("ignore:This DataLoader will create:UserWarning"),
]


@atdata.packable
class LayImg:
    img: atdata.NDArray
    emb: atdata.NDArray
    label: str
    score: float
    idx: int


def _rows(n, odd=None):
    return [
        LayImg(
            img=np.full((3, 4, 4) if i != odd else (3, 4, 5), i % 256, dtype="u1"),
            emb=np.arange(8, dtype="<f4") * i,
            label="x" * (i % 5),
            score=i / 3,
            idx=i * 997,  # int encodings of several widths
        )
        for i in range(n)
    ]


def _write(d, rows):
    return atdata.write_samples(rows, str(d / "s-%02d.tar"), maxcount=16, key="index", fsync=False)


def _batches(ds, mode, payloads, workers=0, **kw):
    tds = ds.to_torch(batch_size=7, shuffle=True, seed=3, output="torch", mode=mode, **kw)
    if not payloads:
        tds._payloads = False
    out = [
        {
            k: (v.dtype, tuple(v.shape), v.numpy().tobytes()) if hasattr(v, "numpy") else v
            for k, v in b.items()
        }
        for b in tds.loader(num_workers=workers)
    ]
    return tds, out


@pytest.mark.parametrize("mode", ["random", "stream"])
@pytest.mark.parametrize("workers", [0, 2])
def test_payload_batches_are_the_checked_batches(tmp_path, mode, workers):
    ds = _write(tmp_path, _rows(40))
    fast, got = _batches(ds, mode, True, workers)
    slow, want = _batches(ds, mode, False, workers)
    assert fast._payloads and not slow._payloads
    assert got == want and len(got) == 6
    keys = sorted(k for b in got for k in b["__key__"])
    assert keys == [f"{i:08d}" for i in range(40)]
    import torch

    first = got[0]
    i = int(first["__key__"][0])
    assert first["img"][:2] == (torch.uint8, (7, 3, 4, 4))
    assert first["img"][2][:16] == bytes([i % 256]) * 16
    assert first["label"][0] == "x" * (i % 5) and first["idx"][2][:8] == (i * 997).to_bytes(
        8, "little"
    )
    if not workers:  # made here: the layout of the last batch is kept
        assert fast._layout[0] is not None and fast._layout[0].count == 3


@atdata.packable
class LeadImg:  # scalars first, differing per sample: the arrays lie elsewhere in each payload
    id: str
    label: int
    img: atdata.NDArray
    mask: atdata.NDArray | None
    emb: atdata.NDArray
    score: float


def _lead_rows(n, label=None):
    return [
        LeadImg(
            id=f"s{i}" + "-" * (i % 40),  # fixstr and str 8
            label=label if label is not None and i == 23 else (i * 7919) % 70000,
            img=np.full((3, 4, 4), i % 256, dtype="u1"),
            mask=np.arange(6, dtype="<i2") * i if i % 3 else None,
            emb=np.arange(8, dtype="<f4") * i,
            score=i / 3,
        )
        for i in range(n)
    ]


def _same_items(got, want):
    assert len(got) == len(want)
    for g, w in zip(got, want, strict=True):
        assert g.keys() == w.keys()
        for k in g:
            assert _bits(g[k]) == _bits(w[k]), k


def _bits(v):
    if hasattr(v, "numpy"):
        return ("tensor", v.dtype, tuple(v.shape), v.numpy().tobytes())
    if isinstance(v, list):
        return [_bits(x) for x in v]
    return (type(v).__name__, v)


@pytest.mark.parametrize("mode", ["random", "stream"])
@pytest.mark.parametrize("workers", [0, 2])
def test_varying_scalars_first_are_the_checked_batches(tmp_path, mode, workers):
    ds = _write(tmp_path, _lead_rows(40))
    tds = ds.to_torch(batch_size=7, shuffle=True, seed=3, output="torch", mode=mode)
    slow = ds.to_torch(batch_size=7, shuffle=True, seed=3, output="torch", mode=mode)
    slow._payloads = False
    got, want = list(tds.loader(num_workers=workers)), list(slow.loader(num_workers=workers))
    _same_items(got, want)
    first = got[0]
    i = int(first["__key__"][0])
    assert first["id"][0] == f"s{i}" + "-" * (i % 40) and first["label"][0] == (i * 7919) % 70000
    assert first["img"].shape == (7, 3, 4, 4) and first["emb"][0][1] == i
    masks = [m for b in got for m in b["mask"]] if isinstance(got[0]["mask"], list) else None
    assert masks is not None and sum(m is None for m in masks) == 14  # i % 3 == 0: a list
    if not workers:  # made here: the layout (two variable values before the arrays) is kept
        assert tds._layout[0] is not None and tds._layout[0].nvar == 2


@atdata.packable
class LooseImg:  # as written: label of any type
    id: str
    label: Any
    img: atdata.NDArray


@atdata.packable
class StrictImg:  # as read
    id: str
    label: int
    img: atdata.NDArray


@atdata.packable
class LooseTail:  # label after the array (decoded with the tail)
    img: atdata.NDArray
    label: Any


@atdata.packable
class StrictTail:
    img: atdata.NDArray
    label: int


@pytest.mark.parametrize("mode", ["random", "stream"])
@pytest.mark.parametrize(("loose", "strict"), [(LooseImg, StrictImg), (LooseTail, StrictTail)])
def test_a_scalar_of_another_type_raises_the_checked_error(tmp_path, mode, loose, strict):
    names = [s.name for s in loose.atdata_fields()]
    rows = [loose(**{k: getattr(r, k) for k in names}) for r in _lead_rows(40, label="x")]
    _write(tmp_path, rows)
    errors = []
    for payloads in (True, False):
        ds = atdata.Dataset[strict](str(tmp_path / "s-{00..02}.tar"))
        tds = ds.to_torch(batch_size=7, output="torch", mode=mode)
        tds._payloads = payloads
        with pytest.raises(SchemaError) as e:
            list(tds)
        errors.append(str(e.value))
    assert errors[0] == errors[1]  # (the layout's batch once left out where the batch began)
    assert f"{strict.__name__}.'label' should hold int" in errors[0] and "'00000023'" in errors[0]
    assert "batch starting at shard" in errors[0]


def test_payloads_only_for_torch_batches(tmp_path):
    ds = _write(tmp_path, _rows(10))
    assert not ds.to_torch(batch_size=4, mode="stream")._payloads  # samples: need raw maps
    assert not ds.to_torch(output="torch", mode="stream")._payloads  # no batches
    assert not ds.map(lambda s: s).to_torch(batch_size=4, output="torch")._payloads
    assert ds.to_torch(batch_size=4, output="torch")._payloads


@pytest.mark.parametrize("mode", ["random", "stream"])
def test_a_ragged_batch_raises_the_checked_error(tmp_path, mode):
    ds = _write(tmp_path, _rows(40, odd=21))
    errors = []
    for payloads in (True, False):
        with pytest.raises(DecodeError) as e:
            _batches(ds, mode, payloads)
        errors.append(str(e.value))
    assert errors[0] == errors[1]
    assert "ragged field 'img'" in errors[0] and "'00000021'" in errors[0]
    assert "batch starting at shard" in errors[0]


def _corrupt(tmp_path, first_byte):
    ds = _write(tmp_path, _rows(40))
    shard = ds.list_shards()[1]
    idx = ds._shared.shard_index(shard)
    with open(shard, "r+b") as f:
        f.seek(idx.offsets[5])
        f.write(first_byte)
    return shard, idx.keys[5]


@pytest.mark.parametrize("mode", ["random", "stream"])
@pytest.mark.parametrize(
    ("first_byte", "says"), [(b"\xc1", "not valid msgpack"), (b"\x95", "not a map")]
)
def test_a_payload_that_does_not_decode_raises_the_checked_error(tmp_path, mode, first_byte, says):
    shard, key = _corrupt(tmp_path, first_byte)
    errors = []
    for payloads in (True, False):
        ds = atdata.Dataset[LayImg](str(tmp_path / "s-{00..02}.tar"))
        with pytest.raises(DecodeError) as e:
            _batches(ds, mode, payloads)
        errors.append((type(e.value), str(e.value)))
    assert errors[0] == errors[1]
    assert says in errors[0][1] and shard in errors[0][1] and repr(key) in errors[0][1]


def test_opening_many_shards_never_closes_the_pinned_ones(tmp_path):
    from atdata.dataset._torch_cache import ShardCache

    ds = atdata.write_samples(
        [{"i": i} for i in range(70)], str(tmp_path / "m-%03d.tar"), maxcount=1, fsync=False
    )
    shards = ds.list_shards()
    cache = ShardCache(str(tmp_path / "cache"), 1 << 30, direct=True)
    cache.pinned.update(shards[:2])  # a batch being built holds views into these
    pinned = [cache.local(ds.source, s) for s in shards[:2]]
    third = cache.local(ds.source, shards[2])
    for s in shards[3:]:
        cache.local(ds.source, s)
    assert [cache.local(ds.source, s) for s in shards[:2]] == pinned  # still open: the same
    assert bytes(pinned[0].view[:1]) != b""  # (a closed one's view is released)
    assert cache.local(ds.source, shards[2]) is not third  # closed at 64 open, opened again
    assert len(cache._open) < 64
    cache.close()


def test_a_batch_over_more_shards_than_the_cache_keeps_open(tmp_path):
    rows = _rows(150)
    ds = atdata.write_samples(rows, str(tmp_path / "t-%03d.tar"), maxcount=1, fsync=False)
    fast = ds.to_torch(batch_size=100, shuffle=True, output="torch", mode="stream")
    slow = ds.to_torch(batch_size=100, shuffle=True, output="torch", mode="stream")
    slow._payloads = False
    got, want = list(fast), list(slow)
    assert len(got) == 2 and len({k for b in got for k in b["__key__"]}) == 150
    for g, w in zip(got, want, strict=True):
        assert g["__key__"] == w["__key__"] and g["label"] == w["label"]
        assert g["img"].equal(w["img"]) and g["idx"].equal(w["idx"])
    assert fast._layout[0] is not None and not fast._reader.cache.pinned
