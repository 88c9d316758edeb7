"""Dataset[T]: sources, ordering, shuffling, batching, random access, composition, export, memory."""

from __future__ import annotations

import gc
import os
import tracemalloc

import numpy as np
import pytest

import atdata
from atdata import ConfigError, DecodeError, DictSample, NDArray, SampleKeyError, ShardError
from tests._helpers import serve_directory


@atdata.packable
class Item:
    idx: int
    label: str
    vec: NDArray


@atdata.packable
class Label:
    label: str


@atdata.lens
def item_to_label(s: Item) -> Label:
    return Label(label=s.label.upper())


def _items(n, start=0, dim=3):
    return [
        Item(idx=i, label="even" if i % 2 == 0 else "odd", vec=np.full(dim, i, dtype="<f4"))
        for i in range(start, start + n)
    ]


@pytest.fixture(scope="module")
def shard_dir(tmp_path_factory):
    d = tmp_path_factory.mktemp("ds")
    atdata.write_samples(_items(25), d / "data-%06d.tar", maxcount=10, key="index")
    return d


def _url(d, spec="data-{000000..000002}.tar"):
    return str(d / spec)


# -- sources ---------------------------------------------------------------------------------


def test_brace_notation(shard_dir):
    ds = atdata.Dataset[Item](_url(shard_dir))
    assert [os.path.basename(s) for s in ds.list_shards()] == [
        "data-000000.tar",
        "data-000001.tar",
        "data-000002.tar",
    ]
    assert [s.idx for s in ds] == list(range(25))
    assert len(ds) == 25
    assert [os.path.basename(s) for s in ds.shards] == [
        os.path.basename(s) for s in ds.list_shards()
    ]


def test_several_patterns(shard_dir):
    spec = _url(shard_dir, "data-000002.tar") + "::" + _url(shard_dir, "data-{000000..000001}.tar")
    ds = atdata.Dataset[Item](spec)
    assert [s.idx for s in ds] == [*range(20, 25), *range(20)]
    ds2 = atdata.Dataset[Item](
        [_url(shard_dir, "data-000001.tar"), _url(shard_dir, "data-000000.tar")]
    )
    assert [s.idx for s in ds2][:2] == [10, 11]
    assert len(ds2) == 20


def test_glob_and_directory(shard_dir):
    assert [s.idx for s in atdata.Dataset[Item](str(shard_dir / "data-*.tar"))] == list(range(25))
    assert [s.idx for s in atdata.Dataset[Item](str(shard_dir))] == list(range(25))
    assert [
        s.idx for s in atdata.Dataset[Item]("file://" + str(shard_dir / "data-000002.tar"))
    ] == [
        20,
        21,
        22,
        23,
        24,
    ]


def test_source_errors(tmp_path):
    with pytest.raises(ShardError, match=r"no shard matches"):
        atdata.Dataset(str(tmp_path / "nothing-*.tar"))
    with pytest.raises(ShardError, match=r"holds no .tar shards"):
        atdata.Dataset(str(tmp_path))
    with pytest.raises(ConfigError, match=r"unbalanced"):
        atdata.Dataset(str(tmp_path / "a-{0..2.tar"))
    with pytest.raises(ConfigError, match=r"empty range"):
        atdata.Dataset(str(tmp_path / "a-{5..2}.tar"))
    with pytest.raises(ConfigError, match=r"on_error must be"):
        atdata.Dataset(str(tmp_path / "a.tar"), on_error="ignore")
    with pytest.raises(ConfigError, match=r"not a @packable"):
        atdata.Dataset(str(tmp_path / "a.tar"), sample_type=int)


@pytest.fixture(scope="module")
def http_server(shard_dir):
    """A loopback HTTP server over the shards that honours Range."""
    with serve_directory(shard_dir, ranges=True) as srv:
        yield srv


@pytest.fixture(scope="module")
def http_url(http_server):
    return http_server.url


