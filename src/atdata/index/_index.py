"""``atdata.Index``: write samples once, find them again by name, typed from their stored schema.

Examples:
    >>> import os, tempfile, atdata
    >>> @atdata.packable
    ... class Row:
    ...     text: str
    >>> idx = atdata.Index(path=os.path.join(tempfile.mkdtemp(), "index.db"))
    >>> e = idx.write_samples([Row(text=t) for t in "abc"], name="rows", maxcount=2, license="MIT")
    >>> e.version, len(e.shards), e.num_samples, e.schema_ref
    ('1.0.0', 2, 3, 'atdata://local/schema/Row@1.0.0')
    >>> [s.text for s in idx.get_dataset("rows").ordered()]
    ['a', 'b', 'c']
    >>> idx.write_samples([Row(text="d")], name="rows").version
    '1.1.0'
"""

from __future__ import annotations

import os
import shutil
import uuid
from collections.abc import Iterable, Iterator
from typing import Any, Protocol

from atdata._errors import ConfigError, SchemaError, StorageError
from atdata._wire.schema_json import diff_schemas, schema_body, schema_fingerprint
from atdata.index._entry import (
    DatasetEntry,
    SchemaRecord,
    ShardRef,
    bump,
    check_name,
    parse_schema_ref,
)
from atdata.providers._base import IndexProvider

__all__ = ["Index", "Promoter", "atdata_home", "get_default_index", "set_default_index"]

_default: Index | None = None


class Promoter(Protocol):
    """What :meth:`Index.promote_entry` needs of an atmosphere (``atdata.atmosphere.Atmosphere``)."""

    def promote_entry(self, index: Index, name: str, **kwargs: Any) -> Any: ...


def atdata_home() -> str:
    """``$ATDATA_HOME`` or ``~/.atdata``."""
    return os.path.abspath(os.path.expanduser(os.environ.get("ATDATA_HOME") or "~/.atdata"))


def set_default_index(index: Index | None) -> None:
    """Make ``index`` the one ``@local/...`` names resolve through (``None`` resets it)."""
    global _default
    if index is not None and not isinstance(index, Index):
        raise ConfigError(f"set_default_index expects an atdata.Index, got {type(index).__name__}")
    _default = index


def get_default_index() -> Index:
    """The default index (a zero-config :class:`Index` under :func:`atdata_home` if none was set)."""
    global _default
    if _default is None:
        _default = Index()
    return _default


def _make_provider(
    provider: Any, path: Any, dsn: Any, redis: Any, prefix: str | None
) -> IndexProvider:
    if isinstance(provider, IndexProvider):
        return provider
    if provider is None:
        provider = "redis" if redis is not None else "postgres" if dsn is not None else "sqlite"
    if provider == "sqlite":
        from atdata.providers._sqlite import SQLiteProvider

        return SQLiteProvider(path or os.path.join(atdata_home(), "index.db"))
    if provider == "redis":
        from atdata.providers._redis import RedisProvider

        return RedisProvider(redis or "redis://127.0.0.1:6379/0", prefix=prefix or "atdata:")
    if provider in ("postgres", "postgresql"):
        from atdata.providers._postgres import PostgresProvider

        if dsn is None:
            raise ConfigError(
                'Index(provider="postgres") needs dsn="postgresql://user@host:5432/db"'
            )
        return PostgresProvider(dsn, schema=prefix or "atdata")
    raise ConfigError(
        f"unknown provider {provider!r}: use 'sqlite', 'redis', 'postgres' or a provider object"
    )


