"""The console every command prints through, and :func:`print_table` for its tables.

On a terminal rich fits tables to its width, folding long cells over several lines (a name is
wrapped, never cut to ``…``). Piped or redirected (``atdata ls | grep name``) a table is plain
text: its title on one line, then one tab-separated line per row, the header first, with no
box-drawing characters, no colour and no width limit, so ``grep``, ``cut -f`` and ``awk -F'\\t'``
see whole names. ``TTY_COMPATIBLE=1`` (rich) or ``FORCE_TERMINAL=1`` (typer) make output act
as on a terminal.

Examples:
    >>> from rich.table import Table
    >>> import io
    >>> from rich.console import Console
    >>> t = Table("name", "samples", title="datasets")
    >>> t.add_row("a-really-long-dataset-name-" * 6, "[green]3[/]")
    >>> buf = io.StringIO()
    >>> print_table(t, Console(file=buf))
    >>> buf.getvalue().splitlines()[1:] == ["name\\tsamples", "a-really-long-dataset-name-" * 6 + "\\t3"]
    True
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Callable, Iterator
from typing import Any

__all__ = ["console", "print_table", "progress"]

_PIPE_WIDTH = 1 << 14  # wide enough for any line; rich sizes what it prints to its content


def console(*, stderr: bool = False, interactive: bool | None = None) -> Any:
    """A rich Console for command output (``interactive``: default, whether it is a terminal)."""
    from rich.console import Console

    if interactive is not False:
        forced = os.environ.get("FORCE_TERMINAL", "") not in ("", "0") or None
        con = Console(stderr=stderr, highlight=False, soft_wrap=False, force_terminal=forced)
        if interactive or con.is_terminal:  # a tty, or TTY_COMPATIBLE=1 / FORCE_COLOR / ...
            return con
    return Console(
        stderr=stderr, highlight=False, soft_wrap=False, width=_PIPE_WIDTH, force_terminal=False
    )


def _plain(cell: Any) -> str:
    """A cell's text without markup, on one line (tabs and newlines as spaces)."""
    from rich.text import Text

    text = cell.plain if isinstance(cell, Text) else Text.from_markup(str(cell)).plain
    return " ".join(text.replace("\t", " ").splitlines())


def print_table(table: Any, con: Any = None) -> None:
    """Print a rich ``table``: folded to fit a terminal, tab-separated lines when piped."""
    con = console() if con is None else con
    if con.is_terminal:
        for column in table.columns:
            column.overflow = "fold"
        con.print(table)
        return
    lines = [] if table.title is None else [_plain(table.title)]
    if table.show_header:
        lines.append("\t".join(_plain(c.header) for c in table.columns))
    cells = [[_plain(cell) for cell in c.cells] for c in table.columns]
    lines += ["\t".join(row) for row in zip(*cells, strict=True)]
    con.file.write("".join(line + "\n" for line in lines))  # rich would expand the tabs


@contextlib.contextmanager
def progress(what: str, total: int) -> Iterator[Callable[[], None]]:
    """A bar on stderr while ``total`` steps run (call the yielded function after each), when
    stderr is a terminal; it is erased at the end. Piped, nothing is shown."""
    err = console(stderr=True)
    if not err.is_terminal:
        yield lambda: None
        return
    from rich.markup import escape
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    columns = (TextColumn(escape(what)), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn())
    with Progress(*columns, console=err, transient=True) as bar:
        task = bar.add_task(what, total=total)
        yield lambda: bar.advance(task)
