"""The managed side of atdata: :class:`Index`, providers, schemas and dataset entries.

Names load on first use (so ``atdata.providers`` can use the entry records without loading
the whole index).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from atdata._lazy import lazy_module

_LAZY: dict[str, str] = {
    "BasicIndexEntry": "atdata.index._entry",
    "DatasetEntry": "atdata.index._entry",
    "Index": "atdata.index._index",
    "IndexEntry": "atdata.index._entry",
    "IndexProvider": "atdata.providers._base",
    "LocalDatasetEntry": "atdata.index._entry",
    "LocalSchemaRecord": "atdata.index._local_schema",
    "PostgresProvider": "atdata.providers._postgres",
    "RedisProvider": "atdata.providers._redis",
    "Repository": "atdata.repository",
    "SQLiteProvider": "atdata.providers._sqlite",
    "REDIS_KEY_DATASET_ENTRY": "atdata.providers._redis_legacy",
    "REDIS_KEY_SCHEMA": "atdata.providers._redis_legacy",
    "SchemaField": "atdata._wire.local_fields",
    "SchemaFieldType": "atdata._wire.local_fields",
    "SchemaNamespace": "atdata.index._schemas",
    "SchemaRecord": "atdata.index._entry",
    "ShardRef": "atdata.index._entry",
    "atdata_home": "atdata.stores._base",
    "get_default_index": "atdata.index._index",
    "set_default_index": "atdata.index._index",
}

__all__ = sorted(_LAZY)

__getattr__, __dir__ = lazy_module(globals(), _LAZY)

if TYPE_CHECKING:  # pragma: no cover
    from atdata._wire.local_fields import SchemaField, SchemaFieldType
    from atdata.index._entry import (
        BasicIndexEntry,
        DatasetEntry,
        IndexEntry,
        LocalDatasetEntry,
        SchemaRecord,
        ShardRef,
    )
    from atdata.index._index import Index, get_default_index, set_default_index
    from atdata.index._local_schema import LocalSchemaRecord
    from atdata.index._schemas import SchemaNamespace
    from atdata.providers._base import IndexProvider
    from atdata.providers._postgres import PostgresProvider
    from atdata.providers._redis import RedisProvider
    from atdata.providers._redis_legacy import REDIS_KEY_DATASET_ENTRY, REDIS_KEY_SCHEMA
    from atdata.providers._sqlite import SQLiteProvider
    from atdata.repository import Repository
    from atdata.stores._base import atdata_home
