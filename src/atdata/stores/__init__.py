"""Data stores for shard bytes: :class:`LocalDiskStore` and :class:`S3DataStore` (+ :class:`S3Source`).

Both implement the documented :class:`AbstractDataStore` contract (``write_shards``,
``read_url``, ``supports_streaming``) and our index contract (``put_shard`` verified by sha256).
"""

from __future__ import annotations

from atdata.stores._base import AbstractDataStore, ShardWriteResult, atdata_home
from atdata.stores._local import DataStore, LocalDiskStore, file_sha256
from atdata.stores._s3 import S3DataStore, S3Source, parse_s3_url

__all__ = [
    "AbstractDataStore",
    "DataStore",
    "LocalDiskStore",
    "S3DataStore",
    "S3Source",
    "ShardWriteResult",
    "atdata_home",
    "file_sha256",
    "parse_s3_url",
]
