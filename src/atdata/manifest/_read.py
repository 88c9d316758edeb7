"""Reading manifests back: headers, validated rows, counts for ``len(ds)``, and verification.

Two kinds of manifest are read. Ours carry ``offset_kind: "tar"``: their offsets are trusted once
the shard is proven to be the file the header was written for (size, file stamp, else sha256: see
``_fresh``) and the parquet's token matches the header's. Upstream's
(no marker) record a running sum of payload sizes as ``__offset__`` and can miss samples; their
rows are checked against a header scan of the shard, offsets are replaced with the real ones and
samples the manifest misses are read from the shard, so queries still see every sample.

Examples:
    >>> import os, tempfile, atdata
    >>> d = tempfile.mkdtemp()
    >>> ds = atdata.write_samples([{"x": i} for i in range(4)], os.path.join(d, "a.tar"), manifest=True)
    >>> m = load_manifest(ds.list_shards()[0], ds.source)
    >>> m.num_samples, m.legacy, m.kinds
    (4, False, {'x': 'numeric'})
    >>> list(m.frame(ds.source)["x"])
    [0, 1, 2, 3]
    >>> verify_manifest(ds.list_shards()[0], ds.source)
    []
"""

from __future__ import annotations

import datetime
import json
import logging
import os
from typing import Any

from atdata._errors import DataNotFoundError, IntegrityError, ShardError
from atdata._shards.sources import is_remote
from atdata.manifest._arrowvals import empty_table, string_lists
from atdata.manifest._legacy import repair_legacy, shard_members
from atdata.manifest._paths import (
    MANIFEST_FORMAT_VERSION,
    SYSTEM_COLUMNS,
    TOKEN_META,
    manifest_paths,
    shard_id_of,
)
from atdata.manifest._validate import check_columns, check_header_types

__all__ = [
    "ShardManifest",
    "load_manifest",
    "manifest_count",
    "read_sidecar",
    "recorded_digest",
    "verify_manifest",
]

log = logging.getLogger("atdata")
_REBUILD = "rebuild it with: atdata manifest build {shard} --force"


def read_sidecar(source: Any, url: str) -> bytes | None:
    """The bytes of a file beside a shard (``None`` when it does not exist)."""
    if not is_remote(url):
        path = url[7:] if url.startswith("file://") else url
        try:
            with open(path, "rb") as f:
                return f.read()
        except FileNotFoundError:
            return None
        except OSError as exc:
            raise ShardError(f"cannot read {path}: {exc.strerror}") from None
    try:
        stream = source.open_shard(url) if source is not None else None
    except ShardError as exc:
        if "404" in str(exc) or "not found" in str(exc).lower() or "NoSuchKey" in str(exc):
            return None
        raise
    if stream is None:
        return None
    try:
        return stream.read()
    finally:
        stream.close()


