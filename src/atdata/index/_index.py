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
import uuid
from collections.abc import Iterable, Iterator
from typing import Any, Protocol

from atdata._errors import ConfigError, IntegrityError, NotFoundError
from atdata.index._catalog import Catalog, entry_by_cid
from atdata.index._entry import DatasetEntry, ShardRef, check_name
from atdata.index._schemas import SchemaNamespace, publish_schema
from atdata.providers._base import IndexProvider
from atdata.stores._base import atdata_home

__all__ = ["Index", "Promoter", "atdata_home", "get_default_index", "set_default_index"]

_default: Index | None = None


class Promoter(Protocol):
    """What :meth:`Index.promote_entry` needs of an atmosphere (``atdata.atmosphere.Atmosphere``)."""

    def promote_entry(self, index: Index, name: str, **kwargs: Any) -> Any: ...


def _check_same_name(stored: DatasetEntry, name: str, write_id: str) -> None:
    """Refuse to hand back another dataset's entry for a ``write_id`` reused under a new name."""
    if stored.name != name:
        raise ConfigError(
            f"write_id {write_id!r} was committed as dataset {stored.name!r} (version "
            f"{stored.version}), not {name!r}: a write_id names one write. Use another "
            f"write_id for {name!r} (e.g. one that includes the dataset name)"
        )


def _check_same_shards(stored: DatasetEntry, refs: list[ShardRef], write_id: str) -> None:
    """Refuse to hand back a committed entry whose shards are other bytes than this run wrote
    (another run with the same ``write_id``, and other samples, committed first)."""
    if [(r.sha256, r.size) for r in stored.shards] == [(r.sha256, r.size) for r in refs]:
        return
    what = f"it has {len(stored.shards)} shards, this run wrote {len(refs)}"
    for a, b in zip(stored.shards, refs, strict=False):
        if (a.sha256, a.size) != (b.sha256, b.size):
            what = (
                f"its shard {a.url} has sha256 {(a.sha256 or '?')[:16]}... ({a.size} bytes), "
                f"this run's {b.url} has {(b.sha256 or '?')[:16]}... ({b.size} bytes)"
            )
            break
    raise IntegrityError(
        f"write_id {write_id!r} of dataset {stored.name!r}: another run with this write_id "
        f"committed other samples first ({what}); its entry is kept and points at its own "
        "shards. Rerun with the same write_id to get that entry, or write these samples under a "
        "new write_id (the samples differ between runs: is the source deterministic?)"
    )


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


