"""Queries over shard manifests: lambda predicates, typed field expressions and SQL (DuckDB).

A query first prunes shards whose manifest aggregates rule out a match (those shards are never
opened), then filters the remaining manifests' rows, and returns :class:`SampleLocation` s. Reading
the matched samples fetches just their tar members with ranged reads (``pread`` locally, HTTP
``Range`` remotely, or a source's own ``read_range``).

Examples:
    >>> import os, tempfile, atdata
    >>> @atdata.packable
    ... class Shot:
    ...     label: str
    ...     confidence: float
    >>> d = tempfile.mkdtemp()
    >>> rows = [Shot(label=("dog", "cat", "bird")[i % 3], confidence=i / 10) for i in range(10)]
    >>> ds = atdata.write_samples(rows, os.path.join(d, "shots.tar"), maxcount=4, key="index",
    ...                           manifest=True)
    >>> Q = ds.fields
    >>> r = ds.query((Q.label == "dog") & (Q.confidence > 0.2))
    >>> [loc.key for loc in r.locations]
    ['00000003', '00000006', '00000009']
    >>> r.stats.shards_total, r.stats.shards_pruned, r.stats.rows_matched
    (3, 0, 3)
    >>> [s.confidence for s in r.samples]
    [0.3, 0.6, 0.9]
    >>> ds.query("label = 'cat' AND confidence >= 0.7").list_keys()
    ['00000007']
    >>> ds.query(lambda df: df["confidence"] > 0.75).list_keys()
    ['00000008', '00000009']
    >>> ds.query(Q.confidence > 0.75).stats.shards_pruned
    2
"""

from __future__ import annotations

import dataclasses
import os
import uuid
from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import Any

from atdata._errors import (
    ConfigError,
    DataNotFoundError,
    SchemaError,
)
from atdata._extras import require
from atdata.manifest._arrowvals import empty_table, int32_fill
from atdata.manifest._expr import _NULLS, Expr, FieldSet, NullMasks
from atdata.manifest._locations import SampleLocation, fetch_sample, fetch_samples
from atdata.manifest._paths import manifest_paths
from atdata.manifest._read import ShardManifest, frame_of, load_manifest, read_sidecar
from atdata.manifest._sqlnan import ieee_where
from atdata.manifest._where import where_to_expr

__all__ = ["QueryExecutor", "QueryResult", "QueryStats", "SampleLocation", "fetch_sample"]

_BUILD_HINT = "build them with: atdata manifest build {path}"


@dataclasses.dataclass
class QueryStats:
    """What a query touched."""

    shards_total: int = 0
    shards_pruned: int = 0
    shards_scanned: int = 0
    rows_scanned: int = 0
    rows_matched: int = 0


class QueryResult(list[SampleLocation]):
    """The matched :class:`SampleLocation` s (a list, in shard order), with :class:`QueryStats`.

    ``result.samples`` reads the matched samples themselves (ranged reads of just their members).
    """

    def __init__(
        self,
        locations: list[SampleLocation],
        stats: QueryStats,
        table: Any,
        reader: Callable[[Iterable[SampleLocation]], Iterator[Any]] | None,
    ) -> None:
        super().__init__(locations)
        self.stats = stats
        self._table = table
        self._reader = reader

    @property
    def locations(self) -> Iterator[SampleLocation]:
        """Matched locations (lazy)."""
        return iter(list(self))

    def list_locations(self) -> list[SampleLocation]:
        """Matched locations, in shard order."""
        return list(self)

    @property
    def keys(self) -> Iterator[str]:
        """Matched sample keys (lazy)."""
        return (loc.key for loc in list(self))

    def list_keys(self) -> list[str]:
        """Matched sample keys."""
        return [loc.key for loc in self]

    @property
    def samples(self) -> Iterator[Any]:
        """The matched samples, read by ranged reads in shard and offset order (lazy).

        Raises:
            ConfigError: When the manifests queried do not say where their shards are.
        """
        if self._reader is None:
            raise ConfigError(
                "these manifests do not name their shards, so their samples cannot be read; "
                "query a dataset (ds.query) or QueryExecutor.from_directory / from_shard_urls"
            )
        return self._reader(list(self))

    def list_samples(self) -> list[Any]:
        """The matched samples."""
        return list(self.samples)

    def to_pandas(self) -> Any:
        """The matched manifest rows (``__shard__``, ``__key__``, ``__offset__``, ``__size__``, fields)."""
        from atdata.manifest._read import frame_of

        df = frame_of(self._table)
        return df.assign(__shard__=[loc.shard for loc in self])

    def to_arrow(self) -> Any:
        """The matched manifest rows as a pyarrow Table (``__shard__`` is the shard's position)."""
        return self._table

    def __repr__(self) -> str:
        s = self.stats
        return (
            f"QueryResult({len(self)} samples; shards {s.shards_scanned} scanned, "
            f"{s.shards_pruned} pruned of {s.shards_total})"
        )


