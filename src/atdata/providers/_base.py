"""The index provider contract every backend (SQLite, Redis, PostgreSQL, third parties) implements.

A provider stores two kinds of JSON records: schemas keyed by ``(name, version)`` and dataset
entries keyed by ``(name, version)`` with a unique ``entry_id``. It must make
:meth:`IndexProvider.add_entry` atomic (version assignment and idempotency under concurrent
writers) and list everything in one or a few round trips. ``atdata.testing.run_provider_conformance``
checks all of it.

Examples:
    >>> mask_url("postgresql://bob:s3cret@db:5432/x")
    'postgresql://bob:***@db:5432/x'
    >>> mask_url("host=db password=s3cret dbname=x")
    'host=db password=*** dbname=x'
"""

from __future__ import annotations

import re
from abc import ABC, abstractmethod
from typing import Any

from atdata._errors import ConfigError
from atdata.index._entry import DatasetEntry, SchemaRecord, bump, parse_version, version_key

__all__ = ["IndexProvider", "has_password", "mask_url", "next_entry_version", "refuse_pickle"]

# the password runs to the LAST "@" of the authority (urllib and redis-py read "u:p@x@host" as
# password "p@x"); a libpq value may be quoted with backslash escapes ('a\'b'), or unterminated
_URL_PW = re.compile(r"(://[^:/@\s]*:)[^/\s?#]*@")
_KV_PW = re.compile(r"(password\s*=\s*)('(?:[^'\\]|\\.)*(?:'|\Z)|\S+)", re.IGNORECASE)


def mask_url(url: str) -> str:
    """Hide the password in a URL or libpq key=value DSN (for messages and logs).

    Examples:
        >>> mask_url("redis://u:p@SECRET@host:6379/0")
        'redis://u:***@host:6379/0'
        >>> mask_url("host=db password='a\\\\'SECRET' dbname=x")
        'host=db password=*** dbname=x'
    """
    return _KV_PW.sub(r"\1***", _URL_PW.sub(r"\1***@", url))


def has_password(url: str) -> bool:
    """Whether a URL or DSN carries a password (what :func:`mask_url` would hide).

    Examples:
        >>> has_password("postgresql://bob@db/x"), has_password("host=db password=s dbname=x")
        (False, True)
    """
    return mask_url(url) != url


def refuse_pickle(kind: str, url: str) -> None:
    """Raise :class:`~atdata.ConfigError` when pickling a provider would carry its password.

    Raises:
        ConfigError: When ``url`` holds a password.
    """
    if has_password(url):
        from atdata._errors import ConfigError

        raise ConfigError(
            f"the {kind} provider {mask_url(url)} holds a password, so it is not pickled (the "
            "pickle would carry the password in clear); in worker processes build the provider "
            "again from a URL whose password comes from the environment (PGPASSWORD or "
            "~/.pgpass for PostgreSQL, an env var you read for Redis)"
        )


def next_entry_version(existing: list[str]) -> str:
    """The version an unversioned entry gets: ``1.0.0`` first, then the latest with minor + 1.

    Examples:
        >>> next_entry_version([]), next_entry_version(["1.0.0", "2.3.1", "1.9.0"])
        ('1.0.0', '2.4.0')
    """
    if not existing:
        return "1.0.0"
    latest = max(existing, key=parse_version)
    return bump(latest, "minor")


class IndexProvider(ABC):
    """Storage of schema records and dataset entries.

    Implementations raise :class:`~atdata.StorageError` (naming :attr:`url`, password masked)
    when the backend is unreachable, never hang without a timeout, and are safe to use from
    several processes at once.
    """

    #: ``sqlite``, ``redis``, ``postgres`` or a third-party kind
    kind: str = "provider"

    @property
    @abstractmethod
    def url(self) -> str:
        """Where the provider stores data (password masked)."""

    # -- schemas --------------------------------------------------------------------------------
    @abstractmethod
    def put_schema(self, record: SchemaRecord) -> SchemaRecord:
        """Store ``record`` unless ``(name, version)`` exists.

        Returns:
            The stored record (the existing one when it has the same body).

        Raises:
            SchemaError: When ``(name, version)`` exists with a different body.
        """

    @abstractmethod
    def get_schema(self, name: str, version: str | None = None) -> SchemaRecord | None:
        """A schema version (the highest one when ``version`` is ``None``), or ``None``."""

    @abstractmethod
    def list_schemas(self) -> list[SchemaRecord]:
        """Every schema version, sorted by name then version."""

    # -- entries --------------------------------------------------------------------------------
    @abstractmethod
    def add_entry(self, entry: DatasetEntry) -> DatasetEntry:
        """Commit ``entry`` atomically and return it as stored.

        When ``entry.version`` is ``None`` the provider assigns :func:`next_entry_version` of the
        versions already stored under the name, inside the same atomic step. When an entry with
        the same ``entry_id`` exists, that entry is returned and nothing is written.

        Raises:
            ConfigError: When an explicit ``version`` already exists for the name (nothing is
                replaced).
        """

    @abstractmethod
    def get_entry(self, name: str, version: str | None = None) -> DatasetEntry | None:
        """An entry (the highest version when ``version`` is ``None``), or ``None``."""

    @abstractmethod
    def get_entry_by_id(self, entry_id: str) -> DatasetEntry | None:
        """The entry committed with ``entry_id``, or ``None``."""

    @abstractmethod
    def list_entries(self) -> list[DatasetEntry]:
        """Every entry, sorted by name then version, in one or a few round trips."""

    # -- named records (labels, lenses) ---------------------------------------------------------
    def put_record(self, kind: str, key: str, record: dict[str, Any]) -> None:
        """Store (or replace) a JSON ``record`` of ``kind`` (``"label"``, ``"lens"``) under ``key``.

        Optional: providers that do not override it cannot hold labels or lenses.
        """
        raise ConfigError(
            f"the {self.kind} provider at {self.url} does not store {kind} records; "
            "use the sqlite, redis or postgres provider"
        )

    def get_record(self, kind: str, key: str) -> dict[str, Any] | None:
        """The record of ``kind`` stored under ``key``, or ``None``."""
        return None

    def list_records(self, kind: str) -> list[tuple[str, dict[str, Any]]]:
        """Every ``(key, record)`` of ``kind``, sorted by key."""
        return []

    # -- lifecycle ------------------------------------------------------------------------------
    def ping(self) -> None:  # noqa: B027 - optional hook
        """Check the backend is reachable (raise :class:`~atdata.StorageError` if not)."""

    def close(self) -> None:  # noqa: B027 - optional hook
        """Release connections."""

    def __enter__(self) -> IndexProvider:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.url!r})"


def sort_key(name: str, version: str) -> tuple[str, tuple[Any, ...]]:
    """Sort records by name then version (semver precedence, see :func:`version_key`)."""
    return name, version_key(version)


def conflict_message(entry: DatasetEntry) -> str:
    return (
        f"dataset {entry.name!r} already has version {entry.version}; nothing was replaced. "
        "Omit version= to get the next version automatically, or choose a new one"
    )


def schema_conflict_message(record: SchemaRecord) -> str:
    return (
        f"schema {record.name}@{record.version} already exists with a different body; "
        "publish the changed type without version= to get a bumped version"
    )
