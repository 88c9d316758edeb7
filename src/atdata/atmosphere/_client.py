"""``Atmosphere``: an ATProto session (over the ``atproto`` SDK) plus record and blob calls.

The method names, arguments and return types are upstream atdata's (``create_record`` returns an
:class:`~atdata.atmosphere.AtUri`, ``list_records`` returns ``(records, cursor)``, ...). It works
against a bare PDS (no Bluesky AppView is ever called) and reads other repositories through
their own PDS, found by DID resolution that asks the logged-in PDS first.

Sessions saved by ``atdata login`` go to ``$ATDATA_SESSION_FILE`` (default ``~/.config/atdata/atmosphere-session.json``,
file mode 0600) and refreshed by the SDK; every refresh is saved again. The app password is never
stored, and neither it nor the tokens appear in reprs, logs or error messages.
"""

from __future__ import annotations

import contextlib
import json
import os
import pathlib
from collections.abc import Iterator
from typing import Any

from atdata._errors import (
    AtdataError,
    ConfigError,
    MissingCredentialsError,
)
from atdata._extras import require
from atdata.atmosphere import _api_records, _repocalls
from atdata.atmosphere._resolve import Identity, get_record, iter_records, resolve_identity
from atdata.atmosphere._session import (
    auth_failure,
    read_saved,
    sdk_login,
    session_file,
    write_private,
)
from atdata.atmosphere._types import LEXICON_NAMESPACE, AtUri

__all__ = ["Atmosphere", "AtmosphereClient", "session_file"]

_DEFAULT_PDS = "https://bsky.social"


