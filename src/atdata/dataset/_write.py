"""Writing datasets: the public :class:`ShardWriter` and :func:`write_samples`.

Both build on the shard layer's writer (:class:`atdata._shards.writer.ShardWriter`); this layer
adds what needs the layers above shards: manifests beside each shard (``manifest=True``) and a
:class:`~atdata.Dataset` over what was written.

Examples:
    >>> import tempfile, os, atdata
    >>> @atdata.packable
    ... class Row:
    ...     text: str
    >>> d = tempfile.mkdtemp()
    >>> ds = atdata.write_samples([Row(text=t) for t in "abc"], os.path.join(d, "rows.tar"), key="index")
    >>> [s.text for s in ds.ordered()], [s.__key__ for s in ds.ordered()]
    (['a', 'b', 'c'], ['00000000', '00000001', '00000002'])
    >>> info = ds.list_shard_infos()[0]
    >>> (info.num_samples, info.size, len(info.sha256))
    (3, 4096, 64)
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Sized
from typing import Any, TypeVar

from atdata._errors import ConfigError, SchemaError
from atdata._shards import writer as _shard_writer
from atdata._shards.writer import KeyPolicy, ShardInfo, ShardObserver
from atdata._wire.sample import DictSample
from atdata.dataset._dataset import Dataset

__all__ = ["ShardInfo", "ShardObserver", "ShardWriter", "write_samples"]

T = TypeVar("T")


class ShardWriter(_shard_writer.ShardWriter):
    """Write samples into one or more tar shards, optionally with a manifest beside each.

    Takes every argument of the shard layer's writer (``pattern``, ``maxcount``, ``maxsize``,
    ``key``, ``start_index``, ``fsync``, ``observers``, ``progress``, ``total``; see
    :class:`atdata._shards.writer.ShardWriter`) and:

    Args:
        manifest: Write ``<shard>.manifest.json`` + ``.manifest.parquet`` beside each finished
            shard (needs ``atdata[query]``).

    Examples:
        >>> import tempfile, os, atdata
        >>> d = tempfile.mkdtemp()
        >>> with atdata.ShardWriter(os.path.join(d, "s-%03d.tar"), maxcount=2, key="index") as w:
        ...     for i in range(5):
        ...         _ = w.write(atdata.DictSample(i=i))
        >>> [os.path.basename(i.path) for i in w.list_shard_infos()]
        ['s-000.tar', 's-001.tar', 's-002.tar']
    """

    def __init__(
        self,
        pattern: str | os.PathLike[str],
        maxcount: int | None = None,
        maxsize: int | None = None,
        *,
        key: KeyPolicy = None,
        start_index: int = 0,
        fsync: bool = True,
        observers: Iterable[ShardObserver] = (),
        progress: bool | None = None,
        total: int | None = None,
        manifest: bool = False,
    ) -> None:
        observers = list(observers)
        if manifest:
            from atdata.manifest._builder import ManifestObserver

            observers.append(ManifestObserver())
        super().__init__(
            pattern,
            maxcount,
            maxsize,
            key=key,
            start_index=start_index,
            fsync=fsync,
            observers=observers,
            progress=progress,
            total=total,
        )


def write_samples(
    samples: Iterable[T],
    path: str | os.PathLike[str],
    maxcount: int | None = None,
    maxsize: int | None = None,
    *,
    key: KeyPolicy = None,
    sample_type: type | None = None,
    fsync: bool = True,
    observers: Iterable[ShardObserver] = (),
    progress: bool | None = None,
    manifest: bool = False,
    content_metadata: Any = None,
) -> Dataset[T]:
    """Write samples to tar shards and return a :class:`~atdata.Dataset` over them.

    Args:
        samples: Packable samples, DictSamples or dicts.
        path: A shard path, or a printf pattern (``"out/data-%06d.tar"``).
        maxcount: Samples per shard.
        maxsize: Bytes per shard.
        key: Key policy (see :class:`ShardWriter`).
        sample_type: Type of the returned dataset (default: the first sample's type).
        fsync: Flush shards to disk before they become visible.
        observers: Shard observers (manifests).
        progress: Show a progress display.
        manifest: Write a manifest beside each shard (see :class:`ShardWriter`).
        content_metadata: Dataset-level content metadata (a ``@packable`` sample or a dict); the
            returned dataset's ``content_metadata``.

    Returns:
        A ``Dataset`` over the written shards; ``ds.list_shard_infos()`` has sizes and sha256.

    Raises:
        ConfigError: (a ``ValueError``) When ``samples`` is empty, or ``path`` holds braces,
            glob characters (``*?[``) or ``::``, which a dataset would expand as a pattern
            (checked before anything is written).
        SchemaError: (a ``TypeError``) When ``content_metadata`` is neither a sample nor a dict
            (checked before anything is written), or a sample is not of the ``@packable`` type
            of the first one (as for any error while writing, the shard being written is
            dropped and finished ones stay).
    """
    from atdata.dataset._meta import check_content_metadata

    _check_reads_back(os.fspath(path))
    check_content_metadata(content_metadata)
    total = len(samples) if isinstance(samples, Sized) else None
    first_type: type | None = None
    with ShardWriter(
        path,
        maxcount,
        maxsize,
        key=key,
        fsync=fsync,
        observers=observers,
        progress=progress,
        total=total,
        manifest=manifest,
    ) as w:
        for i, s in enumerate(samples):
            if first_type is None:
                first_type = type(s)
            elif hasattr(first_type, "atdata_fields") and not isinstance(s, first_type):
                raise SchemaError(
                    f"sample {i} is a {type(s).__name__}, but the samples before it are "
                    f"{first_type.__name__}: the dataset would be read as {first_type.__name__} "
                    f"and fail on it; write one sample type per dataset (convert it to "
                    f"{first_type.__name__} first)"
                )
            w.write(s)
    infos = w.list_shard_infos()
    if not infos:
        raise ConfigError(
            f"samples must be non-empty: none were given, so nothing was written to "
            f"{os.fspath(path)!r}"
        )
    st: Any = sample_type or first_type
    if st is dict:
        st = DictSample
    ds: Dataset[T] = Dataset([i.path for i in infos], sample_type=st, shard_infos=infos)
    ds.content_metadata = content_metadata
    return ds


def _check_reads_back(path: str) -> None:
    """Refuse a shard path that :class:`~atdata.Dataset` would expand as a pattern instead of
    reading it (brace lists and ranges, globs, ``::`` lists): no dataset could open it.

    Examples:
        >>> _check_reads_back("out/data-%06d.tar")
        >>> _check_reads_back("out/a{1,2}.tar")
        Traceback (most recent call last):
        ...
        atdata._errors.ConfigError: shard path 'out/a{1,2}.tar' would be read back as a pattern ...
    """
    import glob

    if "{" in path or "}" in path or "::" in path or glob.has_magic(path):
        raise ConfigError(
            f"shard path {path!r} would be read back as a pattern (braces, glob characters "
            "*?[ and :: are expanded when a dataset is opened); rename it without them"
        )
