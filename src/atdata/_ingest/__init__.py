"""Ingestion: JSONL, CSV, parquet and Hugging Face datasets into typed shards, resumably.

The public entry point is :func:`atdata.ingest` (and ``atdata ingest SOURCE OUT`` on the
command line). The package sits above the index (it can record what it wrote in one).

Examples:
    >>> import os, tempfile, atdata
    >>> d = tempfile.mkdtemp()
    >>> src = os.path.join(d, "rows.jsonl")
    >>> with open(src, "w") as f:
    ...     for i in range(5):
    ...         _ = f.write('{"text": "t%d", "n": %d}\\n' % (i % 3, i))
    >>> r = atdata.ingest(src, os.path.join(d, "out"), dedup_on="text", maxcount=2)
    >>> r.schema, r.rows_read, r.rows_written, r.duplicates, r.num_shards
    ('Rows(text: str, n: int)', 5, 3, 2, 2)
    >>> [s.text for s in r.dataset().ordered()]
    ['t0', 't1', 't2']
"""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any

from atdata._errors import ConfigError
from atdata._ingest._report import IngestReport

__all__ = ["IngestReport", "ingest"]


def ingest(
    source: Any,
    out: str | os.PathLike[str],
    *,
    sample_type: type | None = None,
    transform: Callable[[dict[str, Any]], Any] | None = None,
    validate: Callable[[Any], Any] | None = None,
    dedup_on: str | list[str] | bool | Callable[[Any], Any] | None = None,
    maxcount: int | None = 10_000,
    maxsize: int | None = None,
    max_invalid_fraction: float = 0.01,
    min_rows: int = 1000,
    index: Any = None,
    name: str | None = None,
    format: str | None = None,
    manifest: bool | None = None,
    progress: bool | None = None,
    work_dir: str | os.PathLike[str] | None = None,
    s3_options: dict[str, Any] | None = None,
    s3_client: Any = None,
    fsync: bool = True,
    shard_prefix: str = "data",
) -> IngestReport:
    """Ingest rows from JSONL, CSV, parquet or a Hugging Face dataset into typed shards.

    Resumable and exactly-once: progress is saved atomically in ``<out>/.ingest/`` each time a
    shard is sealed, so rerunning the same call after a crash (or a failed upload, or a quality
    gate stop) continues after the last sealed shard, and the shards are byte-identical to those
    of an uninterrupted run. Rerunning a finished ingestion returns its report at once. A rerun
    with other inputs or options is refused once a shard is sealed (before that it starts
    over); ``transform``, ``validate`` and ``dedup_on`` callables cannot be compared, so pass
    the same ones (and keep them deterministic).

    Args:
        source: A path, directory, glob (``"data/*.jsonl.gz"``), ``http(s)://`` URL,
            ``s3://`` URL or glob, a Hugging Face ``datasets.Dataset`` (or a streaming
            ``IterableDataset``), or a list of these.
            Formats by name: ``.jsonl``/``.ndjson``/``.json`` (JSON Lines), ``.csv`` (with a
            header), ``.parquet``; ``.gz`` and ``.zst`` compressed text is read too.
        out: A local directory or an ``s3://bucket/prefix`` (staged locally in ``work_dir``).
        sample_type: The ``@packable`` type of the samples. ``None``: inferred from the first
            rows (the report's ``schema`` says what was inferred).
        transform: ``row dict -> dict | sample | None``, applied to each row before coercion;
            ``None`` drops the row (counted as ``filtered``), raising rejects it.
        validate: ``sample -> bool``; ``False`` or raising rejects the row (``None`` passes).
        dedup_on: Drop rows whose key was already seen (exact, by a 16-byte content hash): a
            field name, a list of them, ``True`` (all fields) or a callable ``sample -> value``.
        maxcount: Samples per shard.
        maxsize: Bytes per shard (with or instead of ``maxcount``).
        max_invalid_fraction: Stop with :class:`~atdata.QualityGateError` once more than this
            fraction of the rows read is invalid (checked from ``min_rows`` rows on, and at
            the end).
        min_rows: Rows to read before the gate is checked.
        index: An :class:`~atdata.Index` to record the dataset in (needs ``name``).
        name: The dataset's name in ``index`` (also names an inferred type).
        format: Force the input format (``"jsonl"``, ``"csv"`` or ``"parquet"``).
        manifest: Write a manifest beside each shard (``None``: when pyarrow is installed).
        progress: Show a live progress line (``None``: on an interactive terminal).
        work_dir: Local staging directory of an ``s3://`` output.
        s3_options: Options of the S3 client (``endpoint_url``, ``region_name``, keys).
        s3_client: A ready boto3 S3 client (instead of ``s3_options``).
        fsync: Flush shards and progress to disk at each seal (survives power loss).
        shard_prefix: Shard file names: ``<shard_prefix>-000000.tar``, ...

    Returns:
        An :class:`~atdata.IngestReport`: rows read and written, duplicates, invalid rows by
        reason, shards, bytes and seconds.

    Examples:
        >>> import os, tempfile, atdata
        >>> d = tempfile.mkdtemp()
        >>> with open(os.path.join(d, "pets.csv"), "w") as f:
        ...     _ = f.write("name,age\\nrex,3\\nfelix\\nrex,3\\nbo,1\\n")
        >>> r = atdata.ingest(os.path.join(d, "pets.csv"), os.path.join(d, "out"),
        ...                   dedup_on="name", max_invalid_fraction=0.5)
        >>> r.schema, r.rows_written, r.duplicates, r.rejected
        ('Pets(name: str, age: int)', 2, 1, {'parse': 1})

    Raises:
        QualityGateError: (a ``ValueError``) Too many invalid rows; sealed shards stay.
        ConfigError: (a ``ValueError``) Bad options, or ``out`` holds an ingestion with other
            settings.
        DataNotFoundError: An input path or pattern matches nothing.
        StorageError: An input cannot be read or an upload failed (a rerun retries it).
        MissingExtraError: pyarrow (parquet: ``atdata[arrow]``), boto3 (S3: ``atdata[s3]``)
            or zstandard (``.zst``: ``atdata[ingest]``) is not installed.
    """
    from atdata._ingest._run import IngestRun
    from atdata._ingest._sources import S3Access

    if index is not None and not name:
        raise ConfigError("ingesting into an index needs name= (the dataset's name)")
    run = IngestRun(
        source,
        os.fspath(out),
        sample_type=sample_type,
        transform=transform,
        validate=validate,
        dedup_on=dedup_on,
        maxcount=maxcount,
        maxsize=maxsize,
        max_invalid_fraction=max_invalid_fraction,
        min_rows=min_rows,
        name=name,
        fmt=format,
        manifest=manifest,
        progress=progress,
        work_dir=None if work_dir is None else os.fspath(work_dir),
        s3=S3Access(s3_client, dict(s3_options or {})),
        fsync=fsync,
        shard_prefix=shard_prefix,
    )
    report = run.run()
    if index is not None and name and report.num_shards:
        from atdata.dataset._dataset import Dataset

        ds: Any = Dataset(
            report.source or report.list_shards(),
            sample_type=run.sample_type,
            shard_infos=run.shard_infos(),
        )
        report.entry = index.insert_dataset(ds, name=name)
    return report
