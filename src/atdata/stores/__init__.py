"""Data stores for shard bytes: :class:`LocalDiskStore` and :class:`S3DataStore` (+ :class:`S3Source`)."""

from __future__ import annotations

from atdata.stores._local import DataStore, LocalDiskStore, file_sha256
from atdata.stores._s3 import S3DataStore, S3Source, parse_s3_url

__all__ = ["DataStore", "LocalDiskStore", "S3DataStore", "S3Source", "file_sha256", "parse_s3_url"]
