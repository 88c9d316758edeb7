"""The documented Dataset surface: url/metadata_url, ``.url`` round trip, ``.metadata``,
``shard_list``, ``wrap``/``wrap_batch``, ``content_metadata``, ``column_names``, ``batch_type``,
``from_data`` and the ``Packable`` protocol."""

from __future__ import annotations

import os
import sys
import warnings
from typing import Any

import msgpack
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import atdata
from atdata._shards.sources import brace_url, expand_braces
from tests._helpers import serve_directory


@atdata.packable
class Rec:
    name: str
    vec: atdata.NDArray


@atdata.packable
class Name:
    name: str


@atdata.packable
class Meta:
    instrument: str
    gain: float


@atdata.lens
def rec_name(r: Rec) -> Name:
    return Name(name=r.name.upper())


def recs(n: int) -> list[Rec]:
    return [Rec(name=f"r{i}", vec=np.full(2, i, "f4")) for i in range(n)]


@pytest.fixture
def written(tmp_path):
    return atdata.write_samples(recs(7), tmp_path / "r.tar", maxcount=3, key="index")


# -- url, metadata_url, metadata ------------------------------------------------------------------


def test_url_is_a_spec_dataset_accepts_again(written, tmp_path):
    url = written.url
    assert url == str(tmp_path / "r-{000000..000002}.tar")
    again = atdata.Dataset[Rec](url)
    assert again.list_shards() == written.list_shards()
    assert [s.name for s in again] == [f"r{i}" for i in range(7)]
    assert atdata.Dataset[Rec](url=url).url == url  # a string spec comes back as given
    picked = atdata.Dataset([written.list_shards()[2], written.list_shards()[0]], Rec)
    assert atdata.Dataset(picked.url).list_shards() == picked.list_shards()  # order kept


@settings(max_examples=80, deadline=None, database=None)
@given(
    st.lists(
        st.one_of(
            st.integers(0, 300).map(lambda i: f"d/part-{i:04d}.tar"),
            st.from_regex(r"[a-z]{1,6}(/[a-z0-9_]{1,5})?\.tar", fullmatch=True),
            st.sampled_from(["s3://b/k,1.tar", "x/{y}.tar", "a::b.tar"]),
        ),
        min_size=1,
        max_size=8,
        unique=True,
    )
)
def test_brace_url_names_exactly_the_shards(shards):
    spec = brace_url(shards)
    if len(shards) == 1:
        assert spec == shards[0]
    elif spec != "::".join(shards):
        assert expand_braces(spec) == shards
    else:  # names brace notation cannot hold: the "::" list, taken apart the same way
        assert spec.split("::") == shards or any("::" in s for s in shards)
    if all(s.startswith("d/part-") for s in shards) and len(shards) > 1:
        nums = [int(s[7:11]) for s in shards]
        if nums == list(range(nums[0], nums[0] + len(nums))):
            assert spec == f"d/part-{{{nums[0]:04d}..{nums[-1]:04d}}}.tar"


def test_dataset_needs_a_source():
    with pytest.raises(TypeError, match=r"Dataset\(source\) or Dataset\(url=\.\.\.\)"):
        atdata.Dataset()


@pytest.mark.parametrize("http_client", ["requests", "urllib"])
def test_metadata_from_a_file_and_http(written, tmp_path, monkeypatch, http_client):
    if http_client == "urllib":  # without requests installed, urllib fetches it
        monkeypatch.setitem(sys.modules, "requests", None)
    else:
        pytest.importorskip("requests")
    meta = tmp_path / "meta.msgpack"
    meta.write_bytes(msgpack.packb({"license": "CC0", "n": 7}))
    assert atdata.Dataset(written.url).metadata is None
    ds = atdata.Dataset[Rec](written.url, str(meta))  # upstream's positional metadata_url
    assert ds.sample_type is Rec and ds.metadata_url == str(meta)
    assert ds.metadata == {"license": "CC0", "n": 7}
    meta.write_bytes(msgpack.packb({"changed": True}))
    assert ds.metadata == {"license": "CC0", "n": 7}  # fetched once
    with serve_directory(tmp_path) as srv:
        base = srv.url
        remote = atdata.Dataset(url=written.url, metadata_url=f"{base}/meta.msgpack")
        assert remote.metadata == {"changed": True}
        missing = atdata.Dataset(written.url, metadata_url=f"{base}/nope.msgpack")
        with pytest.raises(atdata.StorageError, match=r"nope\.msgpack: HTTP 404"):
            _ = missing.metadata
    gone = atdata.Dataset(written.url, metadata_url=f"{base}/meta.msgpack")  # server closed
    with pytest.raises(atdata.StorageError, match=r"cannot fetch dataset metadata http://127"):
        _ = gone.metadata
    (tmp_path / "bad.msgpack").write_bytes(msgpack.packb([1, 2]))
    with pytest.raises(atdata.DecodeError, match="is a list, not a map"):
        _ = atdata.Dataset(written.url, metadata_url=str(tmp_path / "bad.msgpack")).metadata


