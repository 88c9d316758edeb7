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

from collections.abc import Iterable, Iterator
from typing import Any, Protocol

from atdata._errors import ConfigError, NotFoundError
from atdata.index import _write
from atdata.index._catalog import Catalog, entry_by_cid
from atdata.index._entry import DatasetEntry
from atdata.index._schemas import publish_schema
from atdata.providers._base import IndexProvider
from atdata.stores._base import atdata_home

__all__ = ["Index", "Promoter", "atdata_home", "get_default_index", "set_default_index"]

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
        return _write.write_samples(
            self, samples, name=name, maxcount=maxcount, maxsize=maxsize, manifest=manifest,
            description=description, license=license, tags=tags, metadata=metadata,
            version=version, key=key, write_id=write_id, sample_type=sample_type,
            schema_ref=schema_ref, key_prefix=key_prefix,
        )  # fmt: skip

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
        return _write.insert_dataset(
            self, ds, name=name, schema_ref=schema_ref, description=description,
            license=license, tags=tags, metadata=metadata, version=version,
            data_store=data_store, copy=copy, prefix=prefix, maxcount=maxcount, maxsize=maxsize,
        )  # fmt: skip

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
        return _write.with_store(self, provider, None).insert_dataset(
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
