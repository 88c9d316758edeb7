"""Shared fixtures."""

from __future__ import annotations

import pathlib

import pytest

from tests._services import require_service

INTEROP = pathlib.Path(__file__).resolve().parents[1].parent / "shared" / "interop" / "upstream-0.7.0b1"


@pytest.fixture(scope="session")
def interop_dir() -> pathlib.Path:
    """Files written by upstream atdata 0.7.0b1 (see ../shared/interop/README.md)."""
    if not INTEROP.is_dir():
        require_service("interop fixtures", f"{INTEROP} does not exist")
    return INTEROP
