"""``Atmosphere``: an authenticated ATProto session (over the ``atproto`` SDK) plus record/blob calls.

Sessions are saved to ``$ATDATA_SESSION_FILE`` (default ``~/.config/atdata/atmosphere-session.json``,
file mode 0600) and refreshed by the SDK; every refresh is saved again. The app password is never
stored, and neither it nor the tokens appear in reprs, logs or error messages.
"""

from __future__ import annotations

import contextlib
import json
import os
import pathlib
import warnings
from collections.abc import Iterator
from typing import Any

from atdata._errors import AuthenticationError, ConfigError, StorageError
from atdata._extras import require
from atdata.atmosphere._cid import check_no_floats
from atdata.atmosphere._resolve import Identity, iter_records, parse_at_uri, resolve_identity

__all__ = ["Atmosphere", "session_file"]

_AUTH_ERRORS = {
    "ExpiredToken",
    "InvalidToken",
    "AuthenticationRequired",
    "AuthMissing",
    "AccountTakedown",
}


def session_file() -> pathlib.Path:
    """Where the session is saved: ``$ATDATA_SESSION_FILE`` or ``~/.config/atdata/atmosphere-session.json``."""
    env = os.environ.get("ATDATA_SESSION_FILE")
    if env:
        return pathlib.Path(env).expanduser()
    base = os.environ.get("XDG_CONFIG_HOME") or os.path.join(os.path.expanduser("~"), ".config")
    return pathlib.Path(base) / "atdata" / "atmosphere-session.json"


