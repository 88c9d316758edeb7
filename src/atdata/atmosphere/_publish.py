"""Publishing schemas, datasets and lenses as records in the logged-in account's repository.

Every publish is idempotent: a schema version is written once (under a generated TID key; an
identical one already there is found by listing); a dataset entry is matched by name (and
version) and only rewritten when its content changed.

Examples:
    >>> _same_entry({"name": "a", "createdAt": "x", "storage": {}}, {"name": "a", "createdAt": "y", "storage": {}})
    True
"""

from __future__ import annotations

import dataclasses
from typing import Any

from atdata._errors import ConfigError
from atdata.atmosphere._cid import record_cid
from atdata.atmosphere._labels import LABEL, label_record
from atdata.atmosphere._records import (
    ENTRY,
    LENS,
    SCHEMA,
    CodeRef,
    entry_record,
    lens_record,
    storage_blobs,
    storage_http,
    storage_s3,
    unpack_metadata,
)
from atdata.atmosphere._upload import PDSBlobStore

__all__ = [
    "Published",
    "find_entries",
    "publish_dataset",
    "publish_entry",
    "publish_label",
    "publish_lens",
    "publish_schema",
]


@dataclasses.dataclass
class Published:
    """What a publish wrote (or found already there).

    Attributes:
        uri: The record's AT-URI.
        cid: The record's CID (as the PDS reports it, equal to :func:`~atdata.atmosphere.record_cid`).
        created: Whether a record was written (``False``: an identical one existed).
        blobs: CIDs of the blobs the record references (blob storage only).
        label: AT-URI of the ``science.alt.dataset.label`` record naming the entry (datasets).
    """

    uri: str
    cid: str
    created: bool
    blobs: list[str] = dataclasses.field(default_factory=list)
    label: str | None = None


def _existing(atmo: Any, collection: str, rkey: str) -> tuple[dict[str, Any], str] | None:
    """``(value, cid)`` of this account's record at ``rkey``, or ``None``."""
    try:
        value = atmo.get_record(f"at://{atmo.did}/{collection}/{rkey}")
    except KeyError:  # RecordNotFoundError, or a test double's KeyError
        return None
    return value, record_cid(value)


def _written(out: Any, record: dict[str, Any]) -> tuple[str, str]:
    """``(uri, cid)`` of a write; the CID is computed when the client does not report it."""
    return str(out), getattr(out, "cid", None) or record_cid(record)


def _records(atmo: Any, collection: str) -> list[tuple[str, str, dict[str, Any]]]:
    """Every record of ``collection`` in the account's repository: ``(uri, cid, value)``."""
    return list(atmo.records(collection))


def publish_schema(
    atmo: Any,
    sample_type: type | dict[str, Any],
    version: str = "1.0.0",
    *,
    name: str | None = None,
    description: str | None = None,
    metadata: dict[str, Any] | None = None,
    rkey: str | None = None,
) -> Published:
    """Publish a schema version once: a new record under a generated TID key (or ``rkey``).

    Without ``rkey`` the account's schema records are listed first: one with the same name and
    version and an identical body is returned as it is (``created=False``), so publishing the
    same type again (as every dataset publish does) writes no duplicate. Records written by
    earlier releases at the key ``<name>:<version>`` are found the same way.

    Args:
        atmo: A logged-in :class:`~atdata.atmosphere.Atmosphere`.
        sample_type: A ``@packable`` type, or a ready schema record dict.
        version: Semantic version.
        name: Record name (default: the class name).
        description: Optional description.
        metadata: Optional ``schemaMetadata`` (license, tags).
        rkey: An explicit record key: an identical record there is returned, none there is
            written; the name and version are not looked up elsewhere.

    Raises:
        ConfigError: When this version is already published with a different body.
    """
    from atdata._wire.schema_json import schema_fingerprint, schema_record

    if isinstance(sample_type, dict):
        rec = dict(sample_type)
    else:
        rec = schema_record(sample_type, version, description, name=name, metadata=metadata)
    if rkey is not None:
        at = _existing(atmo, SCHEMA, rkey)
        found = None if at is None else (f"at://{atmo.did}/{SCHEMA}/{rkey}", at[1], at[0])
    else:
        found = next(
            (
                r
                for r in _records(atmo, SCHEMA)
                if r[2].get("name") == rec["name"] and r[2].get("version") == rec["version"]
            ),
            None,
        )
    if found is not None:
        uri, cid, value = found
        if schema_fingerprint(value.get("schema", {})) != schema_fingerprint(rec["schema"]):
            raise ConfigError(
                f"schema {rec['name']} {rec['version']} is already published at {uri} with a different "
                "body; publish the changed type under a new version"
            )
        return Published(uri, cid, created=False)
    uri, cid = _written(atmo.create_record(SCHEMA, rec, rkey=rkey), rec)
    return Published(uri, cid, created=True)


