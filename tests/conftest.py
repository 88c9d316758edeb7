"""Shared fixtures."""

from __future__ import annotations

import pathlib

import pytest
from hypothesis import HealthCheck, settings

from tests._services import require_service

# Property tests check values, not speed: on a loaded machine (CI, or several suites at once on
# two cores) a slow example must not fail a run (hypothesis' deadline and too_slow check).
settings.register_profile("atdata", deadline=None, suppress_health_check=[HealthCheck.too_slow])
settings.load_profile("atdata")

HERE = pathlib.Path(__file__).resolve().parent
# Files written by upstream atdata 0.7.0b1, vendored from the workplace's ../shared/interop/ so
# the tests run from any checkout (tests/test_interop_vendored.py checks the copy is exact).
INTEROP = HERE / "interop" / "upstream-0.7.0b1"
SHARED_INTEROP = HERE.parents[1] / "shared" / "interop" / "upstream-0.7.0b1"


@pytest.fixture(scope="session")
def interop_dir() -> pathlib.Path:
    """Files written by upstream atdata 0.7.0b1 (see tests/interop/README.md)."""
    if not INTEROP.is_dir():
        require_service("interop fixtures", f"{INTEROP} does not exist")
    return INTEROP


@pytest.fixture
def torch_present() -> None:
    """Skips the test (fails it under ``CI=true``) when torch is not installed; the torch test
    modules ask for it with ``pytest.mark.usefixtures("torch_present")``."""
    import importlib.util

    if importlib.util.find_spec("torch") is None:
        require_service("torch", 'not installed (pip install "atdata[torch]")')


@pytest.fixture(scope="module")
def s3_endpoint():
    """URL of a moto S3 server on a free loopback port (one per test module)."""
    import socket

    try:
        from moto.server import ThreadedMotoServer
    except ImportError:
        require_service("moto server", "moto[server] is not installed")
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    yield f"http://127.0.0.1:{port}"
    server.stop()
