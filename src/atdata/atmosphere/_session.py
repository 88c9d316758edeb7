"""Sessions: where they are saved (mode 0600), logging the SDK in, and how SDK errors are read
(without request data) and turned into atdata's errors.

Examples:
    >>> auth_failure(RuntimeError("boom"), "listing records", "@alice.test", "http://pds.test")
    StorageError('listing records for @alice.test at http://pds.test failed: RuntimeError')
"""

from __future__ import annotations

import json
import os
import pathlib
from typing import Any

from atdata._errors import (
    AtdataError,
    AuthenticationError,
    RecordNotFoundError,
    StorageError,
    as_both,
)

__all__ = [
    "AUTH_ERRORS",
    "auth_failure",
    "read_saved",
    "sdk_login",
    "session_file",
    "unreachable",
    "user_path",
    "write_private",
    "xrpc_error",
]

AUTH_ERRORS = {
    "ExpiredToken",
    "InvalidToken",
    "AuthenticationRequired",
    "AuthMissing",
    "AccountTakedown",
}


def user_path(env: str, xdg: str, home_dir: str, name: str) -> pathlib.Path:
    """``$env`` (``~`` expanded) when set, else ``$xdg/atdata/name``, where ``$xdg`` defaults to
    ``~/home_dir`` (the XDG base directory rule)."""
    given = os.environ.get(env)
    if given:
        return pathlib.Path(given).expanduser()
    base = os.environ.get(xdg) or os.path.join(os.path.expanduser("~"), home_dir)
    return pathlib.Path(base) / "atdata" / name


def session_file() -> pathlib.Path:
    """Where the session is saved: ``$ATDATA_SESSION_FILE`` or ``~/.config/atdata/atmosphere-session.json``."""
    return user_path("ATDATA_SESSION_FILE", "XDG_CONFIG_HOME", ".config", "atmosphere-session.json")


def write_private(path: pathlib.Path, text: str) -> None:
    path.parent.parent.mkdir(parents=True, exist_ok=True)
    path.parent.mkdir(mode=0o700, exist_ok=True)  # the session's own directory: private
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        os.fchmod(fd, 0o600)
        os.write(fd, text.encode())
    finally:
        os.close(fd)
    os.replace(tmp, path)


def xrpc_error(exc: Exception) -> tuple[int | None, str, str]:
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


_UNREACHABLE = {"NetworkError", "InvokeTimeoutError"}  # the SDK's: no answer came back
_FIX_UNREACHABLE = "check that the PDS is running and that this is its URL"


def unreachable(exc: Exception) -> str | None:
    """``"ConnectError: ..."`` when ``exc`` says the PDS gave no answer (refused, timed out,
    dropped: the SDK's ``NetworkError``/``InvokeTimeoutError`` or an ``httpx`` transport
    error), else ``None``. Only the cause's class and text: no request data.

    Examples:
        >>> unreachable(RuntimeError("boom")) is None
        True
    """
    import sys

    httpx = sys.modules.get("httpx")
    sdk = type(exc).__module__.startswith("atproto") and type(exc).__name__ in _UNREACHABLE
    if not sdk and not (httpx is not None and isinstance(exc, httpx.TransportError)):
        return None
    cause = exc.__cause__ or exc.__context__ or exc
    text = str(cause).strip()
    return (type(cause).__name__ + (f": {text}" if text else ""))[:160]


def _sdk_flavoured(ours: type[AtdataError], exc: Exception, message: str) -> AtdataError:
    """``ours`` with ``message``; for an SDK error (``atproto``'s ``AtProtocolError`` family,
    which upstream documents as what record calls raise) also an instance of its class."""
    if type(exc).__module__.startswith("atproto"):
        return as_both(ours, exc, message)
    return ours(message)


def auth_failure(exc: Exception, doing: str, who: str, pds: str) -> AtdataError:
    """The atdata error for an SDK error while ``doing`` something as ``who`` on ``pds``: an
    expired/revoked session is an :class:`AuthenticationError`, a missing record a
    :class:`RecordNotFoundError`, anything else a :class:`StorageError`; each is also the SDK's
    error class (``except AtProtocolError`` keeps working)."""
    status, name, msg = xrpc_error(exc)
    if name == "RecordNotFound" or "Could not locate record" in msg:
        text = f"{doing} failed: {name}: {msg}".rstrip(": ")
        return _sdk_flavoured(RecordNotFoundError, exc, text)
    if (status in (400, 401) and (name in AUTH_ERRORS or status == 401)) or type(
        exc
    ).__name__ == "LoginRequiredError":
        return _sdk_flavoured(
            AuthenticationError,
            exc,
            f"the atmosphere session of {who} is expired or revoked ({name or status}); "
            "log in again with `atdata login` or Atmosphere.login()",
        )
    reach = unreachable(exc)
    if reach is not None:
        text = (
            f"cannot reach the PDS at {pds} while {doing} for {who} ({reach}); {_FIX_UNREACHABLE}"
        )
        return _sdk_flavoured(StorageError, exc, text)
    text = f"{doing} for {who} at {pds} failed: {name or status} {msg}".rstrip()
    return _sdk_flavoured(StorageError, exc, text)


def sdk_login(client: Any, ident: str, password: str, base: str) -> None:
    """Log the SDK ``client`` in as ``ident`` with an app password (no Bluesky profile fetched).

    Raises:
        AuthenticationError: Wrong identifier or password.
        StorageError: Any other failure (the PDS unreachable, ...).
    """
    try:
        client.login(ident, password, fetch_bsky_profile=False)
    except Exception as exc:
        status, name, msg = xrpc_error(exc)
        if status in (400, 401) or name in AUTH_ERRORS or name == "AuthFactorTokenRequired":
            raise _sdk_flavoured(
                AuthenticationError,
                exc,
                f"login as {ident} at {base} failed: {name or status}"
                + (f" ({msg})" if msg else "")
                + "; check the handle and the app password",
            ) from None
        reach = unreachable(exc)
        if reach is not None:
            text = f"cannot reach the PDS at {base} to log in as {ident} ({reach}); "
            raise _sdk_flavoured(StorageError, exc, text + _FIX_UNREACHABLE) from None
        text = f"login as {ident} at {base} failed: {name or status} {msg}".rstrip()
        raise _sdk_flavoured(StorageError, exc, text) from None


def read_saved(path: pathlib.Path) -> tuple[str, str]:
    """``(pds, session string)`` saved at ``path`` by ``atdata login``.

    Raises:
        AuthenticationError: No saved session, or it is unreadable.
    """
    try:
        saved = json.loads(path.read_text())
        return str(saved["pds"]), str(saved["session"])
    except FileNotFoundError:
        raise AuthenticationError(
            f"not logged in (no session at {path}); run `atdata login`"
        ) from None
    except (ValueError, KeyError, TypeError):
        raise AuthenticationError(
            f"the saved session at {path} is unreadable; run `atdata login` again"
        ) from None
