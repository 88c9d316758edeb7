"""atdata: typed, shareable, queryable ML datasets in WebDataset tar shards.

Public names load lazily on first use, so ``import atdata`` stays fast and never imports
numpy or any optional extra until it is needed.

Examples:
    >>> import atdata
    >>> atdata.__version__
    '0.1.0'
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ._lazy import lazy_module

__version__ = "0.1.0"

# public name -> private module that defines it
_LAZY: dict[str, str] = {
    "AtdataError": "._errors",
    "AuthenticationError": "._errors",
    "ConfigError": "._errors",
    "DataSource": "._sources",
    "Dataset": "._dataset",
    "DatasetDict": "._load",
    "DatasetEntry": ".index._entry",
    "DecodeError": "._errors",
    "DictSample": "._sample",
    "Index": ".index._index",
    "IndexProvider": ".index._providers._base",
    "IntegrityError": "._errors",
    "Lens": "._lens",
    "LensNetwork": "._lens",
    "LensNotFoundError": "._errors",
    "LocalDiskStore": ".stores._local",
    "ManifestField": "._manifest_fields",
    "MissingExtraError": "._errors",
    "NDArray": "._types",
    "PackableSample": "._sample",
    "QueryExecutor": "._query",
    "QueryResult": "._query",
    "Repository": ".index._repository",
    "S3DataStore": ".stores._s3",
    "S3Source": ".stores._s3",
    "SampleBatch": "._batch",
    "SampleKeyError": "._errors",
    "SampleLocation": "._query",
    "SchemaError": "._errors",
    "SchemaRecord": ".index._entry",
    "ShardError": "._errors",
    "ShardInfo": "._writer",
    "ShardWriter": "._writer",
    "SplitNotFoundError": "._errors",
    "StorageError": "._errors",
    "URLSource": "._sources",
    "decode_array": "._arrays",
    "encode_array": "._arrays",
    "generate_cid": ".atmosphere._cid",
    "lens": "._lens",
    "load_dataset": "._load",
    "packable": "._sample",
    "query_fields": "._query_expr",
    "set_default_index": ".index._index",
    "verify_cid": ".atmosphere._cid",
    "write_samples": "._writer",
}

__all__ = sorted([*_LAZY, "__version__"])


__getattr__, __dir__ = lazy_module(globals(), _LAZY)


if TYPE_CHECKING:  # pragma: no cover - for type checkers and IDEs only
    from ._arrays import decode_array, encode_array
    from ._batch import SampleBatch
    from ._dataset import Dataset
    from ._errors import (
        AtdataError,
        AuthenticationError,
        ConfigError,
        DecodeError,
        IntegrityError,
        LensNotFoundError,
        MissingExtraError,
        SampleKeyError,
        SchemaError,
        ShardError,
        SplitNotFoundError,
        StorageError,
    )
    from ._lens import Lens, LensNetwork, lens
    from ._load import DatasetDict, load_dataset
    from ._manifest_fields import ManifestField
    from ._query import QueryExecutor, QueryResult, SampleLocation
    from ._query_expr import query_fields
    from ._sample import DictSample, PackableSample, packable
    from ._sources import DataSource, URLSource
    from ._types import NDArray
    from ._writer import ShardInfo, ShardWriter, write_samples
    from .atmosphere._cid import generate_cid, verify_cid
    from .index._entry import DatasetEntry, SchemaRecord
    from .index._index import Index, set_default_index
    from .index._providers._base import IndexProvider
    from .index._repository import Repository
    from .stores._local import LocalDiskStore
    from .stores._s3 import S3DataStore, S3Source
