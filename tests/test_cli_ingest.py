"""``atdata ingest SOURCE OUT`` through typer's CliRunner."""

from __future__ import annotations

import json

from typer.testing import CliRunner

import atdata
from atdata.cli import app


def _src(tmp_path, n=30, bad=0):
    p = tmp_path / "rows.jsonl"
    lines = [json.dumps({"id": i % 20, "text": f"t{i % 20}"}) for i in range(n)]
    lines += ["{broken"] * bad
    p.write_text("\n".join(lines) + "\n")
    return str(p)


def test_ingest_piped_prints_shards_and_summary(tmp_path):
    src = _src(tmp_path)
    out = tmp_path / "out"
    res = CliRunner().invoke(app, ["ingest", src, str(out), "--dedup-on", "id", "--maxcount", "8"])
    assert res.exit_code == 0, res.output
    assert "read 30 rows, wrote 20 samples in 3 shards" in res.output
    assert "duplicates 10, invalid 0" in res.output
    assert "inferred sample type Rows(id: int, text: str)" in res.output
    assert f"sealed {out / 'data-000002.tar'} (4 samples)" in res.output
    ds = atdata.Dataset([str(out / f"data-00000{i}.tar") for i in range(3)])
    assert [s["id"] for s in ds.ordered()] == list(range(20))


def test_ingest_json_report_and_gate_error(tmp_path):
    src = _src(tmp_path, n=10, bad=1)
    res = CliRunner().invoke(
        app, ["ingest", src, str(tmp_path / "o"), "--json", "--max-invalid-fraction", "0.5"]
    )
    assert res.exit_code == 0, res.output
    rep = json.loads(res.output[res.output.index("{") :])
    assert (rep["rows_read"], rep["rows_written"], rep["rejected"]) == (11, 10, {"parse": 1})
    from atdata.cli import main

    assert main(["ingest", src, str(tmp_path / "o2")]) == 1  # 1 of 11 > 1%: one-line error


def test_ingest_into_index(tmp_path):
    src = _src(tmp_path, n=5)
    db = str(tmp_path / "i.db")
    res = CliRunner().invoke(
        app, ["ingest", src, str(tmp_path / "o"), "--name", "rows", "--index", db]
    )
    assert res.exit_code == 0, res.output
    assert "indexed as rows" in res.output
    ds = atdata.Index(path=db).open_dataset("rows")
    assert [s.text for s in ds.ordered()] == [f"t{i}" for i in range(5)]


def test_ctrl_c_says_how_to_resume_and_exits_130(tmp_path, monkeypatch):
    import atdata._ingest as ingest_mod

    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(ingest_mod, "ingest", interrupted)
    res = CliRunner().invoke(app, ["ingest", _src(tmp_path), str(tmp_path / "out")])
    assert res.exit_code == 130
    assert "interrupted: the sealed shards are kept; rerun the same command to resume" in res.output
