"""The console every command prints through: tables never cut names when the output is piped.

On a terminal rich fits tables to its width. Piped or redirected (``atdata ls | grep name``)
there is no width to fit, so lines are as long as their content: no ``…`` and no wrapped cells,
and every name stays whole on its row.

Examples:
    >>> con = console(interactive=False)
    >>> from rich.table import Table
    >>> t = Table("name", "samples")
    >>> t.add_row("a-really-long-dataset-name-" * 6, "3")
    >>> with con.capture() as cap:
    ...     con.print(t)
    >>> ("a-really-long-dataset-name-" * 6) in cap.get()
    True
"""

from __future__ import annotations

import sys
from typing import Any

__all__ = ["console"]

_PIPE_WIDTH = 1 << 14  # wide enough for any row; rich sizes tables to their content


def console(*, stderr: bool = False, interactive: bool | None = None) -> Any:
    """A rich Console for command output (``interactive``: default, whether it is a terminal)."""
    from rich.console import Console

    stream = sys.stderr if stderr else sys.stdout
    if interactive is None:
        interactive = bool(getattr(stream, "isatty", lambda: False)())
    if interactive:
        return Console(stderr=stderr, highlight=False, soft_wrap=False)
    return Console(
        stderr=stderr, highlight=False, soft_wrap=False, width=_PIPE_WIDTH, force_terminal=False
    )
