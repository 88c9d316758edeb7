"""Provider factories for the tests: SQLite in tmp, Redis and PostgreSQL on loopback (own prefix)."""

from __future__ import annotations

import functools
import socket
import uuid

from tests._services import require_service

REDIS_URL = "redis://127.0.0.1:6379/15"
PG_DSNS = ("postgresql://root@127.0.0.1:5432/test", "postgresql://postgres@127.0.0.1:5432/test")


def port_open(port: int, host: str = "127.0.0.1") -> bool:
    try:
        with socket.create_connection((host, port), timeout=1):
            return True
    except OSError:
        return False


def pg_dsn() -> str:
    if not port_open(5432):
        require_service("PostgreSQL", "nothing listens on 127.0.0.1:5432")
    import psycopg

    for dsn in PG_DSNS:
        try:
            psycopg.connect(dsn, connect_timeout=3).close()
            return dsn
        except psycopg.Error:
            continue
    require_service("PostgreSQL", f"cannot log in with any of {PG_DSNS}")
    raise AssertionError("unreachable")


def make_factory(kind: str, tmp_path) -> tuple[object, object]:
    """(picklable factory, cleanup callable) for one provider kind with a unique namespace."""
    from atdata.providers._postgres import PostgresProvider
    from atdata.providers._redis import RedisProvider
    from atdata.providers._sqlite import SQLiteProvider

    run = uuid.uuid4().hex[:10]
    if kind == "sqlite":
        return functools.partial(SQLiteProvider, str(tmp_path / "index.db")), lambda: None
    if kind == "redis":
        if not port_open(6379):
            require_service("Redis", "nothing listens on 127.0.0.1:6379")
        f = functools.partial(RedisProvider, REDIS_URL, prefix=f"atdata-test-{run}:")
        return f, lambda: f().drop()
    if kind == "postgres":
        f = functools.partial(PostgresProvider, pg_dsn(), schema=f"atdata_test_{run}")
        return f, lambda: f().drop()
    raise ValueError(kind)
