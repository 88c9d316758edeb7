"""CLI: atdata ls, schema show/diff/stubs, local status."""

from __future__ import annotations

import ast

import numpy as np
import pytest

import atdata
from atdata.cli import main
from atdata.index import Index


@atdata.packable
class P:
    x: int
    v: atdata.NDArray


@pytest.fixture
def idx_path(tmp_path, monkeypatch):
    monkeypatch.setenv("ATDATA_HOME", str(tmp_path / "home"))
    path = str(tmp_path / "i.db")
    idx = Index(path=path)
    idx.write_samples([P(x=1, v=np.zeros(2))], name="pts", license="MIT")

    @atdata.packable
    class P2:
        x: float
        w: str | None = None

    idx.publish_schema(P2, "auto", name="P")  # changed fields: the next major version
    return path


def test_ls(idx_path, capsys):
    assert main(["ls", "--index", idx_path]) == 0
    out = capsys.readouterr().out
    assert "pts" in out and "1.0.0" in out and "MIT" in out
    assert main(["ls", "--index", idx_path, "--json"]) == 0
    assert '"num_samples": 1' in capsys.readouterr().out


def test_schema_show_and_diff(idx_path, capsys):
    assert main(["schema", "show", "P@1.0.0", "--index", idx_path]) == 0
    out = capsys.readouterr().out
    assert "P@1.0.0" in out and "ndarray" in out
    assert main(["schema", "diff", "P@1.0.0", "P@2.0.0", "--index", idx_path]) == 1
    assert capsys.readouterr().out.splitlines() == ["+ w (added)", "- v (removed)", "~ x (retyped)"]
    assert main(["schema", "diff", "P@1.0.0", "P@1.0.0", "--index", idx_path]) == 0
    assert main(["schema", "show", "Nope", "--index", idx_path]) == 1


def test_schema_stubs(idx_path, tmp_path, capsys):
    out = tmp_path / "s.pyi"
    assert main(["schema", "stubs", "--out", str(out), "--index", idx_path]) == 0
    text = out.read_text()
    ast.parse(text)
    assert "class P(PackableSample):\n    x: float\n    w: str | None = None\n" in text


def test_local_status(idx_path, capsys):
    assert main(["local", "status", "--index", idx_path]) == 0
    out = capsys.readouterr().out
    assert "sqlite" in out and "disk" in out and "yes" in out
