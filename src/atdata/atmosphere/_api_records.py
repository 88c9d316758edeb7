"""The class API for schemas and datasets: ``SchemaPublisher``/``SchemaLoader``,
``DatasetPublisher``/``DatasetLoader`` (upstream atdata's documented names and signatures).

They are spellings of the function API (:func:`~atdata.atmosphere.publish_schema`,
:func:`~atdata.atmosphere.publish_dataset`, :func:`~atdata.atmosphere.load_remote`), on the same
code: publishing is idempotent and writes a label record, as the functions do.
"""

from __future__ import annotations

from typing import Any, ClassVar, Generic, TypeVar

from atdata._errors import ConfigError
from atdata._shards.sources import expand_braces
from atdata.atmosphere._lexicon import (
    DatasetMetadata,
    LexDatasetEntry,
    LexSchemaRecord,
    ShardChecksum,
)
from atdata.atmosphere._types import LEXICON_NAMESPACE, AtUri

__all__ = [
    "ClientBound",
    "DatasetLoader",
    "DatasetPublisher",
    "RecordLoader",
    "SchemaLoader",
    "SchemaPublisher",
    "every_record",
    "fetch_typed",
    "promote_dataset",
]


def fetch_typed(client: Any, uri: str | AtUri, suffix: str) -> dict[str, Any]:
    """The record at ``uri``, checked to be a ``science.alt.dataset.<suffix>``.

    Raises:
        ConfigError: (a ``ValueError``) when the record is of another type.
    """
    rec = client.get_record(str(uri) if isinstance(uri, AtUri) else uri)
    want = f"{LEXICON_NAMESPACE}.{suffix}"
    if rec.get("$type") != want:
        raise ConfigError(f"the record at {uri} is a {rec.get('$type')!r}, not a {want} record")
    return dict(rec)


def every_record(client: Any, suffix: str, repo: str | None = None) -> list[dict[str, Any]]:
    """Every ``science.alt.dataset.<suffix>`` record value of ``repo`` (default: the logged-in
    account), all pages; a client without ``records`` (a test double) gives its one listing."""
    if not hasattr(client, "records"):
        return list(getattr(client, f"list_{suffix}s")(repo=repo, limit=100))
    who = repo.lstrip("@") if repo else None
    if who is not None and getattr(client, "is_authenticated", False):
        who = None if who in (client.did, client.handle) else who
    return [v for _u, _c, v in client.records(f"{LEXICON_NAMESPACE}.{suffix}", who)]


L = TypeVar("L")


class ClientBound:
    """What every publisher and loader class holds: the client it calls.

    Args:
        client: An :class:`~atdata.atmosphere.Atmosphere` (or a test double of it).
    """

    client: Any

    def __init__(self, client: Any) -> None:
        self.client = client


class RecordLoader(ClientBound, Generic[L]):
    """Reads one kind of ``science.alt.dataset.<kind>`` record: the part every loader shares.

    A loader class names its ``kind`` (the lexicon suffix), the ``record_class`` its
    :meth:`get_typed` returns and the ``lister``, the client method :meth:`list_all` calls.

    Args:
        client: An :class:`~atdata.atmosphere.Atmosphere` (or a test double of it).
    """

    kind: ClassVar[str]
    record_class: ClassVar[Any]
    lister: ClassVar[str]

    def get(self, uri: str | AtUri) -> dict[str, Any]:
        """The record at ``uri``, as a dict.

        Raises:
            ConfigError: (a ``ValueError``) When the record there is of another kind.
        """
        return fetch_typed(self.client, uri, self.kind)

    def get_typed(self, uri: str | AtUri) -> L:
        """The record at ``uri`` as its lexicon class (``record_class``)."""
        typed: L = self.record_class.from_record(self.get(uri))
        return typed

    def list_all(self, repo: str | None = None, limit: int = 100) -> list[dict[str, Any]]:
        """Records of this kind in ``repo`` (default: the logged-in account), at most ``limit``."""
        return list(getattr(self.client, self.lister)(repo=repo, limit=limit))


def _at(pub: Any) -> AtUri:
    uri = AtUri.parse(pub.uri)
    uri.cid = pub.cid
    return uri


