"""The vendored upstream fixtures are byte-identical to the workplace's shared copy."""

from __future__ import annotations

import pytest

from tests.conftest import INTEROP, SHARED_INTEROP


def _files(root):
    return sorted(
        p.relative_to(root).as_posix()
        for p in root.rglob("*")
        if p.is_file() and not p.name.endswith(".idx")
    )


def test_vendored_interop_files_present():
    names = _files(INTEROP)
    assert "expected.json" in names and "records.json" in names
    assert [n for n in names if n.endswith(".tar")] == [
        "images/images-000000.tar",
        "images/images-000001.tar",
        "images/images-000002.tar",
        "vectors/vectors.tar",
    ]


def test_vendored_interop_matches_shared_copy():
    if not SHARED_INTEROP.is_dir():
        pytest.skip(
            f"no shared copy at {SHARED_INTEROP} to compare with (the vendored copy is used)"
        )
    assert _files(INTEROP) == _files(SHARED_INTEROP)
    for name in _files(SHARED_INTEROP):
        assert (INTEROP / name).read_bytes() == (SHARED_INTEROP / name).read_bytes(), name
