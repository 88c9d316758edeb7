"""``atdata watch SRC --out DST --fn module:function``: process each new shard exactly once.

Polls a local directory or ``s3://bucket/prefix/`` (see :class:`atdata.Watcher`) and prints one
line per shard it processes, fails, parks or refuses. ``--once`` polls once (and, when shards
without a manifest were waiting to prove their size stable, once more after ``--interval``
seconds), then prints the ledger's counts by status. The ledger lives on the default index's provider unless
``--ledger`` names a SQLite file, a ``postgresql://`` DSN or a ``redis://`` URL.

"""

from __future__ import annotations

import os
import time
from collections import Counter
from typing import Any

import typer

__all__ = ["load_function", "register"]


def load_function(spec: str) -> Any:
    """Resolve ``module:function`` (the current directory is importable, as for ``python -m``).

    Raises:
        ConfigError: When it cannot be imported or is not callable.
    """
    from atdata._errors import ConfigError
    from atdata.cli._core import import_ref

    obj = import_ref(spec, "--fn", "function")
    if not callable(obj):
        raise ConfigError(f"--fn {spec!r} is a {type(obj).__name__}, not a function")
    return obj


def register(app: typer.Typer) -> None:
    """Add ``watch`` to ``app``."""

    @app.command(
        epilog=(
            "Examples:\n\n"
            "  atdata watch incoming/ --out tok/ --fn mypkg.prep:tokenize --once\n\n"
            "  atdata watch s3://bucket/in/ --out tok/ --fn mypkg.prep:tokenize --ledger postgresql://me@db/atdata\n\n"
        )
    )
    def watch(
        src: str = typer.Argument(..., help="Local directory or s3://bucket/prefix/ to watch."),
        out: str = typer.Option(..., "--out", help="Local directory for the output shards."),
        fn: str = typer.Option(..., "--fn", help="Per-sample function, as module:function."),
        sample_type: str | None = typer.Option(
            None, "--type", help="Input sample type as module:Class (default: dict samples)."
        ),
        once: bool = typer.Option(
            False,
            "--once",
            help="One pass: poll, again after --interval if shards were settling, then exit.",
        ),
        polls: int = typer.Option(0, "--polls", help="Exit after this many polls (0: never)."),
        retry: bool = typer.Option(
            False, "--retry", help="Forget parked and refused shards first: they are tried again."
        ),
        interval: float = typer.Option(5.0, "--interval", help="Seconds between polls."),
        settle: float = typer.Option(
            0.0, "--settle", help="Seconds a shard without a manifest must keep its size."
        ),
        lease: float = typer.Option(300.0, "--lease", help="Seconds a claim lasts unrenewed."),
        max_attempts: int = typer.Option(3, "--max-attempts", help="Attempts before parking."),
        on_change: str = typer.Option(
            "reprocess", "--on-change", help="A processed shard rewritten: reprocess | refuse."
        ),
        batched: bool = typer.Option(False, "--batched", help="fn takes a shard's samples."),
        ledger: str | None = typer.Option(
            None, "--ledger", help="SQLite file, postgresql:// DSN or redis:// URL."
        ),
        prefix: str | None = typer.Option(
            None, "--prefix", help="Redis key prefix or PostgreSQL schema of the ledger."
        ),
        name: str | None = typer.Option(None, "--name", help="Watch name in the ledger."),
        endpoint_url: str | None = typer.Option(
            None, "--endpoint-url", help="S3 endpoint (MinIO, R2, a local server)."
        ),
    ) -> None:
        """Process each new shard of SRC exactly once into OUT (a ledger records each)."""
        from rich.markup import escape

        from atdata.cli._core import _console, _load_type
        from atdata.watch._ledger import provider_from_spec
        from atdata.watch._watcher import Watcher

        con = _console()

        def show(outcome: str, shard: str, message: str) -> None:
            style = "green" if outcome == "processed" else "" if outcome == "unchanged" else "red"
            line = (
                f"[{style}]{outcome}[/] {escape(shard)}" if style else f"{outcome} {escape(shard)}"
            )
            con.print(line + (f": {escape(message)}" if message else ""))
            con.file.flush()  # piped into a log: each line shows up as it happens

        s3 = {"endpoint_url": endpoint_url} if endpoint_url else None
        w = Watcher(
            src, load_function(fn), out, sample_type=_load_type(sample_type),
            ledger=provider_from_spec(ledger, prefix), name=name, batched=batched,
            interval=interval, settle=settle, lease=lease, max_attempts=max_attempts,
            on_change=on_change, s3=s3, on_shard=show,
        )  # fmt: skip
        if retry:
            for r in w.list_records():
                if r.status in ("parked", "refused") and w.forget(r.shard):
                    con.print(f"retrying {escape(os.path.basename(r.shard))}")
        if not once:
            con.print(f"watching {escape(src)} -> {escape(out)} every {interval:g} s "
                      f"(ledger {escape(w.ledger.watch)}); Ctrl-C stops")  # fmt: skip
            con.file.flush()
        try:
            if once:
                if w.poll_once().waiting:
                    time.sleep(interval)
                    w.poll_once()
            else:
                w.run(max_polls=polls or None)
        except KeyboardInterrupt:
            con.print("stopped; a shard in progress was handed back: rerun to continue")
            return
        counts = Counter(r.status for r in w.list_records())
        summary = ", ".join(f"{k} {v}" for k, v in sorted(counts.items()))
        con.print(f"ledger: {summary or f'no shards in {escape(src)} yet'}")
        if counts.get("parked") or counts.get("refused"):
            con.print("fix the cause (or rewrite the shard), then rerun with --retry")
        if counts.get("parked") or counts.get("refused"):
            raise typer.Exit(1)
