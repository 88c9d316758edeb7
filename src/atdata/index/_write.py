"""Writing an :class:`~atdata.Index`'s entries: samples into a data store, or an existing
dataset recorded (or copied) as a new entry.

The ``Index`` methods :meth:`~atdata.Index.write_samples` and
:meth:`~atdata.Index.insert_dataset` carry the documented signatures and hand their arguments
to the functions here.
"""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

from atdata._errors import ConfigError, IntegrityError
from atdata.index._entry import DatasetEntry, ShardRef, check_name
from atdata.index._register import shard_refs_of
from atdata.providers._base import IndexProvider
from atdata.stores._base import put_samples

if TYPE_CHECKING:
    from atdata.index._index import Index

__all__ = ["insert_dataset", "with_store", "write_samples"]


def write_samples(
    index: Index,
    samples: Iterable[Any],
    *,
    name: str,
    maxcount: int | None,
    maxsize: int | None,
    manifest: bool,
    description: str | None,
    license: str | None,
    tags: Iterable[str],
    metadata: dict[str, Any] | None,
    version: str | None,
    key: Any,
    write_id: str | None,
    sample_type: type | None,
    schema_ref: str | None,
    key_prefix: str | None,
) -> DatasetEntry:
    """:meth:`Index.write_samples <atdata.Index.write_samples>` (documented there)."""
    if index._is_remote(name):
        if write_id is not None:
            raise ConfigError(
                f"write_id= is for this index's own entries; {name!r} is published to the "
                "atmosphere (publishing again with the same samples reuses the blobs)"
            )
        return index._remote_writer(name, "write_named")(
            index, name, samples, maxcount=maxcount, maxsize=maxsize, manifest=manifest,
            sample_type=sample_type, schema_ref=schema_ref, version=version,
            description=description, license=license, tags=tags, metadata=metadata,
        )  # fmt: skip
    provider, name = index._route(name)
    name = check_name(name)
    store = index._store_for(provider) or index._write_store()
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
        schema_ref = index._publish_in(provider, st)
    refs = [ShardRef(url, i.sha256, i.size, i.num_samples) for i, url in put]
    entry = DatasetEntry(
        name=name, shards=refs, version=version, schema_ref=schema_ref, description=description,
        license=license, tags=list(tags or ()), metadata=dict(metadata or {}), entry_id=write_id,
        data_store=_store_url(store),
    )  # fmt: skip
    keep = getattr(store, "keep_shards", None)  # PDSBlobStore: a record must hold the blobs
    if keep is not None:
        keep(index, entry)
    stored = provider.add_entry(entry)  # an entry with this entry_id already there wins
    _check_same_name(stored, name, write_id)
    _check_same_shards(stored, refs, write_id)
    return stored


def insert_dataset(
    index: Index,
    ds: Any,
    *,
    name: str,
    schema_ref: str | None,
    description: str | None,
    license: str | None,
    tags: Iterable[str] | None,
    metadata: dict[str, Any] | None,
    version: str | None,
    data_store: Any,
    copy: bool,
    prefix: str | None,
    maxcount: int | None,
    maxsize: int | None,
) -> DatasetEntry:
    """:meth:`Index.insert_dataset <atdata.Index.insert_dataset>` (documented there)."""
    if index._is_remote(name):
        return index._remote_writer(name, "insert_named")(
            index, name, ds, data_store=data_store, copy=copy, schema_ref=schema_ref,
            version=version, description=description, license=license, tags=tags or (),
            metadata=metadata, maxcount=maxcount, maxsize=maxsize,
        )  # fmt: skip
    provider, local = index._route(name)
    store = data_store or index._store_for(provider) or (index._write_store() if copy else None)
    if store is not None:
        samples = ds.ordered() if hasattr(ds, "ordered") else ds
        return with_store(index, provider, store).write_samples(
            samples, name=local, maxcount=maxcount, maxsize=maxsize, description=description,
            license=license, tags=tags or (), metadata=metadata, version=version,
            sample_type=getattr(ds, "sample_type", None), schema_ref=schema_ref,
            key_prefix=prefix,
        )  # fmt: skip
    local = check_name(local)
    refs = shard_refs_of(ds)
    st = getattr(ds, "sample_type", None)
    if schema_ref is None and st is not None and getattr(st, "__atdata_sample__", False):
        schema_ref = index._publish_in(provider, st)
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


def _store_url(store: Any) -> str | None:
    """What an entry records as its ``data_store``: the store's ``url``, else its class name (a
    store with only the documented protocol, e.g. ``PDSBlobStore``, need not have a ``url``)."""
    url = getattr(store, "url", None)
    return str(url) if url is not None else type(store).__name__


def with_store(index: Index, provider: IndexProvider, store: Any) -> Index:
    """A view of ``index`` writing to ``provider`` with ``store`` as its explicit data store."""
    from atdata.index._index import Index
    from atdata.index._schemas import SchemaNamespace

    view = Index.__new__(Index)
    view.__dict__.update(index.__dict__)
    if provider is not index.provider:  # the class cache belongs to the index's own provider
        view._types, view._namespace = {}, SchemaNamespace()
    view.provider = provider
    view._repos = {}
    view.data_store = store
    return view
