"""Promotion: publish a local index entry (its schema, then the dataset) to the atmosphere.

Local shards go up as blobs; ``http(s)://`` shards stay where they are (``storageHttp``) and
``s3://bucket/key`` shards become ``storageS3``. Idempotent: a rerun finds the schema version and
an entry with the same name, version and checksums, and writes nothing (other fields, such as a
new ``description=``, rewrite that entry in place, uploading nothing); a run that failed midway
(after some uploads, before the entry record) is completed by the next one (blob uploads are
content-addressed, so re-uploading gives the same CIDs).

Examples:
    >>> storage_kind(["/d/a.tar", "/d/b.tar"]), storage_kind(["https://x/a.tar"]), storage_kind(["s3://b/k.tar"])
    ('blobs', 'http', 's3')
"""

from __future__ import annotations

from typing import Any

from atdata._errors import ConfigError
from atdata.atmosphere._publish import (
    Published,
    find_entries,
    publish_dataset,
    publish_entry,
    publish_schema,
)
from atdata.atmosphere._records import STORAGE_BLOBS, now_iso, unpack_metadata

__all__ = ["PromoteResult", "promote_entry"]


class PromoteResult(str):
    """What a promotion wrote or found; as a string, the entry's AT-URI (what upstream returns).

    Attributes:
        schema_uri, schema_cid: The schema record.
        entry_uri, entry_cid: The dataset entry record.
        blobs: CIDs of the shard blobs (blob storage).
        created: Whether this run wrote the entry (``False``: it was already published).
        label_uri: The label record naming the entry.

    Examples:
        >>> r = PromoteResult("at://d/s/x", "c1", "at://d/e/y", "c2", [], True)
        >>> r == "at://d/e/y", r.uris
        (True, ['at://d/s/x', 'at://d/e/y'])
    """

    schema_uri: str
    schema_cid: str
    entry_uri: str
    entry_cid: str
    blobs: list[str]
    created: bool
    label_uri: str | None

    def __new__(
        cls,
        schema_uri: str,
        schema_cid: str,
        entry_uri: str,
        entry_cid: str,
        blobs: list[str],
        created: bool,
        label_uri: str | None = None,
    ) -> PromoteResult:
        self = super().__new__(cls, entry_uri)
        self.schema_uri, self.schema_cid = schema_uri, schema_cid
        self.entry_uri, self.entry_cid = entry_uri, entry_cid
        self.blobs, self.created, self.label_uri = list(blobs), created, label_uri
        return self

    @property
    def uris(self) -> list[str]:
        """The record URIs (schema, entry)."""
        return [self.schema_uri, self.entry_uri]

    def __repr__(self) -> str:
        return f"PromoteResult({self.entry_uri!r}, created={self.created})"


def storage_kind(urls: list[str]) -> str:
    """``blobs`` (local paths), ``http`` or ``s3`` for a list of shard locations, all alike."""
    kinds = {
        "http"
        if u.startswith(("http://", "https://"))
        else "s3"
        if u.startswith("s3://")
        else "pds"
        if u.startswith("at://")
        else "blobs"
        for u in urls
    }
    if len(kinds) != 1:
        raise ConfigError(
            "a promoted dataset's shards must all be local, all http(s), all s3:// or all PDS "
            "blobs (at://<did>/blob/<cid>)"
        )
    return kinds.pop()


def _schema_of(index: Any, ref: str) -> Any:
    from atdata.index._entry import parse_schema_ref

    name, version = parse_schema_ref(ref)
    getter = getattr(index, "get_schema_record", None) or index.get_schema
    for call in (lambda: getter(ref), lambda: getter(name, version)):
        try:
            rec = call()
        except TypeError:
            continue
        # an Index gives a LocalSchemaRecord; its SchemaRecord has created_at as stored (text)
        full = getattr(rec, "to_schema_record", None)
        return full() if full is not None else rec
    raise ConfigError(f"the index cannot return schema {ref!r}")


def _reuse_blobs(
    atmosphere: Any,
    target: str,
    schema_uri: str,
    kind: str,
    shas: list[str | None],
    common: dict[str, Any],
) -> Published | None:
    """When ``target`` (this version, this schema) is already published over blobs with these
    checksums, write its entry again over the same blobs (nothing is uploaded): unchanged fields
    write nothing, changed ones (description, tags, ...) update the record in place. ``None``
    when there is no such entry."""
    if kind != "blobs" or not all(shas):
        return None
    for _uri, _cid, value in find_entries(atmosphere, target):
        m = unpack_metadata(value.get("metadata"))
        st = value.get("storage") or {}
        if m.get("version") != common["version"] or value.get("schemaRef") != schema_uri:
            continue
        items = st.get("blobs") if st.get("$type") == STORAGE_BLOBS else None
        if not items or [(i.get("checksum") or {}).get("digest") for i in items] != shas:
            continue
        size = {k: v for k, v in (value.get("size") or {}).items() if k in ("bytes", "shards")}
        if common["num_samples"] is not None:
            size["samples"] = common["num_samples"]
        meta = dict(common["metadata"] or {})
        if common["version"]:
            meta["version"] = common["version"]
        manifests = value.get("manifests")
        return publish_entry(
            atmosphere,
            target,
            schema_uri,
            st,
            description=common["description"],
            tags=common["tags"],
            license=common["license"],
            size=size,
            metadata=meta or None,
            extra={"manifests": manifests} if manifests is not None else None,
            blob_cids=[str(i["blob"]["ref"]["$link"]) for i in items],
        )
    return None


