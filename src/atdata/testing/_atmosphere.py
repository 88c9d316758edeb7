"""``MockAtmosphere``: an in-memory stand-in for :class:`atdata.atmosphere.Atmosphere`.

It answers the client methods the atmosphere's publishers and loaders call (records, blobs,
identity), so ``SchemaPublisher(mock)``, ``publish_dataset(mock, ...)``, ``LabelLoader(mock)``
and the rest run on it unchanged. CIDs are real (a record's is what a PDS would report).

Examples:
    >>> client = MockAtmosphere()
    >>> client.login("alice.test", "pw")["did"]
    'did:plc:mock000000000000'
    >>> uri = client.create_record("science.alt.dataset.label", {"name": "x"}, rkey="k")
    >>> uri, client.get_record(uri)["name"]
    ('at://did:plc:mock000000000000/science.alt.dataset.label/k', 'x')
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from typing import Any

from atdata._errors import ConfigError

__all__ = ["MockAtmosphere", "MockAtmosphereClient"]


class MockAtmosphere:
    """An ATProto account kept in memory: records, blobs, a call log.

    Args:
        did: The account DID.
        handle: The account handle (``login`` replaces it).

    Attributes:
        _records: ``{uri: record}`` in creation order.
        _blobs: ``{cid: bytes}``.
        _call_log: ``[(method, details), ...]`` of logins and writes.
    """

    def __init__(
        self, did: str = "did:plc:mock000000000000", handle: str = "test.mock.social"
    ) -> None:
        self.did = did
        self.handle = handle
        self.pds = "http://mock.invalid"
        self.blob_limit: int | None = None
        self._logged_in = False
        self._records: dict[str, dict[str, Any]] = {}
        self._blobs: dict[str, bytes] = {}
        self._call_log: list[tuple[str, dict[str, Any]]] = []
        self._tids = itertools.count(1)

    # -- session --------------------------------------------------------------------------------
    def login(self, handle: str, password: str) -> dict[str, Any]:
        """Log in (always succeeds); ``{"did", "handle"}``."""
        self._logged_in = True
        self.handle = handle
        self._call_log.append(("login", {"handle": handle}))
        return {"did": self.did, "handle": self.handle}

    @property
    def is_authenticated(self) -> bool:
        """Whether :meth:`login` was called (since the last :meth:`reset`)."""
        return self._logged_in

    @property
    def has_appview(self) -> bool:
        """Never: the mock has no AppView."""
        return False

    def export_session_string(self) -> str:
        """A fixed session string."""
        return "mock-session-string"

    def export_session(self) -> str:
        """Same as :meth:`export_session_string`."""
        return self.export_session_string()

    def _ensure_authenticated(self) -> None:
        """The mock accepts calls logged in or not."""

    def resolve_did(self, handle_or_did: str) -> str:
        """The DID itself, or this account's DID for any handle."""
        s = handle_or_did.lstrip("@")
        return s if s.startswith("did:") else self.did

    # -- records --------------------------------------------------------------------------------
    def _store(self, collection: str, rkey: str, record: dict[str, Any]) -> str:
        from atdata.atmosphere._cid import check_no_floats

        check_no_floats(record, f"{collection} record")  # as a PDS would refuse them
        uri = f"at://{self.did}/{collection}/{rkey}"
        self._records[uri] = dict(record)
        return uri

    def create_record(
        self,
        collection: str,
        record: dict[str, Any],
        rkey: str | None = None,
        validate: bool = False,
    ) -> str:
        """Store a record under a new key (or ``rkey``); its AT-URI.

        Raises:
            ConfigError: When ``rkey`` is already taken.
        """
        key = rkey or f"mock{next(self._tids):09d}"
        if f"at://{self.did}/{collection}/{key}" in self._records:
            raise ConfigError(f"record {collection}/{key} already exists")
        uri = self._store(collection, key, record)
        self._call_log.append(
            ("create_record", {"collection": collection, "rkey": key, "uri": uri})
        )
        return uri

    def put_record(
        self,
        collection: str,
        rkey: str,
        record: dict[str, Any],
        *,
        validate: bool = False,
        swap_commit: str | None = None,
        swap_record: str | None = None,
    ) -> str:
        """Create or replace the record at ``rkey``; its AT-URI."""
        uri = self._store(collection, rkey, record)
        self._call_log.append(("put_record", {"collection": collection, "rkey": rkey, "uri": uri}))
        return uri

    def get_record(self, uri: Any) -> dict[str, Any]:
        """A stored record.

        Raises:
            KeyError: ``Record not found: <uri>``.
        """
        try:
            return self._records[str(uri)]
        except KeyError:
            raise KeyError(f"Record not found: {uri}") from None

    def delete_record(self, uri: Any, *, swap_commit: str | None = None) -> None:
        """Forget a record (no error when it is not there)."""
        self._records.pop(str(uri), None)
        self._call_log.append(("delete_record", {"uri": str(uri)}))

    def records(
        self, collection: str, repo: str | None = None
    ) -> Iterator[tuple[str, str, dict[str, Any]]]:
        """Every record of ``collection``: ``(uri, cid, value)``, oldest first."""
        from atdata.atmosphere._cid import record_cid

        for uri, rec in list(self._records.items()):
            if uri.split("/")[3] == collection:
                yield uri, record_cid(rec), rec

    def list_records(
        self,
        collection: str,
        *,
        repo: str | None = None,
        limit: int = 100,
        cursor: str | None = None,
    ) -> tuple[list[dict[str, Any]], str | None]:
        """``(records, None)``: at most ``limit`` record values of ``collection``."""
        return [v for _u, _c, v in self.records(collection, repo)][:limit], None

    def _values(self, suffix: str, limit: int) -> list[dict[str, Any]]:
        return self.list_records(f"science.alt.dataset.{suffix}", limit=limit)[0]

    def list_schemas(self, repo: str | None = None, limit: int = 100) -> list[dict[str, Any]]:
        """Schema record values."""
        return self._values("schema", limit)

    def list_datasets(self, repo: str | None = None, limit: int = 100) -> list[dict[str, Any]]:
        """Dataset entry record values."""
        return self._values("entry", limit)

    def list_lenses(self, repo: str | None = None, limit: int = 100) -> list[dict[str, Any]]:
        """Lens record values."""
        return self._values("lens", limit)

    def list_labels(self, repo: str | None = None, limit: int = 100) -> list[dict[str, Any]]:
        """Label record values."""
        return self._values("label", limit)

    # -- blobs ----------------------------------------------------------------------------------
    def upload_blob(
        self,
        data: bytes,
        mime_type: str = "application/octet-stream",
        *,
        timeout: float | None = None,
    ) -> dict[str, Any]:
        """Keep ``data``; its blob reference (with the CID a PDS would give it)."""
        from atdata.atmosphere._cid import blob_cid

        cid = blob_cid(data)
        self._blobs[cid] = bytes(data)
        self._call_log.append(("upload_blob", {"ref": cid, "size": len(data)}))
        return {"$type": "blob", "ref": {"$link": cid}, "mimeType": mime_type, "size": len(data)}

    def get_blob(self, did: str, cid: str) -> bytes:
        """An uploaded blob.

        Raises:
            KeyError: ``Blob not found: <cid>``.
        """
        try:
            return self._blobs[cid]
        except KeyError:
            raise KeyError(f"Blob not found: {cid}") from None

    def get_blob_url(self, did: str, cid: str) -> str:
        """A placeholder URL (nothing serves it)."""
        return f"{self.pds}/xrpc/com.atproto.sync.getBlob?did={did}&cid={cid}"

    def promote_entry(self, index: Any, name: str, **kwargs: Any) -> Any:
        """Promote ``index``'s dataset ``name`` here (see :func:`atdata.atmosphere.promote_entry`)."""
        from atdata.atmosphere._promote import promote_entry

        return promote_entry(index, name, self, **kwargs)

    def promote_dataset(self, dataset: Any, **kwargs: Any) -> Any:
        """Publish a dataset and its schema here (see :meth:`atdata.Index.promote_dataset`)."""
        from atdata.atmosphere._api_records import promote_dataset

        return promote_dataset(self, dataset, **kwargs)

    def reset(self) -> None:
        """Forget every record, blob, call and the login."""
        self._records.clear()
        self._blobs.clear()
        self._call_log.clear()
        self._logged_in = False


MockAtmosphereClient = MockAtmosphere
"""Upstream's earlier name of :class:`MockAtmosphere` (as ``AtmosphereClient`` is of ``Atmosphere``)."""
