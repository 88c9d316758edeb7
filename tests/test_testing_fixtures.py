"""The documented pytest fixtures of ``atdata.testing``, used as a user would (imported)."""

from __future__ import annotations

import atdata
from atdata.testing import mock_atmosphere, tmp_dataset, tmp_index  # noqa: F401 - fixtures


def test_tmp_dataset(tmp_dataset):  # noqa: F811 - the fixture
    got = [(s.name, s.value) for s in tmp_dataset]
    assert got == [(f"s{i}", i) for i in range(10)]
    assert tmp_dataset.column_names == ["name", "value"]


def test_tmp_index(tmp_index):  # noqa: F811
    assert isinstance(tmp_index, atdata.Index)
    assert list(tmp_index.list_entries()) == []


def test_mock_atmosphere(mock_atmosphere):  # noqa: F811
    assert mock_atmosphere.is_authenticated is True
