"""Fixtures for the whole run (tests/ and the doctests under src/)."""

from __future__ import annotations

import os

import pytest


@pytest.fixture(scope="session", autouse=True)
def _atdata_cache_dir(tmp_path_factory: pytest.TempPathFactory):
    """Read-time member indexes go to a temporary cache, never to the user's ~/.cache."""
    old = os.environ.get("ATDATA_CACHE_DIR")
    os.environ["ATDATA_CACHE_DIR"] = str(tmp_path_factory.mktemp("atdata-cache"))
    yield os.environ["ATDATA_CACHE_DIR"]
    if old is None:
        os.environ.pop("ATDATA_CACHE_DIR", None)
    else:
        os.environ["ATDATA_CACHE_DIR"] = old
