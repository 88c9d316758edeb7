"""Record and blob calls on an account's own repository, through the ``atproto`` SDK client.

The functions take the SDK client, the account's DID and ``call`` (how
:class:`~atdata.atmosphere.Atmosphere` runs an SDK call: it turns SDK errors into atdata's); the
``Atmosphere`` methods of the same names call them. Reading other repositories (their own PDS,
without the SDK) is :mod:`atdata.atmosphere._resolve`.

Examples:
    >>> to_dict({"name": "mnist"})
    {'name': 'mnist'}
    >>> blob_ref(type("Blob", (), {"ref": "bafkrei", "mime_type": "application/x-tar", "size": 3})())
    {'$type': 'blob', 'ref': {'$link': 'bafkrei'}, 'mimeType': 'application/x-tar', 'size': 3}
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Iterator
from typing import Any

from atdata._errors import IntegrityError, StorageError
from atdata.atmosphere._cid import check_no_floats
from atdata.atmosphere._resolve import Identity, check_record, listed
from atdata.atmosphere._types import AtUri

__all__ = [
    "blob_ref",
    "create_record",
    "delete_record",
    "own_page",
    "own_record",
    "own_records",
    "put_record",
    "to_dict",
    "upload_blob",
    "verified_blob",
]

Call = Callable[..., Any]


def to_dict(value: Any) -> dict[str, Any]:
    """An SDK record value (model or dict) as a plain dict in atproto JSON form."""
    if isinstance(value, dict):
        return value
    if callable(getattr(value, "to_dict", None)):  # the SDK's DotDict: keys as sent
        return dict(value.to_dict())
    if callable(getattr(value, "model_dump", None)):
        return dict(value.model_dump(by_alias=True, exclude_none=True))
    return dict(value)


def _uri_of(out: Any) -> AtUri:
    uri = AtUri.parse(str(out.uri))
    uri.cid = str(out.cid) if getattr(out, "cid", None) else None
    return uri


def create_record(
    call: Call,
    client: Any,
    did: str,
    collection: str,
    record: dict[str, Any],
    rkey: str | None,
    validate: bool,
) -> AtUri:
    """``com.atproto.repo.createRecord`` in ``did``'s repository; the new record's URI and CID."""
    check_no_floats(record, f"{collection} record")
    data: dict[str, Any] = {
        "repo": did,
        "collection": collection,
        "record": record,
        "validate": validate,
    }
    if rkey is not None:
        data["rkey"] = rkey
    return _uri_of(
        call(f"creating a {collection} record", client.com.atproto.repo.create_record, data)
    )


def put_record(
    call: Call,
    client: Any,
    did: str,
    collection: str,
    rkey: str,
    record: dict[str, Any],
    *,
    validate: bool,
    swap_commit: str | None,
    swap_record: str | None,
) -> AtUri:
    """``com.atproto.repo.putRecord`` (create or replace at ``rkey``); the URI and CID."""
    check_no_floats(record, f"{collection} record")
    data: dict[str, Any] = {
        "repo": did,
        "collection": collection,
        "rkey": rkey,
        "record": record,
        "validate": validate,
    }
    if swap_commit is not None:
        data["swapCommit"] = swap_commit
    if swap_record is not None:
        data["swapRecord"] = swap_record
    return _uri_of(call(f"writing {collection}/{rkey}", client.com.atproto.repo.put_record, data))


def own_record(call: Call, client: Any, did: str, at: AtUri) -> dict[str, Any]:
    """The value of the record ``at`` in ``did``'s (this session's) repository.

    Raises:
        IntegrityError: When the value does not match the CID the PDS reports.
    """
    out = call(
        f"fetching {at}",
        client.com.atproto.repo.get_record,
        params={"repo": did, "collection": at.collection, "rkey": at.rkey},
    )
    value = to_dict(out.value)
    cid = getattr(out, "cid", None)
    check_record(f"at://{did}/{at.collection}/{at.rkey}", str(cid or ""), value)
    return value


def _kept(r: Any, what: str) -> tuple[str, str, dict[str, Any]] | None:
    """A listed SDK record as ``(uri, cid, value)``, or ``None`` (skipped with a warning, see
    :func:`~atdata.atmosphere._resolve.listed`)."""
    uri, cid, value = getattr(r, "uri", None), getattr(r, "cid", None), getattr(r, "value", None)
    try:
        value = to_dict(value) if value is not None else None
    except (TypeError, ValueError):
        value = None
    return listed(str(uri) if uri else None, str(cid or ""), value, what)


def delete_record(call: Call, client: Any, did: str, at: AtUri, swap_commit: str | None) -> None:
    """``com.atproto.repo.deleteRecord`` of ``at`` in ``did``'s repository."""
    data: dict[str, Any] = {"repo": did, "collection": at.collection, "rkey": at.rkey}
    if swap_commit:
        data["swapCommit"] = swap_commit
    call(f"deleting {at}", client.com.atproto.repo.delete_record, data)


