"""``atdata.local.Repo``: the deprecated S3-plus-Redis repository object, as a thin facade over an
:class:`~atdata.Index` (Redis provider) with an :class:`~atdata.stores.S3DataStore`.

New code uses the two directly::

    store = S3DataStore(credentials, bucket="my-bucket")
    index = Index(redis=redis, data_store=store)
    entry = index.insert_dataset(ds, name="my-dataset")

Examples:
    >>> import warnings, atdata.local
    >>> with warnings.catch_warnings(record=True) as caught:
    ...     warnings.simplefilter("always")
    ...     try:
    ...         atdata.local.Repo(s3_credentials={"AWS_ACCESS_KEY_ID": "k"})
    ...     except ValueError as exc:
    ...         print(exc)
    Repo(s3_credentials=...) needs hive_path='bucket/path' (where the shards go)
    >>> caught[0].category.__name__
    'DeprecationWarning'
"""

from __future__ import annotations

import os
import warnings
from pathlib import PurePosixPath
from typing import Any

from atdata._errors import ConfigError
from atdata.index._entry import DatasetEntry
from atdata.index._index import Index

__all__ = ["Repo"]

_ADVICE = (
    "Repo is deprecated; use Index with S3DataStore: store = S3DataStore(credentials, "
    "bucket='my-bucket'); index = Index(redis=redis, data_store=store); "
    "entry = index.insert_dataset(ds, name='my-dataset')"
)


class Repo:
    """Deprecated: datasets stored in S3 under ``hive_path`` and indexed in Redis (warns).

    Args:
        s3_credentials: A ``.env`` file path or a dict with ``AWS_ENDPOINT`` (optional),
            ``AWS_ACCESS_KEY_ID`` and ``AWS_SECRET_ACCESS_KEY``; ``None``: no S3 (only the index).
        hive_path: ``"bucket/path/inside"``: where the shards go (needed with credentials).
        redis: A Redis client or URL (default: Redis on localhost).
        prefix: Redis key prefix (ours; default ``atdata:``).

    Attributes:
        s3_credentials: The credentials as a dict, or ``None``.
        hive_path: ``hive_path`` as a path, or ``None``.
        hive_bucket: Its first component (the bucket), or ``None``.
        data_store: The :class:`~atdata.stores.S3DataStore` writing there, or ``None``.
        index: The :class:`~atdata.Index` (Redis provider) entries go to.

    Raises:
        ConfigError: (a ``ValueError``) Credentials without ``hive_path``.
    """

    s3_credentials: dict[str, str] | None
    hive_path: PurePosixPath | None
    hive_bucket: str | None
    data_store: Any
    index: Index

    def __init__(
        self,
        s3_credentials: str | os.PathLike[str] | dict[str, str] | None = None,
        hive_path: str | os.PathLike[str] | None = None,
        redis: Any = None,
        *,
        prefix: str | None = None,
    ) -> None:
        warnings.warn(_ADVICE, DeprecationWarning, stacklevel=2)
        self.s3_credentials, self.hive_path, self.hive_bucket = None, None, None
        self.data_store = None
        if s3_credentials is not None:
            if hive_path is None or not PurePosixPath(os.fspath(hive_path)).parts:
                raise ConfigError(
                    "Repo(s3_credentials=...) needs hive_path='bucket/path' (where the shards go)"
                )
            from atdata.stores._s3 import S3DataStore

            self.hive_path = PurePosixPath(os.fspath(hive_path))
            self.hive_bucket = self.hive_path.parts[0]
            inside = "/".join(self.hive_path.parts[1:])
            self.data_store = S3DataStore(s3_credentials, inside, bucket=self.hive_bucket)
            self.s3_credentials = dict(self.data_store.credentials)
        self.index = Index("redis", redis=redis, data_store=self.data_store, prefix=prefix)

    def insert(
        self,
        ds: Any,
        *,
        name: str,
        cache_local: bool = False,
        schema_ref: str | None = None,
        **kwargs: Any,
    ) -> tuple[DatasetEntry, Any]:
        """Copy ``ds`` into S3 under ``hive_path`` and index it as ``name``.

        Args:
            ds: The :class:`~atdata.Dataset` to store (its ``metadata`` is kept in the entry).
            name: The dataset name in the index.
            cache_local: Accepted; shards are always staged locally and verified.
            schema_ref: Schema reference (default: the dataset's type, published).
            **kwargs: Shard limits (``maxcount``, ``maxsize``) and other
                :meth:`~atdata.Index.insert_dataset` options.

        Returns:
            ``(entry, dataset)``: the index entry and a :class:`~atdata.Dataset` of the stored
            copy, typed like ``ds``.

        Raises:
            ConfigError: (a ``ValueError``) This repository was made without S3 credentials.
        """
        if self.data_store is None:
            raise ConfigError(
                "Repo.insert needs S3: make it with Repo(s3_credentials=..., hive_path='bucket/path')"
            )
        entry = self.index.insert_dataset(
            ds, name=name, schema_ref=schema_ref, metadata=ds.metadata, copy=True, **kwargs
        )
        stored = self.index.open_dataset(name, entry.version, sample_type=ds.sample_type)
        return entry, stored

    def __repr__(self) -> str:
        where = f"s3://{self.hive_path}" if self.hive_path is not None else "no S3"
        return f"Repo({where}, index={self.index!r})"