def test_http_streaming(http_url):
    ds = atdata.Dataset[Item](http_url + "/data-{000000..000002}.tar")
    assert [s.idx for s in ds] == list(range(25))
    assert ds.list_shards()[0] == http_url + "/data-000000.tar"
    b = next(ds.ordered(batch_size=10))
    assert b.vec.shape == (10, 3)


def test_http_get_uses_range_requests(http_server, http_url):
    http_server.gets.clear()
    ds = atdata.Dataset[Item](http_url + "/data-{000000..000002}.tar")
    s = ds.get("00000013")
    assert (s.idx, s.__key__, s.vec.tolist()) == (13, "00000013", [13.0, 13.0, 13.0])
    ranges = [rng for _, rng in http_server.gets if rng]
    assert len(ranges) == 1
    lo, hi = (int(x) for x in ranges[0].split("=")[1].split("-"))
    assert lo % 512 == 0 and hi - lo + 1 == len(_items(14)[13].packed)
    assert ds[21].idx == 21


def test_http_missing_shard(http_url):
    ds = atdata.Dataset[Item](http_url + "/nope.tar")
    with pytest.raises(ShardError, match=r"cannot fetch shard .*nope.tar: HTTP 404"):
        list(ds)


# -- order, shuffle, batches ---------------------------------------------------------------------


def test_shuffled_seed_reproducible_and_seeds_differ(shard_dir):
    ds = atdata.Dataset[Item](_url(shard_dir))
    a = [s.idx for s in ds.shuffled(buffer=8, seed=1)]
    b = [s.idx for s in ds.shuffled(buffer=8, seed=1)]
    c = [s.idx for s in ds.shuffled(buffer=8, seed=2)]
    assert a == b
    assert a != c
    assert sorted(a) == sorted(c) == list(range(25))
    assert a != list(range(25))
    with pytest.raises(ConfigError, match=r"buffer must be >= 1"):
        ds.shuffled(buffer=0)


def test_shuffled_batches(shard_dir):
    ds = atdata.Dataset[Item](_url(shard_dir))
    bs = list(ds.shuffled(batch_size=8, seed=3))
    assert [len(b) for b in bs] == [8, 8, 8, 1]
    assert sorted(i for b in bs for i in b.idx) == list(range(25))
    for b in bs:
        assert b.vec[:, 0].tolist() == [float(i) for i in b.idx]
    assert [len(b) for b in ds.shuffled(batch_size=8, seed=3, drop_last=True)] == [8, 8, 8]


def test_shuffled_takes_the_documented_positional_order(shard_dir):
    # shuffled(buffer_shards, buffer_samples, batch_size): buffer_samples is our buffer
    ds = atdata.Dataset[Item](_url(shard_dir))
    bs = list(ds.shuffled(100, 8, 5, seed=3))
    assert [len(b) for b in bs] == [5] * 5 and sorted(i for b in bs for i in b.idx) == list(
        range(25)
    )
    assert [s.idx for s in ds.shuffled(buffer_samples=8, seed=1)] == [
        s.idx for s in ds.shuffled(buffer=8, seed=1)
    ]
    with pytest.raises(ConfigError, match=r"buffer_shards must be >= 1"):
        ds.shuffled(0)
    with pytest.raises(ConfigError, match=r"buffer must be >= 1"):
        ds.shuffled(buffer_samples=0)
    assert ds.as_type(other=Item) is ds  # as_type's documented parameter name


def test_batch_stacking(shard_dir):
    ds = atdata.Dataset[Item](_url(shard_dir))
    bs = list(ds.ordered(batch_size=10))
    assert [len(b) for b in bs] == [10, 10, 5]
    b = bs[0]
    assert b.vec.shape == (10, 3) and b.vec.dtype == np.float32
    assert b.idx == list(range(10))
    assert b.label[:3] == ["even", "odd", "even"]
    assert b.keys[:2] == ["00000000", "00000001"]
    assert b.samples[4] == _items(10)[4]
    assert set(b.to_dict()) == {"idx", "label", "vec"}
    assert [len(b) for b in ds.ordered(batch_size=10, drop_last=True)] == [10, 10]
    with pytest.raises(ConfigError, match=r"batch_size must be >= 1"):
        ds.ordered(batch_size=0)


