"""The CLI starts light: what ``import atdata.cli`` and a ``--help`` load, and the one-command app.

Structure, not timing: the time goes to typer (and the pydantic and rich modules it imports),
so these tests pin what atdata itself adds to a start.
"""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
from typer.testing import CliRunner

from atdata.cli import _app_for, _command_name, app

# imported by no help page (typer itself brings pydantic and rich.table in for those)
NOT_FOR_HELP = [
    "numpy",
    "msgpack",
    "pyarrow",
    "pandas",
    "httpx",
    "atproto",
    "libipld",
    "boto3",
    "redis",
    "psycopg",
    "duckdb",
    "torch",
    "uvicorn",
    "atdata.dataset",
    "atdata.index",
    "atdata.manifest",
]
# nor by ``import atdata.cli`` (rich.table: only the commands that print a table import it;
# socket: only the service checks)
NOT_AT_IMPORT = [*NOT_FOR_HELP, "pydantic", "rich.table", "rich.markdown", "socket"]

TOP_LEVEL = [
    "version",
    "inspect",
    "preview",
    "verify",
    "demo",
    "query",
    "login",
    "logout",
    "whoami",
    "ls",
    "diagnose",
    "watch",
    "ingest",
    "serve",
    "manifest",
    "local",
    "schema",
    "infra",
]


def _loaded_after(code: str, names: list[str]) -> list[str]:
    r = subprocess.run(
        [sys.executable, "-c", f"{code}\nimport sys, json\n"
         f"print(json.dumps(sorted(m for m in {names!r} if m in sys.modules)))"],
        capture_output=True,
        text=True,
        check=False,
    )  # fmt: skip
    assert r.returncode == 0, r.stderr
    return json.loads(r.stdout.splitlines()[-1])


def test_import_of_the_cli_loads_no_data_layer_extra_or_table():
    assert _loaded_after("import atdata.cli", NOT_AT_IMPORT) == []


@pytest.mark.parametrize(
    "argv",
    [
        ["--help"],
        ["version"],
        ["inspect", "--help"],
        ["schema", "show", "--help"],
        ["local", "status", "--help"],
        ["ingest", "--help"],
        ["serve", "--help"],
    ],
)
def test_help_and_version_load_no_data_layer_or_extra(argv):
    code = (
        "import contextlib, io\n"
        "from atdata.cli import main\n"
        "with contextlib.redirect_stdout(io.StringIO()):\n"
        f"    assert main({argv!r}) == 0\n"
    )
    assert _loaded_after(code, NOT_FOR_HELP) == []


def test_the_app_registers_every_top_level_command():
    names = [_command_name(c) for c in app.registered_commands]
    names += [g.name for g in app.registered_groups]
    assert names == TOP_LEVEL


@pytest.mark.parametrize(
    ("argv", "commands", "groups"),
    [
        (["inspect", "DIR"], ["inspect"], []),
        (["version"], ["version"], []),
        (["ls", "--json"], ["ls"], []),
        (["local", "status"], [], ["local"]),
        (["schema", "show", "X"], [], ["schema"]),
    ],
)
def test_a_known_command_runs_in_an_app_that_holds_only_it(argv, commands, groups):
    one = _app_for(argv)
    assert one is not app
    assert [_command_name(c) for c in one.registered_commands] == commands
    assert [g.name for g in one.registered_groups] == groups
    assert one.registered_callback is app.registered_callback
    assert len(app.registered_commands) == 14  # the full app is left as it was


@pytest.mark.parametrize("argv", [[], ["--help"], ["--version"], ["nosuch"], ["inspec"]])
def test_no_or_unknown_command_gets_the_whole_app(argv):
    assert _app_for(argv) is app


@pytest.mark.parametrize("name", TOP_LEVEL)
def test_one_command_app_prints_the_same_help_as_the_whole_app(name):
    env = {"COLUMNS": "120", "NO_COLOR": "1"}
    whole = CliRunner().invoke(app, [name, "--help"], env=env)
    one = CliRunner().invoke(_app_for([name]), [name, "--help"], env=env)
    assert whole.exit_code == 0
    assert one.exit_code == 0
    assert one.output == whole.output
    assert f"Usage: atdata {name} [OPTIONS]" in " ".join(one.output.split())


def test_a_usage_error_reads_the_same_from_the_one_command_app():
    env = {"COLUMNS": "120", "NO_COLOR": "1"}
    whole = CliRunner().invoke(app, ["inspect"], env=env)
    one = CliRunner().invoke(_app_for(["inspect"]), ["inspect"], env=env)
    assert (one.exit_code, one.output) == (whole.exit_code, whole.output)
    assert whole.exit_code == 2
    assert "Missing argument 'path'." in whole.output