class Index:
    """A catalogue of datasets and schemas: a provider (metadata) plus a data store (bytes).

    Args:
        provider: ``"sqlite"`` (default), ``"redis"``, ``"postgres"`` or an
            :class:`~atdata.index.IndexProvider`.
        path: SQLite file (default ``$ATDATA_HOME/index.db``, ``~/.atdata/index.db``).
        dsn: PostgreSQL connection string.
        redis: Redis URL or client.
        data_store: Where shards go (default ``LocalDiskStore($ATDATA_HOME/data)``).
        prefix: Redis key prefix / PostgreSQL schema name.
    """

    def __init__(
        self,
        provider: str | IndexProvider | None = None,
        *,
        path: str | os.PathLike[str] | None = None,
        dsn: str | None = None,
        redis: Any = None,
        data_store: Any = None,
        prefix: str | None = None,
    ) -> None:
        self.provider = _make_provider(provider, path, dsn, redis, prefix)
        if data_store is None:
            from atdata.stores._local import LocalDiskStore

            base = os.path.dirname(os.fspath(path)) if path is not None else atdata_home()
            data_store = LocalDiskStore(os.path.join(base, "data"))
        self.data_store = data_store
        self._types: dict[str, type] = {}

    def __repr__(self) -> str:
        return f"Index({self.provider!r}, data_store={self.data_store!r})"

    # -- schemas --------------------------------------------------------------------------------
    def publish_schema(
        self, sample_type: type, version: str | None = None, *, name: str | None = None,
        description: str | None = None,
    ) -> SchemaRecord:  # fmt: skip
        """Store ``sample_type``'s schema; an identical type reuses its version, a changed one bumps it.

        Adding only optional fields bumps the minor version; anything else bumps the major.

        Raises:
            SchemaError: When an explicit ``version`` exists with a different body.
        """
        name = check_name(name or sample_type.__name__, "schema")
        body = schema_body(sample_type)
        if version is not None:
            rec = self.provider.put_schema(SchemaRecord(name, version, body, description))
            self._types.setdefault(rec.ref, sample_type)
            return rec
        fp = schema_fingerprint(body)
        for _ in range(20):  # retry when a concurrent publisher took the version
            versions = [r for r in self.provider.list_schemas() if r.name == name]
            same = [r for r in versions if r.fingerprint == fp]
            if same:
                self._types.setdefault(same[-1].ref, sample_type)
                return same[-1]
            if not versions:
                v = "1.0.0"
            else:
                latest = versions[-1]
                d = diff_schemas(latest.body, body)
                req = set(body.get("required") or ())
                compatible = not d["removed"] and not d["retyped"] and not (set(d["added"]) & req)
                v = bump(latest.version, "minor" if compatible else "major")
            try:
                rec = self.provider.put_schema(SchemaRecord(name, v, body, description))
            except SchemaError:
                continue
            self._types.setdefault(rec.ref, sample_type)
            return rec
        raise StorageError(f"could not publish schema {name!r}: too many concurrent publishers")

    def get_schema(self, ref: str) -> SchemaRecord:
        """A stored schema by ref (``atdata://local/schema/N@1.0.0``, ``N@1.0.0`` or ``N`` = latest).

        Raises:
            SchemaError: When there is no such schema.
        """
        name, version = parse_schema_ref(ref)
        rec = self.provider.get_schema(name, version)
        if rec is None:
            raise SchemaError(f"schema {ref!r} is not in the index at {self.provider.url}")
        return rec

    def get_schema_type(self, ref: str) -> type:
        """A ``@packable`` class for a stored schema (the published class if known, else rebuilt)."""
        rec = self.get_schema(ref)
        t = self._types.get(rec.ref)
        if t is None:
            t = self._types[rec.ref] = rec.sample_type()
        return t

    @property
    def schemas(self) -> Iterator[SchemaRecord]:
        """Every stored schema version (lazy)."""
        return iter(self.provider.list_schemas())

    def list_schemas(self) -> list[SchemaRecord]:
        """Every stored schema version."""
        return self.provider.list_schemas()

    # -- datasets -------------------------------------------------------------------------------
    @property
    def datasets(self) -> Iterator[DatasetEntry]:
        """Every dataset entry, all versions (lazy)."""
        return iter(self.provider.list_entries())

    def list_datasets(self) -> list[DatasetEntry]:
        """Every dataset entry, all versions, sorted by name and version."""
        return self.provider.list_entries()

    def get_entry(self, name: str, version: str | None = None) -> DatasetEntry:
        """The entry of ``name`` (latest version by default).

        Raises:
            StorageError: When there is no such dataset (the message lists close names).
        """
        name = name.removeprefix("@local/")
        e = self.provider.get_entry(name, version)
        if e is None:
            what = f"{name}@{version}" if version else name
            raise StorageError(f"dataset {what!r} is not in the index at {self.provider.url}")
        return e

    def get_dataset(
        self, name: str, version: str | None = None, *, sample_type: type | None = None
    ) -> Any:
        """A :class:`~atdata.Dataset` over a stored entry, typed from its schema unless given."""
        from atdata._shards.writer import ShardInfo
        from atdata._wire.sample import DictSample
        from atdata.dataset._dataset import Dataset

        e = self.get_entry(name, version)
        if sample_type is None:
            sample_type = self.get_schema_type(e.schema_ref) if e.schema_ref else DictSample
        infos = [
            ShardInfo(s.url, s.num_samples, s.size or 0, s.sha256 or "")
            for s in e.shards
            if s.num_samples is not None
        ]
        return Dataset(self._source_for(e.urls), sample_type=sample_type, shard_infos=infos or None)

    def _source_for(self, urls: list[str]) -> Any:
        if urls and all(u.startswith("s3://") for u in urls):
            if getattr(self.data_store, "kind", None) == "s3":
                return self.data_store.source(urls)
            from atdata.stores._s3 import S3Source

            return S3Source(urls)
        from atdata._shards.sources import URLSource

        return URLSource(urls)

    def write_samples(
        self,
        samples: Iterable[Any],
        *,
        name: str,
        maxcount: int | None = None,
        maxsize: int | None = None,
        manifest: bool = False,
        description: str | None = None,
        license: str | None = None,
        tags: Iterable[str] = (),
        metadata: dict[str, Any] | None = None,
        version: str | None = None,
        key: Any = None,
        write_id: str | None = None,
        sample_type: type | None = None,
    ) -> DatasetEntry:
        """Write shards to the data store, publish the schema, then commit the entry (last).

        Every shard is verified in the store (size and sha256) before the entry is committed, so
        a failure leaves no entry. Passing the same ``write_id`` again after a crash completes the
        write (shards already stored are not uploaded again) and never makes a second entry.

        Returns:
            The committed :class:`DatasetEntry`.
        """
        from atdata.dataset._write import write_samples as _write

        name = check_name(name)
        if write_id is not None:
            done = self.provider.get_entry_by_id(write_id)
            if done is not None:
                return done
        write_id = write_id or uuid.uuid4().hex
        staging = self.data_store.staging_dir()
        try:
            base = os.path.join(staging, name.replace("/", "-") + ".tar")
            kw: dict[str, Any] = {"key": key, "progress": False}
            if manifest:
                kw["manifest"] = True
            if maxcount is None and maxsize is None:
                maxcount = 10**12  # always number shards (stable store keys)
            ds = _write(samples, base, maxcount, maxsize, **kw)
            infos = ds.list_shard_infos()
            st = sample_type or ds.sample_type
            schema_ref = None
            if getattr(st, "__atdata_sample__", False):
                schema_ref = self.publish_schema(st).ref
            refs = []
            for info in infos:
                fname = os.path.basename(info.path)
                skey = f"{name}/{write_id}/{fname}"
                for side in _sidecars(info.path):
                    from atdata.stores._local import file_sha256

                    sha, size = file_sha256(side)
                    self.data_store.put_shard(
                        side,
                        f"{name}/{write_id}/{os.path.basename(side)}",
                        sha256=sha,
                        size=size,
                        move=True,
                    )
                url = self.data_store.put_shard(
                    info.path, skey, sha256=info.sha256, size=info.size, move=True
                )
                refs.append(ShardRef(url, info.sha256, info.size, info.num_samples))
        finally:
            shutil.rmtree(staging, ignore_errors=True)
        entry = DatasetEntry(
            name=name, shards=refs, version=version, schema_ref=schema_ref, description=description,
            license=license, tags=list(tags), metadata=dict(metadata or {}), entry_id=write_id,
            data_store=self.data_store.url,
        )  # fmt: skip
        return self.provider.add_entry(entry)

    def insert_dataset(
        self,
        ds: Any,
        *,
        name: str,
        description: str | None = None,
        license: str | None = None,
        tags: Iterable[str] = (),
        metadata: dict[str, Any] | None = None,
        version: str | None = None,
    ) -> DatasetEntry:
        """Register a dataset whose shards already exist (URLs recorded as they are).

        Sizes and sha256 come from ``ds.list_shard_infos()`` or are computed by reading each
        shard. Inserting the same shards under the same name again returns the first entry.
        """
        import hashlib

        name = check_name(name)
        known = {
            i.path: i for i in (ds.list_shard_infos() if hasattr(ds, "list_shard_infos") else ())
        }
        refs = []
        for url in ds.list_shards():
            info = known.get(url)
            if info is not None and info.sha256:
                refs.append(ShardRef(url, info.sha256, info.size, info.num_samples))
                continue
            h, n = hashlib.sha256(), 0
            with ds.source.open_shard(url) as f:
                while chunk := f.read(1 << 20):
                    h.update(chunk)
                    n += len(chunk)
            count = ds._shared.counts.get(url) if hasattr(ds, "_shared") else None
            refs.append(ShardRef(url, h.hexdigest(), n, count))
        st = ds.sample_type
        schema_ref = (
            self.publish_schema(st).ref if getattr(st, "__atdata_sample__", False) else None
        )
        digest = hashlib.sha256(
            "\n".join([name, *(f"{r.url} {r.sha256}" for r in refs)]).encode()
        ).hexdigest()
        entry = DatasetEntry(
            name=name, shards=refs, version=version, schema_ref=schema_ref, description=description,
            license=license, tags=list(tags), metadata=dict(metadata or {}), entry_id=f"insert-{digest}",
        )  # fmt: skip
        return self.provider.add_entry(entry)

    def promote_entry(self, name: str, atmosphere: Promoter, **kwargs: Any) -> Any:
        """Publish dataset ``name`` and its schema to the atmosphere (idempotent; see
        :func:`atdata.atmosphere.promote_entry` for the options and the result).

        ``atmosphere`` is a logged-in :class:`atdata.atmosphere.Atmosphere` (any object with its
        ``promote_entry(index, name, **options)``): the index layer does not import the
        atmosphere layer; the atmosphere does the publishing.

        Raises:
            ConfigError: When ``atmosphere`` cannot promote (e.g. ``None``).
        """
        promote = getattr(atmosphere, "promote_entry", None)
        if not callable(promote):
            raise ConfigError(
                f"promote_entry needs a logged-in atdata.atmosphere.Atmosphere, got "
                f"{type(atmosphere).__name__}: Atmosphere.login(handle, app_password)"
            )
        return promote(self, name, **kwargs)

    def status(self) -> dict[str, Any]:
        """Which provider and store are configured and whether each is reachable."""
        out: dict[str, Any] = {}
        for what, obj in (("provider", self.provider), ("data_store", self.data_store)):
            try:
                obj.ping()
                out[what] = {"kind": obj.kind, "url": obj.url, "ok": True, "error": None}
            except Exception as exc:
                out[what] = {
                    "kind": getattr(obj, "kind", "?"),
                    "url": obj.url,
                    "ok": False,
                    "error": str(exc),
                }
        return out

    def close(self) -> None:
        """Close the provider's connections."""
        self.provider.close()


def _sidecars(shard_path: str) -> list[str]:
    stem = shard_path[: -len(".tar")] if shard_path.endswith(".tar") else shard_path
    return [p for p in (stem + ".manifest.json", stem + ".manifest.parquet") if os.path.exists(p)]