@atdata.packable
class Arr:
    x: NDArray


@pytest.mark.parametrize(
    "dtype", ["|b1", "<f2", ">i4", "<c8", "<M8[ns]", "<m8[s]", "|S3", "<U2", "|V4"]
)
def test_batches_stack_arrays_of_every_dtype(tmp_path, dtype):
    arrs = [
        np.arange(6).astype(dtype).reshape(2, 3)
        if dtype[1] not in "SUV"
        else np.full((2, 3), b"ab" if dtype[1] != "U" else "é", dtype)
        for _ in range(3)
    ]
    arrs[1] = arrs[1][::-1]  # another value, same dtype and shape
    ds = atdata.write_samples([Arr(x=a) for a in arrs], tmp_path / "d.tar", key="index")
    (b,) = ds.ordered(batch_size=3)
    assert b.x.dtype.str == np.dtype(dtype).str and b.x.shape == (3, 2, 3)
    assert b.x.tobytes() == np.stack(arrs).astype(dtype).tobytes()


def test_ragged_batch_names_field(tmp_path):
    items = [*_items(2), Item(idx=2, label="x", vec=np.zeros(5, "<f4"))]
    ds = atdata.write_samples(items, tmp_path / "r.tar", key="index")
    with pytest.raises(DecodeError, match=r"ragged field 'vec'.*'00000002'"):
        list(ds.ordered(batch_size=3))
    batch = next(ds.filter(lambda s: True).ordered(batch_size=3))  # columns stack on access
    with pytest.raises(DecodeError, match=r"ragged field 'vec'.*'00000002'"):
        batch.vec  # noqa: B018
    assert [len(s.vec) for s in ds.ordered()] == [3, 3, 5]


def test_dictsample_batches(shard_dir):
    b = next(atdata.Dataset(_url(shard_dir)).ordered(batch_size=4))
    assert b.idx == [0, 1, 2, 3]
    assert all(type(v) is bytes for v in b.vec)  # without a schema arrays stay bytes


# -- derivations compose ------------------------------------------------------------------------


def test_filter_as_type_shuffled_keeps_filter(shard_dir):
    ds = atdata.Dataset[Item](_url(shard_dir))
    view = ds.filter(lambda s: s.idx % 3 == 0).as_type(Label)
    batches = list(view.shuffled(batch_size=8, seed=0))
    labels = [label for b in batches for label in b.label]
    assert sorted(labels) == ["EVEN"] * 5 + ["ODD"] * 4  # idx 0,3,...,24
    assert [len(b) for b in batches] == [8, 1]
    assert [s.label for s in view.ordered()] == [
        "EVEN",
        "ODD",
        "EVEN",
        "ODD",
        "EVEN",
        "ODD",
        "EVEN",
        "ODD",
        "EVEN",
    ]
    assert all(isinstance(s, Label) for s in view)
    assert view.head(2)[1].__key__ == "00000003"


def test_map_with_new_sample_type_still_decodes_the_source_type(shard_dir):
    ds = atdata.Dataset[Item](_url(shard_dir, "data-000000.tar"))
    mapped = ds.map(lambda s: Label(label=f"{s.label}-{s.idx}"), sample_type=Label)
    assert mapped.sample_type is Label
    assert [s.label for s in mapped.head(3)] == ["even-0", "odd-1", "even-2"]
    assert [s.label for s in mapped.filter(lambda s: s.label.startswith("odd")).head(2)] == [
        "odd-1",
        "odd-3",
    ]