def own_page(
    call: Call, client: Any, did: str, collection: str, limit: int, cursor: str | None
) -> tuple[list[dict[str, Any]], str | None]:
    """One page of ``did``'s (this session's) ``collection``: record values and the next cursor
    (a record that is malformed or does not match its CID is left out with a warning)."""
    params: dict[str, Any] = {"repo": did, "collection": collection, "limit": limit}
    if cursor:
        params["cursor"] = cursor
    out = call(f"listing {collection}", client.com.atproto.repo.list_records, params=params)
    what = f"listing {collection} of {did}"
    kept = [_kept(r, what) for r in out.records]
    return [k[2] for k in kept if k is not None], out.cursor


def own_records(
    call: Call, client: Any, did: str, collection: str, page_size: int = 100
) -> Iterator[tuple[str, str, dict[str, Any]]]:
    """Every record of ``did``'s (this session's) ``collection``, all pages: ``(uri, cid, value)``.

    A page without a list of records ends the listing (there is nothing to read from it); a
    record that is malformed or does not match its CID is left out with a warning naming it.

    Raises:
        StorageError: When a cursor repeats (the listing would not end).
    """
    cursor: str | None = None
    seen: set[str] = set()
    while True:
        params: dict[str, Any] = {"repo": did, "collection": collection, "limit": page_size}
        if cursor:
            params["cursor"] = cursor
        out = call(f"listing {collection}", client.com.atproto.repo.list_records, params=params)
        recs = getattr(out, "records", None)
        if not isinstance(recs, (list, tuple)):
            return
        for r in recs:
            kept = _kept(r, f"listing {collection} of {did}")
            if kept is not None:
                yield kept
        nxt = getattr(out, "cursor", None)
        if not isinstance(nxt, str) or not nxt or not recs:
            return
        if nxt in seen:
            raise StorageError(f"listing {collection} of {did}: the cursor {nxt[:60]!r} repeats")
        seen.add(nxt)
        cursor = nxt


def blob_ref(blob: Any) -> dict[str, Any]:
    """An SDK blob model as its reference in atproto JSON form (``$type``, ``ref``, ...)."""
    ref = blob.ref
    return {
        "$type": "blob",
        "ref": {"$link": str(ref.link if hasattr(ref, "link") else ref)},
        "mimeType": str(blob.mime_type),
        "size": int(blob.size),
    }


def upload_blob(
    call: Call, client: Any, data: bytes, mime_type: str, timeout: float | None
) -> dict[str, Any]:
    """``com.atproto.repo.uploadBlob``; the blob's reference (see :func:`blob_ref`)."""
    if timeout is None:
        timeout = max(60.0, 30.0 + len(data) / 1_000_000)
    with warnings.catch_warnings():  # the SDK hands httpx raw bytes as data=: harmless
        warnings.filterwarnings("ignore", "Use 'content=", DeprecationWarning)
        out = call(
            "uploading a blob",
            client.com.atproto.repo.upload_blob,
            data,
            headers={"Content-Type": mime_type},
            timeout=timeout,
        )
    return blob_ref(out.blob)


def verified_blob(ident: Identity, cid: str) -> bytes:
    """A blob's bytes from the PDS of ``ident``, checked against ``cid``.

    Raises:
        ShardError: The PDS does not serve it.
        IntegrityError: The bytes do not match the CID.
    """
    from atdata.atmosphere._blobs import BlobSource
    from atdata.atmosphere._cid import blob_cid

    src = BlobSource(ident.did, ident.pds, [(cid, None, None)])
    (shard,) = src.list_shards()
    f = src.open_shard(shard)
    try:
        data = f.read()
    finally:
        f.close()
    if blob_cid(data) != cid:
        raise IntegrityError(f"blob {cid} of {ident.did}: the bytes served do not match the CID")
    return data
