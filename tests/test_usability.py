"""What a new user ran into: progress units, piped CLI tables, and errors that say what is wrong."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest

import atdata
from atdata import ConfigError, DataNotFoundError, SchemaError
from atdata.cli import main


def test_write_progress_counts_samples_per_second(tmp_path, capsys):
    atdata.write_samples([{"i": i} for i in range(300)], tmp_path / "a.tar", progress=True)
    out = capsys.readouterr()
    text = out.out + out.err
    assert "300/300" in text and "samples/s" in text
    assert "B/s" not in text


def test_cli_tables_keep_whole_names_when_piped(tmp_path, capsys):
    long = "a-very-long-dataset-name-that-a-narrow-table-would-cut-" * 3 + "end"
    db = str(tmp_path / "index.db")
    idx = atdata.Index(path=db)
    idx.write_samples([{"i": 1}], name=long)
    idx.close()
    assert main(["ls", "--index", db]) == 0
    out = capsys.readouterr().out  # captured: not a terminal, like `atdata ls | grep`
    assert any(long in line for line in out.splitlines())
    assert "…" not in out
    shard = atdata.write_samples([{"i": 1}], tmp_path / ("s" * 120 + ".tar")).list_shards()[0]
    assert main(["verify", shard]) == 0
    assert os.path.basename(shard) in capsys.readouterr().out


def test_batching_mapped_non_samples_says_so(tmp_path):
    ds = atdata.write_samples([{"i": i} for i in range(4)], tmp_path / "a.tar")
    with pytest.raises(ConfigError, match=r"batch_size needs samples.*gives int values"):
        next(iter(ds.map(lambda s: s["i"]).ordered(batch_size=2)))
    batch = next(iter(ds.map(lambda s: atdata.DictSample(j=s["i"] * 2)).ordered(batch_size=2)))
    assert len(batch) == 2


@atdata.packable
class _Img:
    image: atdata.NDArray
    label: str


def test_none_for_a_required_array_says_required(tmp_path):
    with pytest.raises(SchemaError, match=r"'image' is required but got None.*NDArray \| None"):
        atdata.write_samples([_Img(image=None, label="x")], tmp_path / "a.tar")
    assert os.listdir(tmp_path) == []
    ok = atdata.write_samples([_Img(image=np.zeros(2), label="x")], tmp_path / "b.tar")
    assert len(ok) == 1


def test_query_with_pyarrow_but_no_pandas_names_the_extra(tmp_path):
    script = textwrap.dedent(
        """
        import sys

        class NoPandas:
            def find_spec(self, name, path=None, target=None):
                if name == "pandas" or name.startswith("pandas."):
                    raise ModuleNotFoundError(f"No module named {name!r}", name=name)

        sys.meta_path.insert(0, NoPandas())
        import atdata
        ds = atdata.write_samples([{"x": i} for i in range(4)], sys.argv[1], manifest=True)
        print(len(ds.query("x > 1")))
        try:
            ds.query(lambda df: df["x"] > 1)
        except atdata.MissingExtraError as exc:
            print("MissingExtraError:", exc)
        """
    )
    r = subprocess.run(
        [sys.executable, "-c", script, str(tmp_path / "a.tar")], capture_output=True, text=True
    )
    assert r.returncode == 0, r.stderr
    lines = r.stdout.splitlines()
    assert lines[0] == "2"  # SQL and field expressions need no pandas
    assert lines[1].startswith("MissingExtraError: pandas is needed for query predicates")
    assert 'pip install "atdata[query]"' in lines[1]


def test_load_dataset_of_a_missing_path_fails_at_once(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    for bad in ("typo/", "typo.tar", str(tmp_path / "nope" / "x.tar")):
        with pytest.raises(DataNotFoundError, match="no data files found"):
            atdata.load_dataset(bad)
    with pytest.raises(FileNotFoundError):
        atdata.load_dataset("typo/")