class SchemaPublisher(ClientBound):
    """Publish sample types as ``science.alt.dataset.schema`` records (once per version).

    Args:
        client: A logged-in :class:`~atdata.atmosphere.Atmosphere` (or a test double of it).
    """

    def publish(
        self,
        sample_type: type,
        *,
        name: str | None = None,
        version: str = "1.0.0",
        description: str | None = None,
        metadata: dict[str, Any] | None = None,
        rkey: str | None = None,
    ) -> AtUri:
        """Publish ``sample_type``; the record's AT-URI.

        Args:
            rkey: Optional explicit record key. If not provided, a TID is generated (unless
                this version is already published with an identical body: that record's URI is
                returned, so a version is written once). At an explicit key the same rule
                holds: an identical record there is returned, a different one refused.

        Raises:
            ConfigError: When this version is already published with a different body.
        """
        from atdata.atmosphere._publish import publish_schema

        pub = publish_schema(
            self.client,
            sample_type,
            version,
            name=name,
            description=description,
            metadata=metadata,
            rkey=rkey,
        )
        return _at(pub)


class SchemaLoader(RecordLoader[LexSchemaRecord]):
    """Read ``science.alt.dataset.schema`` records (``get_typed``: a :class:`LexSchemaRecord`)."""

    kind, record_class, lister = "schema", LexSchemaRecord, "list_schemas"

    def resolve(
        self, handle_or_did: str, schema_id: str, version: str | None = None
    ) -> dict[str, Any]:
        """The schema named ``schema_id`` (newest, or ``version``) in a repository (every page of
        its schema records is read).

        Raises:
            RecordNotFoundError: (a ``KeyError``) when there is none.
        """
        from atdata._errors import RecordNotFoundError

        found = [
            r
            for r in every_record(self.client, "schema", handle_or_did)
            if r.get("name") == schema_id and (version is None or r.get("version") == version)
        ]
        if not found:
            raise RecordNotFoundError(
                f"@{handle_or_did} has no schema {schema_id!r}"
                + (f" version {version!r}" if version else "")
            )
        return max(found, key=lambda r: str(r.get("createdAt", "")))

    def get_type(self, uri: str | AtUri) -> type:
        """The sample type rebuilt from the schema record at ``uri``."""
        from atdata._wire.schema_json import type_from_schema

        rec = self.get(uri)
        return type_from_schema(str(rec.get("name") or AtUri.parse(str(uri)).rkey), rec)


def _checksums(checksums: list[ShardChecksum] | None, n: int) -> list[str | None]:
    if checksums is None:
        return [None] * n
    if len(checksums) != n:
        raise ConfigError(f"got {len(checksums)} checksums for {n} shards")
    out: list[str | None] = []
    for c in checksums:
        if c.algorithm != "sha256":
            out.append(None)  # only sha256 digests are recorded and checked
        else:
            out.append(c.digest)
    return out


def _meta(metadata: DatasetMetadata | dict[str, Any] | None) -> dict[str, Any] | None:
    if isinstance(metadata, DatasetMetadata):
        return metadata.to_dict()
    return dict(metadata) if metadata else None


