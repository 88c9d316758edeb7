"""Identity resolution (handle -> DID -> PDS) and unauthenticated XRPC reads of public repositories.

Handles resolve through, in order: ``$ATDATA_HANDLE_RESOLVER`` (an XRPC service answering
``com.atproto.identity.resolveHandle``, e.g. a PDS or ``https://public.api.bsky.app``), a hint
service given by the caller (the PDS of a logged-in session), then DNS ``_atproto`` TXT and
``https://<handle>/.well-known/atproto-did``. ``did:plc`` documents come from
``$ATDATA_PLC_URL`` (default ``https://plc.directory``); ``did:web`` from the host.

Examples:
    >>> parse_at_uri("at://did:plc:abc/science.alt.dataset.entry/3kx")
    ('did:plc:abc', 'science.alt.dataset.entry', '3kx')
    >>> pds_from_did_doc({"service": [{"id": "#atproto_pds", "serviceEndpoint": "https://pds.example"}]})
    'https://pds.example'
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Iterator
from typing import Any

from atdata._errors import (
    AtdataError,
    ConfigError,
    IntegrityError,
    RecordNotFoundError,
    StorageError,
)
from atdata._extras import require

__all__ = [
    "Identity",
    "check_record",
    "get_record",
    "iter_records",
    "list_page",
    "listed",
    "parse_at_uri",
    "pds_from_did_doc",
    "resolve_did",
    "resolve_handle",
    "resolve_identity",
]

_TIMEOUT = 30.0
DEFAULT_PLC = "https://plc.directory"


@dataclasses.dataclass(frozen=True)
class Identity:
    """A resolved account: DID, handle (may be empty) and PDS base URL."""

    did: str
    handle: str
    pds: str


def _httpx() -> Any:
    return require("httpx", "atmosphere", "talking to a PDS")


def parse_at_uri(uri: str) -> tuple[str, str, str]:
    """Split ``at://repo/collection/rkey`` into its three parts.

    Raises:
        ConfigError: When ``uri`` is not a record AT-URI.
    """
    if not uri.startswith("at://"):
        raise ConfigError(f"{uri!r} is not an AT-URI (expected at://<did>/<collection>/<rkey>)")
    parts = uri[5:].split("/")
    if len(parts) != 3 or not all(parts):
        raise ConfigError(
            f"{uri!r} is not a record AT-URI (expected at://<did>/<collection>/<rkey>)"
        )
    return parts[0], parts[1], parts[2]


_client: Any = None


def http_client() -> Any:
    """One shared ``httpx.Client`` (building one loads the CA bundle: ~0.15 s each time)."""
    global _client
    if _client is None:
        _client = _httpx().Client(timeout=_TIMEOUT, follow_redirects=True)
    return _client


def _get_json(url: str, params: dict[str, Any] | None = None, what: str = "") -> Any:
    httpx = _httpx()
    try:
        r = http_client().get(url, params=params, headers={"Accept": "application/json"})
    except httpx.HTTPError as exc:
        raise StorageError(f"cannot reach {url} ({what}): {type(exc).__name__}: {exc}") from None
    if r.status_code != 200:
        detail = ""
        try:
            body = r.json()
            detail = f"{body.get('error', '')}: {body.get('message', '')}".strip(": ")
        except ValueError:
            detail = r.text[:200]
        if detail.startswith("RecordNotFound") or "Could not locate record" in detail:
            raise RecordNotFoundError(f"{what or url} failed: {detail}")
        raise StorageError(f"{what or url} failed: HTTP {r.status_code} {detail}".rstrip())
    try:
        return r.json()
    except ValueError:
        raise StorageError(f"{what or url}: the answer is not JSON") from None


def resolve_handle(handle: str, hint: str | None = None) -> str:
    """The DID of ``handle``.

    Raises:
        StorageError: When no resolver knows the handle.
    """
    handle = handle.lstrip("@").lower()
    services = [s for s in (os.environ.get("ATDATA_HANDLE_RESOLVER"), hint) if s]
    errors = []
    for svc in services:
        try:
            out = _get_json(
                f"{svc.rstrip('/')}/xrpc/com.atproto.identity.resolveHandle",
                {"handle": handle},
                f"resolving handle @{handle} at {svc}",
            )
            return str(out["did"])
        except (StorageError, KeyError, TypeError) as exc:
            errors.append(str(exc))
    try:
        ident = require("atproto_identity.handle.resolver", "atmosphere", "handle resolution")
        did = ident.HandleResolver(timeout=10).resolve(handle)
    except Exception as exc:  # DNS/HTTP failures of the SDK resolver
        errors.append(f"DNS/.well-known lookup failed: {type(exc).__name__}")
        did = None
    if did:
        return str(did)
    errors.append("no _atproto TXT record or .well-known/atproto-did answer")
    raise StorageError(
        f"cannot resolve handle @{handle}: "
        + "; ".join(errors)
        + " (set ATDATA_HANDLE_RESOLVER to a service that knows it, or use the DID)"
    )


def pds_from_did_doc(doc: dict[str, Any]) -> str:
    """The ``#atproto_pds`` service endpoint of a DID document.

    Raises:
        StorageError: When the document names no PDS.
    """
    services = doc.get("service") if isinstance(doc, dict) else None
    for svc in services if isinstance(services, list) else ():
        if not isinstance(svc, dict) or not str(svc.get("id", "")).endswith("#atproto_pds"):
            continue
        url = svc.get("serviceEndpoint")
        if isinstance(url, str) and url.startswith(("https://", "http://")):
            return url.rstrip("/")
    who = str(doc.get("id", "?"))[:120] if isinstance(doc, dict) else "?"
    raise StorageError(f"the DID document of {who} names no #atproto_pds service (an http(s) URL)")


def resolve_did(did: str) -> dict[str, Any]:
    """The DID document of a ``did:plc`` or ``did:web``.

    Raises:
        ConfigError: For another DID method.
        StorageError: When the document cannot be fetched.
    """
    if did.startswith("did:plc:"):
        plc = os.environ.get("ATDATA_PLC_URL", DEFAULT_PLC).rstrip("/")
        doc = _get_json(f"{plc}/{did}", None, f"resolving {did} at {plc}")
    elif did.startswith("did:web:"):
        host = did[len("did:web:") :].replace("%3A", ":")
        doc = _get_json(f"https://{host}/.well-known/did.json", None, f"resolving {did}")
    else:
        raise ConfigError(f"unsupported DID method in {did!r}: use did:plc or did:web")
    if not isinstance(doc, dict):
        raise StorageError(f"the DID document of {did} is not a JSON object")
    return doc


def _describe_repo(pds: str, repo: str) -> Identity | None:
    """The identity of ``repo`` when ``pds`` hosts it (``describeRepo``), else ``None``."""
    try:
        out = _get_json(
            f"{pds.rstrip('/')}/xrpc/com.atproto.repo.describeRepo", {"repo": repo}, "describeRepo"
        )
        did, doc = out["did"], out.get("didDoc") or {}
    except (StorageError, KeyError, TypeError, AttributeError):
        return None
    if not isinstance(did, str) or not did.startswith("did:"):
        return None
    try:
        home = pds_from_did_doc(doc)
    except StorageError:
        home = pds.rstrip("/")
    return Identity(did=did, handle=str(out.get("handle") or ""), pds=home)


def resolve_identity(handle_or_did: str, hint: str | None = None) -> Identity:
    """Resolve a handle or DID to its DID, handle and PDS.

    With ``hint`` (the PDS a session is logged in to), that PDS is asked first
    (``describeRepo``): repositories it hosts resolve without any DID directory, offline too.

    Raises:
        StorageError: When resolution fails.
    """
    s = handle_or_did.lstrip("@")
    if hint:
        local = _describe_repo(hint, s)
        if local is not None:
            return local
    did = s if s.startswith("did:") else resolve_handle(s, hint)
    doc = resolve_did(did)
    handle = ""
    akas = doc.get("alsoKnownAs")
    for aka in akas if isinstance(akas, list) else ():
        if isinstance(aka, str) and aka.startswith("at://"):
            handle = str(aka)[5:]
            break
    return Identity(did=did, handle=handle, pds=pds_from_did_doc(doc))


def _mismatch(uri: str, cid: str, value: Any) -> bool:
    """Whether ``value`` fails to hash to ``cid`` (an empty ``cid``, none reported, passes)."""
    if not cid:
        return False
    from atdata.atmosphere._cid import record_cid

    try:
        return record_cid(value) != cid
    except AtdataError:  # a value with no ATProto form (a float, ...) is no record at all
        return True


def check_record(uri: str, cid: str, value: dict[str, Any]) -> None:
    """Check that ``value`` is the record ``cid`` names (a PDS reports each record's CID).

    An empty ``cid`` (the server reported none) is not checked.

    Raises:
        IntegrityError: When the value does not hash to ``cid``.
    """
    if _mismatch(uri, cid, value):
        raise IntegrityError(
            f"the record {uri} does not match its CID {cid}: the PDS served a value that was "
            "altered or corrupted; do not use it (ask the publisher or retry later)"
        )


def listed(uri: Any, cid: Any, value: Any, what: str) -> tuple[str, str, dict[str, Any]] | None:
    """One record of a listing as ``(uri, cid, value)``, or ``None`` for one to leave out.

    One bad record must not hide the others: a record without its ``uri`` string or ``value``
    object, or whose value does not match its CID, is skipped with a ``UserWarning`` that names
    it; reading that record itself (``get_record``) raises.
    """
    import warnings

    cid = cid if isinstance(cid, str) else ""
    if not isinstance(uri, str) or not uri.startswith("at://") or not isinstance(value, dict):
        shown = uri if isinstance(uri, str) else "a record"
        warnings.warn(
            f"{what}: skipped {shown[:200]}: it lacks its 'uri' string or its 'value' object "
            "(the PDS answered a malformed listing); the other records are listed",
            UserWarning,
            stacklevel=3,
        )
        return None
    if _mismatch(uri, cid, value):
        warnings.warn(
            f"{what}: skipped the record {uri}: it does not match its CID {cid} (the PDS served "
            "a value that was altered or corrupted); the other records are listed; ask the "
            "publisher to rewrite or delete it",
            UserWarning,
            stacklevel=3,
        )
        return None
    return uri, cid, value


def get_record(pds: str, repo: str, collection: str, rkey: str) -> tuple[dict[str, Any], str]:
    """Fetch one record anonymously: ``(value, cid)``, the value checked against the CID.

    Raises:
        StorageError: When the record does not exist or the PDS fails.
        IntegrityError: When the value does not match the CID the PDS reports.
    """
    out = _get_json(
        f"{pds}/xrpc/com.atproto.repo.getRecord",
        {"repo": repo, "collection": collection, "rkey": rkey},
        f"fetching at://{repo}/{collection}/{rkey}",
    )
    value = out.get("value") if isinstance(out, dict) else None
    if not isinstance(value, dict):
        raise StorageError(
            f"fetching at://{repo}/{collection}/{rkey}: the answer holds no record object"
        )
    cid = out.get("cid", "")
    cid = cid if isinstance(cid, str) else ""
    check_record(f"at://{repo}/{collection}/{rkey}", cid, value)
    return value, cid


def list_page(
    pds: str, repo: str, collection: str, limit: int = 100, cursor: str | None = None
) -> tuple[list[tuple[str, str, dict[str, Any]]], str | None]:
    """One page of a collection: ``([(uri, cid, value), ...], next cursor or None)``.

    A record that is malformed or does not match its CID is left out with a warning naming it
    (see :func:`listed`).

    Raises:
        StorageError: When the answer is not a listing (not an object, ``records`` not a list).
    """
    params: dict[str, Any] = {"repo": repo, "collection": collection, "limit": limit}
    if cursor:
        params["cursor"] = cursor
    what = f"listing {collection} of {repo}"
    out = _get_json(f"{pds}/xrpc/com.atproto.repo.listRecords", params, what)
    if not isinstance(out, dict):
        raise StorageError(f"{what}: the answer is not an object")
    raw = out.get("records")
    if raw is None:
        raw = []
    if not isinstance(raw, list):
        raise StorageError(f"{what}: 'records' is not a list")
    recs = []
    for r in raw:
        d = r if isinstance(r, dict) else {}
        kept = listed(d.get("uri"), d.get("cid"), d.get("value"), what)
        if kept is not None:
            recs.append(kept)
    nxt = out.get("cursor")
    return recs, (nxt if isinstance(nxt, str) and nxt and raw else None)


def iter_records(
    pds: str, repo: str, collection: str, page_size: int = 100
) -> Iterator[tuple[str, str, dict[str, Any]]]:
    """Every record of a collection, following cursors: ``(uri, cid, value)``; a malformed
    record, or one that does not match its CID, is left out with a warning naming it.

    Raises:
        StorageError: For a malformed page, or a cursor that repeats (the listing would not end).
    """
    cursor: str | None = None
    seen: set[str] = set()
    while True:
        recs, cursor = list_page(pds, repo, collection, page_size, cursor)
        yield from recs
        if cursor is None:
            return
        if cursor in seen:  # a server handing out the same page again would never end
            raise StorageError(
                f"listing {collection} of {repo}: the cursor {cursor[:60]!r} repeats"
            )
        seen.add(cursor)
