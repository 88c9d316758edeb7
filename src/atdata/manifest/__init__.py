"""``atdata.manifest``: per-shard manifests (JSON + parquet) and queries over them.

Names load lazily, so importing this module imports neither numpy nor pyarrow.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from atdata._lazy import lazy_module

_LAZY: dict[str, str] = {
    "ManifestField": "atdata.manifest._fields",
    "QueryExecutor": "atdata.manifest._query",
    "QueryResult": "atdata.manifest._query",
    "SampleLocation": "atdata.manifest._query",
    "ShardManifest": "atdata.manifest._read",
    "query_fields": "atdata.manifest._expr",
}

__all__ = sorted(_LAZY)

__getattr__, __dir__ = lazy_module(globals(), _LAZY)

if TYPE_CHECKING:  # pragma: no cover
    from atdata.manifest._expr import query_fields
    from atdata.manifest._fields import ManifestField
    from atdata.manifest._query import QueryExecutor, QueryResult, SampleLocation
    from atdata.manifest._read import ShardManifest