def test_shard_list_is_a_deprecated_alias(written):
    with warnings.catch_warnings(record=True) as w:
        warnings.simplefilter("always")
        assert written.shard_list == written.list_shards()
    assert [x.category for x in w] == [DeprecationWarning]


# -- wrap, wrap_batch, batch_type, column_names ----------------------------------------------------


def test_wrap_and_wrap_batch(written):
    raw = recs(3)[2].as_wds
    one = written.wrap(raw)
    assert isinstance(one, Rec) and one.name == "r2" and one.vec.tolist() == [2.0, 2.0]
    assert one.__key__ == raw["__key__"]
    view = written.as_type(Name).map(lambda n: Name(name=n.name + "!"))
    assert view.wrap(raw) == Name(name="R2!")  # through the lens and the map
    batch = written.wrap_batch({"__key__": ["a", "b"], "msgpack": [r.packed for r in recs(2)]})
    assert isinstance(batch, atdata.SampleBatch) and batch.name == ["r0", "r1"]
    assert batch.vec.shape == (2, 2)
    with pytest.raises(ValueError, match="no 'msgpack' entry"):
        written.wrap({"__key__": "x", "json": b"{}"})
    with pytest.raises(ValueError, match="'msgpack' entry to be bytes, got str"):
        written.wrap({"msgpack": "text"})


def test_batch_type_and_column_names(written):
    assert written.column_names == ["name", "vec"]
    assert atdata.Dataset(written.url).column_names == []
    bt = written.batch_type
    assert bt.__origin__ is atdata.SampleBatch and bt.__args__ == (Rec,)
    first = next(written.ordered(batch_size=2))
    assert isinstance(first, bt.__origin__)


# -- content_metadata ------------------------------------------------------------------------------


def test_write_samples_content_metadata(tmp_path):
    meta = Meta(instrument="Zeiss LSM 880", gain=1.5)
    ds = atdata.write_samples(recs(2), tmp_path / "c.tar", content_metadata=meta)
    assert ds.content_metadata is meta
    ds2 = atdata.write_samples(recs(1), tmp_path / "d.tar", content_metadata={"lab": "x"})
    assert ds2.content_metadata == {"lab": "x"}
    assert atdata.write_samples(recs(1), tmp_path / "e.tar").content_metadata is None
    with pytest.raises(TypeError, match="content_metadata must be a @packable sample or a dict"):
        atdata.write_samples(recs(1), tmp_path / "f.tar", content_metadata=["no"])
    assert not os.path.exists(tmp_path / "f.tar")  # checked before writing
    ds.content_metadata = None
    assert ds.content_metadata is None


def test_empty_write_says_non_empty(tmp_path):
    with pytest.raises(ValueError, match="samples must be non-empty"):
        atdata.write_samples([], tmp_path / "none.tar")


# -- from_data and Packable -----------------------------------------------------------------------


def test_from_data_and_packable_protocol():
    r = recs(4)[3]
    data = msgpack.unpackb(r.packed, raw=False)
    back = Rec.from_data(data)
    assert back.name == "r3" and back.vec.tolist() == [3.0, 3.0]
    d = atdata.DictSample.from_data({"a": 1})
    assert d.a == 1
    assert isinstance(r, atdata.Packable) and isinstance(d, atdata.Packable)
    assert not isinstance({"a": 1}, atdata.Packable)
    with pytest.raises(atdata.SchemaError):
        Name.from_data({"nom": "x"})
    arr = np.arange(6, dtype="f8").reshape(2, 3)
    decoded = Rec.from_data({"name": "n", "vec": arr})  # an array field may hold the array itself
    assert decoded.vec.dtype == np.float64 and decoded.vec.tolist() == arr.tolist()
    assert decoded.vec is not arr  # a copy: the sample owns its arrays
    kw = atdata.DictSample(_data={"name": "k", "n": 1}, extra=2)  # the documented spelling
    assert (kw.name, kw.n, kw.extra, sorted(kw.keys())) == ("k", 1, 2, ["extra", "n", "name"])


def test_a_missing_shard_is_a_file_not_found_error(tmp_path):
    ds = atdata.Dataset[Rec](str(tmp_path / "gone.tar"))
    with pytest.raises(FileNotFoundError, match=r"shard not found: .*gone\.tar") as ei:
        list(ds)
    assert isinstance(ei.value, atdata.ShardError)


def test_atdata_dataset_serves_the_names_its_signatures_use():
    import atdata.dataset as dsmod

    for name in ("Dataset", "DictSample", "PackableSample", "packable", "Packable", "SampleBatch",
                 "DataSource", "URLSource", "write_samples"):  # fmt: skip
        assert getattr(dsmod, name) is getattr(atdata, name), name
    assert dsmod.WDSRawSample == dsmod.WDSRawBatch == dsmod.SampleExportRow == dict[str, Any]
    assert dsmod.ST.__bound__ is atdata.Packable and dsmod.RT.__bound__ is atdata.Packable
    assert set(dsmod.__all__) >= {"WDSRawSample", "SampleExportMap", "Pathlike", "DT", "ST"}
