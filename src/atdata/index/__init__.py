"""The managed side of atdata: :class:`Index`, providers, schemas and dataset entries."""

from __future__ import annotations

from ._entry import DatasetEntry, SchemaRecord, ShardRef
from ._index import Index, atdata_home, get_default_index, set_default_index
from ._providers import IndexProvider, SQLiteProvider
from ._repository import Repository

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
        from . import _providers

        return getattr(_providers, name)
    raise AttributeError(name)
