"""open_shard's parameter is ``shard_id`` (upstream's documented name) on every DataSource;
the former keyword ``shard=`` still works and warns."""

from __future__ import annotations

import inspect
import warnings

import pytest

import atdata
from atdata._shards.sources import URLSource
from atdata.atmosphere._blobs import BlobSource
from atdata.dataset._shardjobs import _HashingSource
from atdata.stores._s3 import S3Source


@pytest.mark.parametrize("cls", [URLSource, S3Source, BlobSource, _HashingSource])
def test_every_source_names_it_shard_id(cls):
    params = list(inspect.signature(cls.open_shard).parameters)
    assert params == ["self", "shard_id"]


def test_protocol_names_it_shard_id():
    assert list(inspect.signature(atdata.DataSource.open_shard).parameters) == ["self", "shard_id"]


def test_keyword_forms(tmp_path):
    p = tmp_path / "a.tar"
    p.write_bytes(b"abc")
    src = URLSource(str(p))
    with src.open_shard(str(p)) as f:
        assert f.read() == b"abc"
    with src.open_shard(shard_id=str(p)) as f:
        assert f.read() == b"abc"
    with warnings.catch_warnings(record=True) as w:
        warnings.simplefilter("always")
        with src.open_shard(shard=str(p)) as f:
            assert f.read() == b"abc"
    assert [x.category for x in w] == [DeprecationWarning]
    assert "shard_id" in str(w[0].message) and w[0].filename == __file__
    with pytest.raises(TypeError, match="pass shard_id only"):
        src.open_shard(str(p), shard=str(p))


def test_url_source_refuses_a_shard_it_does_not_list_with_a_key_error(tmp_path):
    # the DataSource docs: open_shard raises KeyError for an id not in list_shards(), even
    # when a file of that name exists
    listed, other = tmp_path / "a.tar", tmp_path / "b.tar"
    listed.write_bytes(b"abc")
    other.write_bytes(b"xyz")
    src = URLSource(str(listed))
    with pytest.raises(KeyError, match=r"b\.tar.*not one of this source's 1 shards"):
        src.open_shard(str(other))
    with src.open_shard(str(listed)) as f:  # a listed shard opens as before
        assert f.read() == b"abc"
    assert src.url == str(listed)  # upstream's attribute: the spec as given


def test_url_source_url_is_the_spec_as_given():
    assert URLSource("d/s-{0..2}.tar").url == "d/s-{0..2}.tar"
    assert URLSource(url=["x.tar", "y.tar"]).url == ["x.tar", "y.tar"]


def test_blob_source_is_made_and_listed_without_the_network_and_refuses_unknown_blobs():
    # upstream's BlobSource(blob_refs) resolves the PDS only when a blob is read; listing and
    # asking for a blob it does not hold need no network (a KeyError, as documented)
    src = BlobSource([{"did": "did:plc:nonet", "cid": "bafkreia"}])
    assert src.list_shards() == ["at://did:plc:nonet/blob/bafkreia"]
    with pytest.raises(KeyError, match="not a blob of this source"):
        src.open_shard("at://did:plc:nonet/blob/bafkreizz")
    with pytest.raises(KeyError):
        src.open_shard("garbage")
