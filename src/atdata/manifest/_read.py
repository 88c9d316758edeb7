"""Reading manifests back: headers, validated rows, counts for ``len(ds)``, and verification.

Two kinds of manifest are read. Ours carry ``offset_kind: "tar"``: their offsets are trusted once
the shard's size matches the header and the parquet's token matches the header's. Upstream's
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

import json
import logging
import os
from typing import Any

from atdata._errors import IntegrityError, ShardError
from atdata._shards.sources import is_remote
from atdata.manifest._builder import SYSTEM_COLUMNS, TOKEN_META, manifest_paths

__all__ = ["ShardManifest", "load_manifest", "manifest_count", "read_sidecar", "verify_manifest"]

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


def _local_size(shard: str) -> int | None:
    if is_remote(shard):
        return None
    try:
        return os.path.getsize(shard[7:] if shard.startswith("file://") else shard)
    except OSError:
        return None


class ShardManifest:
    """The manifest of one shard: its header, and its rows on demand.

    Attributes:
        shard: The shard it describes (as the dataset lists it).
        header: The parsed ``.manifest.json``.
        legacy: ``True`` for manifests without ``offset_kind: "tar"`` (upstream 0.7).
    """

    def __init__(
        self, shard: str, header: dict[str, Any], json_path: str, parquet_path: str
    ) -> None:
        self.shard = shard
        self.header = header
        self.json_path = json_path
        self.parquet_path = parquet_path
        self.legacy = header.get("offset_kind") != "tar"
        self._arrow: Any = None

    @property
    def num_samples(self) -> int:
        """Samples the header records."""
        return int(self.header.get("num_samples") or 0)

    @property
    def aggregates(self) -> dict[str, dict[str, Any]]:
        """Per-field aggregates from the header."""
        return self.header.get("aggregates") or {}

    @property
    def kinds(self) -> dict[str, str]:
        """Queryable field -> manifest kind."""
        f = self.header.get("fields")
        if isinstance(f, dict):
            return dict(f)
        return {k: a.get("type", "categorical") for k, a in self.aggregates.items()}

    def check_fresh(self) -> None:
        """Raise :class:`~atdata.IntegrityError` when a local shard no longer matches our header."""
        if self.legacy:
            return
        size = _local_size(self.shard)
        want = self.header.get("size_bytes")
        if size is not None and want is not None and size != want:
            raise IntegrityError(
                f"manifest {self.json_path} is stale: it describes {want} bytes but shard "
                f"{self.shard} has {size}; " + _REBUILD.format(shard=self.shard)
            )

    def table(self, source: Any) -> Any:
        """The parquet rows as a pyarrow Table (validated; set columns still JSON text)."""
        from atdata._extras import require

        pa = require("pyarrow", "query", "manifest queries")
        pq = require("pyarrow.parquet", "query", "manifest queries")
        data = read_sidecar(source, self.parquet_path)
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
        return table

    def arrow(self, source: Any) -> Any:
        """Rows as a pyarrow Table: set fields as ``list<string>``, ``__offset__`` a tar offset
        (cached)."""
        if self._arrow is not None:
            return self._arrow
        from atdata._extras import require

        pa = require("pyarrow", "query", "manifest queries")
        table = self.table(source)
        if self.legacy:
            pd = require("pandas", "query", "manifest queries")
            df = _repair_legacy(self, _to_frame(table, self.kinds, pd), source, pd)
            table = pa.Table.from_pandas(df, preserve_index=False)
        kinds = self.kinds
        for i, name in enumerate(table.column_names):
            col = table.column(name)
            if (kinds.get(name) == "set" and not pa.types.is_list(col.type)) or "json" in str(
                col.type
            ):
                vals = [
                    None if v is None else json.loads(v) for v in col.cast(pa.string()).to_pylist()
                ]
                table = table.set_column(i, name, pa.array(vals, pa.list_(pa.string())))
        if not table.num_columns:
            table = pa.table(
                {
                    "__key__": pa.array([], pa.string()),
                    "__offset__": pa.array([], pa.int64()),
                    "__size__": pa.array([], pa.int64()),
                }
            )
        self._arrow = table
        return table

    def frame(self, source: Any) -> Any:
        """Rows as a pandas DataFrame (set fields as lists of str)."""
        return self.arrow(source).to_pandas()


def _to_frame(table: Any, kinds: dict[str, str], pd: Any) -> Any:
    cols: dict[str, Any] = {}
    for name in table.column_names:
        col = table.column(name)
        if kinds.get(name) == "set" or "json" in str(col.type):
            cols[name] = [
                None if v is None else json.loads(v) for v in col.cast("string").to_pylist()
            ]
        else:
            cols[name] = col.to_pandas()
    return pd.DataFrame(cols) if cols else pd.DataFrame({c: [] for c in SYSTEM_COLUMNS})


def _shard_members(shard: str, source: Any) -> dict[str, tuple[int, int]]:
    from atdata._shards.tar import iter_tar, scan_tar_file, split_member_name

    where = f" in shard {shard}"
    if not is_remote(shard):
        entries = scan_tar_file(shard, where)
    else:
        f = source.open_shard(shard)
        try:
            entries = [(n, o, len(d)) for n, o, d in iter_tar(f.read, where)]
        finally:
            f.close()
    out = {}
    for name, off, size in entries:
        key, ext = split_member_name(name)
        if ext == "msgpack":
            out[key] = (off, size)
    return out


def _repair_legacy(m: ShardManifest, df: Any, source: Any, pd: Any) -> Any:
    """Give an upstream manifest's rows real tar offsets and add the samples it misses."""
    members = _shard_members(m.shard, source)
    known = set(df["__key__"]) if "__key__" in df else set()
    stray = known - set(members)
    if stray:
        raise IntegrityError(
            f"manifest {m.json_path} lists {len(stray)} key(s) shard {m.shard} does not hold "
            f"(e.g. {sorted(stray)[0]!r}); " + _REBUILD.format(shard=m.shard)
        )
    if len(df):
        df = df.copy()
        df["__offset__"] = [members[k][0] for k in df["__key__"]]
        df["__size__"] = [members[k][1] for k in df["__key__"]]
    missing = [k for k in members if k not in known]
    if not missing:
        return df
    log.warning(
        "manifest %s misses %d of the %d samples in %s (written by upstream atdata); reading them "
        "from the shard. Rebuild it: atdata manifest build %s --force",
        m.json_path,
        len(missing),
        len(members),
        m.shard,
        m.shard,
    )
    from atdata._wire.sample import unpack_payload

    read = getattr(source, "read_range", None)
    rows = []
    for k in missing:
        off, size = members[k]
        if read is not None:
            raw = unpack_payload(read(m.shard, off, size), f" in shard {m.shard}, sample {k!r}")
        else:  # pragma: no cover - sources without ranged reads
            raw = {}
        row = {"__key__": k, "__offset__": off, "__size__": size}
        for name, kind in m.kinds.items():
            v = raw.get(name)
            row[name] = v if kind != "set" or v is None else list(v)
        rows.append(row)
    extra = pd.DataFrame(rows)
    out = extra if not len(df) else pd.concat([df, extra], ignore_index=True)
    order = {k: i for i, k in enumerate(members)}
    return out.sort_values("__key__", key=lambda s: s.map(order)).reset_index(drop=True)


