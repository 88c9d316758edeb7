"""The protocol names upstream atdata's docs import from ``atdata._protocols``.

Upstream's reference pages write ``from atdata._protocols import IndexEntry`` (and
``AbstractDataStore``, ``DataSource``, ``Packable``, ``AbstractIndex``), so this module serves
those names; each is the same object ``atdata`` itself exports. ``AbstractIndex`` is
:class:`~atdata.Index` (the index class is the interface), without the deprecation warning that
``atdata.AbstractIndex`` gives. Names load on first use.

Examples:
    >>> import atdata
    >>> from atdata._protocols import DataSource, IndexEntry
    >>> DataSource is atdata.DataSource and IndexEntry is atdata.IndexEntry
    True
    >>> isinstance(atdata.URLSource("a-{0..1}.tar"), DataSource)
    True
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from atdata._lazy import lazy_module

__all__ = ["AbstractDataStore", "AbstractIndex", "DataSource", "IndexEntry", "Packable"]

_LAZY: dict[str, str] = {
    "AbstractDataStore": "atdata.stores._base",
    "DataSource": "atdata._shards.sources",
    "IndexEntry": "atdata.index._entry",
    "Packable": "atdata._wire.sample",
}

_getattr, __dir__ = lazy_module(globals(), _LAZY)


def __getattr__(name: str) -> object:
    if name == "AbstractIndex":
        from atdata.index._index import Index

        globals()[name] = Index
        return Index
    return _getattr(name)


if TYPE_CHECKING:  # pragma: no cover
    from atdata._shards.sources import DataSource
    from atdata._wire.sample import Packable
    from atdata.index._entry import IndexEntry
    from atdata.index._index import Index as AbstractIndex
    from atdata.stores._base import AbstractDataStore