class Index(Catalog):
    """A catalogue of datasets and schemas: a provider (metadata) plus a data store (bytes).

    Constructor arguments: see :class:`~atdata.index._catalog.Catalog`. This class adds
    writing (:meth:`write`, :meth:`write_samples`, :meth:`insert_dataset`, :meth:`add_entry`),
    labels, stored lenses, search and promotion.
    """

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
        key_prefix: str | None = None,
    ) -> DatasetEntry:
        """Write shards to the data store, publish the schema, then commit the entry (last).

        ``name`` may carry a mounted repository's prefix (``"lab/mnist"``, ``"@lab/mnist"``):
        the shards then go to that repository's data store (or this index's) and the entry to
        its provider. ``"@handle/name"`` (the logged-in account of ``Index(atmosphere=client)``)
        writes and publishes to the atmosphere: the shards become blobs of the account's PDS,
        the schema and entry records are published, and the published
        :class:`~atdata.atmosphere.AtmosphereIndexEntry` is returned (no local entry).

        Every shard is verified in the store (size and sha256) before the entry is committed, so
        a failure leaves no entry.

        With a ``write_id`` the shards and manifests are a function of the samples and the
        arguments: a sample without its own ``__key__`` is keyed by a uuid5 of the ``write_id``
        and its position (unless ``key`` says otherwise), tar headers carry a fixed mtime and
        manifests no clock time, and the files go under ``{name}/{write_id}/<digest>/``, the
        digest being of their bytes. Passing the same ``write_id`` again after a crash completes
        the write (shards already stored are not uploaded again) and never makes a second entry;
        two runs at once (a job and its retry) store the same bytes and commit one entry. A run
        whose samples differ from those of the run that committed first (a source that changed
        between runs) stores its shards beside, never over, the committed ones and raises
        :class:`~atdata.IntegrityError`. Once committed, the same ``write_id`` returns the entry
        without reading ``samples``.

        Returns:
            The committed :class:`DatasetEntry`.

        Raises:
            ConfigError: (a ``ValueError``) When ``samples`` is empty.
            IntegrityError: (a ``ValueError``) When another run with this ``write_id`` committed
                other shard bytes first (its entry is kept; rerun with the same ``write_id`` to
                get it, or write these samples under a new one).
            ConfigError: When ``write_id`` was committed for another dataset name.
        """
        from atdata.stores._base import put_samples

        if self._is_remote(name):
            if write_id is not None:
                raise ConfigError(
                    f"write_id= is for this index's own entries; {name!r} is published to the "
                    "atmosphere (publishing again with the same samples reuses the blobs)"
                )
            return self._remote_writer(name, "write_named")(
                self, name, samples, maxcount=maxcount, maxsize=maxsize, manifest=manifest,
                sample_type=sample_type, schema_ref=schema_ref, version=version,
                description=description, license=license, tags=tags, metadata=metadata,
            )  # fmt: skip
        provider, name = self._route(name)
        name = check_name(name)
        store = self._store_for(provider) or self._write_store()
        if write_id is not None:
            done = provider.get_entry_by_id(write_id)
            if done is not None:
                _check_same_name(done, name, write_id)
                return done
        given, write_id = write_id, write_id or uuid.uuid4().hex
        if maxcount is None and maxsize is None:
            maxcount = 10**12  # one shard, still numbered (stable store keys)
        put, first = put_samples(
            store, samples, f"{key_prefix or name}/{write_id}", name.replace("/", "-").replace("%", "%%") + "-%06d.tar",
            maxcount=maxcount, maxsize=maxsize, manifest=manifest, key=key, write_id=given,
        )  # fmt: skip
        if not put:
            raise ConfigError(f"no samples were given, so nothing was written for {name!r}")
        st = sample_type or first
        if schema_ref is None and st is not None and getattr(st, "__atdata_sample__", False):
            schema_ref = self._publish_in(provider, st)
        refs = [ShardRef(url, i.sha256, i.size, i.num_samples) for i, url in put]
        entry = DatasetEntry(
            name=name, shards=refs, version=version, schema_ref=schema_ref, description=description,
            license=license, tags=list(tags or ()), metadata=dict(metadata or {}), entry_id=write_id,
            data_store=_store_url(store),
        )  # fmt: skip
        keep = getattr(store, "keep_shards", None)  # PDSBlobStore: a record must hold the blobs
        if keep is not None:
            keep(self, entry)
        stored = provider.add_entry(entry)  # an entry with this entry_id already there wins
        _check_same_name(stored, name, write_id)
        _check_same_shards(stored, refs, write_id)
        return stored

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

    def _publish_in(self, provider: IndexProvider, sample_type: type) -> str:
        if provider is self.provider:
            return self.publish_schema(sample_type, "auto")  # a written type reuses its version
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

        ``name="@handle/name"`` (the logged-in account of ``Index(atmosphere=client)``)
        publishes to the atmosphere instead and returns the published
        :class:`~atdata.atmosphere.AtmosphereIndexEntry`: local shards are uploaded as blobs of
        the account's PDS, http(s) shards are referenced where they are, and with
        ``data_store`` (or ``copy=True``: PDS blobs) the samples are written into it first
        (S3 shards need one of those: a public record must not point at a credentialed source).

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
            prefix: Store key prefix of copied shards (default: the dataset name); a write id
                is appended, so a retried or repeated copy never overwrites another.
            maxcount, maxsize: Shard limits when copying.
            **kwargs: ``cache_local`` and other store options are accepted and ignored.
        """
        if self._is_remote(name):
            return self._remote_writer(name, "insert_named")(
                self, name, ds, data_store=data_store, copy=copy, schema_ref=schema_ref,
                version=version, description=description, license=license, tags=tags or (),
                metadata=metadata, maxcount=maxcount, maxsize=maxsize,
            )  # fmt: skip
        provider, local = self._route(name)
        store = data_store or self._store_for(provider) or (self._write_store() if copy else None)
        if store is not None:
            samples = ds.ordered() if hasattr(ds, "ordered") else ds
            return _with_store(self, provider, store).write_samples(
                samples, name=local, maxcount=maxcount, maxsize=maxsize, description=description,
                license=license, tags=tags or (), metadata=metadata, version=version,
                sample_type=getattr(ds, "sample_type", None), schema_ref=schema_ref,
                key_prefix=prefix,
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
        provider, local = self._route(name)
        # a view without a store (nor repositories: `local` is already routed) never copies
        return _with_store(self, provider, None).insert_dataset(
            ds, name=local, schema_ref=schema_ref, metadata=metadata
        )

    # -- labels -----------------------------------------------------------------------------
    def label(
        self, name: str, cid: str, *, version: str | None = None, description: str | None = None
    ) -> None:
        """Point label ``name`` (optionally ``"<repo>/<name>"``, at ``version``) to entry ``cid``.

        Setting the same name and version again moves the label.

        Raises:
            NotFoundError: (a ``KeyError``) When no entry has that CID.
        """
        from atdata.index._named_records import put_label

        provider, local = self._route(name)
        entry_by_cid(provider, cid)  # a label never points at nothing
        put_label(provider, local, cid, version, description)

    def get_label(self, name: str, version: str | None = None) -> DatasetEntry:
        """The entry label ``name`` points to (at ``version``, else the most recently set).

        ``"@handle/name"`` reads the label record of that atmosphere account (through the
        index's atmosphere, anonymous unless a client was given): its
        :class:`~atdata.atmosphere.AtmosphereIndexEntry`.

        Raises:
            NotFoundError: (a ``KeyError``) When there is no such label.
        """
        from atdata.index._named_records import get_label

        if self._is_remote(name) and name.startswith("@") and "/" in name:
            client = self._remote_client(name)
            who, _, label = name[1:].partition("/")
            return client.get_dataset_entry(client.resolve_label(who, label, version))
        provider, local = self._route(name)
        return entry_by_cid(provider, get_label(provider, local, version)["cid"])

    @property
    def labels(self) -> Iterator[tuple[str, str, str | None]]:
        """``(name, cid, version)`` of every label of this index and its repositories (lazy)."""
        from atdata.index._named_records import list_labels

        for provider in (self.provider, *(r.provider for r in self._repos.values())):
            yield from list_labels(provider)

    def list_labels(self, repo: str | None = None) -> list[tuple[str, str, str | None]]:
        """``(name, cid, version)`` of every label (of ``repo`` only, when given)."""
        from atdata.index._named_records import list_labels

        if repo is None:
            return list(self.labels)
        if repo == "local":
            return list_labels(self.provider)
        if repo not in self._repos:
            raise NotFoundError(f"no repository {repo!r}; mounted: {['local', *self._repos]}")
        return list_labels(self._repos[repo].provider)

    # -- lenses -------------------------------------------------------------------------------
    def store_lens(
        self, lens_obj: Any, *, name: str, version: str | None = None,
        description: str | None = None, source_schema: str | None = None,
        view_schema: str | None = None,
    ) -> str:  # fmt: skip
        """Store a lens (its schemas and where its code lives); its reference string.

        Returns:
            ``"atdata://local/lens/<name>@<version>"`` (version: given, else latest patch + 1).
        """
        from atdata.index._named_records import lens_record

        rec = lens_record(
            self.provider, lens_obj, name, version, description, source_schema, view_schema
        )
        return str(rec["$ref"])

    def get_lens(self, ref: str) -> dict[str, Any]:
        """A stored lens record (``name``, ``version``, ``sourceSchema``, ``viewSchema``, ...).

        Raises:
            NotFoundError: (a ``KeyError``) When there is no such lens.
        """
        from atdata.index._named_records import get_lens_record

        return get_lens_record(self.provider, ref)

    def load_lens(
        self, ref: str, *, source_type: type | None = None, view_type: type | None = None
    ) -> Any:
        """A working :class:`~atdata.Lens` from a stored record, registered in the network."""
        from atdata.index._named_records import load_lens

        return load_lens(self.get_lens(ref), source_type, view_type)

    @property
    def lenses(self) -> Iterator[dict[str, Any]]:
        """Every stored lens record (lazy)."""
        return iter(self.list_lenses())

    def list_lenses(self) -> list[dict[str, Any]]:
        """Every stored lens record, by name then version."""
        from atdata.index._named_records import list_lens_records

        return list_lens_records(self.provider)

    def find_lenses(
        self, source_schema: str, view_schema: str | None = None
    ) -> list[dict[str, Any]]:
        """Stored lenses from schema ``source_schema`` (to ``view_schema`` when given)."""
        return [
            r for r in self.list_lenses()
            if r.get("sourceSchema") == source_schema
            and (view_schema is None or r.get("viewSchema") == view_schema)
        ]  # fmt: skip

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

    def _remote_writer(self, name: str, what: str) -> Any:
        """The given client's ``what`` (``write_named``/``insert_named``) for atmosphere name
        ``name``: writing needs a logged-in client (the anonymous one only reads)."""
        call = getattr(self._atmosphere, what, None)
        if call is None or not getattr(self._atmosphere, "is_authenticated", False):
            off = " (this index was made with atmosphere=None)" if self._atmosphere is None else ""
            raise ConfigError(
                f"writing {name!r} publishes to the atmosphere and needs a logged-in client"
                f"{off}: atdata.Index(atmosphere=atdata.atmosphere.Atmosphere.login(handle, "
                "app_password)); a bare name writes to this index"
            )
        return call

    def _promoter(self, atmosphere: Any, what: str) -> Any:
        client = atmosphere if atmosphere is not None else self._atmosphere
        if not callable(getattr(client, what, None)):
            raise ConfigError(
                f"{what} needs a logged-in atdata.atmosphere.Atmosphere: "
                "Index(atmosphere=Atmosphere.login(handle, app_password)) or atmosphere="
            )
        return getattr(client, what)

    def promote_entry(
        self,
        entry_name: str,
        atmosphere: Promoter | None = None,
        *,
        name: str | None = None,
        description: str | None = None,
        tags: list[str] | None = None,
        license: str | None = None,
        **kwargs: Any,
    ) -> Any:
        """Publish dataset ``entry_name`` and its schema to the atmosphere (idempotent).

        The atmosphere is this index's (``Index(atmosphere=client)``) unless one is given. The
        index layer does not import the atmosphere layer: the client does the publishing
        (``client.promote_entry(index, name, **options)``; options and result as
        :func:`atdata.atmosphere.promote_entry`).

        Args:
            entry_name: The local dataset.
            atmosphere: A logged-in client (default: this index's).
            name: The name on the atmosphere (default: ``entry_name``).
            description, tags, license: Override the entry's fields.

        Returns:
            The entry record's AT-URI (a ``str`` carrying every record and blob written).

        Raises:
            ConfigError: (a ``ValueError``) When there is no atmosphere client.
        """
        promote = self._promoter(atmosphere, "promote_entry")
        opts = {"as_name": name, "description": description, "tags": tags, "license": license}
        kwargs.update({k: v for k, v in opts.items() if v is not None})
        return promote(self, entry_name, **kwargs)

    def promote_dataset(
        self,
        dataset: Any,
        *,
        name: str,
        sample_type: type | None = None,
        schema_version: str = "1.0.0",
        description: str | None = None,
        tags: list[str] | None = None,
        license: str | None = None,
    ) -> str:
        """Publish a :class:`~atdata.Dataset` (and its schema) to this index's atmosphere.

        Returns:
            The entry record's AT-URI.

        Raises:
            ConfigError: (a ``ValueError``) When the index has no atmosphere client.
        """
        publish = self._promoter(None, "promote_dataset")
        return str(
            publish(
                dataset,
                name=name,
                sample_type=sample_type,
                schema_version=schema_version,
                description=description,
                tags=tags,
                license=license,
            )
        )

    def status(self) -> dict[str, Any]:
        """Which provider and store are configured and whether each is reachable."""
        out: dict[str, Any] = {}
        for what, obj in (("provider", self.provider), ("data_store", self._write_store())):
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


def _with_store(index: Index, provider: IndexProvider, store: Any) -> Index:
    """A view of ``index`` writing to ``provider`` with ``store`` as its explicit data store."""
    view = Index.__new__(Index)
    view.__dict__.update(index.__dict__)
    if provider is not index.provider:  # the class cache belongs to the index's own provider
        view._types, view._namespace = {}, SchemaNamespace()
    view.provider = provider
    view._repos = {}
    view.data_store = store
    return view


def _store_url(store: Any) -> str | None:
    """What an entry records as its ``data_store``: the store's ``url``, else its class name (a
    store with only the documented protocol, e.g. ``PDSBlobStore``, need not have a ``url``)."""
    url = getattr(store, "url", None)
    return str(url) if url is not None else type(store).__name__
