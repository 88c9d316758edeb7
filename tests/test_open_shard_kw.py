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