class ShardManifest:
    """The manifest of one shard: header fields, aggregates, and one row per sample.

    Build one with :class:`~atdata.manifest.ManifestBuilder`, load one with :meth:`from_files`
    (or :func:`load_manifest` beside a shard); its rows (``samples``) load on first use.

    Args:
        shard_id: The shard's identifier (its name without ``.tar``).
        schema_type: Name of the sample type.
        schema_version: Version of the sample type's schema.
        num_samples: Samples in the shard.
        size_bytes: Bytes of the shard (or of its samples, for a built manifest).
        created_at: When the manifest was made.
        aggregates: Field name -> aggregate (``{"type": ..., ...}``).
        samples: A DataFrame with ``__key__``, ``__offset__``, ``__size__`` and the field columns
            (default: read from ``parquet_path`` when there is one, else empty).
        provenance: Optional provenance (job id, parent shards, pipeline version).
        header: The full JSON header when loaded from a file (keeps fields this class does not
            name, such as ``offset_kind``).
        shard: The shard file this manifest sits beside, when known.
        json_path: Where the header was read from.
        parquet_path: Where the rows are read from.
        source: The data source that reads remote files.

    Examples:
        >>> import datetime
        >>> m = ShardManifest("s-0", "Row", "1.0.0", 0, 0, datetime.datetime(2026, 1, 1), {})
        >>> m.header_dict()["created_at"], m.legacy
        ('2026-01-01T00:00:00', False)
    """

    __hash__ = None  # type: ignore[assignment]

    def __init__(
        self,
        shard_id: str,
        schema_type: str,
        schema_version: str,
        num_samples: int,
        size_bytes: int,
        created_at: datetime.datetime,
        aggregates: dict[str, dict[str, Any]],
        samples: Any = None,
        provenance: dict[str, Any] | None = None,
        *,
        header: dict[str, Any] | None = None,
        shard: str | None = None,
        json_path: str | None = None,
        parquet_path: str | None = None,
        source: Any = None,
    ) -> None:
        self.shard_id = shard_id
        self.schema_type = schema_type
        self.schema_version = schema_version
        self.num_samples = int(num_samples)
        self.size_bytes = int(size_bytes)
        self.created_at = created_at
        self.aggregates = aggregates
        self.provenance = dict(provenance or {})
        self.shard = shard
        self.json_path = json_path
        self.parquet_path = parquet_path
        self.source = source
        self._samples = samples
        self._arrow: Any = None
        self.header = dict(header) if header is not None else self.header_dict()
        # files without our marker were written by upstream atdata 0.7 (offsets are not tar
        # offsets and rows may be missing); manifests built in memory are taken as they are
        self.legacy = header is not None and header.get("offset_kind") != "tar"

    @classmethod
    def from_header(
        cls,
        header: dict[str, Any],
        *,
        shard: str | None = None,
        json_path: str | None = None,
        parquet_path: str | None = None,
        source: Any = None,
    ) -> ShardManifest:
        """A manifest from a parsed ``.manifest.json`` header (rows read lazily from the parquet)."""
        created = header.get("created_at")
        try:
            when = datetime.datetime.fromisoformat(created) if created else None
        except (TypeError, ValueError):
            when = None
        return cls(
            str(header.get("shard_id") or (shard_id_of(shard) if shard else "")),
            str(header.get("schema_type") or ""),
            str(header.get("schema_version") or ""),
            int(header.get("num_samples") or 0),
            int(header.get("size_bytes") or 0),
            when or datetime.datetime.fromtimestamp(0, datetime.UTC),
            header.get("aggregates") or {},
            None,
            header.get("provenance") or {},
            header=header,
            shard=shard,
            json_path=json_path,
            parquet_path=parquet_path,
            source=source,
        )

    @classmethod
    def from_files(
        cls, json_path: str | os.PathLike[str], parquet_path: str | os.PathLike[str]
    ) -> ShardManifest:
        """Load a manifest from its ``.manifest.json`` header and ``.manifest.parquet`` rows.

        Raises:
            DataNotFoundError: (a ``FileNotFoundError``) When either file does not exist.
            IntegrityError: When the header is not a manifest header.
        """
        jp, pp = os.fspath(json_path), os.fspath(parquet_path)
        if not os.path.exists(pp):
            raise DataNotFoundError(f"manifest parquet {pp} does not exist")
        return cls.from_header(_read_header(jp), json_path=jp, parquet_path=pp)

    @classmethod
    def from_json_only(cls, json_path: str | os.PathLike[str]) -> ShardManifest:
        """Load only a manifest's header (its ``samples`` are empty): enough for aggregates.

        Raises:
            DataNotFoundError: (a ``FileNotFoundError``) When the file does not exist.
        """
        jp = os.fspath(json_path)
        return cls.from_header(_read_header(jp), json_path=jp)

    def header_dict(self) -> dict[str, Any]:
        """The JSON header (the ``.manifest.json`` content), aggregates included."""
        out: dict[str, Any] = dict(getattr(self, "header", None) or {})
        created = self.created_at
        out.update(
            manifest_version=out.get("manifest_version", MANIFEST_FORMAT_VERSION),
            shard_id=self.shard_id,
            schema_type=self.schema_type,
            schema_version=self.schema_version,
            num_samples=self.num_samples,
            size_bytes=self.size_bytes,
            created_at=created.isoformat() if hasattr(created, "isoformat") else str(created),
            aggregates=self.aggregates,
        )
        if self.provenance:
            out["provenance"] = self.provenance
        return out

    @property
    def samples(self) -> Any:
        """The rows as a pandas DataFrame (``list[str]`` fields as lists; empty without rows)."""
        if self._samples is None:
            if self.parquet_path is None:
                from atdata._extras import require

                self._samples = require("pandas", "query", "manifests").DataFrame()
            else:
                self._samples = self.frame(self.source)
        return self._samples

    @samples.setter
    def samples(self, df: Any) -> None:
        self._samples = df
        self._arrow = None

    @property
    def prunable(self) -> bool:
        """Whether the aggregates may rule this shard out of a query (not for upstream files)."""
        return not self.legacy

    @property
    def kinds(self) -> dict[str, str]:
        """Queryable field -> manifest kind."""
        f = self.header.get("fields")
        if isinstance(f, dict):
            return dict(f)
        return {k: a.get("type", "categorical") for k, a in self.aggregates.items()}

    def __repr__(self) -> str:
        return (
            f"ShardManifest({self.shard_id!r}, {self.schema_type}, {self.num_samples} samples, "
            f"fields: {', '.join(self.kinds) or '-'})"
        )

    def check_fresh(self, *, allow_hash: bool = True) -> bool:
        """Check that a local shard is still the one this header describes (see ``_fresh``):
        size and file stamp on every call, the recorded sha256 when the stamp differs.

        Returns:
            ``True`` when proven fresh (or not checkable: remote shards, upstream manifests),
            ``False`` only when the stamp differs and ``allow_hash`` is false.

        Raises:
            IntegrityError: When the shard is not the one the manifest was written for.
        """
        if self.legacy or self.shard is None or is_remote(self.shard):
            return True
        from atdata.manifest._fresh import check_stamp

        return check_stamp(self.header, self.shard, str(self.json_path), allow_hash=allow_hash)

    def table(self, source: Any) -> Any:
        """The parquet rows as a pyarrow Table (validated; set columns still JSON text)."""
        from atdata._extras import require

        pa = require("pyarrow", "query", "manifest queries")
        pq = require("pyarrow.parquet", "query", "manifest queries")
        if self._samples is not None:
            return _table_of_frame(pa, self._samples)
        if self.parquet_path is None:  # header only: no rows (and no pandas to say so)
            return pa.Table.from_arrays([], names=[])
        data = read_sidecar(source if source is not None else self.source, self.parquet_path)
        if data is None:
            raise IntegrityError(
                f"manifest parquet {self.parquet_path} is missing (its header {self.json_path} "
                "exists); " + _REBUILD.format(shard=self.shard)
            )
        try:
            table = pq.ParquetFile(pa.BufferReader(data)).read()
        except Exception as exc:
            raise IntegrityError(
                f"manifest parquet {self.parquet_path} is corrupt ({type(exc).__name__}: "
                f"{str(exc)[:120]}); " + _REBUILD.format(shard=self.shard)
            ) from None
        if not self.legacy:
            token = (table.schema.metadata or {}).get(TOKEN_META, b"").decode()
            if token != self.header.get("manifest_token") or table.num_rows != self.num_samples:
                raise IntegrityError(
                    f"manifest parquet {self.parquet_path} does not belong to header "
                    f"{self.json_path} (stale: {table.num_rows} rows, header says "
                    f"{self.num_samples}); " + _REBUILD.format(shard=self.shard)
                )
        if table.num_columns and not all(c in table.column_names for c in SYSTEM_COLUMNS):
            raise IntegrityError(
                f"manifest parquet {self.parquet_path} lacks the columns {', '.join(SYSTEM_COLUMNS)}"
            )
        if table.num_columns:
            fix = _REBUILD.format(shard=self.shard) if self.shard else "rewrite it"
            check_columns(table, self.parquet_path, fix)
        return table

    def arrow(self, source: Any) -> Any:
        """Rows as a pyarrow Table: set fields as ``list<string>``, ``__offset__`` a tar offset
        (cached)."""
        if self._arrow is not None:
            return self._arrow
        from atdata._extras import require

        pa = require("pyarrow", "query", "manifest queries")
        table = self.table(source)
        kinds = self.kinds
        for i, name in enumerate(table.column_names):
            col = table.column(name)
            if (kinds.get(name) == "set" and not pa.types.is_list(col.type)) or "json" in str(
                col.type
            ):
                try:
                    vals = [
                        None if v is None else json.loads(v)
                        for v in col.cast(pa.string()).to_pylist()
                    ]
                    arr = string_lists(vals)
                except (ValueError, TypeError, RecursionError, pa.ArrowException) as exc:
                    raise IntegrityError(
                        f"manifest parquet {self.parquet_path}: set column {name!r} is not "
                        f"JSON lists of strings ({type(exc).__name__}); "
                        + _REBUILD.format(shard=self.shard)
                    ) from None
                table = table.set_column(i, name, arr)
        if self.legacy and self.shard is not None and self._samples is None:
            table = repair_legacy(
                table, shard=self.shard, json_path=str(self.json_path), kinds=kinds, source=source
            )
        if not table.num_columns:
            table = empty_table(
                [("__key__", "string"), ("__offset__", "int64"), ("__size__", "int64")]
            )
        self._arrow = table
        return table

    def frame(self, source: Any = None) -> Any:
        """Rows as a pandas DataFrame (set fields as lists of str)."""
        return frame_of(self.arrow(source))


