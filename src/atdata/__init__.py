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

from atdata import _hooks
from atdata._lazy import lazy_module
from atdata._version import __version__

# public name -> private module that defines it
_LAZY: dict[str, str] = {
    "AbstractDataStore": "atdata.stores._base",
    "AmbiguousSplitError": "atdata._errors",
    "AppViewError": "atdata._errors",
    "AppViewRequiredError": "atdata._errors",
    "AppViewSearchBackend": "atdata.search",
    "AppViewUnavailableError": "atdata._errors",
    "ArgumentTypeError": "atdata._errors",
    "ArrayLayoutError": "atdata._errors",
    "AtdataError": "atdata._errors",
    "AuthenticationError": "atdata._errors",
    "ConfigError": "atdata._errors",
    "DataNotFoundError": "atdata._errors",
    "DataSource": "atdata._shards.sources",
    "Dataset": "atdata.dataset._dataset",
    "DatasetDict": "atdata._load",
    "DatasetEntry": "atdata.index._entry",
    "DecodeError": "atdata._errors",
    "DictSample": "atdata._wire.sample",
    "Index": "atdata.index._index",
    "IndexEntry": "atdata.index._entry",
    "IndexProvider": "atdata.providers._base",
    "IngestReport": "atdata._ingest._report",
    "IntegrityError": "atdata._errors",
    "LengthUnknownError": "atdata._errors",
    "Lens": "atdata.lens._lens",
    "LensNetwork": "atdata.lens._lens",
    "LensNotFoundError": "atdata._errors",
    "LocalDiskStore": "atdata.stores._local",
    "LocalSearchBackend": "atdata.index._search",
    "ManifestBuilder": "atdata.manifest._frame",
    "MissingCredentialsError": "atdata._errors",
    "ManifestField": "atdata.manifest._fields",
    "ManifestWriter": "atdata.manifest._frame",
    "MissingExtraError": "atdata._errors",
    "NDArray": "atdata._types",
    "NotFoundError": "atdata._errors",
    "NothingWrittenError": "atdata._errors",
    "Packable": "atdata._wire.sample",
    "PackableSample": "atdata._wire.sample",
    "PartialFailureError": "atdata._errors",
    "QualityGateError": "atdata._errors",
    "QueryExecutor": "atdata.manifest._query",
    "QueryResult": "atdata.manifest._query",
    "RemoteShardError": "atdata._errors",
    "Repository": "atdata.repository",
    "S3DataStore": "atdata.stores._s3",
    "S3Source": "atdata.stores._s3",
    "SampleBatch": "atdata.dataset._batch",
    "SampleIndexError": "atdata._errors",
    "SampleKeyError": "atdata._errors",
    "SampleLocation": "atdata.manifest._locations",
    "SchemaError": "atdata._errors",
    "SchemaRecord": "atdata.index._entry",
    "SearchAggregator": "atdata.index._search",
    "SearchBackend": "atdata.index._search",
    "SearchResult": "atdata.index._search",
    "SearchResults": "atdata.index._search",
    "ShardError": "atdata._errors",
    "ShardFailure": "atdata._errors",
    "ShardInfo": "atdata._shards.writer",
    "ShardManifest": "atdata.manifest._read",
    "ShardWriteResult": "atdata.stores._base",
    "ShardWriter": "atdata.dataset._write",
    "SplitNotFoundError": "atdata._errors",
    "StorageError": "atdata._errors",
    "URLSource": "atdata._shards.sources",
    "UnknownFieldError": "atdata._errors",
    "Watcher": "atdata.watch._watcher",
    "WorkerPickleError": "atdata._errors",
    "configure_logging": "atdata._logging",
    "create_repository": "atdata.repository",
    "decode_array": "atdata._wire.arrays",
    "encode_array": "atdata._wire.arrays",
    "from_arrow": "atdata._convert",
    "generate_cid": "atdata.atmosphere._cid",
    "get_default_index": "atdata.index._index",
    "get_logger": "atdata._logging",
    "ingest": "atdata._ingest",
    "lens": "atdata.lens._lens",
    "load_dataset": "atdata._load",
    "log_operation": "atdata._logging",
    "main": "atdata.cli",
    "packable": "atdata._wire.sample",
    "promote_to_atmosphere": "atdata.promote",
    "query_fields": "atdata.manifest._expr",
    "schema_from_arrow": "atdata.dataset._arrow_read",
    "set_default_index": "atdata.index._index",
    "verify_checksums": "atdata.index._verify",
    "verify_cid": "atdata.atmosphere._cid",
    "schema_to_type": "atdata.index._schemas",
    "BlobSource": "atdata.atmosphere._blobs",
    "write_samples": "atdata.dataset._write",
}

