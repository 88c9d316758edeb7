"""The reading half of :class:`~atdata.Index`: configuration, schemas, entries and datasets.

:class:`Catalog` holds the provider, the data store and the mounted repositories; ``Index``
(in :mod:`atdata.index._index`) adds writing, labels, lenses and search on top of it.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from atdata._errors import ConfigError, NotFoundError
from atdata.index._entry import DatasetEntry, SchemaRecord
from atdata.index._local_schema import LocalSchemaRecord
from atdata.index._schemas import SchemaNamespace, publish_schema, resolve_schema, schema_dict
from atdata.providers._base import IndexProvider
from atdata.providers._factory import provider_for
from atdata.stores._base import atdata_home

__all__ = ["ATMOSPHERE_DEFAULT", "Catalog", "entry_by_cid"]

ATMOSPHERE_DEFAULT: Any = object()  # Index(atmosphere=...) not given


class Catalog:
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
        atmosphere: Any = ATMOSPHERE_DEFAULT,
        auto_stubs: bool = False,
        stub_dir: str | os.PathLike[str] | None = None,
        prefix: str | None = None,
        **kwargs: Any,
    ) -> None:
        self.provider = provider_for(provider, path, dsn, redis, prefix, kwargs)
        #: The data store given (``None`` when none was: inserted datasets are then indexed
        #: where they are, and written samples go to the default store, see ``_write_store``).
        self.data_store: Any = data_store
        base = os.path.dirname(os.fspath(path)) if path is not None else atdata_home()
        self._default_root = os.path.join(base, "data")
        self._default_store: Any = None
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
        # not given: an anonymous, read-only client, made when an atmosphere name is first used
        self._atmosphere_deferred = atmosphere is ATMOSPHERE_DEFAULT
        self._atmosphere: Any = None if atmosphere is ATMOSPHERE_DEFAULT else atmosphere
        self._stub_dir = (
            Path(stub_dir) if stub_dir is not None
            else Path(atdata_home()) / "stubs" if auto_stubs else None
        )  # fmt: skip
        self._types: dict[str, type] = {}
        self._namespace = SchemaNamespace()

    @property
    def write_store(self) -> Any:
        """Where written samples go: :attr:`data_store`, else ``LocalDiskStore`` beside the index
        file (``$ATDATA_HOME/data``, ``~/.atdata/data``), made on first use (ours)."""
        return self._write_store()

    def _write_store(self) -> Any:
        if self.data_store is not None:
            return self.data_store
        if self._default_store is None:
            from atdata.stores._local import LocalDiskStore

            self._default_store = LocalDiskStore(self._default_root)
        return self._default_store

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.provider!r}, data_store={self.data_store!r})"

    @property
    def repos(self) -> dict[str, Any]:
        """Every repository by name, ``"local"`` first (this index's own provider and data store),
        then those mounted with ``repos=`` (a new dict each time)."""
        from atdata.repository import Repository

        return {"local": Repository(self.provider, self.data_store), **self._repos}

    @property
    def atmosphere(self) -> Any:
        """The ATProto client given as ``atmosphere=``; without one, an anonymous read-only
        :class:`~atdata.atmosphere.Atmosphere` (made on first use); ``None`` with
        ``atmosphere=None`` or when the ``atmosphere`` extra is not installed."""
        if self._atmosphere is None and self._atmosphere_deferred:
            from atdata._errors import MissingExtraError

            with contextlib.suppress(MissingExtraError):
                return self._remote_client("the anonymous atmosphere")
        return self._atmosphere

    def _remote_client(self, ref: str) -> Any:
        """The client that resolves atmosphere name/URI ``ref``: the one given, else the
        anonymous read-only one (made once, on first use).

        Raises:
            ConfigError: (a ``ValueError``) With ``Index(atmosphere=None)``, or without the
                ``atmosphere`` extra.
        """
        if self._atmosphere is not None:
            return self._atmosphere
        if not self._atmosphere_deferred:
            raise ConfigError(
                f"{ref!r} names an atmosphere record, and this index was made with "
                "atmosphere=None; use atdata.Index() (anonymous, read-only), "
                "Index(atmosphere=client), or atdata.load_dataset(...)"
            )
        from atdata import _hooks
        from atdata._errors import MissingExtraError

        try:
            self._atmosphere = _hooks.make(_hooks.ANONYMOUS_ATMOSPHERE, f"resolving {ref!r}")
        except MissingExtraError as exc:
            raise ConfigError(f"cannot resolve {ref!r}: {exc}") from None
        return self._atmosphere

    def _store_for(self, provider: IndexProvider) -> Any:
        """The data store paired with ``provider`` (``None`` when it has none of its own)."""
        if provider is self.provider:
            return self.data_store
        for repo in self._repos.values():
            if repo.provider is provider:
                return repo.data_store
        return None

    def _is_remote(self, ref: str) -> bool:
        """Whether ``ref`` names an atmosphere record: an AT URI, or ``@handle/...`` whose
        handle is neither ``local`` nor a mounted repository."""
        if ref.startswith("at://"):
            return True
        return ref.startswith("@") and ref[1:].partition("/")[0] not in ("local", *self._repos)

    def _route(self, ref: str) -> tuple[IndexProvider, str]:
        """``(provider, name in it)`` for ``"name"``, ``"@local/name"``, ``"repo/name"`` or
        ``"@repo/name"`` (a mounted repository)."""
        if ref.startswith("@local/"):
            return self.provider, ref[len("@local/") :]
        if self._is_remote(ref):
            raise ConfigError(
                f"{ref!r} names an atmosphere dataset; use index.get_dataset({ref!r}) or "
                f"atdata.load_dataset({ref!r})"
            )
        if ref.startswith("@"):
            ref = ref[1:]
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

        Without ``version``, the next patch version of the latest one published under this
        name (``1.0.0`` for the first), as documented. ``version="auto"`` (or ``""``, ours): an
        identical type reuses its stored version and a changed one gets the next minor (it only
        adds optional fields) or major version.

        Returns:
            ``"atdata://local/schema/<Name>@<version>"``.

        Raises:
            SchemaError: When an explicit ``version`` exists with a different body, or the type
                is not packable (a ``TypeError``).
            ConfigError: When ``version`` is not semantic (``1.0.0``, ``1.0.0-beta+b.1``).
        """
        rec = publish_schema(
            self.provider, sample_type, version, name, description, patch_bump=True
        )
        self._types.setdefault(rec.ref, sample_type)
        return rec.ref

    def get_schema(self, ref: str) -> dict[str, Any]:
        """A stored schema as a dict (``name``, ``version``, ``fields``, ``$ref``, ...).

        ``ref`` is ``atdata://local/schema/N@1.0.0``, legacy ``local://schemas/mod.N@1.0.0``,
        ``N@1.0.0``, ``N`` (latest version), or a schema record's AT URI
        (``at://did/science.alt.dataset.schema/rkey``: that record, read through the index's
        atmosphere, the client given or an anonymous one).

        Raises:
            NotFoundError: (a ``KeyError``) When there is no such schema.
            ConfigError: (a ``ValueError``) When ``ref`` is not a schema reference.
        """
        if ref.startswith("at://"):
            out: dict[str, Any] = self._remote_schema(ref, "get_schema")
            return out
        rec = resolve_schema(self.provider, ref)
        self._stub(rec)
        return schema_dict(rec)

    def _remote_schema(self, ref: str, what: str) -> Any:
        """``client.<what>(ref)`` for a schema record's AT URI, through the index's atmosphere."""
        client = self._remote_client(ref)
        call = getattr(client, what, None)
        if call is None:
            raise ConfigError(
                f"schema {ref!r} is an atmosphere record, and the index's atmosphere "
                f"({type(client).__name__}) has no {what}(); give "
                "Index(atmosphere=atdata.atmosphere.Atmosphere(...))"
            )
        return call(ref)

    def _stub(self, rec: SchemaRecord) -> None:
        if self._stub_dir is not None:
            from atdata.index._stubs import write_stub

            write_stub(self._stub_dir, rec)

    def get_schema_record(self, ref: str) -> LocalSchemaRecord:
        """A stored schema as a :class:`~atdata.local.LocalSchemaRecord`: typed ``fields``
        (:class:`~atdata.index.SchemaField`), ``created_at`` a datetime, and the stored ``body``,
        ``metadata``, ``fingerprint``, ``sample_type()``, ``to_record()``;
        ``.to_schema_record()`` gives the :class:`~atdata.index.SchemaRecord`.

        ``ref`` is any form :meth:`get_schema` takes.

        Raises:
            NotFoundError: (a ``KeyError``) When there is no such schema.
            ConfigError: (a ``ValueError``) When ``ref`` is not a schema reference.
        """
        rec = resolve_schema(self.provider, ref)
        self._stub(rec)
        return LocalSchemaRecord.from_schema_record(rec)

    def get_schema_type(self, ref: str) -> type:
        """A ``@packable`` class for a stored schema (the published class if known, else rebuilt).

        The class also becomes ``index.types.<Name>`` (and, with ``auto_stubs``, gets a stub).

        Raises:
            NotFoundError: (a ``KeyError``) When there is no such schema.
        """
        if ref.startswith("at://"):
            t = self._types.get(ref)
            if t is None:
                t = self._types[ref] = self._remote_schema(ref, "get_schema_type")
            self._namespace._register(t.__name__, t)
            return t
        rec = resolve_schema(self.provider, ref)
        t = self._types.get(rec.ref)
        if t is None:
            t = self._types[rec.ref] = rec.sample_type()
        self._namespace._register(rec.name, t)
        self._stub(rec)
        return t

    def decode_schema(self, ref: str) -> type:
        """The class of a stored schema (same as :meth:`get_schema_type`)."""
        return self.get_schema_type(ref)

    def decode_schema_as(self, ref: str, type_hint: type[Any]) -> Any:
        """:meth:`decode_schema`, typed as ``type_hint`` for IDEs (the runtime class is decoded)."""
        return self.get_schema_type(ref)

    def load_schema(self, ref: str) -> type:
        """Decode a schema and make its class available as ``index.types.<Name>``.

        With ``auto_stubs`` a stub module ``local/<Name>_<version>.py`` is also written under
        :attr:`stub_dir` (see :meth:`get_import_path`).
        """
        return self.get_schema_type(ref)

    @property
    def types(self) -> SchemaNamespace:
        """Classes loaded with :meth:`load_schema`, by name (``index.types.Row``)."""
        return self._namespace

    @property
    def stub_dir(self) -> Path | None:
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
    def schemas(self) -> Iterator[LocalSchemaRecord]:
        """Every stored schema version as a :class:`~atdata.local.LocalSchemaRecord` (lazy)."""
        return (LocalSchemaRecord.from_schema_record(r) for r in self.provider.list_schemas())

    def list_schemas(self) -> list[dict[str, Any]]:
        """Every stored schema version, as dicts (see :meth:`get_schema`)."""
        return [schema_dict(r) for r in self.provider.list_schemas()]

    def list_schema_records(self) -> list[LocalSchemaRecord]:
        """Every stored schema version, sorted by name and version, as
        :class:`~atdata.local.LocalSchemaRecord` objects (as :meth:`get_schema_record`)."""
        return list(self.schemas)

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
            repo: ``"local"``, a mounted repository's name, ``"_atmosphere"`` (the entries
                published by the logged-in account of ``Index(atmosphere=client)``, as
                :class:`~atdata.atmosphere.AtmosphereIndexEntry`; ``[]`` without a login), or
                ``None`` for this index and its repositories.

        Raises:
            NotFoundError: (a ``KeyError``) For an unknown repository name.
        """
        if repo is None:
            return list(self.datasets)
        if repo == "local":
            return self.provider.list_entries()
        if repo == "_atmosphere":  # the logged-in account's published entries
            hook = getattr(self._atmosphere, "dataset_entries", None)
            if hook is None or not getattr(self._atmosphere, "is_authenticated", False):
                return []  # no account: nothing of its own is published
            got: list[Any] = hook()
            return got
        if repo not in self._repos:
            raise NotFoundError(
                f"no repository {repo!r}; mounted: {['local', *self._repos]} (or '_atmosphere')"
            )
        return self._repos[repo].provider.list_entries()

    @property
    def entries(self) -> Iterator[DatasetEntry]:
        """Every entry of this index (lazy: a generator)."""
        return (e for e in self.provider.list_entries())

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
        return entry_by_cid(self.provider, cid)

    def get_entry_by_name(self, name: str, version: str | None = None) -> DatasetEntry:
        """The entry called ``name`` (its latest version, or ``version``).

        ``name`` may carry ``@local/`` or a mounted repository's prefix (``"lab/mnist"``).

        Raises:
            NotFoundError: (a ``KeyError``) When there is no such dataset or version.
        """
        provider, local = self._route(name)
        return _entry_named(provider, local, version)

    def get_dataset(self, ref: str, version: str | None = None) -> DatasetEntry:
        """The entry of dataset ``ref`` (``"mnist"``, ``"@local/mnist"``, ``"lab/mnist"``,
        ``"@lab/mnist"``), or of an atmosphere dataset (``"@handle/name"`` or an entry record's
        AT URI ``"at://did/science.alt.dataset.entry/rkey"``: an
        :class:`~atdata.atmosphere.AtmosphereIndexEntry`), resolved through the index's
        atmosphere: the client given, else an anonymous read-only one.

        ``"name@1.2.0"`` or ``version=`` select a version; the latest is the default. To read
        the samples, use :meth:`open_dataset` (or ``atdata.load_dataset("@local/name")``).

        Raises:
            NotFoundError: (a ``KeyError``) When there is no such dataset.
            ConfigError: (a ``ValueError``) For an ``@handle/...`` name or AT URI with
                ``Index(atmosphere=None)`` or without the ``atmosphere`` extra.
        """
        if self._is_remote(ref):
            client = self._remote_client(ref)
            hook = getattr(client, "get_dataset_entry", None)
            if hook is None:
                raise ConfigError(
                    f"{ref!r} names an atmosphere dataset, and the index's atmosphere "
                    f"({type(client).__name__}) cannot look datasets up; give "
                    "Index(atmosphere=atdata.atmosphere.Atmosphere(...))"
                )
            if version is not None and ref.startswith("@") and ref.count("@") == 1:
                ref = f"{ref}@{version}"
            return hook(ref)
        provider, local = self._route(ref)
        if version is None and "@" in local:
            local, version = local.split("@", 1)
        if provider is self.provider:  # `local` is already routed: never route it again
            return _entry_named(provider, local, version)
        e = provider.get_entry(local, version)
        if e is None:
            raise NotFoundError(f"dataset {ref!r} is not in the index at {provider.url}")
        return e

    def open_dataset(
        self, name: str, version: str | None = None, *, sample_type: type | None = None
    ) -> Any:
        """A :class:`~atdata.Dataset` over a stored entry, typed from its schema unless given.

        Shard sizes, counts and sha256 recorded in the entry come along, so ``len()`` needs no
        read, ``to_torch()`` checks every shard it fetches against its sha256, and
        ``ds.verify()`` checks them all (plain iteration does not hash what it reads).
        """
        from atdata._shards.writer import ShardInfo
        from atdata._wire.sample import DictSample
        from atdata._wire.schema_json import schema_body, schema_fingerprint
        from atdata.dataset._dataset import Dataset

        if self._is_remote(name):
            raise ConfigError(
                f"{name!r} is an atmosphere dataset; read it with atdata.load_dataset({name!r}, "
                "split=...) (index.get_dataset gives its entry)"
            )
        e = self.get_dataset(name, version)
        provider, _ = self._route(name)
        if sample_type is None and e.schema_ref:
            if provider is self.provider:
                sample_type = self.get_schema_type(e.schema_ref)
            else:  # the class cache is this index's: another provider's ref may differ
                rec = resolve_schema(provider, e.schema_ref)
                known = self._types.get(rec.ref)
                same = (
                    known is not None and schema_fingerprint(schema_body(known)) == rec.fingerprint
                )
                sample_type = known if same else rec.sample_type()
        sample_type = sample_type or DictSample
        infos = [
            ShardInfo(s.url, s.num_samples, s.size or 0, s.sha256 or "")
            for s in e.shards
            if s.num_samples is not None
        ]
        source = self._source_for(e.urls, self._store_for(provider), e.name)
        label = f"{e.name}@{e.version}"
        with contextlib.suppress(AttributeError):  # named in the error for a missing shard
            source.origin = (
                f"index entry {label} of {provider.url}: the file was moved or "
                f"deleted; check the entry's shards with 'atdata verify {label}', then restore "
                "them or write the dataset again"
            )
        return Dataset(source, sample_type=sample_type, shard_infos=infos or None)

    def _source_for(self, urls: list[str], store: Any = None, name: str = "") -> Any:
        if urls and all(u.startswith("at://") for u in urls):  # PDS blobs (PDSBlobStore)
            for s in (store, self.data_store):
                make = getattr(s, "create_source", None)
                if make is not None:
                    return make(urls)
            raise ConfigError(
                f"the shards of dataset {name!r} are PDS blobs ({urls[0]}, ...) and this index "
                "has no store that reads them; open it through atdata.Index(..., "
                "data_store=atdata.atmosphere.PDSBlobStore(client)), or read the URLs with "
                "atdata.atmosphere.BlobSource"
            )
        if urls and all(u.startswith("s3://") for u in urls):
            if getattr(self.data_store, "kind", None) == "s3":
                return self.data_store.source(urls)
            from atdata.stores._s3 import S3Source

            return S3Source.from_urls(urls)
        from atdata._shards.sources import URLSource

        return URLSource(urls)


def _entry_named(provider: IndexProvider, name: str, version: str | None) -> DatasetEntry:
    """Entry ``name`` (at ``version``, else the latest) of ``provider``; a miss names close ones."""
    e = provider.get_entry(name, version)
    if e is None:
        what = f"{name}@{version}" if version else name
        known = sorted({x.name for x in provider.list_entries()})
        close = [k for k in known if name.lower() in k.lower() or k.lower() in name.lower()]
        hint = f"; similar: {close[:5]}" if close else ""
        raise NotFoundError(f"dataset {what!r} is not in the index at {provider.url}{hint}")
    return e


def entry_by_cid(provider: IndexProvider, cid: str) -> DatasetEntry:
    for e in provider.list_entries():
        if e.cid == cid:
            return e
    raise NotFoundError(
        f"no dataset entry with CID {cid!r} in the index at {provider.url}; "
        "look entries up by name with get_entry_by_name(name)"
    )
