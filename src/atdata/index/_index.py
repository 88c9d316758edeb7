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
    >>> idx.get_dataset("rows").data_urls == e.data_urls, idx.get_entry(e.cid).name
    (True, 'rows')
    >>> [s.text for s in idx.open_dataset("rows").ordered()]
    ['a', 'b', 'c']
    >>> idx.write_samples([Row(text="d")], name="rows").version
    '1.1.0'
    >>> idx.get_schema("atdata://local/schema/Row@1.0.0")["fields"][0]["name"]
    'text'
"""

from __future__ import annotations

import hashlib
import os
import shutil
import uuid
from collections.abc import Iterable, Iterator
from typing import Any, Protocol

from atdata._errors import ConfigError, NotFoundError
from atdata.index._entry import DatasetEntry, SchemaRecord, ShardRef, check_name
from atdata.index._schemas import SchemaNamespace, publish_schema, resolve_schema, schema_dict
from atdata.providers._base import IndexProvider
from atdata.stores._base import atdata_home

__all__ = ["Index", "Promoter", "atdata_home", "get_default_index", "set_default_index"]

_ATMOSPHERE_DEFAULT: Any = object()  # Index(atmosphere=...) not given

_default: Index | None = None


class Promoter(Protocol):
    """What :meth:`Index.promote_entry` needs of an atmosphere (``atdata.atmosphere.Atmosphere``)."""

    def promote_entry(self, index: Index, name: str, **kwargs: Any) -> Any: ...


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
    provider: Any, path: Any, dsn: Any, redis: Any, prefix: str | None, redis_kwargs: dict[str, Any]
) -> IndexProvider:
    from atdata.providers._factory import create_provider

    if isinstance(provider, IndexProvider):
        return provider
    if provider is None:
        redis_like = redis is not None or bool(redis_kwargs)
        provider = "redis" if redis_like else "postgres" if dsn is not None else "sqlite"
    if not isinstance(provider, str):
        raise ConfigError(
            f"provider must be 'sqlite', 'redis', 'postgres' or an IndexProvider, "
            f"got {type(provider).__name__}"
        )
    return create_provider(provider, path=path, dsn=dsn, redis=redis, prefix=prefix, **redis_kwargs)


class Index:
    """A catalogue of datasets and schemas: a provider (metadata) plus a data store (bytes).

    Args:
        provider: ``"sqlite"`` (default), ``"redis"``, ``"postgres"`` or an
            :class:`~atdata.providers.IndexProvider`.
        path: SQLite file (default ``$ATDATA_HOME/index.db``, ``~/.atdata/index.db``).
        dsn: PostgreSQL connection string.
        redis: Redis URL or client.
        data_store: Where shards go. When given, :meth:`insert_dataset` copies shards into it;
            without it, inserted datasets are indexed where they are and written samples go to
            ``LocalDiskStore($ATDATA_HOME/data)`` (beside ``path`` when that is given).
        repos: Further named :class:`~atdata.repository.Repository` objects; ``"lab/mnist"``
            then names dataset ``mnist`` of repository ``lab`` (``"local"`` is this index).
        atmosphere: An ATProto client for ``@handle/...`` names, or ``None`` for none.
        auto_stubs: Write a ``.pyi`` stub for each schema loaded with :meth:`load_schema`.
        stub_dir: Where stubs go (default ``$ATDATA_HOME/stubs``; giving it implies
            ``auto_stubs``).
        prefix: Redis key prefix / PostgreSQL schema name.
        **kwargs: Redis connection options (``host=``, ``port=``, ``db=``): they select Redis.
    """

    def __init__(
        self,
        provider: str | IndexProvider | None = None,
        *,
        path: str | os.PathLike[str] | None = None,
        dsn: str | None = None,
        redis: Any = None,
        data_store: Any = None,
        repos: dict[str, Any] | None = None,
        atmosphere: Any = _ATMOSPHERE_DEFAULT,
        auto_stubs: bool = False,
        stub_dir: str | os.PathLike[str] | None = None,
        prefix: str | None = None,
        **kwargs: Any,
    ) -> None:
        self.provider = _make_provider(provider, path, dsn, redis, prefix, kwargs)
        self._explicit_store = data_store is not None
        if data_store is None:
            from atdata.stores._local import LocalDiskStore

            base = os.path.dirname(os.fspath(path)) if path is not None else atdata_home()
            data_store = LocalDiskStore(os.path.join(base, "data"))
        self.data_store = data_store
        self._repos: dict[str, Any] = {}
        for rname, repo in (repos or {}).items():
            if rname == "local" or not rname or "/" in rname or rname.startswith("@"):
                raise ConfigError(
                    f"repository name {rname!r} is reserved or invalid; use a plain name like 'lab'"
                )
            if not hasattr(repo, "provider"):
                raise ConfigError(
                    f"repos[{rname!r}] must be an atdata.repository.Repository, "
                    f"got {type(repo).__name__}"
                )
            self._repos[rname] = repo
        self._atmosphere = None if atmosphere is _ATMOSPHERE_DEFAULT else atmosphere
        self._stub_dir = (
            os.fspath(stub_dir) if stub_dir is not None
            else os.path.join(atdata_home(), "stubs") if auto_stubs else None
        )  # fmt: skip
        self._types: dict[str, type] = {}
        self._namespace = SchemaNamespace()

    def __repr__(self) -> str:
        return f"Index({self.provider!r}, data_store={self.data_store!r})"

    @property
    def repos(self) -> dict[str, Any]:
        """The named repositories mounted beside ``"local"`` (a copy)."""
        return dict(self._repos)

    @property
    def atmosphere(self) -> Any:
        """The ATProto client given as ``atmosphere=``, or ``None``."""
        return self._atmosphere

    def _route(self, ref: str) -> tuple[IndexProvider, str]:
        """``(provider, name in it)`` for ``"name"``, ``"@local/name"`` or ``"repo/name"``."""
        if ref.startswith("@local/"):
            return self.provider, ref[len("@local/") :]
        if ref.startswith("@") or ref.startswith("at://"):
            raise ConfigError(
                f"{ref!r} names an atmosphere dataset; use atdata.load_dataset({ref!r}) or an "
                "Index(atmosphere=client)"
            )
        head, sep, rest = ref.partition("/")
        if sep and head in self._repos:
            return self._repos[head].provider, rest
        if sep and head == "local":
            return self.provider, rest
        return self.provider, ref

    # -- schemas --------------------------------------------------------------------------------
    def publish_schema(
        self, sample_type: type, version: str | None = None, *, name: str | None = None,
        description: str | None = None,
    ) -> str:  # fmt: skip
        """Store ``sample_type``'s schema and return its reference string.

        Without ``version`` (or with ``""``), an identical type reuses its stored version and a
        changed one gets the next: minor when it only adds optional fields, else major.

        Returns:
            ``"atdata://local/schema/<Name>@<version>"``.

        Raises:
            SchemaError: When an explicit ``version`` exists with a different body, or the type
                is not packable (a ``TypeError``).
            ConfigError: When ``version`` is not semantic (``1.0.0``, ``1.0.0-beta+b.1``).
        """
        rec = publish_schema(self.provider, sample_type, version, name, description)
        self._types.setdefault(rec.ref, sample_type)
        return rec.ref

    def get_schema(self, ref: str) -> dict[str, Any]:
        """A stored schema as a dict (``name``, ``version``, ``fields``, ``$ref``, ...).

        ``ref`` is ``atdata://local/schema/N@1.0.0``, legacy ``local://schemas/mod.N@1.0.0``,
        ``N@1.0.0`` or ``N`` (latest version).

        Raises:
            NotFoundError: (a ``KeyError``) When there is no such schema.
            ConfigError: (a ``ValueError``) When ``ref`` is not a schema reference.
        """
        return schema_dict(resolve_schema(self.provider, ref))

    def get_schema_record(self, ref: str) -> SchemaRecord:
        """A stored schema as a :class:`~atdata.index.SchemaRecord` (typed fields, ``.body``).

        Raises:
            NotFoundError: (a ``KeyError``) When there is no such schema.
        """
        return resolve_schema(self.provider, ref)

    def get_schema_type(self, ref: str) -> type:
        """A ``@packable`` class for a stored schema (the published class if known, else rebuilt).

        Raises:
            NotFoundError: (a ``KeyError``) When there is no such schema.
        """
        rec = resolve_schema(self.provider, ref)
        t = self._types.get(rec.ref)
        if t is None:
            t = self._types[rec.ref] = rec.sample_type()
        return t

    def decode_schema(self, ref: str) -> type:
        """The class of a stored schema (same as :meth:`get_schema_type`)."""
        return self.get_schema_type(ref)

    def decode_schema_as(self, ref: str, type_hint: type[Any]) -> Any:
        """:meth:`decode_schema`, typed as ``type_hint`` for IDEs (the runtime class is decoded)."""
        return self.get_schema_type(ref)

    def load_schema(self, ref: str) -> type:
        """Decode a schema and make its class available as ``index.types.<Name>``.

        With ``auto_stubs`` a ``.pyi`` stub is also written under :attr:`stub_dir`.
        """
        cls = self.get_schema_type(ref)
        rec = resolve_schema(self.provider, ref)
        self._namespace._register(rec.name, cls)
        if self._stub_dir is not None:
            from atdata.index._stubs import write_stub

            write_stub(self._stub_dir, rec)
        return cls

    @property
    def types(self) -> SchemaNamespace:
        """Classes loaded with :meth:`load_schema`, by name (``index.types.Row``)."""
        return self._namespace

    @property
    def stub_dir(self) -> str | None:
        """Where stubs are written (``None`` unless ``auto_stubs`` or ``stub_dir`` was given)."""
        return self._stub_dir

    def get_import_path(self, ref: str) -> str | None:
        """``"local.<Name>_<version>"`` for a schema's stub module, or ``None`` without stubs."""
        if self._stub_dir is None:
            return None
        from atdata.index._stubs import stub_module_name

        return f"local.{stub_module_name(resolve_schema(self.provider, ref))}"

    def clear_stubs(self) -> int:
        """Delete the written stubs; the number removed (0 without ``auto_stubs``)."""
        if self._stub_dir is None:
            return 0
        from atdata.index._stubs import clear_stubs

        return clear_stubs(self._stub_dir)

    @property
    def schemas(self) -> Iterator[SchemaRecord]:
        """Every stored schema version as a record (lazy)."""
        return iter(self.provider.list_schemas())

    def list_schemas(self) -> list[dict[str, Any]]:
        """Every stored schema version, as dicts (see :meth:`get_schema`)."""
        return [schema_dict(r) for r in self.provider.list_schemas()]

    def list_schema_records(self) -> list[SchemaRecord]:
        """Every stored schema version as :class:`~atdata.index.SchemaRecord` objects."""
        return self.provider.list_schemas()

    # -- datasets -------------------------------------------------------------------------------
    @property
    def datasets(self) -> Iterator[DatasetEntry]:
        """Every dataset entry of this index and its mounted repositories (lazy)."""
        yield from self.provider.list_entries()
        for repo in self._repos.values():
            yield from repo.provider.list_entries()

    def list_datasets(self, repo: str | None = None) -> list[DatasetEntry]:
        """Dataset entries (all versions, by name and version) of ``repo`` or of every repository.

        Args:
            repo: ``"local"``, a mounted repository's name, or ``None`` for all.

        Raises:
            NotFoundError: (a ``KeyError``) For an unknown repository name.
        """
        if repo is None:
            return list(self.datasets)
        if repo == "local":
            return self.provider.list_entries()
        if repo not in self._repos:
            raise NotFoundError(f"no repository {repo!r}; mounted: {['local', *self._repos]}")
        return self._repos[repo].provider.list_entries()

    @property
    def entries(self) -> Iterator[DatasetEntry]:
        """Every entry of this index (lazy)."""
        return iter(self.provider.list_entries())

    def list_entries(self) -> list[DatasetEntry]:
        """Every entry of this index, sorted by name and version."""
        return self.provider.list_entries()

    @property
    def all_entries(self) -> list[DatasetEntry]:
        """Every entry of this index (a list; same as :meth:`list_entries`)."""
        return self.provider.list_entries()

    def get_entry(self, cid: str) -> DatasetEntry:
        """The entry whose content identifier (:attr:`DatasetEntry.cid`) is ``cid``.

        Raises:
            NotFoundError: (a ``KeyError``) When no entry has that CID.
        """
        for e in self.provider.list_entries():
            if e.cid == cid:
                return e
        raise NotFoundError(
            f"no dataset entry with CID {cid!r} in the index at {self.provider.url}; "
            "look entries up by name with get_entry_by_name(name)"
        )

    def get_entry_by_name(self, name: str, version: str | None = None) -> DatasetEntry:
        """The entry called ``name`` (its latest version, or ``version``).

        ``name`` may carry ``@local/`` or a mounted repository's prefix (``"lab/mnist"``).

        Raises:
            NotFoundError: (a ``KeyError``) When there is no such dataset or version.
        """
        provider, local = self._route(name)
        e = provider.get_entry(local, version)
        if e is None:
            what = f"{local}@{version}" if version else local
            known = sorted({x.name for x in provider.list_entries()})
            close = [k for k in known if local.lower() in k.lower() or k.lower() in local.lower()]
            hint = f"; similar: {close[:5]}" if close else ""
            raise NotFoundError(f"dataset {what!r} is not in the index at {provider.url}{hint}")
        return e

    def get_dataset(self, ref: str, version: str | None = None) -> DatasetEntry:
        """The entry of dataset ``ref`` (``"mnist"``, ``"@local/mnist"``, ``"lab/mnist"``).

        ``"name@1.2.0"`` or ``version=`` select a version; the latest is the default. To read
        the samples, use :meth:`open_dataset` (or ``atdata.load_dataset("@local/name")``).

        Raises:
            NotFoundError: (a ``KeyError``) When there is no such dataset.
            ConfigError: (a ``ValueError``) For an ``@handle/...`` name without an atmosphere.
        """
        if ref.startswith("@") and not ref.startswith("@local/") and self._atmosphere is not None:
            hook = getattr(self._atmosphere, "get_dataset_entry", None)
            if hook is not None:
                return hook(ref)
        provider, local = self._route(ref)
        if version is None and "@" in local:
            local, version = local.split("@", 1)
        if provider is self.provider:
            return self.get_entry_by_name(local, version)
        e = provider.get_entry(local, version)
        if e is None:
            raise NotFoundError(f"dataset {ref!r} is not in the index at {provider.url}")
        return e

    def open_dataset(
        self, name: str, version: str | None = None, *, sample_type: type | None = None
    ) -> Any:
        """A :class:`~atdata.Dataset` over a stored entry, typed from its schema unless given.

        Shard sizes, counts and sha256 recorded in the entry come along, so ``len()`` needs no
        read and every shard is checked against its checksum as it is read.
        """
        from atdata._shards.writer import ShardInfo
        from atdata._wire.sample import DictSample
        from atdata.dataset._dataset import Dataset

        e = self.get_dataset(name, version)
        if sample_type is None and e.schema_ref:
            provider, _ = self._route(name)
            if provider is self.provider:
                sample_type = self.get_schema_type(e.schema_ref)
            else:
                rec = resolve_schema(provider, e.schema_ref)
                sample_type = self._types.get(rec.ref) or rec.sample_type()
        sample_type = sample_type or DictSample
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

            return S3Source.from_urls(urls)
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
        schema_ref: str | None = None,
    ) -> DatasetEntry:
        """Write shards to the data store, publish the schema, then commit the entry (last).

        ``name`` may carry a mounted repository's prefix (``"lab/mnist"``): the shards then go
        to that repository's data store (or this index's) and the entry to its provider.

        Every shard is verified in the store (size and sha256) before the entry is committed, so
        a failure leaves no entry. Passing the same ``write_id`` again after a crash completes the
        write (shards already stored are not uploaded again) and never makes a second entry.

        Returns:
            The committed :class:`DatasetEntry`.

        Raises:
            ConfigError: (a ``ValueError``) When ``samples`` is empty.
        """
        from atdata.dataset._write import write_samples as _write

        provider, name = self._route(name)
        name = check_name(name)
        store = self._store_for(provider) or self.data_store
        if write_id is not None:
            done = provider.get_entry_by_id(write_id)
            if done is not None:
                return done
        write_id = write_id or uuid.uuid4().hex
        staging = store.staging_dir()
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
            if schema_ref is None and getattr(st, "__atdata_sample__", False):
                schema_ref = self._publish_in(provider, st)
            refs = []
            for info in infos:
                fname = os.path.basename(info.path)
                skey = f"{name}/{write_id}/{fname}"
                for side in _sidecars(info.path):
                    from atdata.stores._local import file_sha256

                    sha, size = file_sha256(side)
                    store.put_shard(
                        side,
                        f"{name}/{write_id}/{os.path.basename(side)}",
                        sha256=sha,
                        size=size,
                        move=True,
                    )
                url = store.put_shard(
                    info.path, skey, sha256=info.sha256, size=info.size, move=True
                )
                refs.append(ShardRef(url, info.sha256, info.size, info.num_samples))
        finally:
            shutil.rmtree(staging, ignore_errors=True)
        entry = DatasetEntry(
            name=name, shards=refs, version=version, schema_ref=schema_ref, description=description,
            license=license, tags=list(tags or ()), metadata=dict(metadata or {}), entry_id=write_id,
            data_store=store.url,
        )  # fmt: skip
        return provider.add_entry(entry)

    def write(
        self,
        samples: Iterable[Any],
        *,
        name: str,
        schema_ref: str | None = None,
        description: str | None = None,
        tags: Iterable[str] | None = None,
        license: str | None = None,
        maxcount: int = 10000,
        maxsize: int | None = None,
        metadata: dict[str, Any] | None = None,
        manifest: bool = False,
    ) -> DatasetEntry:
        """Write samples into new shards and index them in one step (the documented spelling).

        The same as :meth:`write_samples` with at most ``maxcount`` samples per shard.

        Raises:
            ConfigError: (a ``ValueError``) When ``samples`` is empty.
        """
        return self.write_samples(
            samples, name=name, maxcount=maxcount, maxsize=maxsize, manifest=manifest,
            description=description, license=license, tags=tags or (), metadata=metadata,
            schema_ref=schema_ref,
        )  # fmt: skip

    def _store_for(self, provider: IndexProvider) -> Any:
        """The data store paired with ``provider`` (``None`` when it has none of its own)."""
        if provider is self.provider:
            return self.data_store if self._explicit_store else None
        for repo in self._repos.values():
            if repo.provider is provider:
                return repo.data_store
        return None

    def _publish_in(self, provider: IndexProvider, sample_type: type) -> str:
        if provider is self.provider:
            return self.publish_schema(sample_type)
        return publish_schema(provider, sample_type, None, None, None).ref

    def insert_dataset(
        self,
        ds: Any,
        *,
        name: str,
        schema_ref: str | None = None,
        description: str | None = None,
        license: str | None = None,
        tags: Iterable[str] | None = None,
        metadata: dict[str, Any] | None = None,
        version: str | None = None,
        data_store: Any = None,
        force: bool = False,
        copy: bool = False,
        prefix: str | None = None,
        maxcount: int | None = None,
        maxsize: int | None = None,
        **kwargs: Any,
    ) -> DatasetEntry:
        """Index an existing dataset: copied into a data store, or recorded where it is.

        The shards are copied (verified) when a store is given here as ``data_store``, when
        the target repository (``"lab/mnist"``) or this index was made with one, or when
        ``copy=True`` (into :attr:`data_store`). Otherwise the URLs are recorded as they are,
        with sizes and sha256 taken from the dataset or computed by reading each shard once;
        inserting the same shards under the same name again returns the first entry.

        Args:
            ds: The :class:`~atdata.Dataset` to index.
            name: Dataset name, optionally ``"<repo>/<name>"``.
            schema_ref: Schema reference (default: the dataset's type, published).
            data_store: A store to copy the shards into.
            force: Accepted for the atmosphere's size limits; local indexes have none.
            copy: Copy into :attr:`data_store` even without an explicit store.
            prefix: Accepted for compatibility; copied shards are keyed by name and write id.
            maxcount, maxsize: Shard limits when copying.
            **kwargs: ``cache_local`` and other store options are accepted and ignored.
        """
        provider, local = self._route(name)
        store = data_store or self._store_for(provider) or (self.data_store if copy else None)
        if store is not None:
            samples = ds.ordered() if hasattr(ds, "ordered") else ds
            return _with_store(self, provider, store).write_samples(
                samples, name=local, maxcount=maxcount, maxsize=maxsize, description=description,
                license=license, tags=tags or (), metadata=metadata, version=version,
                sample_type=getattr(ds, "sample_type", None), schema_ref=schema_ref,
            )  # fmt: skip
        from atdata.index._register import shard_refs_of

        local = check_name(local)
        refs = shard_refs_of(ds)
        st = getattr(ds, "sample_type", None)
        if schema_ref is None and st is not None and getattr(st, "__atdata_sample__", False):
            schema_ref = self._publish_in(provider, st)
        if metadata is None:
            metadata = getattr(ds, "metadata", None) if isinstance(
                getattr(ds, "metadata", None), dict
            ) else None  # fmt: skip
        digest = hashlib.sha256(
            "\n".join([local, *(f"{r.url} {r.sha256}" for r in refs)]).encode()
        ).hexdigest()
        entry = DatasetEntry(
            local, schema_ref, None, metadata, shards=refs, version=version,
            description=description, license=license, tags=list(tags or ()),
            entry_id=f"insert-{digest}",
        )  # fmt: skip
        return provider.add_entry(entry)

    def add_entry(
        self,
        ds: Any,
        *,
        name: str,
        schema_ref: str | None = None,
        metadata: dict[str, Any] | None = None,
    ) -> DatasetEntry:
        """Index ``ds``'s shards where they are (never copied); see :meth:`insert_dataset`."""
        provider, _ = self._route(name)
        if provider is self.provider and self._explicit_store:
            return _with_store(self, provider, None).insert_dataset(
                ds, name=name, schema_ref=schema_ref, metadata=metadata
            )
        return self.insert_dataset(ds, name=name, schema_ref=schema_ref, metadata=metadata)

    def search(
        self,
        text: str | None = None,
        tags: list[str] | None = None,
        schema_ref: str | None = None,
        repo: str | None = None,
        limit: int = 50,
        include_atmosphere: bool = True,
    ) -> Any:
        """Find datasets by text (names, descriptions), tags and schema.

        Searches this index and its repositories, then (with ``include_atmosphere``) the
        atmosphere client's AppView when it offers ``search_backend()``; a backend that fails
        is skipped. Returns :class:`~atdata.search.SearchResults`.
        """
        from atdata.index._search import LocalSearchBackend, SearchAggregator

        backends: list[Any] = [LocalSearchBackend(self)]
        hook = getattr(self._atmosphere, "search_backend", None) if include_atmosphere else None
        if callable(hook):
            backends.append(hook())
        return SearchAggregator(backends).search(
            text=text, tags=tags, schema_ref=schema_ref, repo=repo, limit=limit
        )

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


def _with_store(index: Index, provider: IndexProvider, store: Any) -> Index:
    """A view of ``index`` writing to ``provider`` with ``store`` as its explicit data store."""
    view = Index.__new__(Index)
    view.__dict__.update(index.__dict__)
    view.provider = provider
    view._repos = {}
    view._explicit_store = store is not None
    if store is not None:
        view.data_store = store
    return view