def frame_of(table: Any) -> Any:
    """A pyarrow Table as a pandas DataFrame whose list columns hold Python lists.

    Raises:
        MissingExtraError: When pandas is not installed (it names ``atdata[query]``).
    """
    import pyarrow as pa

    from atdata._extras import require

    require("pandas", "query", "query predicates over the manifest DataFrame (lambdas)")
    df = table.to_pandas()
    for name in table.column_names:
        if pa.types.is_list(table.column(name).type):
            df[name] = table.column(name).to_pylist()
    return df


def _table_of_frame(pa: Any, df: Any) -> Any:
    if df is None or not len(df.columns):
        return pa.table({})
    try:
        return pa.Table.from_pandas(df, preserve_index=False)
    except (pa.ArrowInvalid, pa.ArrowTypeError) as exc:
        raise IntegrityError(f"manifest rows cannot be read as a table: {exc}") from None


def _read_header(jpath: str) -> dict[str, Any]:
    try:
        with open(jpath, "rb") as f:
            data = f.read()
    except FileNotFoundError:
        raise DataNotFoundError(f"manifest header {jpath} does not exist") from None
    except OSError as exc:
        raise ShardError(f"cannot read manifest header {jpath}: {exc.strerror}") from None
    return _parse_header(data, jpath, None)


