"""Where sessions are saved (mode 0600) and how SDK errors are read, without request data."""

from __future__ import annotations

import os
import pathlib

__all__ = ["AUTH_ERRORS", "session_file", "write_private", "xrpc_error"]

AUTH_ERRORS = {
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
