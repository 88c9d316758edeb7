"""The managed side of atdata: :class:`Index`, providers, schemas and dataset entries."""

from __future__ import annotations

from atdata.index._entry import DatasetEntry, SchemaRecord, ShardRef
from atdata.index._index import Index, atdata_home, get_default_index, set_default_index
from atdata.index._repository import Repository
from atdata.providers import IndexProvider, SQLiteProvider

__all__ = [
    "DatasetEntry",
    "Index",
    "IndexProvider",
    "PostgresProvider",
    "RedisProvider",
    "Repository",
    "SQLiteProvider",
    "SchemaRecord",
    "ShardRef",
    "atdata_home",
    "get_default_index",
    "set_default_index",
]


def __getattr__(name: str):
    if name in ("RedisProvider", "PostgresProvider"):
        import atdata.providers

        return getattr(atdata.providers, name)
    raise AttributeError(name)
