"""The live progress line of an ingestion (rich, on stderr).

Shows rows read, samples written, duplicates and invalid rows, the row rate and the shards
sealed; one line per sealed shard is printed above it.
"""

from __future__ import annotations

import time
from typing import Any

__all__ = ["Display"]


class Display:
    """A rich progress display for :class:`~atdata._ingest._run.IngestRun`."""

    def __init__(self) -> None:
        from rich.console import Console
        from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

        self._t0 = time.monotonic()
        self._bar: Any = Progress(
            SpinnerColumn(),
            TextColumn("ingest"),
            TextColumn("{task.fields[stats]}"),
            TimeElapsedColumn(),
            console=Console(stderr=True),
            transient=False,
        )
        self._bar.start()
        self._task = self._bar.add_task("ingest", total=None, stats="starting")
        self._start_read: int | None = None

    def _stats(self, run: Any) -> str:
        if self._start_read is None:
            self._start_read = run.read
        dt = max(time.monotonic() - self._t0, 1e-9)
        rate = (run.read - self._start_read) / dt
        written = run.base_written + (run.writer.count if run.writer is not None else 0)
        invalid = sum(run.rejected.values())
        return (
            f"read {run.read:,}  written {written:,}  duplicates {run.dups:,}  "
            f"invalid {invalid:,}  shards {run.state.progress.shard_no}  {rate:,.0f} rows/s"
        )

    def update(self, run: Any) -> None:
        self._bar.update(self._task, stats=self._stats(run))

    def shard(self, name: str, progress: Any) -> None:
        self._bar.console.print(
            f"sealed {name}: {progress.shards[-1]['num_samples']:,} samples, "
            f"{progress.shards[-1]['size']:,} bytes",
            highlight=False,
        )

    def close(self, run: Any) -> None:
        if self._bar is not None:
            self._bar.update(self._task, stats=self._stats(run))
            self._bar.stop()
            self._bar = None
