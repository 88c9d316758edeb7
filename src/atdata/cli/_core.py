"""Core commands: ``version`` (inspect, preview, verify, demo are added next to it)."""

from __future__ import annotations

import typer

__all__ = ["register"]


def register(app: typer.Typer) -> None:
    """Add the core commands to ``app``."""

    @app.command()
    def version() -> None:
        """Print the atdata version."""
        import atdata

        typer.echo(atdata.__version__)
