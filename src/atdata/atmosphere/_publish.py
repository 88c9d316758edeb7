"""Publishing schemas, datasets and lenses as records in the logged-in account's repository.

Every publish is idempotent: a schema version lives at a fixed record key and is written once; a
dataset entry is matched by name (and version) and only rewritten when its content changed.

Examples:
    >>> _same_entry({"name": "a", "createdAt": "x", "storage": {}}, {"name": "a", "createdAt": "y", "storage": {}})
    True
"""

from __future__ import annotations

import dataclasses
from typing import Any

from atdata._errors import ConfigError
from atdata.atmosphere._blobs import PDSBlobStore
from atdata.atmosphere._cid import generate_cid
from atdata.atmosphere._records import (
    ENTRY,
    LENS,
    SCHEMA,
    CodeRef,
    entry_record,
    lens_record,
    schema_rkey,
    storage_blobs,
    storage_http,
    storage_s3,
    unpack_metadata,
)

__all__ = ["Published", "publish_dataset", "publish_lens", "publish_schema"]


@dataclasses.dataclass
class Published:
    """What a publish wrote (or found already there).

    Attributes:
        uri: The record's AT-URI.
        cid: The record's CID (as the PDS reports it, equal to :func:`generate_cid`).
        created: Whether a record was written (``False``: an identical one existed).
        blobs: CIDs of the blobs the record references (blob storage only).
    """

    uri: str
    cid: str
    created: bool
    blobs: list[str] = dataclasses.field(default_factory=list)


def _existing(atmo: Any, collection: str, rkey: str) -> tuple[dict[str, Any], str] | None:
    from atdata._errors import StorageError
    from atdata.atmosphere._resolve import get_record

    try:
        return get_record(atmo.pds, atmo.did, collection, rkey)
    except StorageError as exc:
        if "RecordNotFound" in str(exc) or "Could not locate record" in str(exc):
            return None
        raise


def publish_schema(
    atmo: Any,
    sample_type: type | dict[str, Any],
    version: str = "1.0.0",
    *,
    name: str | None = None,
    description: str | None = None,
    metadata: dict[str, Any] | None = None,
) -> Published:
    """Publish a schema version (record key ``<name>:<version>``), once.

    Args:
        atmo: A logged-in :class:`~atdata.atmosphere.Atmosphere`.
        sample_type: A ``@packable`` type, or a ready schema record dict.
        version: Semantic version.
        name: Record name (default: the class name).
        description: Optional description.
        metadata: Optional ``schemaMetadata`` (license, tags).

    Raises:
        ConfigError: When this version is already published with a different body.
    """
    from atdata._wire.schema_json import schema_fingerprint, schema_record

    if isinstance(sample_type, dict):
        rec = dict(sample_type)
    else:
        rec = schema_record(sample_type, version, description, name=name, metadata=metadata)
    rkey = schema_rkey(rec["name"], rec["version"])
    found = _existing(atmo, SCHEMA, rkey)
    uri = f"at://{atmo.did}/{SCHEMA}/{rkey}"
    if found is not None:
        value, cid = found
        if schema_fingerprint(value.get("schema", {})) != schema_fingerprint(rec["schema"]):
            raise ConfigError(
                f"schema {rec['name']} {rec['version']} is already published at {uri} with a different "
                "body; publish the changed type under a new version"
            )
        return Published(uri, cid, created=False)
    uri, cid = atmo.put_record(SCHEMA, rkey, rec)
    return Published(uri, cid, created=True)


def _same_entry(a: dict[str, Any], b: dict[str, Any]) -> bool:
    strip = lambda r: {k: v for k, v in r.items() if k != "createdAt"}  # noqa: E731
    return strip(a) == strip(b)


def find_entries(atmo_or_pds: Any, did: str, name: str) -> list[tuple[str, str, dict[str, Any]]]:
    """All entry records of ``did`` named ``name``: ``(uri, cid, value)``, newest last."""
    from atdata.atmosphere._resolve import iter_records

    pds = getattr(atmo_or_pds, "pds", atmo_or_pds)
    out = [r for r in iter_records(pds, did, ENTRY) if r[2].get("name") == name]
    out.sort(key=lambda r: str(r[2].get("createdAt", "")))
    return out