def _same_entry(a: dict[str, Any], b: dict[str, Any]) -> bool:
    strip = lambda r: {k: v for k, v in r.items() if k != "createdAt"}  # noqa: E731
    return strip(a) == strip(b)


def find_entries(atmo: Any, name: str) -> list[tuple[str, str, dict[str, Any]]]:
    """The account's entry records named ``name``: ``(uri, cid, value)``, newest last."""
    out = [r for r in _records(atmo, ENTRY) if r[2].get("name") == name]
    out.sort(key=lambda r: str(r[2].get("createdAt", "")))
    return out


def publish_label(
    atmo: Any,
    name: str,
    dataset_uri: str,
    *,
    version: str | None = None,
    description: str | None = None,
) -> Published:
    """Point the label ``name`` (``version``) at ``dataset_uri``: written once, repointed when it
    named another entry.

    Upstream atdata resolves ``@handle/name[@version]`` through these labels.
    """
    rec = label_record(name, dataset_uri, version=version, description=description)
    for uri, cid, value in _records(atmo, LABEL):
        if value.get("name") != name or value.get("version") != (version or None):
            continue
        if value.get("datasetUri") == str(dataset_uri):
            return Published(uri, cid, created=False)
        out = atmo.put_record(LABEL, uri.rsplit("/", 1)[1], rec)
        return Published(*_written(out, rec), created=True)
    return Published(*_written(atmo.create_record(LABEL, rec), rec), created=True)


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
    manifests: bool | None = None,
    rkey: str | None = None,
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
        manifests: Carry the shards' manifests (uploaded as blobs, listed in the record's
            ``manifests``) so remote ``ds.query`` works: ``None`` when every shard has one,
            ``True`` requires them, ``False`` leaves them out.
        rkey: Write the entry at this record key (default: found by name, version and split,
            else a new key).

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
        pairs = list(zip(shards, shas, strict=True))
        st = storage_s3(bucket, pairs, region=region, endpoint=endpoint)  # type: ignore[arg-type]
        size = {"shards": len(shards)}
    else:
        raise ConfigError(f"storage must be 'blobs', 'http' or 's3', got {storage!r}")
    if num_samples is not None:
        size["samples"] = num_samples
    extra: dict[str, Any] = {}
    if manifests is not False and size.get("shards") == len(shards):
        found = carry_manifests(atmo, _manifest_places(storage, list(shards), bucket, endpoint))
        if found is not None:
            extra["manifests"] = found
        elif manifests:
            raise ConfigError(
                f"dataset {name!r}: not every shard has a manifest beside it; build them with "
                "`atdata manifest build` or publish with manifests=False"
            )
    return publish_entry(
        atmo,
        name,
        schema_ref,
        st,
        description=description,
        tags=tags,
        license=license,
        size=size,
        metadata=meta or None,
        extra=extra,
        blob_cids=blob_cids,
        rkey=rkey,
    )


def _manifest_places(
    storage: str, shards: list[str], bucket: str | None, endpoint: str | None
) -> tuple[Any, list[str]]:
    """(source reading sidecars, shard locations) for the manifests beside the shards."""
    if storage == "s3":
        from atdata.stores._s3 import S3Source

        urls = [f"s3://{bucket}/{k}" for k in shards]
        return S3Source(urls, **({"endpoint_url": endpoint} if endpoint else {})), urls
    if storage == "http":
        from atdata._shards.sources import URLSource

        return URLSource(shards), shards
    return None, shards


def carry_manifests(atmo: Any, places: tuple[Any, list[str]]) -> list[dict[str, Any]] | None:
    """Upload the manifest beside each shard (JSON header, parquet rows) as blobs; the entry's
    ``manifests`` list (``{"header": blob, "samples": blob}`` per shard, in shard order), or
    ``None`` when a shard has no manifest."""
    from atdata.manifest._paths import manifest_paths
    from atdata.manifest._read import read_sidecar

    source, shards = places
    files: list[tuple[bytes, bytes | None]] = []
    for shard in shards:
        jpath, ppath = manifest_paths(shard)
        try:
            header = read_sidecar(source, jpath)
            rows = read_sidecar(source, ppath) if header is not None else None
        except Exception:  # an unreachable sidecar: publish without manifests
            return None
        if header is None:
            return None
        files.append((header, rows))
    out = []
    for header, rows in files:
        item = {
            "header": atmo.upload_blob(header, "application/octet-stream")
        }  # (the SDK re-encodes a JSON body)
        if rows is not None:
            item["samples"] = atmo.upload_blob(rows, "application/vnd.apache.parquet")
        out.append(item)
    return out


