"""``atdata schema show|diff`` and ``atdata verify`` on shards as well as on index names."""

from __future__ import annotations

import numpy as np
import pytest
from typer.testing import CliRunner

import atdata
from atdata.cli import app
from atdata.cli._sources import inferred_type, looks_like_shards


@atdata.packable
class Row:
    label: str
    n: int
    vec: atdata.NDArray


@atdata.packable
class Wider:
    label: str
    n: float
    vec: atdata.NDArray
    extra: list[str]


def rows(k: int) -> list[Row]:
    return [Row(label=f"l{i}", n=i, vec=np.zeros(2, "f4")) for i in range(k)]


def _invoke(*args: str):
    return CliRunner().invoke(app, list(args), env={"COLUMNS": "200"})


@pytest.fixture
def index(tmp_path):
    idx = atdata.Index(path=str(tmp_path / "index.db"))
    yield idx
    idx.close()


def test_looks_like_shards_and_inferred_type(tmp_path):
    assert looks_like_shards(str(tmp_path)) and looks_like_shards("s3://b/x-{0..3}.tar")
    assert not looks_like_shards("mnist") and not looks_like_shards("mnist@1.0.0")
    t = inferred_type("T", {"a": "x", "b": 2, "c": [1.5], "d": None, "e": True})
    assert {s.name: s.type_name for s in t.atdata_fields()} == {
        "a": "str",
        "b": "int",
        "c": "list[float]",
        "e": "bool",
        "d": "str | None",
    }


def test_schema_show_on_shards(tmp_path):
    ds = atdata.write_samples(rows(2), tmp_path / "a.tar")
    r = _invoke("schema", "show", ds.url)
    assert r.exit_code == 0, r.output
    assert "(from the first sample)" in r.output
    for field in ("label", "n", "vec"):
        assert any(line.startswith(f"{field}\t") for line in r.output.splitlines())
    typed = _invoke("schema", "show", ds.url, "--type", "tests.test_cli_sources:Row", "--json")
    assert typed.exit_code == 0 and '"label"' in typed.output and '"vec"' in typed.output


def test_schema_diff_shards_and_names(tmp_path, index):
    a = atdata.write_samples(rows(2), tmp_path / "a.tar")
    b = atdata.write_samples(
        [Wider(label="x", n=1.5, vec=np.zeros(2, "f4"), extra=["t"])], tmp_path / "b.tar"
    )
    same = _invoke("schema", "diff", a.url, a.url)
    assert same.exit_code == 0 and "have the same fields" in same.output
    differ = _invoke("schema", "diff", a.url, b.url)
    assert differ.exit_code == 1
    assert "+ extra (added)" in differ.output and "~ n (retyped)" in differ.output
    index.write_samples(rows(3), name="rows")
    mixed = _invoke("schema", "diff", "Row", a.url, "--index", str(tmp_path / "index.db"))
    assert mixed.exit_code == 0, mixed.output


def test_verify_by_name_with_db(tmp_path, index):
    index.write_samples(rows(3), name="rows")
    db = str(tmp_path / "index.db")
    ok = _invoke("verify", "rows", "--db", db)
    assert ok.exit_code == 0, ok.output
    assert "all 1 shard(s) ok" in ok.output
    from atdata.cli._core import _indexed

    shard = _indexed("rows", db, None).list_shards()[0]
    with open(shard, "r+b") as f:
        f.seek(600)
        f.write(b"\xff\xff\xff")
    bad = _invoke("verify", "rows@1.0.0", "--db", db)
    assert bad.exit_code == 1 and "1 of 1 shard(s) failed verification" in bad.output
