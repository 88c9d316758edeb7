"""The ``atdata`` command line (typer + rich).

Each topic registers its commands from its own module (``_core``, ``_index``, ``_query``,
``_atmosphere`` ...) in :func:`_register`, so ``import atdata`` never pays for the CLI.
"""

from __future__ import annotations

import copy
import importlib
import sys

import typer

__all__ = ["app", "main"]

app = typer.Typer(
    name="atdata",
    help="Typed, shareable, queryable ML datasets.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)


@app.callback()
def _root() -> None:
    """Typed, shareable, queryable ML datasets."""


# command modules, each with a ``register(app)`` function
_COMMAND_MODULES = [
    "._core",
    "._query",
    "._atmosphere",
    "._index",
    "._services",
    "._watch",
    "._ingest",
    "._serve",
]
_registered: list[bool] = []


def _register() -> None:
    """Add every topic's commands to ``app`` (once)."""
    if _registered:
        return
    _registered.append(True)
    for mod in _COMMAND_MODULES:
        try:
            importlib.import_module(mod, __name__).register(app)
        except ModuleNotFoundError as exc:  # a topic not built yet must not break the others
            if not exc.name or not exc.name.startswith("atdata.cli"):
                raise


def _command_name(info: typer.models.CommandInfo) -> str:
    """The name typer gives a registered command (its callback's, ``_`` as ``-``)."""
    if info.name:
        return info.name
    return (info.callback.__name__ if info.callback else "").lower().replace("_", "-")


def _app_for(args: list[str]) -> typer.Typer:
    """``app``, or for ``atdata COMMAND ...`` a copy of it that holds only COMMAND.

    Each call turns every registered command into a click command (signatures, annotations,
    sub-apps): about 10 ms for all of them, 1 ms for one. One command's parsing, help, output
    and exit codes do not depend on its siblings, so they are left out. ``atdata``, ``--help``
    and an unknown name get the whole app (its listing, "No such command").
    """
    name = args[0] if args else ""
    if not name or name.startswith("-"):
        return app
    commands = [c for c in app.registered_commands if _command_name(c) == name]
    groups = [g for g in app.registered_groups if g.name == name]
    if not commands and not groups:
        return app
    one = copy.copy(app)
    one.registered_commands = commands
    one.registered_groups = groups
    return one


def _os_error(exc: OSError) -> str:
    """``exc`` as one line: what failed and on which path (its directory when that is missing).

    Examples:
        >>> _os_error(FileNotFoundError(2, "No such file or directory", "/no/dir/x.tmp"))
        "No such file or directory: '/no/dir/x.tmp' (does the directory '/no/dir' exist?)"
    """
    import os

    what = exc.strerror or str(exc)
    if exc.filename is None:
        return what
    path = os.fsdecode(exc.filename)
    text = f"{what}: {path!r}"
    parent = os.path.dirname(path)
    if isinstance(exc, FileNotFoundError) and parent and not os.path.isdir(parent):
        text += f" (does the directory {parent!r} exist?)"
    return text


def main(argv: list[str] | None = None) -> int:
    """Run the CLI; errors exit non-zero with a one-line message."""
    from atdata._errors import AtdataError

    _register()
    args = sys.argv[1:] if argv is None else list(argv)
    try:
        # typer.Exit(n) comes back as the return value
        rc = _app_for(args)(args=args, standalone_mode=False)
    except AtdataError as exc:
        from rich.markup import escape

        from ._out import console

        # piped: no width, so the message stays one line
        console(stderr=True).print(f"[bold red]error:[/] {escape(str(exc))}")
        return 1
    except SystemExit as exc:
        return int(exc.code or 0)
    except OSError as exc:  # a path that cannot be read or written: no traceback
        from rich.markup import escape

        from ._out import console

        console(stderr=True).print(f"[bold red]error:[/] {escape(_os_error(exc))}")
        return 1
    except Exception as exc:  # click usage errors (typer vendors click) and aborts
        if hasattr(exc, "show") and hasattr(exc, "exit_code"):
            exc.show()
            return int(exc.exit_code)
        if type(exc).__name__ == "Abort":  # Ctrl-C, or a prompt answered no
            from ._out import console

            console(stderr=True).print("aborted")
            return 1
        raise
    return rc if isinstance(rc, int) else 0


_register()  # `app` is complete on import: typer's CliRunner can invoke it before main() runs

if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
