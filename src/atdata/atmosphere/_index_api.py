"""``AtmosphereIndex`` (deprecated upstream in favour of ``Index(atmosphere=client)``) and
``AtmosphereIndexEntry``, the entry type both return for atmosphere datasets."""

from __future__ import annotations

import warnings
from collections.abc import Iterator
from typing import Any

from atdata.atmosphere._api_records import (
    DatasetLoader,
    DatasetPublisher,
    SchemaLoader,
    SchemaPublisher,
)
from atdata.atmosphere._records import ENTRY, SCHEMA
from atdata.atmosphere._types import AtUri

__all__ = ["AtmosphereIndex", "AtmosphereIndexEntry"]


class AtmosphereIndexEntry:
    """A dataset entry record of the atmosphere, as an index entry.

    Args:
        uri: The entry's AT-URI.
        record: The entry record (atproto JSON form).
        client: The client whose PDS resolves blob URLs (default: DID resolution).
    """

    def __init__(self, uri: str, record: dict[str, Any], client: Any = None) -> None:
        self._uri = str(uri)
        self._record = dict(record)
        self._client = client

    @property
    def uri(self) -> str:
        """The entry's AT-URI."""
        return self._uri

    @property
    def name(self) -> str:
        """Dataset name."""
        return str(self._record.get("name", ""))

    @property
    def schema_ref(self) -> str:
        """AT-URI of the schema record."""
        from atdata.atmosphere._remote import schema_uri

        ref = self._record.get("schemaRef", "")
        return schema_uri(ref) if ref else ""

    @property
    def record(self) -> dict[str, Any]:
        """The entry record itself."""
        return self._record

    @property
    def metadata(self) -> dict[str, Any] | None:
        """The entry's metadata as a flat dict (either stored form), or ``None``."""
        from atdata.atmosphere._records import unpack_metadata

        raw = self._record.get("metadata")
        return None if raw is None else unpack_metadata(raw)

    @property
    def data_urls(self) -> list[str]:
        """Shard URLs: HTTP URLs, ``s3://bucket/key``, or ``getBlob`` URLs for blobs."""
        st = self._record.get("storage") or {}
        kind = str(st.get("$type", ""))
        if kind.endswith("storageHttp"):
            return [s["url"] for s in st.get("shards", [])]
        if kind.endswith("storageS3"):
            return [f"s3://{st.get('bucket', '')}/{s['key']}" for s in st.get("shards", [])]
        if kind.endswith("storageExternal"):
            return list(st.get("urls", []))
        if kind.endswith("storageBlobs"):
            did = AtUri.parse(self._uri).authority
            if self._client is not None and hasattr(self._client, "get_blob_url"):
                url_of = self._client.get_blob_url
            else:
                from atdata.atmosphere._resolve import resolve_identity

                ident = resolve_identity(did)  # the URI may name a handle: getBlob takes the DID

                def url_of(d: str, c: str) -> str:
                    return f"{ident.pds}/xrpc/com.atproto.sync.getBlob?did={ident.did}&cid={c}"

            return [url_of(did, b["blob"]["ref"]["$link"]) for b in st.get("blobs", [])]
        return []

    def __repr__(self) -> str:
        return f"AtmosphereIndexEntry({self.name!r}, {self._uri!r})"


class AtmosphereIndex:
    """An index over an account's atmosphere records (deprecated: use
    ``atdata.Index(atmosphere=client)``).

    Args:
        client: A logged-in :class:`~atdata.atmosphere.Atmosphere`.
        data_store: A :class:`~atdata.atmosphere.PDSBlobStore` (blob uploads are the default
            for local shards anyway).
    """

    def __init__(self, client: Any, *, data_store: Any = None) -> None:
        warnings.warn(
            "AtmosphereIndex is deprecated: use atdata.Index(atmosphere=client)",
            DeprecationWarning,
            stacklevel=2,
        )
        self.client = client
        self._data_store = data_store

    @property
    def data_store(self) -> Any:
        """The blob store given as ``data_store``, or ``None``."""
        return self._data_store

    def _entries(self, repo: str | None) -> list[AtmosphereIndexEntry]:
        return [
            AtmosphereIndexEntry(u, v, self.client) for u, _c, v in self.client.records(ENTRY, repo)
        ]

    def insert_dataset(
        self, ds: Any, *, name: str, schema_ref: str | None = None, **kwargs: Any
    ) -> AtmosphereIndexEntry:
        """Publish ``ds`` (its schema too when ``schema_ref`` is not given)."""
        uri = DatasetPublisher(self.client).publish(
            ds,
            name=name,
            schema_uri=schema_ref,
            description=kwargs.get("description"),
            tags=kwargs.get("tags"),
            license=kwargs.get("license"),
            auto_publish_schema=schema_ref is None,
        )
        return self.get_dataset(str(uri))

    def get_dataset(self, ref: str) -> AtmosphereIndexEntry:
        """The entry at the AT-URI ``ref``."""
        return AtmosphereIndexEntry(ref, DatasetLoader(self.client).get(ref), self.client)

    @property
    def datasets(self) -> Iterator[AtmosphereIndexEntry]:
        """The account's dataset entries (lazy)."""
        return iter(self._entries(None))

    def list_datasets(self, repo: str | None = None) -> list[AtmosphereIndexEntry]:
        """Dataset entries of ``repo`` (default: the account), every page."""
        return self._entries(repo)

    def publish_schema(self, sample_type: type, *, version: str = "1.0.0", **kwargs: Any) -> str:
        """Publish a sample type; the schema record's AT-URI."""
        uri = SchemaPublisher(self.client).publish(
            sample_type,
            version=version,
            description=kwargs.get("description"),
            metadata=kwargs.get("metadata"),
        )
        return str(uri)

    def get_schema(self, ref: str) -> dict[str, Any]:
        """The schema record at ``ref``."""
        return SchemaLoader(self.client).get(ref)

    @property
    def schemas(self) -> Iterator[dict[str, Any]]:
        """The account's schema records (lazy)."""
        return iter(self.list_schemas())

    def list_schemas(self, repo: str | None = None) -> list[dict[str, Any]]:
        """Schema records of ``repo`` (default: the account), every page."""
        return [v for _u, _c, v in self.client.records(SCHEMA, repo)]

    def get_schema_type(self, ref: str) -> type:
        """The sample type rebuilt from the schema record at ``ref``."""
        return SchemaLoader(self.client).get_type(ref)

    def decode_schema(self, ref: str) -> type:
        """Deprecated name of :meth:`get_schema_type`."""
        warnings.warn(
            "decode_schema() is deprecated: use get_schema_type()", DeprecationWarning, stacklevel=2
        )
        return self.get_schema_type(ref)
