"""The managed side of atdata: :class:`Index`, schemas and dataset entries.

Names load lazily (importing this package imports no provider, store or optional extra).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from atdata._lazy import lazy_module

_LAZY: dict[str, str] = {
    "DatasetEntry": "atdata.index._entry",
    "Index": "atdata.index._index",
    "IndexProvider": "atdata.providers._base",
    "PostgresProvider": "atdata.providers._postgres",
    "RedisProvider": "atdata.providers._redis",
    "Repository": "atdata.index._repository",
    "SQLiteProvider": "atdata.providers._sqlite",
    "SchemaRecord": "atdata.index._entry",
    "ShardRef": "atdata.index._entry",
    "atdata_home": "atdata.index._index",
    "get_default_index": "atdata.index._index",
    "set_default_index": "atdata.index._index",
}

__all__ = sorted(_LAZY)

__getattr__, __dir__ = lazy_module(globals(), _LAZY)

if TYPE_CHECKING:  # pragma: no cover
    from atdata.index._entry import DatasetEntry, SchemaRecord, ShardRef
    from atdata.index._index import Index, atdata_home, get_default_index, set_default_index
    from atdata.index._repository import Repository
    from atdata.providers._base import IndexProvider
    from atdata.providers._postgres import PostgresProvider
    from atdata.providers._redis import RedisProvider
    from atdata.providers._sqlite import SQLiteProvider
