"""``atdata.manifest``: per-shard manifests (JSON header + parquet rows) and queries over them.

A manifest records, for each sample of a shard, its key, where its payload sits in the tar and
its queryable field values, plus per-field aggregates for the whole shard. Queries prune shards
by those aggregates, then filter rows, and return :class:`SampleLocation` s.

Names load lazily, so importing this module imports neither numpy, pandas nor pyarrow.

Examples:
    >>> import atdata.manifest as M
    >>> M.ManifestField("numeric").aggregate, repr(M.F.label == "dog")
    ('numeric', "Predicate('label' eq 'dog')")
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from atdata._lazy import lazy_module

_LAZY: dict[str, str] = {
    "MANIFEST_FORMAT_VERSION": "atdata.manifest._paths",
    "AggregateKind": "atdata.manifest._fields",
    "CategoricalAggregate": "atdata.manifest._aggregates",
    "F": "atdata.manifest._expr",
    "FieldProxy": "atdata.manifest._expr",
    "FieldSet": "atdata.manifest._expr",
    "ManifestBuilder": "atdata.manifest._frame",
    "ManifestField": "atdata.manifest._fields",
    "ManifestWriter": "atdata.manifest._frame",
    "NumericAggregate": "atdata.manifest._aggregates",
    "Predicate": "atdata.manifest._expr",
    "QueryExecutor": "atdata.manifest._query",
    "QueryResult": "atdata.manifest._query",
    "QueryStats": "atdata.manifest._query",
    "SampleLocation": "atdata.manifest._locations",
    "SetAggregate": "atdata.manifest._aggregates",
    "ShardManifest": "atdata.manifest._read",
    "create_aggregate": "atdata.manifest._aggregates",
    "query_fields": "atdata.manifest._expr",
    "resolve_manifest_fields": "atdata.manifest._fields",
}

__all__ = sorted(_LAZY)

__getattr__, __dir__ = lazy_module(globals(), _LAZY)

if TYPE_CHECKING:  # pragma: no cover
    from atdata.manifest._aggregates import (
        CategoricalAggregate,
        NumericAggregate,
        SetAggregate,
        create_aggregate,
    )
    from atdata.manifest._expr import F, FieldProxy, FieldSet, Predicate, query_fields
    from atdata.manifest._fields import AggregateKind, ManifestField, resolve_manifest_fields
    from atdata.manifest._frame import ManifestBuilder, ManifestWriter
    from atdata.manifest._locations import SampleLocation
    from atdata.manifest._paths import MANIFEST_FORMAT_VERSION
    from atdata.manifest._query import QueryExecutor, QueryResult, QueryStats
    from atdata.manifest._read import ShardManifest
