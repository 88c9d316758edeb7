"""``Index.write_samples(..., name="@handle/name")`` and ``Index.insert_dataset(ds,
name="@handle/name")``: publish to the logged-in account instead of the local index.

What the index layer calls through :meth:`atdata.atmosphere.Atmosphere.write_named` and
:meth:`~atdata.atmosphere.Atmosphere.insert_named` (it cannot import this layer). The shards
go to the account's PDS as blobs (:class:`~atdata.atmosphere.PDSBlobStore`) unless a
``data_store`` is given; the schema and the ``science.alt.dataset.entry`` record are published
(as :func:`atdata.atmosphere.promote_entry` does), and the result is the published
:class:`~atdata.atmosphere.AtmosphereIndexEntry`. No local index entry is made; the sample
type's schema is stored in the index too (the publishing reads it from there).
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from typing import Any

from atdata._errors import ConfigError

__all__ = ["insert_named", "own_name", "write_named"]


def own_name(client: Any, ref: str) -> str:
    """The dataset name of ``"@handle/name"``, checked to be the logged-in account's.

    Raises:
        ConfigError: (a ``ValueError``) Not logged in, an AT URI, or another account's handle.
    """
    if not getattr(client, "is_authenticated", False):
        raise ConfigError(
            f"writing {ref!r} publishes to the atmosphere and needs a logged-in client: "
            "atdata.Index(atmosphere=atdata.atmosphere.Atmosphere.login(handle, app_password))"
        )
    if not ref.startswith("@") or "/" not in ref:
        raise ConfigError(
            f"{ref!r} cannot be written: give the dataset as '@{client.handle}/name' "
            "(an AT URI names an existing record)"
        )
    who, _, name = ref[1:].partition("/")
    if who not in (client.handle, client.did):
        raise ConfigError(
            f"{ref!r} names account @{who}, but this index's atmosphere is logged in as "
            f"@{client.handle} ({client.did}): a record can only be written to your own "
            f"repository; use '@{client.handle}/{name}' or log in as @{who}"
        )
    if not name or "@" in name:
        raise ConfigError(
            f"{ref!r} is not a dataset name to write; use '@{client.handle}/name' and give "
            "version= for a version"
        )
    return name


def _publish(index: Any, client: Any, entry: Any) -> Any:
    from atdata.atmosphere._promote import promote_dataset_entry

    if entry.schema_ref and entry.schema_ref.startswith("at://"):
        raise ConfigError(
            f"schema_ref {entry.schema_ref!r} is an atmosphere record; give the index's own "
            "reference (index.publish_schema(SampleType)) or leave schema_ref out: the schema "
            "is published with the dataset"
        )
    res = promote_dataset_entry(index, entry, client)
    return client.get_dataset_entry(str(res))


def write_named(
    index: Any,
    client: Any,
    ref: str,
    samples: Iterable[Any],
    *,
    data_store: Any = None,
    maxcount: int | None = None,
    maxsize: int | None = None,
    manifest: bool = False,
    sample_type: type | None = None,
    schema_ref: str | None = None,
    version: str | None = None,
    description: str | None = None,
    license: str | None = None,
    tags: Iterable[str] = (),
    metadata: dict[str, Any] | None = None,
) -> Any:
    """Write ``samples`` into shards in ``data_store`` (default: the account's PDS blobs, one
    per shard, capped at the server's blob limit) and publish them as ``ref``.

    Returns:
        The published :class:`~atdata.atmosphere.AtmosphereIndexEntry`.
    """
    from atdata.atmosphere._upload import PDSBlobStore
    from atdata.index._entry import DatasetEntry, ShardRef
    from atdata.stores._base import put_samples

    name = own_name(client, ref)
    store = data_store if data_store is not None else PDSBlobStore(client)
    if maxcount is None and maxsize is None:
        maxcount = 10**12
    put, first = put_samples(
        store, samples, f"{name}/{uuid.uuid4().hex}",
        name.replace("/", "-").replace("%", "%%") + "-%06d.tar",
        maxcount=maxcount, maxsize=maxsize, manifest=manifest,
    )  # fmt: skip
    if not put:
        raise ConfigError(f"no samples were given, so nothing was published as {ref!r}")
    st = sample_type or first
    if schema_ref is None and st is not None and getattr(st, "__atdata_sample__", False):
        schema_ref = index.publish_schema(st, "auto")
    entry = DatasetEntry(
        name=name, shards=[ShardRef(url, i.sha256, i.size, i.num_samples) for i, url in put],
        version=version, schema_ref=schema_ref, description=description, license=license,
        tags=list(tags or ()), metadata=dict(metadata or {}),
    )  # fmt: skip
    return _publish(index, client, entry)


def insert_named(
    index: Any,
    client: Any,
    ds: Any,
    ref: str,
    *,
    data_store: Any = None,
    copy: bool = False,
    schema_ref: str | None = None,
    version: str | None = None,
    description: str | None = None,
    license: str | None = None,
    tags: Iterable[str] = (),
    metadata: dict[str, Any] | None = None,
    maxcount: int | None = None,
    maxsize: int | None = None,
) -> Any:
    """Publish dataset ``ds`` as ``ref``: local shards are uploaded as blobs of the account,
    http(s) shards are referenced where they are; with ``data_store`` (or ``copy=True``, into
    PDS blobs) the samples are written into that store first. S3 shards need ``copy=True``
    (or ``data_store``): a public record must not send readers to a credentialed source.

    Raises:
        ConfigError: (a ``ValueError``) S3 shards without ``copy``/``data_store``, or a name
            that is not the logged-in account's.

    Returns:
        The published :class:`~atdata.atmosphere.AtmosphereIndexEntry`.
    """
    from atdata.index._entry import DatasetEntry
    from atdata.index._register import shard_refs_of

    name = own_name(client, ref)
    st = getattr(ds, "sample_type", None)
    if metadata is None and isinstance(getattr(ds, "metadata", None), dict):
        metadata = ds.metadata
    if data_store is not None or copy:
        return write_named(
            index, client, ref, ds.ordered() if hasattr(ds, "ordered") else ds,
            data_store=data_store, maxcount=maxcount, maxsize=maxsize, sample_type=st,
            schema_ref=schema_ref, version=version, description=description, license=license,
            tags=tags, metadata=metadata,
        )  # fmt: skip
    urls = list(ds.list_shards())
    if any(u.startswith("s3://") for u in urls):
        raise ConfigError(
            f"dataset for {ref!r} is read from S3 ({urls[0]}, ...), with credentials a public "
            "record must not point readers at; pass copy=True to upload the samples as blobs "
            "of your PDS (or data_store=), or publish the s3 locations deliberately with "
            "index.insert_dataset(ds, name=...) then index.promote_entry(name)"
        )
    if schema_ref is None and st is not None and getattr(st, "__atdata_sample__", False):
        schema_ref = index.publish_schema(st, "auto")
    entry = DatasetEntry(
        name=name, shards=shard_refs_of(ds), version=version, schema_ref=schema_ref,
        description=description, license=license, tags=list(tags or ()),
        metadata=dict(metadata or {}),
    )  # fmt: skip
    return _publish(index, client, entry)
