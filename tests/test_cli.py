"""The core CLI: version, inspect, preview, verify, demo, errors and ``python -m atdata``."""

from __future__ import annotations

import os
import subprocess
import sys

import numpy as np
import pytest

import atdata
from atdata.cli import main


@atdata.packable
class Rec:
    image: atdata.NDArray
    label: str
    score: float
    tags: list[str]


@pytest.fixture(autouse=True)
def _wide(monkeypatch):
    monkeypatch.setenv("COLUMNS", "200")
    monkeypatch.setenv("NO_COLOR", "1")


@pytest.fixture
def shards(tmp_path):
    samples = [
        Rec(
            image=np.arange(6, dtype="f4").reshape(2, 3) + i,
            label=f"l{i}",
            score=i / 2,
            tags=["a", "b"],
        )
        for i in range(5)
    ]
    ds = atdata.write_samples(samples, str(tmp_path / "rec-%03d.tar"), maxcount=3, key="index")
    return tmp_path, ds


def run(capsys, *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_version(capsys):
    assert run(capsys, "version") == (0, f"atdata {atdata.__version__}\n", "")


def test_inspect_untyped_infers_fields(capsys, shards):
    d, _ = shards
    code, out, _ = run(capsys, "inspect", str(d / "rec-*.tar"))
    assert code == 0
    lines = out.splitlines()
    assert "  sample type: DictSample" in lines
    assert "  shards:      2" in lines
    assert "  samples:     5" in lines
    assert (
        f"  bytes:       {os.path.getsize(d / 'rec-000.tar') + os.path.getsize(d / 'rec-001.tar')}"
        in lines
    )
    assert "fields (from the first sample)" in out
    assert "NDArray float32 (2, 3)" in out
    assert "list[str] (2)" in out
    row = next(line for line in lines if "score" in line)
    assert "float" in row


def test_inspect_directory_shows_splits(capsys, tmp_path):
    atdata.write_samples([{"x": 1}, {"x": 2}], str(tmp_path / "train-0.tar"))
    atdata.write_samples([{"x": 3}], str(tmp_path / "test-0.tar"))
    code, out, _ = run(capsys, "inspect", str(tmp_path))
    assert code == 0
    assert f"{tmp_path} [train]" in out and f"{tmp_path} [test]" in out
    assert out.index("[train]") < out.index("[test]")
    assert "  samples:     2" in out and "  samples:     1" in out


def test_inspect_typed(capsys, shards):
    d, _ = shards
    code, out, _ = run(
        capsys, "inspect", str(d / "rec-{000..001}.tar"), "--type", "tests.test_cli:Rec"
    )
    assert code == 0
    assert "  sample type: Rec" in out
    assert "tags\tlist[str]" in out.splitlines() and "(from the first sample)" not in out


def test_preview_summarises_arrays(capsys, shards):
    d, _ = shards
    code, out, _ = run(capsys, "preview", str(d / "rec-000.tar"), "--limit", "2")
    assert code == 0
    assert "first 2" in out
    assert "00000000" in out and "00000001" in out and "00000002" not in out
    assert "NDArray float32 (2, 3) min=0 max=5" in out
    assert "NDArray float32 (2, 3) min=1 max=6" in out
    assert "'l1'" in out and "['a', 'b']" in out


def test_verify_ok_and_corrupt(capsys, shards):
    d, _ = shards
    code, out, _ = run(capsys, "verify", str(d / "rec-*.tar"))
    assert code == 0
    assert "all 2 shard(s) ok" in out
    import hashlib

    digest = hashlib.sha256((d / "rec-000.tar").read_bytes()).hexdigest()
    assert digest[:16] in out
    # truncate the second shard mid-member
    p = d / "rec-001.tar"
    p.write_bytes(p.read_bytes()[: 1024 + 512 + 10])  # inside the second member's payload
    code, out, _ = run(capsys, "verify", str(d / "rec-*.tar"))
    assert code == 1
    assert "1 of 2 shard(s) failed verification" in out
    assert "FAILED" in out


def test_errors_exit_nonzero_with_one_line(capsys, tmp_path):
    code, _, err = run(capsys, "inspect", str(tmp_path / "missing.tar"))
    assert code == 1
    assert err.startswith("error: shard not found: ")
    assert len(err.strip().splitlines()) == 1
    code, _, err = run(capsys, "inspect", str(tmp_path / "x.tar"), "--type", "nope")
    assert code == 1 and "--type must look like 'package.module:ClassName'" in err
    code, _, err = run(capsys, "no-such-command")
    assert code == 2 and "No such command" in err


def test_long_error_stays_one_line_when_piped(capsys, tmp_path, monkeypatch):
    monkeypatch.setenv("COLUMNS", "80")
    missing = tmp_path / ("a-long-directory-name-" * 8) / "missing.tar"
    code, _, err = run(capsys, "inspect", str(missing))
    assert code == 1
    assert err.count("\n") == 1 and str(missing) in err


def test_module_refs_resolve_from_cwd_and_name_the_fix(capsys, tmp_path, monkeypatch):
    (tmp_path / "qa_cli_types.py").write_text(
        "import atdata\n@atdata.packable\nclass Row:\n    a: int\nNOT_A_TYPE = 3\n"
    )
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(sys, "path", [p for p in sys.path if p not in ("", str(tmp_path))])
    from atdata.cli._core import _load_type

    assert _load_type("qa_cli_types:Row").__name__ == "Row"
    code, _, err = run(capsys, "inspect", "x.tar", "--type", "qa_no_such_mod:Row")
    assert code == 1 and "install it / add its directory to PYTHONPATH" in err
    code, _, err = run(capsys, "inspect", "x.tar", "--type", "qa_cli_types:Rwo")
    assert code == 1 and "no 'Rwo' there; did you mean 'Row'?" in err
    code, _, err = run(capsys, "inspect", "x.tar", "--type", "qa_cli_types:NOT_A_TYPE")
    assert code == 1 and "is 3, not a @atdata.packable class" in err


def test_error_message_markup_is_escaped(capsys, tmp_path):
    atdata.write_samples([{"x": 1}], str(tmp_path / "train-0.tar"))
    code, _, err = run(capsys, "inspect", str(tmp_path / "[bold]nothing-*.tar"))
    assert code == 1 and "[bold]nothing-*.tar" in err


def test_demo_writes_and_summarises(capsys, tmp_path):
    out_dir = tmp_path / "demo"
    code, out, _ = run(capsys, "demo", "--out", str(out_dir), "--samples", "25")
    assert code == 0
    assert "wrote 25 samples into 3 shards" in out
    assert "a batch of 8: image (8, 8, 8, 3)" in out
    assert "through the lens: 9 cats" in out
    assert "labels: {'bird': 8, 'cat': 9, 'dog': 8}" in out
    assert "demo ok: 25 samples, 3 shards" in out
    tars = sorted(n for n in os.listdir(out_dir) if n.endswith(".tar"))
    assert tars == ["demo-000000.tar", "demo-000001.tar", "demo-000002.tar"]
    code, out, _ = run(capsys, "inspect", str(out_dir))
    assert "  samples:     25" in out


def test_python_dash_m(tmp_path):
    atdata.write_samples([{"x": 1}], str(tmp_path / "a.tar"))
    env = {**os.environ, "COLUMNS": "200", "NO_COLOR": "1"}
    r = subprocess.run(
        [sys.executable, "-m", "atdata", "inspect", str(tmp_path / "a.tar")],
        capture_output=True,
        text=True,
        env=env,
        check=False,
    )
    assert r.returncode == 0, r.stderr
    assert "  samples:     1" in r.stdout
    r = subprocess.run(
        [sys.executable, "-m", "atdata", "verify", str(tmp_path / "zz.tar")],
        capture_output=True,
        text=True,
        env=env,
        check=False,
    )
    assert r.returncode == 1
    assert (
        "FAILED shard not found" in r.stdout and "1 of 1 shard(s) failed verification" in r.stdout
    )
    r = subprocess.run(
        [sys.executable, "-m", "atdata", "inspect", str(tmp_path / "zz.tar")],
        capture_output=True,
        text=True,
        env=env,
        check=False,
    )
    assert r.returncode == 1
    assert r.stderr.strip().splitlines() == [f"error: shard not found: {tmp_path / 'zz.tar'}"]


@pytest.mark.parametrize("command", ["ingest", "serve", "watch"])
def test_new_commands_help_shows_examples(capsys, command):
    code, out, _ = run(capsys, command, "--help")
    assert code == 0 and "Examples:" in out and f"atdata {command} " in out