def _parse_header(data: bytes, jpath: str, shard: str | None) -> dict[str, Any]:
    try:
        header = json.loads(data)
        if not isinstance(header, dict) or "num_samples" not in header:
            raise ValueError("not a manifest header")
    except (ValueError, RecursionError) as exc:
        fix = _REBUILD.format(shard=shard) if shard else "rewrite it"
        raise IntegrityError(f"manifest header {jpath} is corrupt ({exc}); {fix}") from None
    check_header_types(header, jpath, _REBUILD.format(shard=shard) if shard else "rewrite it")
    return header


def load_manifest(shard: str, source: Any = None) -> ShardManifest | None:
    """The manifest beside ``shard`` (``None`` when there is no header).

    Raises:
        IntegrityError: When the header is not valid JSON.
    """
    jpath, ppath = manifest_paths(shard)
    data = read_sidecar(source, jpath)
    if data is None:
        return None
    header = _parse_header(data, jpath, shard)
    return ShardManifest.from_header(
        header, shard=shard, json_path=jpath, parquet_path=ppath, source=source
    )


def _own_local_manifest(shard: str) -> ShardManifest | None:
    """The manifest of ours beside a local shard; ``None`` when remote, absent, unreadable or
    written by upstream (legacy)."""
    if is_remote(shard):
        return None
    try:
        m = load_manifest(shard)
    except IntegrityError:
        return None
    return None if m is None or m.legacy else m


