"""``atdata ingest SOURCE... OUT``: JSONL, CSV, parquet (local, HTTP, S3) into typed shards.

On a terminal a live line shows rows read, written, duplicates and invalid rows; piped, one
plain line per sealed shard is printed instead, then the summary. Rerunning the same command
after an interruption resumes it.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

import typer

__all__ = ["register"]


@contextlib.contextmanager
def _resume_hint(err: Any) -> Iterator[None]:
    """Ctrl-C: one line saying the sealed shards are kept and how to go on, exit 130."""
    try:
        yield
    except KeyboardInterrupt:
        err.print("interrupted: the sealed shards are kept; rerun the same command to resume")
        raise typer.Exit(130) from None


def register(app: typer.Typer) -> None:
    """Add the ``ingest`` command to ``app``."""

    @app.command(
        epilog=(
            "Examples:\n\n"
            "  atdata ingest events.jsonl.gz data/events --dedup-on event_id\n\n"
            "  atdata ingest 's3://raw/*.parquet' s3://bucket/ds --name events\n\n"
            "  atdata ingest rows.csv out --type mypkg.types:Row\n\n"
        )
    )
    def ingest(
        paths: list[str] = typer.Argument(
            ...,
            metavar="SOURCE OUT",
            help="Inputs (paths, globs, http(s):// or s3:// URLs), then the output directory "
            "or s3:// prefix.",
        ),
        type_: str | None = typer.Option(
            None, "--type", help="Sample type as module:Class (default: inferred)."
        ),
        dedup_on: list[str] = typer.Option(
            [], "--dedup-on", help="Drop rows whose value(s) of this field were seen (repeat)."
        ),
        maxcount: int = typer.Option(10_000, "--maxcount", help="Samples per shard."),
        maxsize: int | None = typer.Option(None, "--maxsize", help="Bytes per shard."),
        max_invalid_fraction: float = typer.Option(
            0.01, "--max-invalid-fraction", help="Stop once this fraction of rows is invalid."
        ),
        min_rows: int = typer.Option(1000, "--min-rows", help="Rows before the gate applies."),
        fmt: str | None = typer.Option(None, "--format", help="jsonl, csv or parquet."),
        name: str | None = typer.Option(None, "--name", help="Record the result in the index."),
        index: str | None = typer.Option(
            None, "--index", help="SQLite index file (default: $ATDATA_HOME/index.db)."
        ),
        endpoint_url: str | None = typer.Option(
            None, "--endpoint-url", help="S3 endpoint (R2, MinIO, a local server)."
        ),
        json_out: bool = typer.Option(False, "--json", help="Print the report as JSON."),
    ) -> None:
        """Ingest rows into typed shards with manifests: resumable, deduplicated, gated."""
        from atdata._errors import ConfigError
        from atdata._events import subscribe
        from atdata._ingest import ingest as run_ingest
        from atdata.cli._core import _load_type
        from atdata.cli._out import console

        if len(paths) < 2:
            raise ConfigError("give at least one SOURCE and the OUT directory or s3:// prefix")
        *sources, out = paths
        err = console(stderr=True)
        interactive = err.is_terminal
        idx = None
        if name:
            from atdata.index._index import Index, get_default_index

            idx = Index(path=index) if index else get_default_index()

        def on_event(ev: object) -> None:
            if getattr(ev, "name", "") == "shard_commit" and getattr(ev, "op", "") == "ingest":
                n: int = ev.samples  # type: ignore[attr-defined]
                err.print(f"sealed {ev.shard} ({n:,} sample{'' if n == 1 else 's'})")  # type: ignore[attr-defined]

        with (
            subscribe(on_event) if not interactive else contextlib.nullcontext(),
            _resume_hint(err),
        ):
            report = run_ingest(
                sources if len(sources) > 1 else sources[0],
                out,
                sample_type=_load_type(type_),
                dedup_on=(dedup_on[0] if len(dedup_on) == 1 else list(dedup_on)) or None,
                maxcount=maxcount,
                maxsize=maxsize,
                max_invalid_fraction=max_invalid_fraction,
                min_rows=min_rows,
                format=fmt,
                index=idx,
                name=name,
                progress=interactive,
                s3_options={"endpoint_url": endpoint_url} if endpoint_url else None,
            )
        con = console()
        if json_out:
            import json

            typer.echo(json.dumps(report.to_dict(), indent=1))
            return
        con.print(report.summary(), highlight=False)
        if report.rejects_path:
            con.print(f"rejected rows: {report.rejects_path}", highlight=False)
        if report.entry is not None:
            con.print(f"indexed as {name}", highlight=False)
