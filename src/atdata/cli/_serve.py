"""``atdata serve``: the dataset viewer in a browser (see :mod:`atdata.viewer`)."""

from __future__ import annotations

import typer

__all__ = ["register"]


def register(app: typer.Typer) -> None:
    """Add ``serve`` to ``app``."""

    @app.command(
        epilog=(
            "Examples:\n\n"
            "  atdata serve data/pets\n\n"
            "  atdata serve @local/mnist --port 8000\n\n"
            "  atdata serve   # every dataset of the index\n\n"
        )
    )
    def serve(
        targets: list[str] = typer.Argument(
            None,
            help="Shards, a directory, a pattern, @local/name or @handle/name (several allowed).",
        ),
        index: bool = typer.Option(
            False, "--index", help="Show every dataset of the index (the default without targets)."
        ),
        db: str | None = typer.Option(
            None, "--db", help="SQLite index file (default: $ATDATA_HOME/index.db)."
        ),
        host: str = typer.Option(
            "127.0.0.1", "--host", help="Address to bind (default: this machine only)."
        ),
        port: int = typer.Option(8765, "--port", help="Port to listen on (0: any free port)."),
    ) -> None:
        """Serve a read-only dataset viewer (index, schema, samples, queries, thumbnails)."""
        from rich.markup import escape

        from atdata.cli._out import console
        from atdata.viewer._serve import check_address, is_loopback
        from atdata.viewer._serve import serve as run

        con = console(stderr=True)
        check_address(host, port)
        idx = None
        if db:
            from atdata.cli._sources import open_index

            idx = open_index(db)
        if not is_loopback(host):
            con.print(
                f"[yellow]warning:[/] listening on {escape(host)}: anyone who can reach this "
                "address can read these datasets (read-only)"
            )

        if not targets:
            from atdata.index._index import get_default_index

            if not (idx or get_default_index()).list_entries():
                con.print(
                    "the index has no datasets yet: give a path (atdata serve DIR) or add one "
                    "(atdata ingest SRC OUT --name NAME)"
                )

        def ready(url: str) -> None:
            con.print(f"atdata viewer on [bold]{escape(url)}[/] (Ctrl+C stops it)")

        run(
            *(targets or []),
            host=host,
            port=port,
            index=idx,
            include_index=index or not targets,
            on_ready=ready,
        )