def publish_entry(
    atmo: Any,
    name: str,
    schema_ref: str,
    storage: dict[str, Any],
    *,
    description: str | None = None,
    tags: list[str] | None = None,
    license: str | None = None,
    size: dict[str, int] | None = None,
    metadata: dict[str, Any] | None = None,
    extra: dict[str, Any] | None = None,
    blob_cids: list[str] | None = None,
    rkey: str | None = None,
) -> Published:
    """Write (or find) the entry record for a ready ``storage`` object, then its label.

    ``metadata["version"]`` and ``metadata["split"]`` identify the entry among those of the same
    name (same name, version and split: updated in place). The label ``name`` (``version``) points
    at the unsplit data or its ``train`` split. ``extra`` adds record fields (``manifests``,
    ``contentMetadata``, ...). With ``rkey`` the record is the one at that key (an identical one
    there is kept, a different one replaced).
    """
    meta = dict(metadata or {})
    rec = entry_record(
        name,
        schema_ref,
        storage,
        description=description,
        tags=tags,
        license=license,
        size=size,
        metadata=meta or None,
    )
    rec.update(extra or {})
    pub = _put_entry(atmo, name, meta, rec, list(blob_cids or []), rkey)
    version, split = meta.get("version"), meta.get("split")
    if not split or split == "train":  # a label names one entry: unsplit data or its train split
        label = publish_label(atmo, name, pub.uri, version=version, description=description)
        pub.label = label.uri
    return pub


def _put_entry(
    atmo: Any,
    name: str,
    meta: dict[str, Any],
    rec: dict[str, Any],
    blob_cids: list[str],
    rkey: str | None = None,
) -> Published:
    """Same name + version + split: update that record in place (idempotent), else create one;
    with ``rkey``, the record at that key."""
    if rkey is not None:
        found = _existing(atmo, ENTRY, rkey)
        if found is not None and _same_entry(found[0], rec):
            return Published(
                f"at://{atmo.did}/{ENTRY}/{rkey}", found[1], created=False, blobs=blob_cids
            )
        if found is not None:
            rec["createdAt"] = found[0].get("createdAt", rec["createdAt"])
        out = atmo.put_record(ENTRY, rkey, rec)
        return Published(*_written(out, rec), created=True, blobs=blob_cids)
    for uri, cid, value in find_entries(atmo, name):
        m = unpack_metadata(value.get("metadata"))
        if m.get("version") == meta.get("version") and m.get("split") == meta.get("split"):
            if _same_entry(value, rec):
                return Published(uri, cid, created=False, blobs=blob_cids)
            rec["createdAt"] = value.get("createdAt", rec["createdAt"])
            out = atmo.put_record(ENTRY, uri.rsplit("/", 1)[1], rec, swap_record=cid)
            return Published(*_written(out, rec), created=True, blobs=blob_cids)
    return Published(*_written(atmo.create_record(ENTRY, rec), rec), created=True, blobs=blob_cids)


def publish_lens(
    atmo: Any,
    name: str,
    source_schema: str,
    target_schema: str,
    getter: CodeRef,
    putter: CodeRef,
    *,
    description: str | None = None,
    rkey: str | None = None,
    **fields: Any,
) -> Published:
    """Publish a lens record pointing at its getter/putter code (repository + commit + path).

    Publishing the same lens (same name, schemas, code and fields) again writes nothing; with
    ``rkey`` only the record at that key counts as the same. ``fields`` are
    :func:`lens_record`'s optional ones (``language``, ``metadata``, ``*_schema_version``).
    """
    rec = lens_record(
        name, source_schema, target_schema, getter, putter, description=description, **fields
    )
    for uri, cid, value in _records(atmo, LENS):
        if _same_entry(value, rec) and (rkey is None or uri.rsplit("/", 1)[-1] == rkey):
            return Published(uri, cid, created=False)
    out = (
        atmo.create_record(LENS, rec) if rkey is None else atmo.create_record(LENS, rec, rkey=rkey)
    )
    return Published(*_written(out, rec), created=True)