def test_select_returns_a_list_of_samples_in_the_order_asked(shard_dir):
    """Upstream documents ``select(indices) -> list[ST]``: a list, compared and typed as one."""
    ds = atdata.Dataset[Item](_url(shard_dir))
    got = ds.select([10, 0, 10, -1])
    assert type(got) is list
    assert [s.idx for s in got] == [10, 0, 10, 24]
    assert all(isinstance(s, Item) for s in got)
    assert got == [ds[10], ds[0], ds[10], ds[24]]
    assert ds.select([]) == []
    with pytest.raises(IndexError, match=r"sample index 25 out of range for a dataset of 25"):
        ds.select([0, 25])
    odd = ds.filter(lambda s: s.label == "odd")
    assert [s.idx for s in odd.select([3, 1])] == [3, 1]
    with pytest.raises(SampleKeyError, match=r"excluded by this dataset's filter"):
        odd.select([1, 2])
    sub = ds.subset([5, 7])
    assert isinstance(sub, atdata.Dataset) and [s.idx for s in sub.select([1, 0])] == [7, 5]


def test_filter_map_select(shard_dir):
    ds = atdata.Dataset[Item](_url(shard_dir))
    odd = ds.filter(lambda s: s.label == "odd")
    assert [s.idx for s in odd] == list(range(1, 25, 2))
    with pytest.raises(TypeError, match=r"unknown until it is read"):
        len(odd)
    doubled = ds.map(lambda s: s.idx * 2)
    assert list(doubled)[:4] == [0, 2, 4, 6]
    sel = ds.subset([24, 0, -1, 12])
    assert [s.idx for s in sel] == [24, 0, 24, 12]
    assert len(sel) == 4
    assert [s.idx for s in sel.select([1, 3])] == [0, 12]
    assert sorted(s.idx for s in sel.shuffled(seed=5)) == [0, 12, 24, 24]
    assert [s.idx for s in ds[3:6]] == [3, 4, 5]
    assert [s.idx for s in ds.filter(lambda s: s.idx > 20).map(lambda s: s).ordered()] == [
        21,
        22,
        23,
        24,
    ]


def test_random_access(shard_dir):
    ds = atdata.Dataset[Item](_url(shard_dir))
    assert ds[0].idx == 0 and ds[13].idx == 13 and ds[-1].idx == 24
    assert ds["00000017"].idx == 17 and ds.get("00000017").__key__ == "00000017"
    with pytest.raises(IndexError, match=r"out of range for a dataset of 25"):
        ds[25]
    with pytest.raises(SampleKeyError, match=r"no sample with key 'zzz' in 3 shard"):
        ds.get("zzz")
    with pytest.raises(SampleKeyError, match=r"excluded by this dataset's filter"):
        ds.filter(lambda s: s.idx != 5).get("00000005")
    assert [s.idx for s in ds.head(3)] == [0, 1, 2]
    assert ds.head(0) == []


def test_locate_names_the_shard_member(shard_dir):
    from atdata._shards.tar import scan_tar_file

    ds = atdata.Dataset[Item](_url(shard_dir))
    members = {
        name[: -len(".msgpack")]: (shard, off, size)
        for shard in ds.list_shards()
        for name, off, size in scan_tar_file(shard, "")
        if name.endswith(".msgpack")
    }
    assert len(members) == 25
    for key, (shard, off, size) in members.items():
        loc = ds.locate(key)
        assert (loc.shard, loc.key, loc.offset, loc.size) == (shard, key, off, size)
        assert ds.get_sample(loc).idx == int(key)
    assert ds.locate("00000017").shard == ds.list_shards()[1]
    with pytest.raises(SampleKeyError, match=r"no sample with key 'zzz' in 3 shard"):
        ds.locate("zzz")


def test_describe_schema_repr(shard_dir):
    ds = atdata.Dataset[Item](_url(shard_dir))
    assert ds.schema == {"idx": "int", "label": "str", "vec": "NDArray"}
    d = ds.describe()
    sizes = sum(os.path.getsize(p) for p in ds.list_shards())
    fields = {"idx": "int", "label": "str", "vec": "NDArray"}
    assert d == {
        "sample_type": "Item",
        "fields": fields,  # the documented keys ...
        "num_shards": 3,
        "shards": ds.list_shards(),
        "url": ds.url,
        "metadata": None,
        "samples": 25,  # ... and ours
        "bytes": sizes,
        "schema": fields,
    }
    assert atdata.Dataset(_url(shard_dir)).schema == {}
    assert repr(ds).startswith("Dataset[Item](")