def manifest_count(shard: str) -> int | None:
    """Samples in a local shard according to a fresh manifest of ours (``None`` if unknown)."""
    m = _own_local_manifest(shard)
    if m is None:
        return None
    try:
        fresh = m.check_fresh(allow_hash=False)  # unknown stamp: a header scan beats hashing
    except IntegrityError:
        return None
    return m.num_samples if fresh else None


def recorded_digest(shard: str) -> tuple[str, int | None, str] | None:
    """``(sha256, size, what recorded it)`` from the manifest of a local shard, if it records one."""
    from atdata.manifest._fresh import recorded_sha256

    m = _own_local_manifest(shard)
    sha = recorded_sha256(m.header) if m is not None else None
    if m is None or sha is None:
        return None
    size = m.header.get("size_bytes")
    return sha, size if isinstance(size, int) else None, f"its manifest {m.json_path} records"


def verify_manifest(shard: str, source: Any = None) -> list[str]:
    """Check a shard's manifest against the shard itself (sha256, count, keys, offsets, sizes,
    parquet). A local shard is always hashed and compared with the sha256 the manifest records,
    so a flipped byte is caught even when the file's size and stamp look unchanged.

    Returns:
        Problems found, one line each; empty when the manifest agrees with the shard. A missing
        manifest and an upstream manifest (offsets that are not tar offsets) are problems too.
    """
    problems: list[str] = []
    try:
        m = load_manifest(shard, source)
        if m is None:
            return [f"{shard}: no manifest (build one with: atdata manifest build {shard})"]
        if not m.legacy and not is_remote(shard):
            from atdata.manifest._fresh import check_digest

            missing = check_digest(m.header, shard, str(m.json_path))
            if missing:
                return missing
        m.check_fresh()
        table = m.table(source)
    except (IntegrityError, ShardError) as exc:
        return [str(exc)]
    try:
        members = shard_members(shard, source)
    except ShardError as exc:
        return [str(exc)]
    if m.legacy:
        problems.append(f"{m.json_path}: written by upstream atdata (offsets are not tar offsets)")
    if m.num_samples != len(members):
        problems.append(
            f"{m.json_path}: header says {m.num_samples} samples, shard {shard} holds {len(members)}"
        )
    if not table.num_columns:
        return problems
    keys = table.column("__key__").to_pylist()
    offs = table.column("__offset__").to_pylist()
    sizes = table.column("__size__").to_pylist()
    if set(keys) != set(members):
        problems.append(
            f"{m.parquet_path}: keys differ from shard {shard} "
            f"({len(set(members) - set(keys))} missing, {len(set(keys) - set(members))} unknown)"
        )
    if not m.legacy:
        bad = [k for k, o, s in zip(keys, offs, sizes, strict=True) if members.get(k) != (o, s)]
        if bad:
            problems.append(
                f"{m.parquet_path}: {len(bad)} row(s) with wrong offset/size, e.g. key {bad[0]!r}"
            )
    return problems
