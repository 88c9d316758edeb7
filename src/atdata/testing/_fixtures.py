"""Pytest fixtures for tests written against atdata: ``tmp_dataset``, ``tmp_index`` and
``mock_atmosphere``.

Use them by importing them into a test module (``from atdata.testing import tmp_dataset``) or by
naming the plugin in the root ``conftest.py``: ``pytest_plugins = ["atdata.testing"]``.
Needs pytest.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

__all__ = ["mock_atmosphere", "tmp_dataset", "tmp_index"]


@pytest.fixture
def mock_atmosphere() -> Iterator[Any]:
    """A logged-in :class:`~atdata.testing.MockAtmosphere`, reset after the test."""
    from atdata.testing._atmosphere import MockAtmosphere

    client = MockAtmosphere()
    client.login("test.mock.social", "test-password")
    yield client
    client.reset()


@pytest.fixture
def tmp_dataset(tmp_path: Path) -> Any:
    """A ten-sample dataset (fields ``name: str``, ``value: int``) in the test's temp dir."""
    from atdata._wire.sample import packable
    from atdata.testing._factories import make_dataset

    @packable
    class TmpSample:
        name: str
        value: int

    return make_dataset(
        tmp_path, [TmpSample(name=f"s{i}", value=i) for i in range(10)], sample_type=TmpSample
    )


@pytest.fixture
def tmp_index(tmp_path: Path) -> Iterator[Any]:
    """A fresh SQLite-backed :class:`~atdata.Index` in the test's temp dir (closed after)."""
    from atdata.testing._factories import mock_index

    index = mock_index(tmp_path)
    yield index
    close = getattr(index, "close", None)
    if close is not None:
        close()