class DatasetPublisher(ClientBound):
    """Publish datasets as ``science.alt.dataset.entry`` records (shards as blobs, URLs or S3).

    Every publish is idempotent (same name, version, split and content: nothing is written) and
    writes the label record that lets anyone load the dataset by ``@handle/name[@version]``.
    """

    def _entry(
        self,
        name: str,
        schema_uri: str,
        storage: dict[str, Any],
        kw: dict[str, Any],
        *,
        size: dict[str, int] | None = None,
        blob_cids: list[str] | None = None,
    ) -> AtUri:
        from atdata.atmosphere._publish import publish_entry

        extra: dict[str, Any] = {}
        if kw.get("metadata_schema_ref"):
            extra["metadataSchemaRef"] = kw["metadata_schema_ref"]
        if kw.get("content_metadata") is not None:
            extra["contentMetadata"] = kw["content_metadata"]
        pub = publish_entry(
            self.client,
            name,
            str(schema_uri),
            storage,
            description=kw.get("description"),
            tags=kw.get("tags"),
            license=kw.get("license"),
            size=size or {"shards": len(storage.get("shards") or storage.get("blobs") or [])},
            metadata=_meta(kw.get("metadata")),
            extra=extra,
            blob_cids=blob_cids,
            rkey=kw.get("rkey"),
        )
        return _at(pub)

    def publish(
        self,
        dataset: Any,
        *,
        name: str,
        schema_uri: str | None = None,
        description: str | None = None,
        tags: list[str] | None = None,
        license: str | None = None,
        auto_publish_schema: bool = True,
        schema_version: str = "1.0.0",
        metadata_schema_uri: str | None = None,
        auto_publish_metadata_schema: bool = True,
        rkey: str | None = None,
    ) -> AtUri:
        """Publish a :class:`~atdata.Dataset`: local shards go up as blobs, ``http(s)://`` shards
        are recorded as URLs, ``s3://`` shards as S3 keys.

        Raises:
            ConfigError: No ``schema_uri`` and ``auto_publish_schema=False``.
        """
        from atdata.atmosphere._promote import storage_kind
        from atdata.atmosphere._publish import publish_dataset, publish_schema

        if schema_uri is None:
            if not auto_publish_schema:
                raise ConfigError(
                    f"dataset {name!r}: give schema_uri= or leave auto_publish_schema on"
                )
            schema_uri = publish_schema(self.client, dataset.sample_type, schema_version).uri
        shards = list(dataset.list_shards())
        kind = storage_kind(shards)
        kw: dict[str, Any] = {}
        if kind == "s3":
            bucket = {u[5:].split("/", 1)[0] for u in shards}
            if len(bucket) != 1:
                raise ConfigError(f"dataset {name!r} spans several S3 buckets; publish needs one")
            kw["bucket"] = bucket.pop()
            shards = [u[5:].split("/", 1)[1] for u in shards]
        meta = getattr(dataset, "metadata", None)
        pub = publish_dataset(
            self.client,
            name,
            str(schema_uri),
            shards=shards,
            storage=kind,
            description=description,
            tags=tags,
            license=license,
            metadata=meta if isinstance(meta, dict) and meta else None,
            **kw,
            rkey=rkey,
        )
        return _at(pub)

    def publish_with_urls(
        self,
        urls: list[str],
        schema_uri: str,
        *,
        name: str,
        description: str | None = None,
        tags: list[str] | None = None,
        license: str | None = None,
        metadata: DatasetMetadata | dict[str, Any] | None = None,
        metadata_schema_ref: str | None = None,
        content_metadata: dict[str, Any] | None = None,
        checksums: list[ShardChecksum] | None = None,
        rkey: str | None = None,
    ) -> AtUri:
        """An entry whose shards are at the given URLs, one record per shard URL.

        ``http(s)://`` URLs make a ``storageHttp`` entry; ``s3://bucket/key`` URLs (one bucket) a
        ``storageS3`` entry, read with the reader's own S3 credentials. Brace notation
        (``data-{000000..000009}.tar``) is expanded to the individual shards first.

        Raises:
            ConfigError: For a local path or another scheme (publish local shards as blobs),
                URLs of mixed kinds or buckets, or checksums that do not match the shard count.
        """
        from atdata.atmosphere._records import storage_http, storage_s3

        shards = [u for url in urls for u in expand_braces(str(url))]
        sums = _checksums(checksums, len(shards))
        if shards and all(u.startswith("s3://") for u in shards):
            buckets = {u[5:].split("/", 1)[0] for u in shards}
            keys = [u[5:].split("/", 1)[1] if "/" in u[5:] else "" for u in shards]
            if len(buckets) != 1 or not all(keys):
                raise ConfigError(
                    f"s3:// shard URLs must name one bucket and an object key each, got {shards[:3]}; "
                    "publish each bucket's shards as its own dataset"
                )
            st = storage_s3(buckets.pop(), list(zip(keys, sums, strict=True)))  # type: ignore[arg-type]
        else:
            st = storage_http(list(zip(shards, sums, strict=True)))  # type: ignore[arg-type]
        return self._entry(name, schema_uri, st, locals())

    def publish_with_s3(
        self,
        bucket: str,
        keys: list[str],
        schema_uri: str,
        *,
        name: str,
        region: str | None = None,
        endpoint: str | None = None,
        description: str | None = None,
        tags: list[str] | None = None,
        license: str | None = None,
        metadata: DatasetMetadata | dict[str, Any] | None = None,
        metadata_schema_ref: str | None = None,
        content_metadata: dict[str, Any] | None = None,
        checksums: list[ShardChecksum] | None = None,
        rkey: str | None = None,
    ) -> AtUri:
        """An entry whose shards are objects in an S3 bucket (``storageS3``)."""
        from atdata.atmosphere._records import storage_s3

        pairs = list(zip(keys, _checksums(checksums, len(keys)), strict=True))
        st = storage_s3(bucket, pairs, region=region, endpoint=endpoint)  # type: ignore[arg-type]
        return self._entry(name, schema_uri, st, locals())

    def publish_with_blob_refs(
        self,
        blob_refs: list[dict[str, Any]],
        schema_uri: str,
        *,
        name: str,
        description: str | None = None,
        tags: list[str] | None = None,
        license: str | None = None,
        metadata: DatasetMetadata | dict[str, Any] | None = None,
        metadata_schema_ref: str | None = None,
        content_metadata: dict[str, Any] | None = None,
        checksums: list[ShardChecksum] | None = None,
        rkey: str | None = None,
    ) -> AtUri:
        """An entry over blobs already uploaded (``upload_blob`` references)."""
        from atdata.atmosphere._records import storage_blobs

        refs = [r.get("blob", r) for r in blob_refs]
        st = storage_blobs(list(zip(refs, _checksums(checksums, len(refs)), strict=True)))
        size = {"shards": len(refs), "bytes": sum(int(r.get("size") or 0) for r in refs)}
        cids = [str(r["ref"]["$link"]) for r in refs]
        return self._entry(name, schema_uri, st, locals(), size=size, blob_cids=cids)

    def publish_with_blobs(
        self,
        blobs: list[bytes],
        schema_uri: str,
        *,
        name: str,
        description: str | None = None,
        tags: list[str] | None = None,
        license: str | None = None,
        metadata: DatasetMetadata | dict[str, Any] | None = None,
        metadata_schema_ref: str | None = None,
        content_metadata: dict[str, Any] | None = None,
        mime_type: str = "application/x-tar",
        rkey: str | None = None,
    ) -> AtUri:
        """Upload each tar in ``blobs`` as a blob (sha256 recorded), then the entry."""
        import hashlib

        from atdata.atmosphere._records import storage_blobs

        refs = [self.client.upload_blob(bytes(b), mime_type) for b in blobs]
        shas = [hashlib.sha256(b).hexdigest() for b in blobs]
        st = storage_blobs(list(zip(refs, shas, strict=True)))
        size = {"shards": len(refs), "bytes": sum(len(b) for b in blobs)}
        cids = [str(r["ref"]["$link"]) for r in refs]
        return self._entry(name, schema_uri, st, locals(), size=size, blob_cids=cids)