__all__ = sorted([*_LAZY, "__version__"])


_lazy_getattr, _lazy_dir = lazy_module(globals(), _LAZY)


def _anonymous_atmosphere() -> Any:
    """The read-only atmosphere a plain ``Index()`` resolves ``@handle/name`` with (made on the
    first such name, so ``import atdata`` imports no ATProto code)."""
    from atdata.atmosphere._client import Atmosphere

    return Atmosphere()


_hooks.register(_hooks.ANONYMOUS_ATMOSPHERE, _anonymous_atmosphere)

# public subpackages, reachable as attributes after a bare ``import atdata`` (as with upstream),
# imported on first use
_SUBMODULES = frozenset(
    {"atmosphere", "cli", "dataset", "index", "lens", "lexicons", "local", "manifest", "promote",
     "providers", "ray", "repository", "search", "stores", "testing", "viewer"}
)  # fmt: skip


def __getattr__(name: str) -> Any:
    if name in _SUBMODULES:
        import importlib

        return importlib.import_module(f"atdata.{name}")
    if name == "AbstractIndex":  # upstream's deprecated protocol name: the Index class itself
        import warnings

        warnings.warn(
            "atdata.AbstractIndex is deprecated; use atdata.Index as the type annotation",
            DeprecationWarning,
            stacklevel=2,
        )
        return _lazy_getattr("Index")
    return _lazy_getattr(name)


def __dir__() -> list[str]:
    return sorted({*_lazy_dir(), *_SUBMODULES})


if TYPE_CHECKING:  # pragma: no cover - for type checkers and IDEs only
    from atdata._convert import from_arrow
    from atdata._errors import (
        AmbiguousSplitError,
        AppViewError,
        AppViewRequiredError,
        AppViewUnavailableError,
        ArgumentTypeError,
        ArrayLayoutError,
        AtdataError,
        AuthenticationError,
        ConfigError,
        DataNotFoundError,
        DecodeError,
        IntegrityError,
        LengthUnknownError,
        LensNotFoundError,
        MissingCredentialsError,
        MissingExtraError,
        NotFoundError,
        NothingWrittenError,
        PartialFailureError,
        QualityGateError,
        RemoteShardError,
        SampleIndexError,
        SampleKeyError,
        SchemaError,
        ShardError,
        ShardFailure,
        SplitNotFoundError,
        StorageError,
        UnknownFieldError,
        WorkerPickleError,
    )
    from atdata._ingest import ingest
    from atdata._ingest._report import IngestReport
    from atdata._load import DatasetDict, load_dataset
    from atdata._logging import configure_logging, get_logger, log_operation
    from atdata._shards.sources import DataSource, URLSource
    from atdata._shards.writer import ShardInfo
    from atdata._types import NDArray
    from atdata._wire.arrays import decode_array, encode_array
    from atdata._wire.sample import DictSample, Packable, PackableSample, packable
    from atdata.atmosphere._blobs import BlobSource
    from atdata.atmosphere._cid import generate_cid, verify_cid
    from atdata.cli import main
    from atdata.dataset._arrow_read import schema_from_arrow
    from atdata.dataset._batch import SampleBatch
    from atdata.dataset._dataset import Dataset
    from atdata.dataset._write import ShardWriter, write_samples
    from atdata.index._entry import DatasetEntry, IndexEntry, SchemaRecord
    from atdata.index._index import Index, get_default_index, set_default_index
    from atdata.index._schemas import schema_to_type
    from atdata.index._search import (
        LocalSearchBackend,
        SearchAggregator,
        SearchBackend,
        SearchResult,
        SearchResults,
    )
    from atdata.index._verify import verify_checksums
    from atdata.lens._lens import Lens, LensNetwork, lens
    from atdata.manifest._expr import query_fields
    from atdata.manifest._fields import ManifestField
    from atdata.manifest._frame import ManifestBuilder, ManifestWriter
    from atdata.manifest._locations import SampleLocation
    from atdata.manifest._query import QueryExecutor, QueryResult
    from atdata.manifest._read import ShardManifest
    from atdata.promote import promote_to_atmosphere
    from atdata.providers._base import IndexProvider
    from atdata.repository import Repository, create_repository
    from atdata.search import AppViewSearchBackend
    from atdata.stores._base import AbstractDataStore, ShardWriteResult
    from atdata.stores._local import LocalDiskStore
    from atdata.stores._s3 import S3DataStore, S3Source
    from atdata.watch._watcher import Watcher