class Atmosphere:
    """An ATProto account (or an anonymous reader): records and blobs of ``science.alt.dataset``.

    Create one with :meth:`login` (handle or DID + app password), :meth:`from_session` (a string
    from :meth:`export_session`), :meth:`from_env` or :meth:`resume` (the session saved by
    ``atdata login``). ``Atmosphere()`` alone reads public records. ``repr`` shows the handle,
    DID and PDS only; the password and tokens are never stored in it, logged or shown.

    Args:
        base_url: PDS base URL (default ``https://bsky.social``).
        appview: AppView URL or ``did:web`` DID, kept for upstream compatibility (atdata reads
            records from each repository's own PDS and needs no AppView).
        _client: A ready ``atproto.Client`` (tests).
        session_path: Where to save the session on login and refresh (``save=True``).
        save: Save the session (file mode 0600) as the SDK refreshes it.

    Examples:
        >>> Atmosphere(base_url="http://127.0.0.1:2583").is_authenticated
        False
    """

    def __init__(
        self,
        base_url: str | None = None,
        *,
        appview: str | None = None,
        _client: Any = None,
        session_path: str | os.PathLike[str] | None = None,
        save: bool = False,
    ) -> None:
        if _client is None:
            atproto = require("atproto", "atmosphere", "the atmosphere")
            _client = atproto.Client(base_url=(base_url or _DEFAULT_PDS).rstrip("/"))
        self._client = _client
        if base_url is None:
            sdk_base = str(getattr(_client, "_base_url", "") or _DEFAULT_PDS)
            base_url = sdk_base[: -len("/xrpc")] if sdk_base.endswith("/xrpc") else sdk_base
        self.pds = base_url.rstrip("/").removesuffix("/xrpc")
        self.appview = appview
        self._session: dict[str, str] | None = None
        self._session_path = pathlib.Path(session_path) if session_path else None
        self._save = save
        self._blob_limit: int | None = None
        # a base URL the SDK must keep (from_session(base_url=)): the SDK otherwise moves to the
        # PDS a session string or a refreshed session's DID document names
        self._pinned: str | None = None
        if hasattr(_client, "on_session_change"):
            _client.on_session_change(self._on_session_change)

    # -- sessions -------------------------------------------------------------------------------
    @classmethod
    def login(
        cls,
        handle: str,
        password: str,
        pds: str | None = None,
        *,
        base_url: str | None = None,
        appview: str | None = None,
        save: bool = False,
        session_path: str | os.PathLike[str] | None = None,
    ) -> Atmosphere:
        """Log in with an app password; the PDS is resolved from the handle/DID when not given.

        Works against any PDS: no Bluesky AppView or profile is fetched.

        Args:
            handle: ``alice.example`` / ``@alice.example`` / ``did:plc:...``.
            password: An app password (never stored).
            pds: PDS base URL (same as ``base_url``; default: resolved from the handle).
            base_url: Upstream's name for ``pds``.
            appview: Kept for upstream compatibility (see the class).
            save: Save the session (mode 0600) for :meth:`resume` and the CLI.
            session_path: Session file (default :func:`session_file`).

        Raises:
            AuthenticationError: Wrong identifier or password.
            StorageError: The PDS cannot be found or reached.
        """
        ident = handle.strip().lstrip("@")
        if not ident:
            raise ConfigError("log in needs a handle or DID")
        base = (pds or base_url or "").rstrip("/") or resolve_identity(ident).pds
        path = pathlib.Path(session_path) if session_path else session_file()
        self = cls(base, appview=appview, session_path=path, save=save)
        sdk_login(self._client, ident, password, base)
        self._sync_session()
        return self

    @classmethod
    def from_session(
        cls, session_string: str, *, base_url: str | None = None, appview: str | None = None
    ) -> Atmosphere:
        """Continue a session exported by :meth:`export_session` (no password needed).

        Args:
            session_string: What :meth:`export_session` returned.
            base_url: The PDS (or a proxy of it) to talk to; every call goes there, after token
                refreshes too (default: the PDS the session was made on).
            appview: Kept for upstream compatibility (see the class).

        Raises:
            AuthenticationError: The session is expired, revoked or malformed.
        """
        pinned = base_url.rstrip("/").removesuffix("/xrpc") if base_url else None
        if base_url is None:  # the SDK's session string ends with the PDS it was made on
            tail = session_string.rsplit(":::", 1)[-1]
            base_url = tail if tail.startswith(("http://", "https://")) else None
        self = cls(base_url, appview=appview)
        self._pinned = pinned
        try:
            self._client.login(session_string=session_string, fetch_bsky_profile=False)
        except Exception as exc:
            raise self._auth_failure(exc, "resuming the session") from None
        self._sync_session()
        return self

    @classmethod
    def from_env(cls, *, base_url: str | None = None) -> Atmosphere:
        """Log in with ``ATDATA_HANDLE`` + ``ATDATA_PASSWORD`` (and ``ATDATA_PDS_URL``).

        Raises:
            MissingCredentialsError: (an ``EnvironmentError``) when a variable is missing.
        """
        handle, password = os.environ.get("ATDATA_HANDLE"), os.environ.get("ATDATA_PASSWORD")
        if not handle or not password:
            raise MissingCredentialsError(
                "set ATDATA_HANDLE and ATDATA_PASSWORD (an app password) to log in from the "
                "environment"
            )
        return cls.login(
            handle,
            password,
            base_url=os.environ.get("ATDATA_PDS_URL", base_url),
            appview=os.environ.get("ATDATA_APPVIEW"),
        )

    @classmethod
    def resume(
        cls, session_path: str | os.PathLike[str] | None = None, *, refresh: bool = False
    ) -> Atmosphere:
        """Continue the session saved by ``atdata login`` (the SDK refreshes tokens as needed).

        Args:
            session_path: Session file (default :func:`session_file`).
            refresh: Refresh the tokens now (checks the session is still valid).

        Raises:
            AuthenticationError: No saved session, or it is expired or revoked.
        """
        path = pathlib.Path(session_path) if session_path else session_file()
        pds, session = read_saved(path)
        self = cls(pds, session_path=path, save=True)
        try:
            self._client.login(session_string=session, fetch_bsky_profile=False)
        except Exception as exc:
            raise self._auth_failure(exc, "resuming the saved session") from None
        self._sync_session()
        if refresh:
            self.refresh()
        return self

    def _sync_session(self) -> None:
        s = getattr(self._client, "_session", None)
        if s is not None:
            self._session = {"did": str(s.did), "handle": str(s.handle)}

    def _on_session_change(self, event: Any, session: Any) -> None:
        if self._pinned is not None:  # the SDK has just moved to the session's PDS: move back
            self._client.update_base_url(self._pinned)
        self._session = {"did": str(session.did), "handle": str(session.handle)}
        if not self._save or self._session_path is None:
            return
        data = {
            "handle": session.handle,
            "did": session.did,
            "pds": self.pds,
            "session": self._client.export_session_string(),
        }
        write_private(self._session_path, json.dumps(data))

    def _auth_failure(self, exc: Exception, doing: str) -> AtdataError:
        s = self._session or {}
        who = f"@{s['handle']}" if s.get("handle") else s.get("did", "this account")
        return auth_failure(exc, doing, who, self.pds)

    def export_session(self) -> str:
        """The session as a string for :meth:`from_session` (it holds tokens: keep it secret).

        Raises:
            ValueError: When not logged in.
        """
        self._ensure_authenticated()
        return str(self._client.export_session_string())

    def refresh(self) -> None:
        """Refresh the tokens now (and save them when saving is on).

        Raises:
            AuthenticationError: The session is expired or revoked.
        """
        try:
            self._client._refresh_and_set_session()
        except Exception as exc:
            raise self._auth_failure(exc, "refreshing the session") from None

    def logout(self) -> None:
        """Revoke the session on the PDS (best effort) and delete the saved session file."""
        with contextlib.suppress(Exception):  # already revoked / unreachable: the file still goes
            self._client.com.atproto.server.delete_session(
                headers=self._client._get_refresh_auth_headers(), ignore_session_check=True
            )
        if self._session_path is not None and self._save:
            self._session_path.unlink(missing_ok=True)
        self._session = None

    # -- identity -------------------------------------------------------------------------------
    @property
    def is_authenticated(self) -> bool:
        """Whether this client is logged in."""
        return self._session is not None

    def _ensure_authenticated(self) -> None:
        if self._session is None:
            raise ConfigError(
                "this Atmosphere is not authenticated (not logged in); call Atmosphere.login(handle, ...) "
                "or Atmosphere.resume() first"
            )

    @property
    def did(self) -> str:
        """The account DID (``ValueError`` when not logged in)."""
        self._ensure_authenticated()
        return self._session["did"]  # type: ignore[index]

    @property
    def handle(self) -> str:
        """The account handle (``ValueError`` when not logged in)."""
        self._ensure_authenticated()
        return self._session["handle"]  # type: ignore[index]

    @property
    def identity(self) -> Identity:
        """DID, handle and PDS of this account."""
        return Identity(did=self.did, handle=self.handle, pds=self.pds)

    @property
    def has_appview(self) -> bool:
        """Whether an AppView was configured (atdata itself never needs one)."""
        return self.appview is not None

    def __repr__(self) -> str:
        s = self._session or {}
        return f"Atmosphere(handle={s.get('handle')!r}, did={s.get('did')!r}, pds={self.pds!r})"

    def __reduce__(self) -> Any:
        raise TypeError("an Atmosphere session cannot be pickled (it holds credentials)")

    def resolve_did(self, handle_or_did: str) -> str:
        """The DID of a handle (asked of this PDS first), or the DID itself."""
        from atdata.atmosphere._resolve import resolve_handle

        s = handle_or_did.lstrip("@")
        return s if s.startswith("did:") else resolve_handle(s, self.pds)

    def resolve(self, handle_or_did: str) -> Identity:
        """DID, handle and PDS of an account; this PDS is asked first, then the DID resolvers."""
        s = handle_or_did.lstrip("@")
        if self._session is not None and s in (self._session["did"], self._session.get("handle")):
            return self.identity
        return resolve_identity(s, self.pds)

    # -- records --------------------------------------------------------------------------------
    def _call(self, doing: str, fn: Any, *args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except Exception as exc:
            if type(exc).__module__.startswith(("atproto", "httpx")):
                raise self._auth_failure(exc, doing) from None
            raise

    def create_record(
        self,
        collection: str,
        record: dict[str, Any],
        *,
        rkey: str | None = None,
        validate: bool = False,
    ) -> AtUri:
        """Create a record in this account's repository; its :class:`AtUri` (``.cid`` set).

        Raises:
            ValueError: Not logged in, or the record holds a float.
        """
        self._ensure_authenticated()
        return _repocalls.create_record(
            self._call, self._client, self.did, collection, record, rkey, validate
        )

    def put_record(
        self,
        collection: str,
        rkey: str,
        record: dict[str, Any],
        *,
        validate: bool = False,
        swap_commit: str | None = None,
        swap_record: str | None = None,
    ) -> AtUri:
        """Create or replace the record at ``rkey``; its :class:`AtUri` (``.cid`` set).

        Args:
            swap_record: Replace only if the record's CID is still this one.
        """
        self._ensure_authenticated()
        return _repocalls.put_record(
            self._call, self._client, self.did, collection, rkey, record,
            validate=validate, swap_commit=swap_commit, swap_record=swap_record,
        )  # fmt: skip

    def get_record(self, uri: str | AtUri) -> dict[str, Any]:
        """A record's value as a dict; other accounts' records come from their own PDS.

        Raises:
            StorageError: (``KeyError`` too, when the record does not exist).
        """
        at = AtUri.parse(uri)
        if self._session is not None and at.authority in (self.did, self.handle):
            return _repocalls.own_record(self._call, self._client, self.did, at)
        ident = self.resolve(at.authority)
        return get_record(ident.pds, ident.did, at.collection, at.rkey)[0]

    def delete_record(self, uri: str | AtUri, *, swap_commit: str | None = None) -> None:
        """Delete one of this account's records."""
        self._ensure_authenticated()
        _repocalls.delete_record(self._call, self._client, self.did, AtUri.parse(uri), swap_commit)

    def list_records(
        self,
        collection: str,
        *,
        repo: str | None = None,
        limit: int = 100,
        cursor: str | None = None,
    ) -> tuple[list[dict[str, Any]], str | None]:
        """One page of a collection's record values and the cursor of the next page (or None)."""
        if repo is None:
            self._ensure_authenticated()
            repo = self.did
        if self._session is not None and repo in (self.did, self.handle):
            return _repocalls.own_page(
                self._call, self._client, self.did, collection, limit, cursor
            )
        from atdata.atmosphere._resolve import list_page

        ident = self.resolve(repo)
        page, nxt = list_page(ident.pds, ident.did, collection, limit, cursor)
        return [v for _u, _c, v in page], nxt

    def records(
        self, collection: str, repo: str | None = None
    ) -> Iterator[tuple[str, str, dict[str, Any]]]:
        """Every record of ``collection`` in ``repo`` (default: this account), all pages:
        ``(uri, cid, value)``; this account's own through the session."""
        if repo is None:
            self._ensure_authenticated()
        if self._session is not None and repo in (None, self.did, self._session.get("handle")):
            return _repocalls.own_records(self._call, self._client, self.did, collection)
        ident = self.identity if repo is None else self.resolve(repo)
        return iter_records(ident.pds, ident.did, collection)

    def _list_collection(self, suffix: str, repo: str | None, limit: int) -> list[dict[str, Any]]:
        out, _cursor = self.list_records(f"{LEXICON_NAMESPACE}.{suffix}", repo=repo, limit=limit)
        return out

    def list_schemas(self, repo: str | None = None, limit: int = 100) -> list[dict[str, Any]]:
        """Schema record values (one page of at most ``limit``)."""
        return self._list_collection("schema", repo, limit)

    def list_datasets(self, repo: str | None = None, limit: int = 100) -> list[dict[str, Any]]:
        """Dataset entry record values (one page of at most ``limit``)."""
        return self._list_collection("entry", repo, limit)

    def list_lenses(self, repo: str | None = None, limit: int = 100) -> list[dict[str, Any]]:
        """Lens record values (one page of at most ``limit``)."""
        return self._list_collection("lens", repo, limit)

    def list_labels(self, repo: str | None = None, limit: int = 100) -> list[dict[str, Any]]:
        """Label record values (one page of at most ``limit``)."""
        return self._list_collection("label", repo, limit)

    # -- blobs ----------------------------------------------------------------------------------
    def upload_blob(
        self,
        data: bytes,
        mime_type: str = "application/octet-stream",
        *,
        timeout: float | None = None,
    ) -> dict[str, Any]:
        """Upload bytes as a blob; its reference in atproto JSON form (``$type``, ``ref``, ...).

        Args:
            timeout: Seconds (default: 30 s + 1 s per MB, at least 60 s).

        Raises:
            StorageError: When the PDS refuses it (e.g. larger than its blob limit).
        """
        self._ensure_authenticated()
        return _repocalls.upload_blob(self._call, self._client, data, mime_type, timeout)

    def get_blob_url(self, did: str, cid: str) -> str:
        """The ``com.atproto.sync.getBlob`` URL of a blob (on the PDS of ``did``; a handle is
        resolved to its DID, the only repository name ``getBlob`` takes)."""
        from urllib.parse import urlencode

        ident = self.resolve(did)
        query = urlencode({"did": ident.did, "cid": cid})
        return f"{ident.pds}/xrpc/com.atproto.sync.getBlob?{query}"

    def get_blob(self, did: str, cid: str) -> bytes:
        """A blob's bytes, checked against its CID.

        Raises:
            ShardError: The PDS does not serve it.
            IntegrityError: The bytes do not match the CID.
        """
        return _repocalls.verified_blob(self.resolve(did), cid)

    def resolve_label(self, handle_or_did: str, name: str, version: str | None = None) -> str:
        """The entry URI that the label ``name`` (``version``) of a repository points at.

        Raises:
            RecordNotFoundError: (a ``KeyError``) when there is no such label.
        """
        from atdata.atmosphere._api_misc import LabelLoader

        return LabelLoader(self).resolve(handle_or_did, name, version)

    def get_dataset_entry(self, ref: str) -> Any:
        """The :class:`~atdata.atmosphere.AtmosphereIndexEntry` of ``@handle/name[@version]`` or
        of an entry AT-URI (what ``Index(atmosphere=...).get_dataset`` asks for).

        Raises:
            RecordNotFoundError: (a ``KeyError``) when no such dataset is published.
        """
        from atdata.atmosphere._index_api import AtmosphereIndexEntry
        from atdata.atmosphere._remote import find_entry, parse_remote_path

        if ref.startswith("at://"):
            return AtmosphereIndexEntry(ref, self.get_record(ref), self)
        who, name, version = parse_remote_path(ref)
        entry = find_entry(self.resolve(who), name, version)
        return AtmosphereIndexEntry(entry.uri, entry.value, self)

    def get_schema(self, uri: str) -> dict[str, Any]:
        """The schema record at AT URI ``uri`` (what ``Index.get_schema`` asks for an AT URI).

        Raises:
            RecordNotFoundError: (a ``KeyError``) when there is no such record.
        """
        from atdata.atmosphere._api_records import SchemaLoader

        return SchemaLoader(self).get(uri)

    def get_schema_type(self, uri: str) -> type:
        """The sample type rebuilt from the schema record at AT URI ``uri``."""
        from atdata.atmosphere._api_records import SchemaLoader

        return SchemaLoader(self).get_type(uri)

    def dataset_entries(self, repo: str | None = None) -> list[Any]:
        """Every dataset entry record of ``repo`` (default: this account) as
        :class:`~atdata.atmosphere.AtmosphereIndexEntry` objects (what
        ``Index.list_datasets(repo="_atmosphere")`` returns)."""
        from atdata.atmosphere._index_api import AtmosphereIndexEntry
        from atdata.atmosphere._records import ENTRY

        return [AtmosphereIndexEntry(u, v, self) for u, _c, v in self.records(ENTRY, repo)]

    def write_named(self, index: Any, ref: str, samples: Any, **kwargs: Any) -> Any:
        """What ``index.write_samples(samples, name="@handle/name")`` calls: the samples are
        written to this account's PDS as blobs (or ``data_store=``) and published; the
        :class:`~atdata.atmosphere.AtmosphereIndexEntry` (see
        :func:`atdata.atmosphere._named_write.write_named`)."""
        from atdata.atmosphere._named_write import write_named

        return write_named(index, self, ref, samples, **kwargs)

    def insert_named(self, index: Any, ref: str, ds: Any, **kwargs: Any) -> Any:
        """What ``index.insert_dataset(ds, name="@handle/name")`` calls (see
        :func:`atdata.atmosphere._named_write.insert_named`)."""
        from atdata.atmosphere._named_write import insert_named

        return insert_named(index, self, ds, ref, **kwargs)

    def promote_entry(self, index: Any, name: str, **kwargs: Any) -> Any:
        """Publish ``index``'s dataset ``name`` and its schema to this account (idempotent).

        What :meth:`atdata.Index.promote_entry` calls (the index layer sits below this one); the
        options and the result are those of :func:`atdata.atmosphere.promote_entry`.
        """
        from atdata.atmosphere._promote import promote_entry

        return promote_entry(index, name, self, **kwargs)

    # what :meth:`atdata.Index.promote_dataset` calls (this object is its ``client``)
    promote_dataset = _api_records.promote_dataset

    @property
    def blob_limit(self) -> int | None:
        """The PDS's blob upload limit in bytes, when ``describeServer`` reports it."""
        if self._blob_limit is None:
            from atdata.atmosphere._resolve import _get_json

            out = _get_json(
                f"{self.pds}/xrpc/com.atproto.server.describeServer", None, "describeServer"
            )
            limit = out.get("blobUploadLimit") if isinstance(out, dict) else None
            self._blob_limit = int(limit) if isinstance(limit, int) else 0
        return self._blob_limit or None


AtmosphereClient = Atmosphere
"""Deprecated alias of :class:`Atmosphere` (upstream's earlier name)."""