class DatasetLoader(RecordLoader[LexDatasetEntry]):
    """Read ``science.alt.dataset.entry`` records (``get_typed``: a :class:`LexDatasetEntry`)
    and open them as datasets."""

    kind, record_class, lister = "entry", LexDatasetEntry, "list_datasets"

    def get_storage_type(self, uri: str | AtUri) -> str:
        """``"http"``, ``"s3"``, ``"blobs"`` or ``"external"`` (the deprecated URL list).

        Raises:
            ConfigError: For an unknown storage type.
        """
        kind = str((self.get(uri).get("storage") or {}).get("$type", ""))
        for k in ("http", "s3", "blobs", "external"):
            if kind == f"{LEXICON_NAMESPACE}.storage{k.capitalize() if k != 's3' else 'S3'}":
                return k
        raise ConfigError(f"entry {uri} has the unknown storage type {kind!r}")

    def get_urls(self, uri: str | AtUri) -> list[str]:
        """Shard URLs of an HTTP (or deprecated external) entry.

        Raises:
            ConfigError: When the entry stores its shards otherwise.
        """
        st = self.get(uri).get("storage") or {}
        if st.get("$type") == f"{LEXICON_NAMESPACE}.storageHttp":
            return [s["url"] for s in st.get("shards", [])]
        if st.get("$type") == f"{LEXICON_NAMESPACE}.storageExternal":
            return list(st.get("urls", []))
        raise ConfigError(f"entry {uri} keeps its shards in {st.get('$type')}, not at URLs")

    def get_s3_info(self, uri: str | AtUri) -> dict[str, Any]:
        """``{"bucket", "keys", "region", "endpoint"}`` of an S3 entry."""
        st = self.get(uri).get("storage") or {}
        if st.get("$type") != f"{LEXICON_NAMESPACE}.storageS3":
            raise ConfigError(f"entry {uri} keeps its shards in {st.get('$type')}, not S3")
        return {
            "bucket": st["bucket"],
            "keys": [s["key"] for s in st.get("shards", [])],
            "region": st.get("region"),
            "endpoint": st.get("endpoint"),
        }

    def get_blobs(self, uri: str | AtUri) -> list[dict[str, Any]]:
        """The ``blobEntry`` objects (blob reference and checksum) of a blob entry."""
        st = self.get(uri).get("storage") or {}
        if st.get("$type") != f"{LEXICON_NAMESPACE}.storageBlobs":
            raise ConfigError(f"entry {uri} keeps its shards in {st.get('$type')}, not blobs")
        return list(st.get("blobs", []))

    def get_blob_urls(self, uri: str | AtUri) -> list[str]:
        """``getBlob`` URLs of a blob entry's shards (on the publisher's PDS)."""
        did = AtUri.parse(str(uri)).authority
        return [
            self.client.get_blob_url(did, b["blob"]["ref"]["$link"]) for b in self.get_blobs(uri)
        ]

    def get_metadata(self, uri: str | AtUri) -> dict[str, Any] | None:
        """The entry's metadata as a flat dict (either stored form), or ``None``."""
        from atdata.atmosphere._records import unpack_metadata

        raw = self.get(uri).get("metadata")
        return None if raw is None else unpack_metadata(raw)

    def get_metadata_typed(self, uri: str | AtUri) -> DatasetMetadata | None:
        """The metadata as :class:`DatasetMetadata`, or ``None``."""
        m = self.get_metadata(uri)
        return None if m is None else DatasetMetadata.from_dict(m)

    def get_content_metadata(self, uri: str | AtUri) -> dict[str, Any] | None:
        """The entry's ``contentMetadata`` object, or ``None``."""
        return self.get(uri).get("contentMetadata")

    def get_metadata_schema_ref(self, uri: str | AtUri) -> str | None:
        """The entry's ``metadataSchemaRef``, or ``None``."""
        return self.get(uri).get("metadataSchemaRef")

    def to_dataset(self, uri: str | AtUri, sample_type: type | None = None) -> Any:
        """A :class:`~atdata.Dataset` over the entry's shards (checksums verified while reading).

        Args:
            sample_type: Decode as this type (default: rebuilt from the schema record).
        """
        from atdata.atmosphere._remote import RemoteEntry, dataset_of

        at = AtUri.parse(str(uri))
        ident = self.client.resolve(at.authority)
        return dataset_of(ident, RemoteEntry(str(at), "", self.get(uri)), sample_type)


def promote_dataset(
    client: Any,
    dataset: Any,
    *,
    name: str,
    sample_type: type | None = None,
    schema_version: str = "1.0.0",
    description: str | None = None,
    tags: list[str] | None = None,
    license: str | None = None,
) -> AtUri:
    """Publish ``dataset``'s schema (as ``sample_type`` when given), then the dataset; see
    :class:`DatasetPublisher`. Also :meth:`Atmosphere.promote_dataset
    <atdata.atmosphere.Atmosphere.promote_dataset>`, which :meth:`atdata.Index.promote_dataset`
    calls."""
    from atdata.atmosphere._publish import publish_schema

    schema = publish_schema(client, sample_type or dataset.sample_type, schema_version)
    return DatasetPublisher(client).publish(
        dataset,
        name=name,
        schema_uri=schema.uri,
        description=description,
        tags=tags,
        license=license,
    )
