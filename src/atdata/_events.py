"""A dependency-free event stream for long operations (shard processing, writing).

Operations such as :meth:`~atdata.Dataset.process_shards` and ``Dataset.map(out=...)`` emit one
:class:`Event` per shard step (read, write, commit, skip, retry, failure) and one at the start
and end of a run; never one per sample. Anything can listen: :func:`subscribe` a callable (a
logger, a metrics exporter, a progress display). With no subscriber, :func:`emit` returns at
once, so the stream costs nothing measurable.

Events raised in worker processes are collected there and re-emitted by the parent process, so a
subscriber in the parent sees every shard once, whatever ``num_proc`` is.

Event names: ``run_start``, ``run_end``, ``shard_read``, ``shard_write``, ``shard_commit``,
``shard_skip`` (already committed), ``shard_retry``, ``shard_fail``, ``shard_done``.

Examples:
    >>> from atdata._events import emit, subscribe
    >>> seen = []
    >>> with subscribe(seen.append):
    ...     emit("shard_read", op="demo", shard="a.tar", samples=3, seconds=0.5)
    >>> emit("shard_read", op="demo", shard="b.tar")  # nobody listens any more
    >>> [(e.name, e.shard, e.samples) for e in seen]
    [('shard_read', 'a.tar', 3)]
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import os
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from typing import Any

__all__ = [
    "EVENT_NAMES",
    "Event",
    "Subscription",
    "capture",
    "clear_subscribers",
    "emit",
    "emit_event",
    "has_subscribers",
    "log_listener",
    "subscribe",
]

EVENT_NAMES = (
    "run_start",
    "run_end",
    "shard_read",
    "shard_write",
    "shard_commit",
    "shard_skip",
    "shard_retry",
    "shard_fail",
    "shard_done",
)

_log = logging.getLogger("atdata.events")


@dataclasses.dataclass(frozen=True)
class Event:
    """One step of a long operation.

    Attributes:
        name: What happened (one of :data:`EVENT_NAMES`).
        op: The operation (``"process_shards"``, ``"map"``, ...).
        run: An identifier shared by every event of one call.
        shard: The input shard concerned (``""`` for run events).
        samples: Samples read, written or committed in this step (run_end: the run's total).
        seconds: Wall-clock seconds the step took.
        attempt: Which attempt at the shard this is (1 for the first).
        pid: The process that did the work (a worker's pid for re-emitted events).
        time: When the event was made (``time.time()``).
        data: Anything else (output path, bytes, error kind and message, exit code).
    """

    name: str
    op: str = ""
    run: str = ""
    shard: str = ""
    samples: int = 0
    seconds: float = 0.0
    attempt: int = 1
    pid: int = 0
    time: float = 0.0
    data: Mapping[str, Any] = dataclasses.field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """A plain dict (msgpack/JSON friendly) with every field."""
        return {f.name: getattr(self, f.name) for f in dataclasses.fields(self)}

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> Event:
        """Rebuild an event from :meth:`to_dict` output (unknown keys are ignored)."""
        names = {f.name for f in dataclasses.fields(cls)}
        return cls(**{k: v for k, v in d.items() if k in names})


_subs: tuple[Callable[[Event], None], ...] = ()
_lock = threading.Lock()


class Subscription:
    """A registered listener; :meth:`close` (or leaving the ``with`` block) removes it."""

    def __init__(self, fn: Callable[[Event], None]) -> None:
        self.fn = fn
        self.closed = False

    def close(self) -> None:
        """Stop receiving events (idempotent)."""
        global _subs
        if self.closed:
            return
        with _lock:
            subs = list(_subs)
            for i, s in enumerate(subs):
                if s is self.fn:
                    del subs[i]
                    break
            _subs = tuple(subs)
        self.closed = True

    def __enter__(self) -> Subscription:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def subscribe(fn: Callable[[Event], None]) -> Subscription:
    """Call ``fn(event)`` for every event from now on, in the emitting thread.

    A listener that raises is logged (``atdata.events`` logger) and does not stop the operation.
    """
    global _subs
    with _lock:
        _subs = (*_subs, fn)
    return Subscription(fn)


def clear_subscribers() -> None:
    """Drop every listener (worker processes call it: listeners copied by ``fork`` belong to the
    parent, which re-emits the worker's events itself)."""
    global _subs
    with _lock:
        _subs = ()


def has_subscribers() -> bool:
    """Whether anything listens (emitters may skip building costly details when not)."""
    return bool(_subs)


def emit_event(event: Event) -> None:
    """Deliver a ready :class:`Event` to every listener (used to re-emit worker events)."""
    for fn in _subs:
        try:
            fn(event)
        except Exception:  # a broken listener must not break the run
            _log.warning("event listener %r failed on %s", fn, event.name, exc_info=True)


def emit(
    name: str,
    *,
    op: str = "",
    run: str = "",
    shard: str = "",
    samples: int = 0,
    seconds: float = 0.0,
    attempt: int = 1,
    **data: Any,
) -> None:
    """Build an :class:`Event` and deliver it; a no-op when nobody listens."""
    if not _subs:
        return
    emit_event(
        Event(name, op, run, shard, samples, seconds, attempt, os.getpid(), time.time(), data)
    )


_LEVELS = {
    "shard_fail": "warning",
    "shard_retry": "warning",
    "run_start": "info",
    "run_end": "info",
}


def log_listener(logger: Any, run: str = "") -> Callable[[Event], None]:
    """A listener that writes events to ``logger`` (anything with ``debug``/``info``/
    ``warning`` methods, e.g. what :func:`atdata.get_logger` returns): failures and retries as
    warnings, run start/end as info, shard steps as debug. With ``run``, only that run's events.

    Examples:
        >>> lines = []
        >>> class L:
        ...     def debug(self, m, *a): lines.append(("debug", m % a))
        ...     info = warning = debug
        >>> with subscribe(log_listener(L(), run="r1")):
        ...     emit("shard_commit", op="map", run="r1", shard="a.tar", samples=3, seconds=0.25)
        ...     emit("shard_commit", op="map", run="r2", shard="b.tar")
        >>> lines
        [('debug', 'map shard_commit a.tar: 3 samples in 0.25s')]
    """

    def listen(e: Event) -> None:
        if run and e.run != run:
            return
        extra = "".join(f" {k}={v}" for k, v in e.data.items() if v is not None)
        what = f" {e.shard}" if e.shard else ""
        try_ = f" (attempt {e.attempt})" if e.attempt > 1 else ""
        getattr(logger, _LEVELS.get(e.name, "debug"))(
            "%s %s%s: %d samples in %.2fs%s%s", e.op, e.name, what, e.samples, e.seconds,
            try_, extra,
        )  # fmt: skip

    return listen


@contextlib.contextmanager
def capture() -> Iterator[list[Event]]:
    """Collect the events emitted inside the block into a list (what worker processes send back).

    Examples:
        >>> with capture() as got:
        ...     emit("shard_commit", shard="x.tar", samples=2)
        >>> [e.name for e in got]
        ['shard_commit']
    """
    got: list[Event] = []
    sub = subscribe(got.append)
    try:
        yield got
    finally:
        sub.close()
