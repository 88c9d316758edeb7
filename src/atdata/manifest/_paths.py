"""Names and constants shared by manifest writers and readers.

Examples:
    >>> manifest_paths("data/img-000001.tar")
    ('data/img-000001.manifest.json', 'data/img-000001.manifest.parquet')
    >>> manifest_paths("data/v1.2/base")
    ('data/v1.2/base.manifest.json', 'data/v1.2/base.manifest.parquet')
    >>> shard_id_of("s3://bucket/train/img-000001.tar")
    'img-000001'
"""

from __future__ import annotations

__all__ = [
    "MANIFEST_FORMAT_VERSION",
    "MANIFEST_VERSION",
    "SYSTEM_COLUMNS",
    "TOKEN_META",
    "manifest_paths",
    "shard_id_of",
]

MANIFEST_FORMAT_VERSION = "1.0.0"
MANIFEST_VERSION = MANIFEST_FORMAT_VERSION
#: parquet schema metadata key holding the token that ties a parquet file to its JSON header
TOKEN_META = b"atdata.manifest_token"
SYSTEM_COLUMNS = ("__key__", "__offset__", "__size__")


def manifest_paths(shard: str) -> tuple[str, str]:
    """The JSON and parquet manifest paths (or URLs) beside a shard, or for a base path."""
    base = shard[:-4] if shard.endswith(".tar") else shard
    return base + ".manifest.json", base + ".manifest.parquet"


def shard_id_of(shard: str) -> str:
    """The shard's file name without ``.tar`` (what a header's ``shard_id`` holds)."""
    name = shard.rstrip("/").rsplit("/", 1)[-1]
    return name[:-4] if name.endswith(".tar") else name
