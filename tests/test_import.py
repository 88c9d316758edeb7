"""``import atdata`` stays light: no numpy, msgpack, CLI libraries or extras until used."""

from __future__ import annotations

import json
import subprocess
import sys

import atdata

HEAVY = [
    "numpy",
    "msgpack",
    "typer",
    "rich",
    "click",
    "hypothesis",
    "boto3",
    "botocore",
    "redis",
    "psycopg",
    "duckdb",
    "pyarrow",
    "pandas",
    "polars",
    "datasets",
    "zstandard",
    "atproto",
    "libipld",
    "torch",
    "uvicorn",
    "starlette",
    "ray",
    "selenium",
]


def _run(code: str) -> str:
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=False)
    assert r.returncode == 0, r.stderr
    return r.stdout


def test_import_leaves_heavy_modules_out():
    out = _run(
        "import sys, json, atdata, atdata.testing\n"
        f"print(json.dumps(sorted(m for m in {HEAVY!r} if m in sys.modules)))"
    )
    assert json.loads(out) == []


def test_bare_import_loads_only_the_namespace_modules():
    """``import atdata`` runs the package's ``__init__`` and its three tiny helpers, nothing else of
    atdata (``_errors`` alone pulls tarfile, dataclasses and inspect: 25 ms here)."""
    out = _run(
        "import sys, json, atdata\n"
        "print(json.dumps(sorted(m for m in sys.modules if m.startswith('atdata'))))"
    )
    assert json.loads(out) == ["atdata", "atdata._hooks", "atdata._lazy", "atdata._version"]


def test_using_a_core_name_does_not_pull_extras():
    out = _run(
        "import sys, json, atdata\n"
        "atdata.Dataset, atdata.packable, atdata.load_dataset, atdata.DatasetDict\n"
        f"print(json.dumps(sorted(m for m in {HEAVY!r} if m in sys.modules)))"
    )
    loaded = json.loads(out)
    assert "msgpack" in loaded
    assert [m for m in loaded if m not in ("msgpack", "numpy")] == []


def test_this_sessions_names_load_nothing_heavy_until_used():
    # ingest, the watcher, the viewer and the Arrow way in import their extras (pyarrow, pandas,
    # polars, uvicorn, datasets, zstandard) only when they run
    out = _run(
        "import sys, json, atdata\n"
        "atdata.ingest, atdata.IngestReport, atdata.QualityGateError, atdata.Watcher\n"
        "atdata.from_arrow, atdata.schema_from_arrow, atdata.ArrayLayoutError\n"
        "atdata.viewer.create_app, atdata.ray\n"
        f"print(json.dumps(sorted(m for m in {HEAVY!r} if m in sys.modules)))"
    )
    assert json.loads(out) == []


def test_cli_start_registers_every_command_without_extras():
    # `atdata version` registers ingest, serve, watch, query ... and imports none of their deps
    out = _run(
        "import sys, json, contextlib, io\n"
        "from atdata.cli import main\n"
        "with contextlib.redirect_stdout(io.StringIO()):\n"
        "    main(['version'])\n"
        f"print(json.dumps(sorted(m for m in {HEAVY!r} if m in sys.modules)))"
    )
    assert [m for m in json.loads(out) if m not in ("typer", "rich", "click")] == []


def test_all_is_sorted_and_resolves():
    assert sorted(atdata.__all__) == atdata.__all__
    assert len(set(atdata.__all__)) == len(atdata.__all__)
    missing = [n for n in atdata.__all__ if getattr(atdata, n, None) is None]
    assert missing == []
    assert set(atdata.__all__) <= set(dir(atdata))


def test_unknown_attribute_is_attribute_error():
    try:
        atdata.no_such_name  # noqa: B018
    except AttributeError as exc:
        assert str(exc) == "module 'atdata' has no attribute 'no_such_name'"
    else:  # pragma: no cover
        raise AssertionError("expected AttributeError")


def test_testing_namespace_is_lazy_and_sorted():
    import atdata.testing as t

    assert t.__all__ == sorted(t._LAZY)
    assert [n for n in t.__all__ if getattr(t, n, None) is None] == []
    assert callable(t.check_lens_laws) and callable(t.strategy_for)


def test_import_time_is_measured():
    """Report ``python -X importtime -c 'import atdata'`` (no timed assertion)."""
    r = subprocess.run(
        [sys.executable, "-X", "importtime", "-c", "import atdata"],
        capture_output=True,
        text=True,
        check=True,
    )
    rows = [line.split("|") for line in r.stderr.splitlines() if line.startswith("import time:")]
    atdata_row = [row for row in rows if row[2].strip() == "atdata"]
    assert len(atdata_row) == 1
    cumulative_us = int(atdata_row[0][1])
    assert cumulative_us > 0
    print(f"import atdata: {cumulative_us} us cumulative")


def test_type_checking_imports_match_the_lazy_map():
    """The ``TYPE_CHECKING`` imports re-export exactly ``_LAZY`` (ruff's F401 is off for them)."""
    import ast
    import pathlib

    tree = ast.parse(pathlib.Path(atdata.__file__).read_text())
    block = next(
        n for n in tree.body if isinstance(n, ast.If) and ast.unparse(n.test) == "TYPE_CHECKING"
    )
    imported = {
        a.name: "." * node.level + (node.module or "")
        for node in block.body
        if isinstance(node, ast.ImportFrom)
        for a in node.names
    }
    assert imported == atdata._LAZY
