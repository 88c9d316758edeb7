"""``atdata.local``: the documented backward-compatible home of the local index classes.

New code imports from :mod:`atdata` / :mod:`atdata.index` / :mod:`atdata.stores`; these names
are the same objects (``LocalIndex`` and ``Index`` are one class, ``LocalDatasetEntry`` is
:class:`~atdata.index.DatasetEntry`; ``LocalSchemaRecord`` is a schema in upstream's
field-list form, what ``Index.get_schema_record`` returns, convertible to and from
:class:`~atdata.index.SchemaRecord`). ``Repo`` is the
deprecated S3-plus-Redis object (a facade over ``Index`` with an ``S3DataStore``; it warns).

Examples:
    >>> import atdata, atdata.local
    >>> atdata.local.Index is atdata.Index is atdata.local.LocalIndex
    True
"""

from __future__ import annotations

from atdata._wire.local_fields import SchemaField, SchemaFieldType
from atdata.index._entry import BasicIndexEntry, LocalDatasetEntry
from atdata.index._index import Index
from atdata.index._legacy_repo import Repo
from atdata.index._local_schema import LocalSchemaRecord
from atdata.index._schemas import SchemaNamespace
from atdata.providers._redis_legacy import REDIS_KEY_DATASET_ENTRY, REDIS_KEY_SCHEMA
from atdata.stores._local import LocalDiskStore
from atdata.stores._s3 import S3DataStore

LocalIndex = Index


__all__ = [
    "REDIS_KEY_DATASET_ENTRY",
    "REDIS_KEY_SCHEMA",
    "BasicIndexEntry",
    "Index",
    "LocalDatasetEntry",
    "LocalDiskStore",
    "LocalIndex",
    "LocalSchemaRecord",
    "Repo",
    "S3DataStore",
    "SchemaField",
    "SchemaFieldType",
    "SchemaNamespace",
]