class QueryExecutor:
    """Queries over shard manifests: prune shards by their aggregates, then filter their rows.

    Args:
        manifests: The :class:`~atdata.manifest.ShardManifest` s to query.
        source: The :class:`~atdata.DataSource` that reads the shards (for reading matches).
        sample_type: Type that reading matches decodes to (default :class:`~atdata.DictSample`).

    Results name each sample's shard by the manifest's ``shard_id``; for a dataset's executor
    (:meth:`for_shards`, what ``ds.query`` uses) by the shard's path or URL.

    Examples:
        >>> import os, tempfile, atdata
        >>> d = tempfile.mkdtemp()
        >>> ds = atdata.write_samples([{"n": i} for i in range(6)], os.path.join(d, "n.tar"),
        ...                           maxcount=3, key="index", manifest=True)
        >>> ex = QueryExecutor.from_directory(d)
        >>> [(loc.shard, loc.key) for loc in ex.query(where=lambda df: df["n"] % 4 == 0)]
        [('n-000000', '00000000'), ('n-000001', '00000004')]
        >>> from atdata.manifest import F
        >>> [s.n for s in ex.query(F.n > 3).samples]
        [4, 5]
    """

    def __init__(
        self,
        manifests: Iterable[ShardManifest] = (),
        *,
        source: Any = None,
        sample_type: type | None = None,
    ) -> None:
        from atdata._wire.sample import DictSample

        self._given = list(manifests)
        self._shards: list[str] | None = None
        self.source = source
        self.sample_type = sample_type or DictSample
        self._cache: dict[str, tuple[Any, ShardManifest]] = {}

    @classmethod
    def for_shards(
        cls, shards: Sequence[str], source: Any = None, sample_type: type | None = None
    ) -> QueryExecutor:
        """An executor over the manifests beside ``shards`` (each must have one; they are
        reloaded when they change on disk).

        Raises:
            ConfigError: When ``shards`` is empty.
        """
        from atdata._shards.sources import URLSource

        shards = list(shards)
        if not shards:
            raise ConfigError("a query needs at least one shard")
        ex = cls(
            source=source if source is not None else URLSource(shards), sample_type=sample_type
        )
        ex._shards = shards
        return ex

    @classmethod
    def from_shard_urls(
        cls, shard_urls: Sequence[str], sample_type: type | None = None
    ) -> QueryExecutor:
        """An executor over the manifests found beside ``shard_urls``: shards without a manifest
        are left out, and a header without its parquet gives a manifest without rows."""
        from atdata._shards.sources import URLSource, is_remote

        urls = list(shard_urls)
        source = URLSource(urls) if urls else None
        found = []
        for url in urls:
            m = load_manifest(url, source)
            if m is None:
                continue
            if read_sidecar(source, m.parquet_path or "") is None:
                m.parquet_path = None  # header only
            if not is_remote(url) and not os.path.exists(url):
                m.shard = None  # manifests without their shard: rows as written, no reading
            found.append(m)
        return cls(found, source=source, sample_type=sample_type)

    @classmethod
    def from_directory(
        cls, directory: str | os.PathLike[str], sample_type: type | None = None
    ) -> QueryExecutor:
        """An executor over every ``*.manifest.json`` in a local directory (and its shard).

        Like :meth:`atdata.Dataset.query`, it refuses a directory where a shard (``*.tar``) has
        no manifest, instead of silently answering from the other shards.

        Raises:
            DataNotFoundError: (a ``FileNotFoundError``) When the directory does not exist, or
                a shard in it has no manifest (the message says how to build them).
        """
        d = os.fspath(directory)
        if not os.path.isdir(d):
            raise DataNotFoundError(f"no directory {d} to load manifests from")
        names = [n for n in os.listdir(d) if not n.startswith(".")]
        stems = sorted(n[: -len(".manifest.json")] for n in names if n.endswith(".manifest.json"))
        bare = sorted(set(n[:-4] for n in names if n.endswith(".tar")) - set(stems))
        if bare:
            raise DataNotFoundError(
                f"{len(bare)} shard(s) in {d} have no manifest (e.g. {bare[0]}.tar); queries "
                "would silently miss their samples: write with manifest=True or "
                + _BUILD_HINT.format(path=d)
            )
        return cls.from_shard_urls([os.path.join(d, n + ".tar") for n in stems], sample_type)

    # -- manifests ----------------------------------------------------------------------------
    def _manifest(self, shard: str) -> ShardManifest | None:
        stamp: Any = None
        if "://" not in shard:
            try:
                st = os.stat(manifest_paths(shard)[0])
                stamp = (st.st_mtime_ns, st.st_size)
            except OSError:
                stamp = None
            cached = self._cache.get(shard)
            if cached is not None and stamp is not None and cached[0] == stamp:
                return cached[1]
        else:
            cached = self._cache.get(shard)
            if cached is not None:
                return cached[1]
        m = load_manifest(shard, self.source)
        if m is not None:
            self._cache[shard] = (stamp, m)
        return m

    @property
    def _manifests(self) -> list[ShardManifest]:
        return self.list_manifests()

    @property
    def manifests(self) -> Iterator[ShardManifest]:
        """The manifests queried (lazy)."""
        return iter(self.list_manifests())

    def list_manifests(self) -> list[ShardManifest]:
        """The manifests queried.

        Raises:
            DataNotFoundError: (a ``FileNotFoundError``) When a dataset's shard has no manifest
                (the message says how to build them).
        """
        if self._shards is None:
            return list(self._given)
        out = []
        missing = []
        for s in self._shards:
            m = self._manifest(s)
            if m is None:
                missing.append(s)
            else:
                out.append(m)
        if missing:
            where = os.path.dirname(missing[0]) or "." if "://" not in missing[0] else missing[0]
            raise DataNotFoundError(
                f"{len(missing)} of {len(self._shards)} shard(s) have no manifest (e.g. "
                f"{missing[0]}); queries need manifests: write with manifest=True or "
                + _BUILD_HINT.format(path=where)
            )
        return out

    def fields(self) -> dict[str, str]:
        """Queryable field -> kind, from the manifests."""
        out: dict[str, str] = {}
        for m in self.list_manifests():
            for k, v in m.kinds.items():
                out.setdefault(k, v)
        return out

    def count(self) -> int:
        """Samples according to the manifests (no shard is read)."""
        return sum(m.num_samples for m in self.list_manifests())

    # -- querying -----------------------------------------------------------------------------
    def query(self, where: Any = None, *, limit: int | None = None) -> QueryResult:
        """Find samples by a lambda over the manifest DataFrame, a field expression or SQL.

        Args:
            where: ``None`` (all samples), a callable ``df -> bool Series``, an expression built
                from :func:`~atdata.query_fields`, or a SQL ``WHERE`` clause (DuckDB syntax; the
                columns are the manifest's: ``__key__``, fields, ``list[str]`` fields as lists).
            limit: Return at most this many locations.

        Raises:
            ConfigError: Without manifests, or for a bad predicate or SQL.
            IntegrityError: When a manifest disagrees with its shard.
        """
        pa = require("pyarrow", "query", "queries")
        manifests = self.list_manifests()
        if isinstance(where, FieldSet):
            raise ConfigError("where= takes a condition such as F.label == 'dog', not a field set")
        stats = QueryStats(shards_total=len(manifests))
        prune: Expr | None = None
        if isinstance(where, Expr):
            prune = where
        elif isinstance(where, str):
            prune = where_to_expr(where)
        elif where is not None and not callable(where):
            raise ConfigError(
                f"where must be a callable, a field expression or a SQL string, got {type(where).__name__}"
            )
        tables = []
        for i, m in enumerate(manifests):
            m.check_fresh()
            if (
                prune is not None
                and m.prunable
                and not prune.may_match(m.aggregates, m.num_samples)
            ):
                stats.shards_pruned += 1
                continue
            t = m.arrow(self.source)
            stats.shards_scanned += 1
            stats.rows_scanned += t.num_rows
            if t.num_rows:
                tables.append(t.append_column("__shard__", int32_fill(i, t.num_rows)))
        if not tables:
            table = empty_table(
                [
                    ("__key__", "string"),
                    ("__offset__", "int64"),
                    ("__size__", "int64"),
                    ("__shard__", "int32"),
                ]
            )
        else:
            table = pa.concat_tables(tables, promote_options="permissive")
        fast = where_to_expr(where, complete=True) if isinstance(where, str) else None
        if fast is not None and not fast.fields() <= set(table.column_names):
            fast = None  # e.g. a column spelled in another case: DuckDB resolves it
        if fast is not None and table.num_rows:  # simple SQL: same rows without a DuckDB round trip
            try:
                table = table.filter(fast.arrow_mask(table))
            except pa.ArrowException:
                table = self._sql(where, table)
        elif isinstance(where, str) and tables:  # every shard pruned: nothing to filter
            table = self._sql(where, table)
        elif isinstance(where, Expr) and table.num_rows:
            try:
                table = table.filter(where.arrow_mask(table))
            except pa.ArrowException:  # e.g. a comparison arrow cannot type: let pandas decide
                table = self._pandas_filter(where, table)
        elif where is not None and table.num_rows:
            table = self._pandas_filter(where, table)
        if limit is not None:
            table = table.slice(0, limit)
        dataset_mode = self._shards is not None
        shard_names = [(m.shard if dataset_mode else None) or m.shard_id for m in manifests]
        n = table.num_rows
        sizes = (
            table.column("__size__").to_pylist() if "__size__" in table.column_names else [None] * n
        )
        locs = [
            SampleLocation(shard_names[s], k, int(o), None if z is None else int(z))
            for s, k, o, z in zip(
                table.column("__shard__").to_pylist(),
                table.column("__key__").to_pylist(),
                table.column("__offset__").to_pylist(),
                sizes,
                strict=True,
            )
        ]
        stats.rows_matched = len(locs)
        paths = {m.shard_id: m.shard for m in manifests if m.shard is not None}
        reader = self.iter_samples if dataset_mode or paths else None
        return QueryResult(locs, stats, table, reader)

    def _pandas_filter(self, where: Any, table: Any) -> Any:
        df = frame_of(table)
        if isinstance(where, Expr):  # pandas made None NaN; a null must fail every test (as Arrow)
            df.attrs[_NULLS] = NullMasks.of(table, where.fields())
        try:
            mask = where.mask(df) if isinstance(where, Expr) else where(df)
        except (SchemaError, ConfigError):
            raise
        except Exception as exc:
            raise ConfigError(f"query predicate failed: {exc!r}") from exc
        return table.filter(_as_mask(mask, len(df)))

    def _sql(self, sql: str, table: Any) -> Any:
        duckdb = require("duckdb", "query", "SQL queries")
        text = sql.strip().rstrip(";")
        if text.upper().startswith("WHERE "):
            text = text[6:]
        con = _duckdb(duckdb)
        pa = require("pyarrow", "query", "queries")
        floats = {f.name for f in table.schema if pa.types.is_floating(f.type)}
        text = ieee_where(con, text, floats)  # NaN compares as in pandas/numpy (see _sqlnan)
        cur = con.cursor()
        view = f"manifest_{uuid.uuid4().hex}"
        try:
            cur.register(view, table)
            return cur.sql(
                f"SELECT * FROM {view} WHERE {text} ORDER BY __shard__, __offset__"
            ).to_arrow_table()
        except duckdb.Error as exc:
            cols = ", ".join(c for c in table.column_names if c != "__shard__")
            raise ConfigError(
                f"SQL query {sql!r} failed: {str(exc).splitlines()[0]} (columns: {cols})"
            ) from None
        finally:
            cur.unregister(view)
            cur.close()

    def _located(self, loc: SampleLocation) -> SampleLocation:
        """``loc`` naming its shard's path (results of non-dataset executors name the id)."""
        if self._shards is not None:
            return loc
        for m in self._given:
            if m.shard is not None and m.shard_id == loc.shard:
                return dataclasses.replace(loc, shard=m.shard)
        return loc

    def get_sample(self, loc: SampleLocation) -> Any:
        """Read the sample at ``loc`` (just its tar member)."""
        return fetch_sample(self._source(), self.sample_type, self._located(loc))

    def iter_samples(self, locs: Iterable[SampleLocation]) -> Iterator[Any]:
        """Read the samples at ``locs`` in order (ranged reads)."""
        return fetch_samples(self._source(), self.sample_type, (self._located(x) for x in locs))

    def _source(self) -> Any:
        if self.source is None:
            from atdata._shards.sources import URLSource

            self.source = URLSource([m.shard for m in self._given if m.shard is not None])
        return self.source


_CON: list[Any] = []


def _duckdb(duckdb: Any) -> Any:
    """One in-memory DuckDB connection per process; each query uses its own cursor."""
    if not _CON:
        _CON.append(duckdb.connect(":memory:"))
    return _CON[0]


def _as_mask(mask: Any, n: int) -> Any:
    if getattr(mask, "dtype", None) is None or len(mask) != n:
        raise ConfigError(f"the query predicate must return a boolean Series of {n} rows")
    if str(mask.dtype) not in ("bool", "boolean", "bool[pyarrow]"):
        raise ConfigError(f"the query predicate returned {mask.dtype} values, not booleans")
    if str(mask.dtype) != "bool":
        return mask.fillna(False).astype(bool).to_numpy()
    return mask.to_numpy()
