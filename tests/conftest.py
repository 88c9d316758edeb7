"""Shared fixtures."""

from __future__ import annotations

import pathlib

import pytest

from tests._services import require_service

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
