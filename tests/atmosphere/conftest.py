"""A real PDS for the federation tests: installed on first use, started once per session on loopback.

``ATDATA_TEST_PDS_URL`` + ``ATDATA_TEST_PLC_URL`` point the tests at a PDS that is already running
instead. Locally a PDS that cannot be installed or started skips these tests with the reason; with
``CI=true`` it fails them (tests/_services.py).
"""

from __future__ import annotations

import functools
import os
import secrets
import shutil
import tempfile
from collections.abc import Iterator
from typing import Any

import pytest
from tests._helpers import serve_directory
from tests._services import require_service

# scripts run by upstream atdata's own Python (test_upstream_live.py), not importable here
collect_ignore = [
    "_upstream_publish.py",
    "_upstream_load.py",
    "_upstream_by_name.py",
    "_upstream_publish_named.py",
]


@functools.cache
def _server() -> tuple[Any, str]:
    """(server or None, error): started once per process."""
    from atdata.atmosphere import _pdsrun

    url = os.environ.get("ATDATA_TEST_PDS_URL")
    if url:
        plc = os.environ.get("ATDATA_TEST_PLC_URL", "")
        return _pdsrun.PDSServer(url=url, plc_url=plc, pid=0, port=0, data_dir="", log=""), ""
    try:
        data = tempfile.mkdtemp(prefix="atdata-test-pds-")
        return _pdsrun.start(data_dir=data, timeout=180), ""
    except Exception as exc:  # install/start failure: skip locally, fail in CI
        return None, f"{type(exc).__name__}: {exc}"


@pytest.fixture(scope="session")
def pds() -> Iterator[Any]:
    """The running test PDS (``.url``, ``.plc_url``); resolution env vars point at it."""
    server, err = _server()
    if server is None:
        require_service("PDS", err)
    old = {k: os.environ.get(k) for k in ("ATDATA_PLC_URL", "ATDATA_HANDLE_RESOLVER")}
    os.environ["ATDATA_PLC_URL"] = server.plc_url
    os.environ["ATDATA_HANDLE_RESOLVER"] = server.url
    yield server
    for k, v in old.items():
        if v is None:
            os.environ.pop(k, None)
        else:
            os.environ[k] = v
    if server.pid:
        from atdata.atmosphere import _pdsrun

        _pdsrun.stop(server)
        shutil.rmtree(server.data_dir, ignore_errors=True)


class Account(dict):
    """handle, did, password of a test account (repr hides the password)."""

    def __repr__(self) -> str:
        return f"Account({self['handle']!r})"


def _make_account(pds: Any, prefix: str) -> Account:
    from atdata.atmosphere import create_dev_account

    made = create_dev_account(pds.url, f"{prefix}{secrets.token_hex(3)}.test")
    return Account(handle=made.handle, did=made.did, password=made.password)


@pytest.fixture(scope="session")
def alice(pds: Any) -> Account:
    """The publishing account."""
    return _make_account(pds, "alice")


@pytest.fixture(scope="session")
def bob(pds: Any) -> Account:
    """The loading account."""
    return _make_account(pds, "bob")


@pytest.fixture()
def publisher(pds: Any) -> tuple[Account, Any]:
    """A fresh account with an empty repository, logged in (not saved)."""
    from atdata.atmosphere import Atmosphere

    acct = _make_account(pds, "pub")
    return acct, Atmosphere.login(acct["handle"], acct["password"], pds.url, save=False)


@pytest.fixture()
def session_path(tmp_path: Any) -> Any:
    """A private session file for one test."""
    return tmp_path / "session.json"


@pytest.fixture(scope="session")
def alice_atmo(pds: Any, alice: Account, tmp_path_factory: Any) -> Any:
    """Alice, logged in (session saved to a temp file)."""
    from atdata.atmosphere import Atmosphere

    path = tmp_path_factory.mktemp("alice") / "session.json"
    return Atmosphere.login(
        alice["handle"], alice["password"], pds.url, session_path=path, save=True
    )


@pytest.fixture(scope="session")
def http_dir(tmp_path_factory: Any) -> Iterator[tuple[Any, str]]:
    """(directory, base URL) served by a loopback http.server."""
    root = tmp_path_factory.mktemp("served")
    with serve_directory(root) as srv:
        yield root, srv.url
