"""Index providers: SQLite (default), Redis and PostgreSQL behind one :class:`IndexProvider` contract.

``SqliteProvider`` is the documented name (``type(p).__name__``); ``SQLiteProvider`` is the same class.
"""

from __future__ import annotations

from atdata.providers._base import IndexProvider, mask_url, next_entry_version
from atdata.providers._factory import create_provider
from atdata.providers._sqlite import SQLiteProvider, SqliteProvider

__all__ = [
    "IndexProvider",
    "PostgresProvider",
    "RedisProvider",
    "SQLiteProvider",
    "SqliteProvider",
    "create_provider",
    "mask_url",
    "next_entry_version",
]


def __getattr__(name: str):  # redis/psycopg load only when their provider is used
    if name == "RedisProvider":
        from atdata.providers._redis import RedisProvider

        return RedisProvider
    if name == "PostgresProvider":
        from atdata.providers._postgres import PostgresProvider

        return PostgresProvider
    raise AttributeError(name)
