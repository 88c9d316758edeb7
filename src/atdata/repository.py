"""Repositories: an index provider paired with an optional data store, mountable in an Index.

``Index(repos={"lab": repo})`` then answers ``"lab/mnist"`` from that repository's provider,
and writes ``"lab/..."`` datasets into its data store.

Examples:
    >>> import os, tempfile, atdata
    >>> d = tempfile.mkdtemp()
    >>> lab = create_repository("sqlite", path=os.path.join(d, "lab.db"))
    >>> lab.provider.kind, lab.data_store is None
    ('sqlite', True)
    >>> index = atdata.Index(path=os.path.join(d, "local.db"), repos={"lab": lab})
    >>> @atdata.packable
    ... class Row:
    ...     x: int
    >>> e = index.write([Row(x=1), Row(x=2)], name="lab/rows")
    >>> index.get_dataset("lab/rows").name, [r.x for r in index.open_dataset("lab/rows").ordered()]
    ('rows', [1, 2])
    >>> [e.name for e in index.list_datasets("local")]
    []
"""

from __future__ import annotations

import dataclasses
import os
from typing import Any

from atdata.providers._base import IndexProvider
from atdata.providers._factory import create_provider
from atdata.stores._base import AbstractDataStore

__all__ = ["Repository", "create_repository"]


@dataclasses.dataclass
class Repository:
    """A named storage unit: where entries and schemas live, and optionally where shards go.

    Attributes:
        provider: The :class:`~atdata.providers.IndexProvider` holding entries and schemas.
        data_store: Where shards written to this repository go (``None``: the index's store).
    """

    provider: IndexProvider
    data_store: AbstractDataStore | None = None

    def __post_init__(self) -> None:
        from atdata._errors import ConfigError

        if not isinstance(self.provider, IndexProvider):
            raise ConfigError(
                f"Repository(provider=...) needs an IndexProvider (e.g. "
                f"atdata.providers.create_provider('sqlite', path=...)), got "
                f"{type(self.provider).__name__}"
            )


def create_repository(
    provider: str = "sqlite",
    *,
    path: str | os.PathLike[str] | None = None,
    dsn: str | None = None,
    redis: Any = None,
    data_store: AbstractDataStore | None = None,
    **kwargs: Any,
) -> Repository:
    """A :class:`Repository` with a provider made by :func:`~atdata.providers.create_provider`.

    Raises:
        ConfigError: (a ``ValueError``) For an unknown provider name or bad options.
    """
    return Repository(
        create_provider(provider, path=path, dsn=dsn, redis=redis, **kwargs), data_store
    )
