"""``create_provider``: an index provider by backend name.

Examples:
    >>> import os, tempfile
    >>> p = create_provider("sqlite", path=os.path.join(tempfile.mkdtemp(), "i.db"))
    >>> p.kind, type(p).__name__
    ('sqlite', 'SqliteProvider')
"""

from __future__ import annotations

import os
from typing import Any

from atdata._errors import ConfigError
from atdata._extras import require
from atdata.providers._base import IndexProvider
from atdata.stores._base import atdata_home

__all__ = ["create_provider", "provider_for"]


def create_provider(
    name: str = "sqlite",
    *,
    path: str | os.PathLike[str] | None = None,
    dsn: str | None = None,
    redis: Any = None,
    prefix: str | None = None,
    **kwargs: Any,
) -> IndexProvider:
    """A provider for backend ``name``.

    Args:
        name: ``"sqlite"`` (default), ``"redis"`` or ``"postgres"`` (``"postgresql"``).
        path: SQLite file (default ``~/.atdata/index.db``, ``$ATDATA_HOME/index.db``).
        dsn: PostgreSQL connection string (required for ``"postgres"``).
        redis: A ``redis.Redis`` client or a ``redis://`` URL (default: ``kwargs`` build a
            client, e.g. ``host=``, ``port=``, ``db=``; without any, ``127.0.0.1:6379/0``).
        prefix: Redis key prefix (default ``atdata:``) or PostgreSQL schema (``atdata``).
        **kwargs: Redis connection options when ``redis`` is not given.

    Raises:
        ConfigError: (a ``ValueError``) For an unknown name, a missing ``dsn``, or options the
            backend does not take.
    """
    kind = str(name).lower().strip()
    if kind == "redis":
        from atdata.providers._redis import RedisProvider

        if redis is None and kwargs:
            redis = require("redis", "redis", "the Redis index provider").Redis(**kwargs)
            kwargs = {}
        _no_extra(kind, kwargs)
        return RedisProvider(redis or "redis://127.0.0.1:6379/0", prefix=prefix or "atdata:")
    _no_extra(kind, kwargs)
    if kind == "sqlite":
        from atdata.providers._sqlite import SQLiteProvider

        return SQLiteProvider(path or os.path.join(atdata_home(), "index.db"))
    if kind in ("postgres", "postgresql"):
        from atdata.providers._postgres import PostgresProvider

        if dsn is None:
            raise ConfigError('the postgres provider needs dsn="postgresql://user@host:5432/db"')
        return PostgresProvider(dsn, schema=prefix or "atdata")
    raise ConfigError(f"unknown index provider {name!r}: use 'sqlite', 'redis' or 'postgres'")


def _no_extra(kind: str, kwargs: dict[str, Any]) -> None:
    if kwargs:
        raise ConfigError(
            f"the {kind} provider takes no options {sorted(kwargs)}; they are Redis "
            "connection options (host=, port=, db=)"
        )


def provider_for(
    provider: Any, path: Any, dsn: Any, redis: Any, prefix: str | None, redis_kwargs: dict[str, Any]
) -> IndexProvider:
    """The provider ``Index(provider, path=, dsn=, redis=, prefix=, **redis_kwargs)`` uses."""
    if isinstance(provider, IndexProvider):
        return provider
    if provider is None:
        redis_like = redis is not None or bool(redis_kwargs)
        provider = "redis" if redis_like else "postgres" if dsn is not None else "sqlite"
    if not isinstance(provider, str):
        raise ConfigError(
            f"provider must be 'sqlite', 'redis', 'postgres' or an IndexProvider, "
            f"got {type(provider).__name__}"
        )
    return create_provider(provider, path=path, dsn=dsn, redis=redis, prefix=prefix, **redis_kwargs)
