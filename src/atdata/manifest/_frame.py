"""A shard's manifest held in memory: :class:`ManifestBuilder` collects one into a
:class:`~atdata.manifest.ShardManifest` (a pandas DataFrame of rows), :class:`ManifestWriter`
writes such a manifest as the two files.

The streaming path that writers and ingestion use (:class:`~atdata.manifest._builder.ManifestObserver`,
which builds the parquet columns from buffers without pandas) lives in ``_builder``; this module
shares its file writing (``write_files``) and per-sample field access.

Examples:
    >>> import atdata
    >>> @atdata.packable
    ... class Tag:
    ...     name: str
    >>> b = ManifestBuilder(Tag, "tags-000000")
    >>> b.add_sample(key="k", offset=512, size=9, sample=Tag(name="x"))
    >>> b.build().num_samples
    1
"""

from __future__ import annotations

import datetime as _dt
import os
from pathlib import Path
from typing import Any

from atdata._extras import require
from atdata.manifest._aggregates import aggregate_values
from atdata.manifest._builder import _field_value, provenance_header, write_files
from atdata.manifest._fields import infer_kind, manifest_fields
from atdata.manifest._paths import TOKEN_META, manifest_paths

__all__ = ["ManifestBuilder", "ManifestWriter"]


class ManifestBuilder:
    """Collects the manifest of one shard while its samples are written.

    Call :meth:`add_sample` for each sample (its key, the byte offset and size of its tar member
    payload, and the sample), then :meth:`build`. :func:`~atdata.write_samples` with
    ``manifest=True`` does all of this itself.

    Args:
        sample_type: The sample type (its fields decide the manifest columns); for
            :class:`~atdata.DictSample` the first sample's values decide.
        shard_id: The shard's identifier (its name without ``.tar``).
        schema_version: The schema's version.
        source_job_id: Provenance: the job that wrote the shard.
        parent_shards: Provenance: the shards it was derived from.
        pipeline_version: Provenance: the version of the pipeline that wrote it.

    Examples:
        >>> import atdata
        >>> @atdata.packable
        ... class Shot:
        ...     label: str
        ...     score: float
        >>> b = ManifestBuilder(Shot, "shots-000000")
        >>> b.add_sample(key="a", offset=512, size=30, sample=Shot(label="dog", score=0.5))
        >>> b.add_sample(key="b", offset=1536, size=30, sample=Shot(label="cat", score=0.9))
        >>> m = b.build()
        >>> m.num_samples, m.size_bytes, m.aggregates["score"]["max"], list(m.samples["label"])
        (2, 60, 0.9, ['dog', 'cat'])
    """

    def __init__(
        self,
        sample_type: type,
        shard_id: str,
        schema_version: str = "1.0.0",
        source_job_id: str | None = None,
        parent_shards: list[str] | None = None,
        pipeline_version: str | None = None,
    ) -> None:
        self.sample_type = sample_type
        self.shard_id = shard_id
        self.schema_version = schema_version
        self.provenance: dict[str, Any] = provenance_header(
            source_job_id=source_job_id,
            parent_shards=parent_shards,
            pipeline_version=pipeline_version,
        ).get("provenance", {})
        self.kinds: dict[str, str] | None = None
        if hasattr(sample_type, "atdata_fields"):
            self.kinds = manifest_fields(sample_type)
        elif getattr(sample_type, "__name__", "") != "DictSample":
            from atdata.manifest._fields import resolve_manifest_fields

            self.kinds = {
                k: str(f.aggregate) for k, f in resolve_manifest_fields(sample_type).items()
            }
        self._rows: list[tuple[str, int, int]] = []
        self._columns: dict[str, list[Any]] = {k: [] for k in self.kinds or {}}

    def add_sample(self, *, key: str, offset: int, size: int, sample: Any) -> None:
        """Record one written sample: its key, payload offset and size in the tar, and values."""
        if self.kinds is None:  # untyped data: columns from the first sample's values
            data = sample.to_dict() if hasattr(sample, "to_dict") else dict(sample)
            self.kinds = {k: kd for k, v in data.items() if (kd := infer_kind(v)) is not None}
            self._columns = {k: [None] * len(self._rows) for k in self.kinds}
        self._rows.append((key, int(offset), int(size)))
        for name, col in self._columns.items():
            col.append(_field_value(sample, name))

    def build(self) -> Any:
        """The :class:`~atdata.manifest.ShardManifest` of the samples added so far."""
        from atdata.manifest._read import ShardManifest

        pd = require("pandas", "query", "manifests")
        kinds = self.kinds or {}
        if self._rows:
            keys, offsets, sizes = (list(c) for c in zip(*self._rows, strict=True))
            frame = pd.DataFrame(
                {"__key__": keys, "__offset__": offsets, "__size__": sizes, **self._columns}
            )
        else:
            frame = pd.DataFrame()
        return ShardManifest(
            self.shard_id,
            getattr(self.sample_type, "__name__", str(self.sample_type)),
            self.schema_version,
            len(self._rows),
            sum(r[2] for r in self._rows),
            _dt.datetime.now(_dt.UTC),
            {k: aggregate_values(kd, self._columns[k]) for k, kd in kinds.items()},
            frame,
            self.provenance,
        )


class ManifestWriter:
    """Writes a :class:`~atdata.manifest.ShardManifest` as ``<base>.manifest.json`` +
    ``<base>.manifest.parquet`` (atomically: a reader never sees a header without its rows).

    Args:
        base_path: The shard's path without ``.tar`` (a ``.tar`` suffix is dropped too).

    Examples:
        >>> import os, tempfile
        >>> w = ManifestWriter(os.path.join(tempfile.mkdtemp(), "shots-000000"))
        >>> w.json_path.name, w.parquet_path.name
        ('shots-000000.manifest.json', 'shots-000000.manifest.parquet')
    """

    def __init__(self, base_path: str | os.PathLike[str]) -> None:
        self.base_path = os.fspath(base_path)

    @property
    def json_path(self) -> Path:
        """Where the header goes."""
        return Path(manifest_paths(self.base_path)[0])

    @property
    def parquet_path(self) -> Path:
        """Where the rows go."""
        return Path(manifest_paths(self.base_path)[1])

    def write(self, manifest: Any) -> tuple[Path, Path]:
        """Write ``manifest``; returns the JSON and parquet paths."""
        table = manifest.table(None)
        token = manifest.header.get("manifest_token")
        if token:  # ours: the rows carry the header's token
            table = table.replace_schema_metadata({TOKEN_META: str(token).encode()})
        jpath, ppath = str(self.json_path), str(self.parquet_path)
        write_files(jpath, ppath, table, manifest.header_dict())
        return self.json_path, self.parquet_path
