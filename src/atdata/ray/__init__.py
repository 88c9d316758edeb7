"""``atdata.ray``: atdata datasets on a Ray cluster (``pip install "atdata[ray]"``).

- :func:`read` gives a ``ray.data.Dataset`` with one read task per shard (exact row counts in
  the read metadata, arrays as tensor columns, the sample key in ``__key__``);
- :func:`write` writes a ``ray.data.Dataset`` back as atdata shards and returns the
  :class:`~atdata.Dataset` (with an index entry only once every shard is written);
- :func:`map` runs ``Dataset.map(fn, out=...)`` with one Ray task per shard: the same output
  bytes, commit records, resume and :class:`~atdata.PartialFailureError` as on one machine.

Supported Ray releases: :data:`SUPPORTED_RAY` (checked when a function here is first used; the
Datasource/Datasink API changed across releases, and the differences are handled in code).

Names load lazily, so importing this module does not import Ray.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from atdata._lazy import lazy_module

_LAZY: dict[str, str] = {
    "AtdataDatasink": "atdata.ray._data",
    "AtdataDatasource": "atdata.ray._data",
    "SUPPORTED_RAY": "atdata.ray._data",
    "map": "atdata.ray._data",
    "read": "atdata.ray._data",
    "write": "atdata.ray._data",
}

__all__ = sorted(_LAZY)

__getattr__, __dir__ = lazy_module(globals(), _LAZY)

if TYPE_CHECKING:  # pragma: no cover
    from atdata.ray._data import (
        SUPPORTED_RAY,
        AtdataDatasink,
        AtdataDatasource,
        map,
        read,
        write,
    )