def load_manifest(shard: str, source: Any = None) -> ShardManifest | None:
    """The manifest header beside ``shard`` (``None`` when there is none).

    Raises:
        IntegrityError: When the header is not valid JSON.
    """
    jpath, ppath = manifest_paths(shard)
    data = read_sidecar(source, jpath)
    if data is None:
        return None
    try:
        header = json.loads(data)
        if not isinstance(header, dict) or "num_samples" not in header:
            raise ValueError("not a manifest header")
    except ValueError as exc:
        raise IntegrityError(
            f"manifest header {jpath} is corrupt ({exc}); " + _REBUILD.format(shard=shard)
        ) from None
    return ShardManifest(shard, header, jpath, ppath)


def manifest_count(shard: str) -> int | None:
    """Samples in a local shard according to a fresh manifest of ours (``None`` if unknown)."""
    if is_remote(shard):
        return None
    try:
        m = load_manifest(shard)
    except IntegrityError:
        return None
    if m is None or m.legacy:
        return None
    try:
        m.check_fresh()
    except IntegrityError:
        return None
    return m.num_samples


def verify_manifest(shard: str, source: Any = None) -> list[str]:
    """Check a shard's manifest against the shard itself (count, keys, offsets, sizes, parquet).

    Returns:
        Problems found, one line each; empty when the manifest agrees with the shard. A missing
        manifest and an upstream manifest (offsets that are not tar offsets) are problems too.
    """
    problems: list[str] = []
    try:
        m = load_manifest(shard, source)
        if m is None:
            return [f"{shard}: no manifest (build one with: atdata manifest build {shard})"]
        m.check_fresh()
        table = m.table(source)
    except (IntegrityError, ShardError) as exc:
        return [str(exc)]
    try:
        members = _shard_members(shard, source)
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