def test_dictsample_dataset_and_as_type(shard_dir):
    ds = atdata.Dataset(_url(shard_dir))
    first = next(iter(ds))
    assert isinstance(first, DictSample) and first.__key__ == "00000000"
    typed = ds.as_type(Item)
    assert [s.idx for s in typed][:3] == [0, 1, 2]
    assert typed.sample_type is Item


def test_to_dict_pandas_parquet(shard_dir, tmp_path):
    ds = atdata.Dataset[Item](_url(shard_dir, "data-000002.tar"))
    cols = ds.to_dict()
    assert list(cols) == ["idx", "label", "vec"]  # the fields only, as documented
    assert cols["idx"] == [20, 21, 22, 23, 24]
    assert cols["vec"][0].tolist() == [20.0, 20.0, 20.0]
    keyed = ds.to_dict(limit=2, with_keys=True)
    assert keyed["__key__"] == ["00000020", "00000021"] and keyed["idx"] == [20, 21]
    df = ds.to_pandas()
    assert list(df.columns) == ["idx", "label", "vec"]
    assert df["label"].tolist() == ["even", "odd", "even", "odd", "even"]
    assert list(ds.to_pandas(limit=1, with_keys=True).columns) == ["__key__", "idx", "label", "vec"]
    (out,) = ds.to_parquet(tmp_path / "x.parquet")
    import pyarrow.parquet as pq

    t = pq.read_table(out)
    assert t.column_names == ["idx", "label", "vec"]
    assert t.column("idx").to_pylist() == [20, 21, 22, 23, 24]
    assert t.column("vec").to_pylist()[1] == [21.0, 21.0, 21.0]
    parts = ds.to_parquet(tmp_path / "p.parquet", maxcount=2, compression="zstd")
    assert [os.path.basename(p) for p in parts] == [
        "p-000000.parquet",
        "p-000001.parquet",
        "p-000002.parquet",
    ]
    assert [pq.read_table(p).column("idx").to_pylist() for p in parts] == [[20, 21], [22, 23], [24]]
    (mapped,) = ds.to_parquet(tmp_path / "m.parquet", sample_map=lambda s: {"twice": 2 * s.idx})
    assert pq.read_table(mapped).to_pydict() == {"twice": [40, 42, 44, 46, 48]}


def test_verify(shard_dir, tmp_path):
    ds = atdata.write_samples(_items(3), tmp_path / "v.tar")
    assert ds.verify() == [{"shard": ds.list_shards()[0], "samples": 3, "ok": True, "error": ""}]
    with open(ds.list_shards()[0], "r+b") as f:
        f.seek(600)
        f.write(b"X")
    rep = ds.verify()[0]
    assert rep["ok"] is False and "checksum mismatch" in rep["error"]


# -- memory ------------------------------------------------------------------------------------


def _peak_while_iterating(path, batch_size=None):
    ds = atdata.Dataset[Item](path)
    gc.collect()
    tracemalloc.start()
    try:
        n = 0
        for x in ds.ordered(batch_size=batch_size):
            n += 1 if batch_size is None else len(x)
        _cur, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    return n, peak


@pytest.mark.parametrize("batch_size", [None, 16])
def test_memory_does_not_grow_with_samples(tmp_path, batch_size):
    small = atdata.write_samples(_items(2000, dim=64), tmp_path / "s.tar", fsync=False)
    big = atdata.write_samples(_items(8000, dim=64), tmp_path / "b.tar", fsync=False)
    assert os.path.getsize(big.list_shards()[0]) > 3 * os.path.getsize(small.list_shards()[0])
    n_small, peak_small = _peak_while_iterating(small.list_shards()[0], batch_size)
    n_big, peak_big = _peak_while_iterating(big.list_shards()[0], batch_size)
    assert (n_small, n_big) == (2000, 8000)
    # 4x the samples (and bytes) must not mean more peak memory: allow 25% + 256 KiB slack
    assert peak_big <= peak_small * 1.25 + 256 * 1024, (peak_small, peak_big)
