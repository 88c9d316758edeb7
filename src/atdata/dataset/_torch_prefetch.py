"""Stream mode's prefetch: whole remote shards fetched ahead of the reader, a few at a time.

:class:`Prefetch` runs ``threads`` fetch threads over the shards of an epoch in the order the
walk needs them, at most ``ahead`` shards beyond what the reader has reached; the first shard is
fetched alone (the first batch needs nothing else). An error is left for the reader, which meets
it when it reads that shard itself, in order: a download that failed is tried again then, but a
shard whose bytes did not match their recorded sha256 is not (the reader raises that mismatch).
"""

from __future__ import annotations

import threading
from typing import Any

from atdata._errors import IntegrityError
from atdata._logging import get_logger
from atdata.dataset._torch_cache import ShardCache

__all__ = ["Prefetch"]

_FETCH_THREADS = 2  # concurrent shard downloads of a streaming reader


class Prefetch:
    """Fetches ``seq`` into the cache with ``threads`` concurrent downloads, at most ``ahead``
    shards beyond what the reader needs."""

    def __init__(
        self,
        cache: ShardCache,
        source: Any,
        seq: list[str],
        ahead: int,
        memory: bool = False,
        threads: int = _FETCH_THREADS,
    ) -> None:
        self.cache, self.source, self.seq, self.ahead = cache, source, seq, ahead
        self.memory = memory
        self._progress = 0
        self._next = 0  # the next index of ``seq`` a fetch thread takes
        self._first = False  # the first shard has arrived (until then it is fetched alone)
        self._halt = False
        self._cv = threading.Condition()
        self._threads = [
            threading.Thread(target=self._run, daemon=True, name="atdata-shard-prefetch")
            for _ in range(max(1, threads))
        ]

    def start(self) -> None:
        self.cache.failed.clear()  # (an earlier epoch's, for a shard its reader never reached)
        for t in self._threads:
            t.start()

    def advance(self, needed: int, held: set[str]) -> set[str]:
        """The reader needs ``seq[:needed]`` and still reads the shards ``held`` (those of
        the windows it holds: a window reaches further back than ``ahead`` shards when the
        windows grow): fetch up to ``ahead`` beyond; returns the shards it may still read (the
        rest may be evicted and closed)."""
        with self._cv:
            self._progress = needed
            keep = self.cache.keep = held | set(self.seq[needed : needed + self.ahead])
            self._cv.notify_all()
        return keep

    def stop(self) -> None:
        with self._cv:
            self._halt = True
            self._cv.notify_all()

    def _run(self) -> None:
        while True:
            with self._cv:
                while (
                    not self._halt
                    and self._next < len(self.seq)
                    and (
                        self._next >= self._progress + self.ahead
                        # the first batch waits for the first shard: no other download
                        # shares its bandwidth (and the CPU) until it is in
                        or (self._next > 0 and not self._first)
                    )
                ):
                    self._cv.wait()
                if self._halt or self._next >= len(self.seq):
                    return
                shard = self.seq[self._next]
                self._next += 1
            try:
                if self.memory:
                    self.cache.local(self.source, shard, True, keep_failure=True)
                else:
                    self.cache.fetch(self.source, shard, keep_failure=True)
            except IntegrityError:  # kept for the reader, which raises it without a download
                pass
            except Exception as exc:  # the reader meets the error itself, in order (a retry)
                get_logger().debug(
                    "to_torch: prefetching shard %s failed (%s: %s); the reader fetches it again",
                    shard, type(exc).__name__, exc,
                )  # fmt: skip
            if not self._first:
                with self._cv:
                    self._first = True
                    self._cv.notify_all()
