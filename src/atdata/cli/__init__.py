"""The ``atdata`` command line (typer + rich).

Each topic registers its commands from its own module (``_core``, ``_index``, ``_query``,
``_atmosphere`` ...) in :func:`_register`, so ``import atdata`` never pays for the CLI.
"""

from __future__ import annotations

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


def main(argv: list[str] | None = None) -> int:
    """Run the CLI; errors exit non-zero with a one-line message."""
    from atdata._errors import AtdataError

    _register()
    try:
        rc = app(args=argv, standalone_mode=False)  # typer.Exit(n) comes back as the return value
    except AtdataError as exc:
        from rich.markup import escape

        from ._out import console

        # piped: no width, so the message stays one line
        console(stderr=True).print(f"[bold red]error:[/] {escape(str(exc))}")
        return 1
    except SystemExit as exc:
        return int(exc.code or 0)
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
