"""What an ingestion did: :class:`IngestReport`.

Examples:
    >>> r = IngestReport(out="out", rows_read=10, rows_written=7, duplicates=1,
    ...                  rejected={"coerce": 2}, bytes_written=10240, seconds=0.5)
    >>> r.invalid, r.invalid_fraction
    (2, 0.2)
    >>> print(r.summary())
    read 10 rows, wrote 7 samples in 0 shards (10,240 bytes) to out in 0.50 s
    duplicates 1, invalid 2 (coerce: 2)
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from typing import Any

__all__ = ["IngestReport"]


def _n(count: int, noun: str) -> str:
    return f"{count:,} {noun}" + ("" if count == 1 else "s")


@dataclasses.dataclass
class IngestReport:
    """The counts and outputs of one :func:`~atdata.ingest` run (all runs of a resumed one).

    Attributes:
        out: Where the shards are (a directory or ``s3://`` prefix).
        rows_read: Input rows read (kept, duplicate, filtered or invalid).
        rows_written: Samples written to shards.
        duplicates: Rows dropped because their ``dedup_on`` key was seen before.
        filtered: Rows the ``transform`` dropped (returned ``None``).
        rejected: Invalid rows per reason: ``parse`` (unreadable record), ``coerce`` (does not
            fit the sample type), ``transform`` (it raised), ``validate`` (returned False or
            raised).
        bytes_written: Bytes of the shards.
        seconds: Time spent, over every run of a resumed ingestion.
        schema: The sample type, e.g. ``Row(text: str, n: int)``.
        inferred: Whether the sample type was inferred from the input.
        resumed: Whether this run continued an earlier, interrupted one.
        already_complete: Whether the ingestion had finished before this call (nothing was
            read or written again; the counts are the finished run's).
        rejects_path: The JSONL file of rejected rows (input, position, reason, row).
        sample_type: The ``@packable`` type of the samples.
        entry: The index entry, when ingested into an index.
        shard_urls: The shards, in order (see :attr:`shards`).
        source: A data source over the shards when paths are not enough (``s3://`` outputs).
    """

    out: str
    rows_read: int = 0
    rows_written: int = 0
    duplicates: int = 0
    filtered: int = 0
    rejected: dict[str, int] = dataclasses.field(default_factory=dict)
    bytes_written: int = 0
    seconds: float = 0.0
    schema: str = ""
    inferred: bool = False
    resumed: bool = False
    already_complete: bool = False
    rejects_path: str | None = None
    sample_type: Any = None
    entry: Any = None
    shard_urls: list[str] = dataclasses.field(default_factory=list, repr=False)
    source: Any = dataclasses.field(default=None, repr=False)

    @property
    def invalid(self) -> int:
        """Invalid rows (every reason together)."""
        return sum(self.rejected.values())

    @property
    def invalid_fraction(self) -> float:
        """Invalid rows per row read."""
        return self.invalid / self.rows_read if self.rows_read else 0.0

    @property
    def shards(self) -> Iterator[str]:
        """The shard URLs (paths for a local output), in order (lazy)."""
        return iter(self.shard_urls)

    def list_shards(self) -> list[str]:
        """The shard URLs, in order."""
        return list(self.shard_urls)

    @property
    def num_shards(self) -> int:
        """How many shards were written."""
        return len(self.shard_urls)

    @property
    def rows_per_second(self) -> float:
        """Rows read per second."""
        return self.rows_read / self.seconds if self.seconds > 0 else 0.0

    def dataset(self) -> Any:
        """A :class:`~atdata.Dataset` over the written shards."""
        from atdata.dataset._dataset import Dataset

        return Dataset(self.source or self.list_shards(), sample_type=self.sample_type)

    def summary(self) -> str:
        """Two readable lines: what was written, and what was dropped."""
        reasons = ", ".join(f"{k}: {v}" for k, v in sorted(self.rejected.items()) if v)
        lines = [
            f"read {_n(self.rows_read, 'row')}, wrote {_n(self.rows_written, 'sample')} in "
            f"{_n(self.num_shards, 'shard')} ({self.bytes_written:,} bytes) to {self.out} in "
            f"{self.seconds:.2f} s",
            f"duplicates {self.duplicates:,}, invalid {self.invalid:,}"
            + (f" ({reasons})" if reasons else "")
            + (f", filtered {self.filtered:,}" if self.filtered else ""),
        ]
        if self.inferred:
            lines.append(f"inferred sample type {self.schema}")
        if self.resumed:
            lines.append("resumed an interrupted ingestion")
        if self.already_complete:
            lines.append("already complete: nothing read again (delete OUT/.ingest to redo it)")
        return "\n".join(lines)

    def to_dict(self) -> dict[str, Any]:
        """The counts as plain data (for JSON output)."""
        return {
            "out": self.out,
            "rows_read": self.rows_read,
            "rows_written": self.rows_written,
            "duplicates": self.duplicates,
            "filtered": self.filtered,
            "rejected": dict(self.rejected),
            "invalid": self.invalid,
            "bytes_written": self.bytes_written,
            "shards": self.list_shards(),
            "seconds": round(self.seconds, 3),
            "schema": self.schema,
            "inferred": self.inferred,
            "resumed": self.resumed,
            "already_complete": self.already_complete,
            "rejects_path": self.rejects_path,
        }