def publish_dataset(
    atmo: Any,
    name: str,
    schema_ref: str,
    *,
    shards: list[str] | None = None,
    sha256: list[str | None] | None = None,
    storage: str = "blobs",
    bucket: str | None = None,
    region: str | None = None,
    endpoint: str | None = None,
    version: str | None = None,
    split: str | None = None,
    description: str | None = None,
    tags: list[str] | None = None,
    license: str | None = None,
    num_samples: int | None = None,
    metadata: dict[str, Any] | None = None,
    max_blob_size: int | None = None,
) -> Published:
    """Publish a dataset entry whose shards are PDS blobs, HTTP URLs or S3 keys.

    Args:
        atmo: A logged-in :class:`~atdata.atmosphere.Atmosphere`.
        name: Dataset name (``@handle/<name>``).
        schema_ref: AT-URI of the schema record (see :func:`publish_schema`).
        shards: Local shard paths (``storage="blobs"``), URLs (``"http"``) or keys (``"s3"``).
        sha256: Per-shard sha256 (computed for blobs; required for http/s3 integrity checks).
        storage: ``"blobs"``, ``"http"`` or ``"s3"``.
        bucket, region, endpoint: S3 location (``storage="s3"``).
        version, split: Stored in the msgpack metadata; ``@name@version`` and ``split=`` select them.
        description, tags, license: Top-level discoverable fields.
        num_samples: Stored as ``size.samples``.
        metadata: Extra metadata (any msgpack value; floats are fine here).
        max_blob_size: Cap per blob (blob storage).

    Returns:
        :class:`Published`; publishing the same content again writes nothing.
    """
    if not shards:
        raise ConfigError(f"dataset {name!r} has no shards to publish")
    shas = list(sha256) if sha256 is not None else [None] * len(shards)
    if len(shas) != len(shards):
        raise ConfigError(f"got {len(shas)} sha256 digests for {len(shards)} shards")
    meta = dict(metadata or {})
    if version:
        meta["version"] = version
    if split:
        meta["split"] = split
    blob_cids: list[str] = []
    size: dict[str, int] = {}
    if storage == "blobs":
        store = PDSBlobStore(atmo, max_blob_size)
        refs = store.upload_shards(list(shards))
        st = storage_blobs([(r.ref, r.sha256) for r in refs])
        blob_cids = [r.cid for r in refs]
        size = {"bytes": sum(r.size for r in refs), "shards": len(refs)}
    elif storage == "http":
        st = storage_http(list(zip(shards, shas, strict=True)))  # type: ignore[arg-type]
        size = {"shards": len(shards)}
    elif storage == "s3":
        if not bucket:
            raise ConfigError("storage='s3' needs bucket=")
        st = storage_s3(
            bucket, list(zip(shards, shas, strict=True)), region=region, endpoint=endpoint
        )  # type: ignore[arg-type]
        size = {"shards": len(shards)}
    else:
        raise ConfigError(f"storage must be 'blobs', 'http' or 's3', got {storage!r}")
    if num_samples is not None:
        size["samples"] = num_samples
    rec = entry_record(
        name,
        schema_ref,
        st,
        description=description,
        tags=tags,
        license=license,
        size=size,
        metadata=meta or None,
    )
    # same name + version + split: update that record in place (idempotent), else create one
    for uri, cid, value in find_entries(atmo, atmo.did, name):
        m = unpack_metadata(value.get("metadata"))
        if m.get("version") == meta.get("version") and m.get("split") == meta.get("split"):
            if _same_entry(value, rec):
                return Published(uri, cid, created=False, blobs=blob_cids)
            rec["createdAt"] = value.get("createdAt", rec["createdAt"])
            uri, cid = atmo.put_record(ENTRY, uri.rsplit("/", 1)[1], rec, swap=cid)
            return Published(uri, cid, created=True, blobs=blob_cids)
    uri, cid = atmo.create_record(ENTRY, rec)
    return Published(uri, cid, created=True, blobs=blob_cids)


def publish_lens(
    atmo: Any,
    name: str,
    source_schema: str,
    target_schema: str,
    getter: CodeRef,
    putter: CodeRef,
    *,
    description: str | None = None,
) -> Published:
    """Publish a lens record pointing at its getter/putter code (repository + commit + path).

    Publishing the same lens (same name, schemas and code) again writes nothing.
    """
    from atdata.atmosphere._resolve import iter_records

    rec = lens_record(name, source_schema, target_schema, getter, putter, description=description)
    for uri, cid, value in iter_records(atmo.pds, atmo.did, LENS):
        if _same_entry(value, rec):
            return Published(uri, cid, created=False)
    uri, cid = atmo.create_record(LENS, rec)
    return Published(uri, cid, created=True)


def record_cid(record: dict[str, Any]) -> str:
    """The CID a PDS will report for ``record`` (alias of :func:`~atdata.generate_cid`)."""
    return generate_cid(record)