def promote_entry(
    index: Any,
    name: str,
    atmosphere: Any,
    *,
    version: str | None = None,
    storage: str | None = None,
    max_blob_size: int | None = None,
    as_name: str | None = None,
    description: str | None = None,
    tags: list[str] | None = None,
    license: str | None = None,
) -> PromoteResult:
    """Publish ``index``'s dataset ``name`` (and its schema) to ``atmosphere``'s repository.

    Args:
        index: An :class:`~atdata.Index` (``get_entry_by_name(name, version)`` and ``get_schema_record(ref)``).
        name: Dataset name in the index.
        atmosphere: A logged-in :class:`~atdata.atmosphere.Atmosphere`.
        version: Dataset version (default: the latest).
        storage: ``"blobs"``, ``"http"`` or ``"s3"`` (default: from the shard URLs).
        max_blob_size: Cap per blob.
        as_name, description, tags, license: Override the entry's name and fields on the
            atmosphere record.

    Raises:
        ConfigError: No schema, mixed shard locations, or a schema version clash.
    """
    entry = index.get_entry_by_name(name, version)
    return promote_dataset_entry(
        index, entry, atmosphere, storage=storage, max_blob_size=max_blob_size, as_name=as_name,
        description=description, tags=tags, license=license,
    )  # fmt: skip


def promote_dataset_entry(
    index: Any,
    entry: Any,
    atmosphere: Any,
    *,
    storage: str | None = None,
    max_blob_size: int | None = None,
    as_name: str | None = None,
    description: str | None = None,
    tags: list[str] | None = None,
    license: str | None = None,
) -> PromoteResult:
    """:func:`promote_entry` for an entry in hand (it need not be in ``index`` yet: only its
    schema must be). Shards that are already blobs of ``atmosphere``'s repository
    (``at://<did>/blob/<cid>``, as :class:`~atdata.atmosphere.PDSBlobStore` records them) are
    referenced as they are, never uploaded again."""
    name = entry.name
    if not entry.schema_ref:
        raise ConfigError(
            f"dataset {name!r} has no schema; register its sample type before promoting it"
        )
    srec = _schema_of(index, entry.schema_ref)
    record = {
        "$type": "science.alt.dataset.schema",
        "name": srec.name,
        "version": srec.version,
        "schemaType": "jsonSchema",
        "schema": srec.body,
        "createdAt": srec.created_at or now_iso(),
        "atdataSchemaVersion": 1,
    }
    if srec.description:
        record["description"] = srec.description
    schema = publish_schema(atmosphere, record)

    urls = entry.urls
    kind = storage or storage_kind(urls)
    shas = [s.sha256 for s in entry.shards]
    meta = {k: v for k, v in (entry.metadata or {}).items() if k not in ("version", "split")}
    target = as_name or entry.name
    common: dict[str, Any] = {
        "version": entry.version,
        "description": description if description is not None else entry.description,
        "tags": tags if tags is not None else entry.tags,
        "license": license if license is not None else entry.license,
        "num_samples": entry.num_samples,
        "metadata": meta or None,
    }
    reused = _reuse_blobs(atmosphere, target, schema.uri, kind, shas, common)
    if reused is not None:
        return PromoteResult(
            schema.uri, schema.cid, reused.uri, reused.cid, reused.blobs, reused.created,
            reused.label,
        )  # fmt: skip
    if kind == "pds":
        pub = publish_entry(
            atmosphere, target, schema.uri, _own_blobs(atmosphere, entry),
            description=common["description"], tags=common["tags"], license=common["license"],
            size=_blob_size(entry), metadata={**(meta or {}), **_version_of(entry)} or None,
            blob_cids=[u.rsplit("/", 1)[1] for u in urls],
        )  # fmt: skip
    elif kind == "s3":
        buckets = {u[5:].split("/", 1)[0] for u in urls}
        if len(buckets) != 1:
            raise ConfigError(f"dataset {name!r} spans several S3 buckets; promote needs one")
        shards = [u[5:].split("/", 1)[1] for u in urls]
        pub = publish_dataset(
            atmosphere,
            target,
            schema.uri,
            shards=shards,
            sha256=shas,
            storage="s3",
            bucket=buckets.pop(),
            **common,
        )
    else:
        pub = publish_dataset(
            atmosphere,
            target,
            schema.uri,
            shards=urls,
            sha256=shas if kind == "http" else None,
            storage=kind,
            max_blob_size=max_blob_size,
            **common,
        )
    return PromoteResult(
        schema.uri, schema.cid, pub.uri, pub.cid, pub.blobs, pub.created, pub.label
    )


def _own_blobs(atmosphere: Any, entry: Any) -> dict[str, Any]:
    """``storageBlobs`` over an entry's ``at://<did>/blob/<cid>`` shards, which must be blobs of
    ``atmosphere``'s own repository (a record can only reference its repository's blobs)."""
    from atdata.atmosphere._blobs import _parse_blob_uri
    from atdata.atmosphere._records import storage_blobs

    blobs = []
    for shard in entry.shards:
        did, cid = _parse_blob_uri(shard.url)
        if did != atmosphere.did:
            raise ConfigError(
                f"shard {shard.url} of dataset {entry.name!r} is a blob of {did}, not of "
                f"{atmosphere.did}: a record can only reference its own repository's blobs; "
                "promote it from local shard files instead"
            )
        ref: dict[str, Any] = {
            "$type": "blob", "ref": {"$link": cid}, "mimeType": "application/x-tar",
            "size": shard.size or 0,
        }  # fmt: skip
        blobs.append((ref, shard.sha256))
    return storage_blobs(blobs)


def _blob_size(entry: Any) -> dict[str, int]:
    size = {"bytes": sum(s.size or 0 for s in entry.shards), "shards": len(entry.shards)}
    if entry.num_samples is not None:
        size["samples"] = entry.num_samples
    return size


def _version_of(entry: Any) -> dict[str, str]:
    return {"version": entry.version} if entry.version else {}
