"""The CLI as a demanding user meets it: piped output for grep/cut, terminals, exit codes."""

from __future__ import annotations

import json
import re

import pytest

import atdata
from atdata.cli import main

LONG_NAME = "a-very-long-dataset-name-that-a-narrow-terminal-must-wrap-" + "z" * 60
BOX = re.compile(r"[\u2500-\u257f]")  # box-drawing characters
ANSI = re.compile(r"\x1b\[")


@pytest.fixture(autouse=True)
def _home(tmp_path, monkeypatch):
    monkeypatch.setenv("ATDATA_HOME", str(tmp_path / "home"))
    for var in ("FORCE_TERMINAL", "TTY_COMPATIBLE", "FORCE_COLOR"):
        monkeypatch.delenv(var, raising=False)


@pytest.fixture
def long_shards(tmp_path):
    d = tmp_path / ("d" * 70) / ("sub_" + "x" * 70)
    d.mkdir(parents=True)
    pattern = str(d / ("shard-with-a-long-file-name-" + "y" * 40 + "-%06d.tar"))
    samples = [{"label": i, "caption": f"caption {i} é漢字"} for i in range(6)]
    ds = atdata.write_samples(samples, pattern, maxcount=3, manifest=True)
    return str(d), ds.list_shards()


def run(capsys, *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_piped_tables_are_tab_separated_records_without_boxes(capsys, long_shards):
    d, shards = long_shards
    code, out, _ = run(capsys, "verify", d)
    assert code == 0
    assert not BOX.search(out) and not ANSI.search(out)
    lines = out.splitlines()
    assert lines[0] == f"{d} [train]"  # the title on one line, whole
    assert lines[1].split("\t") == ["shard", "samples", "sha256", "status"]
    names = [line.split("\t")[0] for line in lines[2:4]]
    assert names == [s.rsplit("/", 1)[1] for s in shards[:2]]
    assert lines[2].split("\t")[1:2] == ["3"] and lines[2].endswith("\tok")
    code, out, _ = run(capsys, "inspect", d)
    assert code == 0 and not BOX.search(out)
    assert "label\tint" in out.splitlines() and "caption\tstr" in out.splitlines()


def test_piped_preview_and_query_titles_keep_the_whole_path(capsys, long_shards):
    d, _ = long_shards
    code, out, _ = run(capsys, "preview", d, "-n", "2")
    assert code == 0 and not BOX.search(out)
    lines = out.splitlines()
    assert lines[0] == f"{d} [train]: first 2"
    assert lines[1].split("\t") == ["__key__", "label", "caption"]
    assert lines[2].split("\t")[1:] == ["0", "'caption 0 é漢字'"]
    code, out, _ = run(capsys, "query", d, "label >= 4")
    assert code == 0
    lines = out.splitlines()
    assert lines[0] == f"{d}: 2 matching sample(s)"
    assert [line.split("\t")[2] for line in lines[2:4]] == ["4", "5"]


def test_piped_ls_is_one_record_per_line(capsys, tmp_path):
    db = str(tmp_path / "index.db")
    idx = atdata.Index(path=db)
    idx.write_samples([{"i": 1}], name=LONG_NAME)
    idx.write_samples([{"i": 1}, {"i": 2}], name="small")
    code, out, _ = run(capsys, "ls", "--index", db)
    assert code == 0 and not BOX.search(out)
    rows = [line.split("\t") for line in out.splitlines()]
    assert rows[0][:4] == ["name", "version", "samples", "shards"]
    assert sorted(r[0] for r in rows[1:]) == sorted([LONG_NAME, "small"])
    assert all(len(r) == len(rows[0]) for r in rows)


def test_a_narrow_terminal_wraps_names_instead_of_cutting_them(capsys, monkeypatch, tmp_path):
    db = str(tmp_path / "index.db")
    atdata.Index(path=db).write_samples([{"i": 1}], name=LONG_NAME)
    monkeypatch.setenv("TTY_COMPATIBLE", "1")  # rich: act as on a terminal
    monkeypatch.setenv("COLUMNS", "60")
    monkeypatch.setenv("NO_COLOR", "1")
    code, out, _ = run(capsys, "ls", "--index", db)
    assert code == 0
    assert "…" not in out
    name_cells = [line.split("│")[1].strip() for line in out.splitlines() if line.startswith("│")]
    assert "".join(name_cells) == LONG_NAME  # folded over several lines, every character kept
    assert max(len(re.sub(r"\x1b\[[0-9;]*m", "", line)) for line in out.splitlines()) <= 60


@pytest.fixture
def indexed(tmp_path, monkeypatch):
    """An index with dataset 'pets' at the default location."""
    from atdata.index import _index

    monkeypatch.setattr(_index, "_default", None)  # the next get_default_index() is ours
    db = str(tmp_path / "home" / "index.db")
    idx = atdata.Index(path=db)
    idx.write_samples([{"name": "rex", "age": 3}, {"name": "tom", "age": 5}], name="pets")
    return db


@pytest.mark.parametrize("command", ["inspect", "preview", "verify"])
def test_local_names_are_read_from_the_index(capsys, indexed, command):
    code, out, err = run(capsys, command, "@local/pets")
    assert (code, err) == (0, "")
    assert "@local/pets" in out.splitlines()[0]
    assert "rex" in out if command == "preview" else "2" in out


def test_schema_show_and_diff_of_a_local_name(capsys, indexed, tmp_path):
    code, out, err = run(capsys, "schema", "show", "@local/pets", "--index", indexed)
    assert (code, err) == (0, "")
    assert "name\t" in out and "age\t" in out
    other = atdata.write_samples([{"name": "x", "age": 1, "owner": "y"}], tmp_path / "o.tar")
    code, out, _ = run(capsys, "schema", "diff", "@local/pets", other.url, "--index", indexed)
    assert (code, out.splitlines()) == (1, ["+ owner (added)"])


def test_an_os_error_is_one_line_naming_the_path(capsys, indexed, tmp_path):
    target = tmp_path / "no" / "such" / "dir" / "s.pyi"
    code, _, err = run(capsys, "schema", "stubs", "--out", str(target), "--index", indexed)
    assert code == 1 and "Traceback" not in err
    assert err.startswith("error: ") and str(target.parent) in err
    assert len(err.strip().splitlines()) == 1


@pytest.mark.parametrize(
    "argv",
    [
        ["ls", "--index", "{db}"],
        ["local", "status", "--index", "{db}"],
        ["schema", "show", "Img", "--index", "{db}"],
        ["verify", "pets", "--db", "{db}"],
    ],
)
def test_a_missing_index_file_is_an_error_not_a_new_index(capsys, tmp_path, argv):
    db = tmp_path / "typo" / "index.db"
    code, _, err = run(capsys, *(a.format(db=db) for a in argv))
    assert code == 1
    assert err == f"error: no index at {db}: check the path, or omit it for the default index\n"
    assert not (tmp_path / "typo").exists()


def test_ls_name_lists_that_dataset_or_says_it_is_missing(capsys, indexed):
    atdata.Index(path=indexed).write_samples([{"i": 1}], name="other")
    code, out, _ = run(capsys, "ls", "pets", "--index", indexed)
    assert code == 0
    assert [line.split("\t")[0] for line in out.splitlines()] == ["name", "pets"]
    code, out, _ = run(capsys, "ls", "@local/pets", "--index", indexed, "--json")
    assert code == 0 and [e["name"] for e in json.loads(out)] == ["pets"]
    code, out, err = run(capsys, "ls", "nosuch", "--index", indexed)
    assert (code, out) == (1, "")
    assert err.startswith("error: dataset 'nosuch' is not in the index at ")


def test_version_prints_the_program_name_like_upstream(capsys):
    assert run(capsys, "version") == (0, f"atdata {atdata.__version__}\n", "")


def test_schema_diff_exits_2_on_an_error_1_on_a_difference(capsys, indexed, tmp_path):
    code, _, err = run(capsys, "schema", "diff", "Nope@1.0.0", "Nope@2.0.0", "--index", indexed)
    assert code == 2 and err.startswith("error: schema 'Nope@1.0.0' is not in the index")
    code, _, _ = run(capsys, "schema", "diff", str(tmp_path / "missing.tar"), "@local/pets")
    assert code == 2


def test_query_takes_a_bare_dataset_name_and_rejects_a_negative_limit(capsys, indexed):
    atdata.Index(path=indexed).write_samples(
        [{"n": i} for i in range(4)], name="nums", manifest=True
    )
    code, out, err = run(capsys, "query", "nums", "n >= 2", "--count")
    assert (code, out, err) == (0, "2\n", "")
    code, _, err = run(capsys, "query", "nums", "n >= 2", "--limit", "-1")
    assert code == 2 and "--limit" in err


def test_verify_shows_progress_on_a_terminal_and_nothing_extra_when_piped(
    capsys, long_shards, monkeypatch
):
    d, _ = long_shards
    code, _, err = run(capsys, "verify", d)
    assert (code, err) == (0, "")
    monkeypatch.setenv("TTY_COMPATIBLE", "1")
    monkeypatch.setenv("COLUMNS", "100")
    code, out, err = run(capsys, "verify", d)
    assert code == 0 and "all 2 shard(s) ok" in out
    assert "verifying" in err and "2/2" in err


def _commands(app, prefix=""):
    for c in app.registered_commands:
        yield prefix + (c.name or c.callback.__name__), c.callback
    for g in app.registered_groups:
        yield from _commands(g.typer_instance, f"{prefix}{g.name} ")


def test_every_command_summary_is_one_line_in_the_help_listing():
    from atdata.cli import app

    # typer keeps a docstring's line breaks in the command listing: 'schema --help' showed
    # 'Show a schema: ... or shards' / '(a path, pattern' / 'or URL; ...' as three rows
    broken = [
        name for name, fn in _commands(app) if "\n" in (fn.__doc__ or "").strip().split("\n\n")[0]
    ]
    assert broken == []


def test_verify_takes_a_label_as_upstream_documents(capsys, indexed):
    idx = atdata.Index(path=indexed)
    idx.label("stable", idx.get_dataset("pets").cid)
    code, out, _ = run(capsys, "verify", "stable", "--db", indexed)
    assert code == 0 and "all 1 shard(s) ok" in out