def _write_private(path: pathlib.Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        os.fchmod(fd, 0o600)
        os.write(fd, text.encode())
    finally:
        os.close(fd)
    os.replace(tmp, path)


def _xrpc_error(exc: Exception) -> tuple[int | None, str, str]:
    """(status, error name, server message) of an SDK exception, without any request data."""
    resp = getattr(exc, "response", None)
    if resp is None:
        return None, type(exc).__name__, ""
    content = getattr(resp, "content", None)
    name = getattr(content, "error", None) or ""
    msg = getattr(content, "message", None) or ""
    if isinstance(content, dict):
        name, msg = content.get("error", ""), content.get("message", "")
    return getattr(resp, "status_code", None), str(name), str(msg)


class Atmosphere:
    """A logged-in ATProto account: publish records and blobs to its repository.

    Create one with :meth:`login` (handle or DID + app password) or :meth:`resume` (the saved
    session). ``repr`` shows the handle, DID and PDS only.
    """

    def __init__(
        self, client: Any, pds: str, *, session_path: pathlib.Path | None, save: bool
    ) -> None:
        self._client = client
        self.pds = pds.rstrip("/")
        self._session_path = session_path
        self._save = save
        self._blob_limit: int | None = None
        client.on_session_change(self._on_session_change)

    # -- sessions -------------------------------------------------------------------------------
    @classmethod
    def login(
        cls,
        handle_or_did: str,
        app_password: str,
        pds: str | None = None,
        *,
        save: bool = True,
        session_path: str | os.PathLike[str] | None = None,
    ) -> Atmosphere:
        """Log in with an app password; the PDS is resolved from the handle/DID when not given.

        Args:
            handle_or_did: ``alice.example`` / ``@alice.example`` / ``did:plc:...``.
            app_password: An app password (never stored).
            pds: PDS base URL, e.g. ``https://bsky.social`` (default: resolved).
            save: Save the session (mode 0600) for :meth:`resume` and the CLI.
            session_path: Session file (default :func:`session_file`).

        Raises:
            AuthenticationError: Wrong identifier or password.
            StorageError: The PDS cannot be found or reached.
        """
        atproto = require("atproto", "atmosphere", "logging in to the atmosphere")
        ident = handle_or_did.strip().lstrip("@")
        if not ident:
            raise ConfigError("log in needs a handle or DID")
        base = pds.rstrip("/") if pds else resolve_identity(ident).pds
        client = atproto.Client(base_url=base)
        path = pathlib.Path(session_path) if session_path else session_file()
        self = cls(client, base, session_path=path, save=save)
        try:
            client.login(ident, app_password, fetch_bsky_profile=False)
        except Exception as exc:
            status, name, msg = _xrpc_error(exc)
            if status in (400, 401) or name in _AUTH_ERRORS or name == "AuthFactorTokenRequired":
                raise AuthenticationError(
                    f"login as {ident} at {base} failed: {name or status}"
                    + (f" ({msg})" if msg else "")
                    + "; check the handle and the app password"
                ) from None
            raise StorageError(
                f"login as {ident} at {base} failed: {name or status} {msg}".rstrip()
            ) from None
        return self

    @classmethod
    def resume(
        cls, session_path: str | os.PathLike[str] | None = None, *, refresh: bool = False
    ) -> Atmosphere:
        """Continue the saved session (the SDK refreshes tokens as they expire).

        Args:
            session_path: Session file (default :func:`session_file`).
            refresh: Refresh the tokens now (checks the session is still valid).

        Raises:
            AuthenticationError: No saved session, or it is expired or revoked.
        """
        atproto = require("atproto", "atmosphere", "the atmosphere")
        path = pathlib.Path(session_path) if session_path else session_file()
        try:
            saved = json.loads(path.read_text())
            pds, session = saved["pds"], saved["session"]
        except FileNotFoundError:
            raise AuthenticationError(
                f"not logged in (no session at {path}); run `atdata login`"
            ) from None
        except (ValueError, KeyError, TypeError):
            raise AuthenticationError(
                f"the saved session at {path} is unreadable; run `atdata login` again"
            ) from None
        client = atproto.Client(base_url=pds)
        self = cls(client, pds, session_path=path, save=True)
        try:
            client.login(session_string=session, fetch_bsky_profile=False)
        except Exception as exc:
            raise self._auth_failure(exc, "resuming the saved session") from None
        if refresh:
            self.refresh()
        return self

    def _on_session_change(self, event: Any, session: Any) -> None:
        if not self._save or self._session_path is None:
            return
        data = {
            "handle": session.handle,
            "did": session.did,
            "pds": self.pds,
            "session": self._client.export_session_string(),
        }
        _write_private(self._session_path, json.dumps(data))

    def _auth_failure(self, exc: Exception, doing: str) -> AtdataErrorT:
        status, name, msg = _xrpc_error(exc)
        who = f"@{self.handle}" if self._client._session else "this account"
        if (status in (400, 401) and (name in _AUTH_ERRORS or status == 401)) or type(
            exc
        ).__name__ == "LoginRequiredError":
            return AuthenticationError(
                f"the atmosphere session of {who} is expired or revoked ({name or status}); "
                "log in again with `atdata login` or Atmosphere.login()"
            )
        return StorageError(
            f"{doing} for {who} at {self.pds} failed: {name or status} {msg}".rstrip()
        )

    def refresh(self) -> None:
        """Refresh the tokens now (and save them).

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

    # -- identity -------------------------------------------------------------------------------
    @property
    def did(self) -> str:
        """The account DID."""
        s = self._client._session
        return str(s.did) if s else ""

    @property
    def handle(self) -> str:
        """The account handle."""
        s = self._client._session
        return str(s.handle) if s else ""

    @property
    def identity(self) -> Identity:
        """DID, handle and PDS of this account."""
        return Identity(did=self.did, handle=self.handle, pds=self.pds)

    def __repr__(self) -> str:
        return f"Atmosphere(handle={self.handle!r}, did={self.did!r}, pds={self.pds!r})"

    def __reduce__(self) -> Any:
        raise TypeError("an Atmosphere session cannot be pickled (it holds credentials)")

    # -- XRPC -----------------------------------------------------------------------------------
    def _call(self, doing: str, fn: Any, *args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except Exception as exc:
            if type(exc).__module__.startswith(("atproto", "httpx")):
                raise self._auth_failure(exc, doing) from None
            raise

    def create_record(
        self, collection: str, record: dict[str, Any], rkey: str | None = None
    ) -> tuple[str, str]:
        """Create a record in this account's repository; returns ``(uri, cid)``.

        ``validate`` is left out, so the PDS accepts lexicons it does not know.
        """
        check_no_floats(record, f"{collection} record")
        data: dict[str, Any] = {"repo": self.did, "collection": collection, "record": record}
        if rkey is not None:
            data["rkey"] = rkey
        out = self._call(
            f"creating a {collection} record", self._client.com.atproto.repo.create_record, data
        )
        return str(out.uri), str(out.cid)

    def put_record(
        self, collection: str, rkey: str, record: dict[str, Any], swap: str | None = None
    ) -> tuple[str, str]:
        """Create or replace the record at ``rkey``; returns ``(uri, cid)``."""
        check_no_floats(record, f"{collection} record")
        data: dict[str, Any] = {
            "repo": self.did,
            "collection": collection,
            "rkey": rkey,
            "record": record,
        }
        if swap is not None:
            data["swapRecord"] = swap
        out = self._call(
            f"writing {collection}/{rkey}", self._client.com.atproto.repo.put_record, data
        )
        return str(out.uri), str(out.cid)

    def delete_record(self, uri: str) -> None:
        """Delete one of this account's records."""
        repo, coll, rkey = parse_at_uri(uri)
        self._call(
            f"deleting {uri}",
            self._client.com.atproto.repo.delete_record,
            {"repo": repo, "collection": coll, "rkey": rkey},
        )

    def records(
        self, collection: str, repo: str | None = None
    ) -> Iterator[tuple[str, str, dict[str, Any]]]:
        """Every record of ``collection`` in ``repo`` (default: this account): ``(uri, cid, value)``."""
        return iter_records(self.pds, repo or self.did, collection)

    def upload_blob(self, data: bytes, mime_type: str = "application/x-tar") -> dict[str, Any]:
        """Upload bytes as a blob; returns the blob reference in atproto JSON form.

        Raises:
            StorageError: When the PDS refuses it (e.g. larger than its blob limit).
        """
        with warnings.catch_warnings():  # the SDK hands httpx raw bytes as data=: harmless
            warnings.filterwarnings("ignore", "Use 'content=", DeprecationWarning)
            out = self._call(
                "uploading a blob",
                self._client.com.atproto.repo.upload_blob,
                data,
                headers={"Content-Type": mime_type},
            )
        blob = out.blob
        return {
            "$type": "blob",
            "ref": {"$link": str(blob.ref.link if hasattr(blob.ref, "link") else blob.ref)},
            "mimeType": str(blob.mime_type),
            "size": int(blob.size),
        }

    def promote_entry(self, index: Any, name: str, **kwargs: Any) -> Any:
        """Publish ``index``'s dataset ``name`` and its schema to this account (idempotent).

        What :meth:`atdata.Index.promote_entry` calls (the index layer sits below this one); the
        options and the result are those of :func:`atdata.atmosphere.promote_entry`.
        """
        from atdata.atmosphere._promote import promote_entry

        return promote_entry(index, name, self, **kwargs)

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


AtdataErrorT = AuthenticationError | StorageError
