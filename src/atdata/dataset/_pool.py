"""A crash-tolerant process pool for shard jobs.

Each worker is a process with its own pipe; the parent sends one shard at a time and waits on
the pipes and the process sentinels together. A worker that dies (killed for memory, a segfault,
``os._exit``) or overruns its ``timeout`` costs only its shard: the parent replaces the worker and
retries the shard up to ``retries`` more times, then records the failure with its kind
(``"worker_died"`` with the exit code, or ``"timeout"``). An exception raised by the job itself is
reported at once (it would happen again). Tasks and results cross the pipe as msgpack bytes;
only the job itself (the user's function and the dataset description) is pickled, once per
worker at start.
"""

from __future__ import annotations

import collections
import contextlib
import multiprocessing
import multiprocessing.connection as mpc
import os
import pickle
import time
import traceback
from collections.abc import Callable, Iterable
from typing import Any, Protocol

import msgpack

from atdata._errors import ConfigError, ShardFailure

__all__ = [
    "ShardJob",
    "TaskOutcome",
    "answer",
    "check_sendable",
    "exc_failure",
    "read_answer",
    "run_in_process",
    "run_pool",
    "start_method_of",
]


class ShardJob(Protocol):
    """What a pool runs: ``run(shard, attempt)`` -> a dict (msgpack-friendly when it runs in a
    worker); it emits its own events, which a worker collects and the parent re-emits."""

    def run(self, shard: str, attempt: int) -> dict[str, Any]: ...


class TaskOutcome:
    """The answer for one shard: ``ok`` + ``reply`` (the job's dict) or a :class:`ShardFailure`."""

    __slots__ = ("failure", "ok", "reply", "shard")

    def __init__(
        self, shard: str, reply: dict[str, Any] | None, failure: ShardFailure | None
    ) -> None:
        self.shard = shard
        self.reply = reply
        self.failure = failure
        self.ok = failure is None


def exc_failure(shard: str, exc: BaseException, attempts: int) -> ShardFailure:
    tb = "".join(traceback.format_exception(type(exc), exc, exc.__traceback__))
    return ShardFailure(
        shard, "exception", f"{type(exc).__name__}: {exc}", tb, attempts, None, type(exc).__name__
    )


def run_in_process(job: ShardJob, shards: Iterable[str]) -> Iterable[TaskOutcome]:
    """Run the shards one after another in this process (``num_proc=None``)."""
    for shard in shards:
        try:
            reply = job.run(shard, 1)
        except Exception as exc:
            yield TaskOutcome(shard, None, exc_failure(shard, exc, 1))
            continue
        yield TaskOutcome(shard, reply, None)


def check_sendable(job: ShardJob, method: str, what: str) -> None:
    """Fail before any work when the job cannot reach a worker started with ``method``.

    Under ``fork`` nothing is sent; under ``spawn``/``forkserver`` the job (and the function in
    it) is pickled once per worker, so a lambda or a local function cannot go.
    """
    if method == "fork":
        return
    try:
        pickle.dumps(job)
    except Exception as exc:
        raise ConfigError(
            f"{what} cannot be sent to worker processes started with {method!r}: {exc}. "
            "Use a function defined at module level (not a lambda or a nested function), "
            "or num_proc=None to run in this process"
        ) from None


def _np_default(obj: Any) -> Any:
    """msgpack fallback for numpy values in results: scalars as Python numbers, arrays as lists."""
    item = getattr(obj, "item", None)
    if getattr(obj, "shape", None) == () and item is not None:
        return item()
    tolist = getattr(obj, "tolist", None)
    if tolist is not None:
        return tolist()
    raise TypeError(f"cannot send a {type(obj).__name__} back from a worker as msgpack")


def _pack(obj: Any) -> bytes:
    return msgpack.packb(obj, use_bin_type=True, default=_np_default)


def answer(job: ShardJob, shard: str, attempt: int, want_events: bool) -> bytes:
    """Run one shard where the work happens (a worker process, a Ray task) and pack the answer
    as msgpack: the reply or the failure, and the events emitted meanwhile when asked for."""
    from atdata._events import capture

    events: contextlib.AbstractContextManager[list[Any]] = (
        capture() if want_events else contextlib.nullcontext([])
    )
    with events as got:
        try:
            reply = job.run(shard, attempt)
            err = None
        except Exception as exc:
            reply, err = None, exc_failure(shard, exc, attempt)
    evs = [e.to_dict() for e in got] if want_events else []
    if err is None:
        try:
            return _pack({"ok": True, "reply": reply, "events": evs})
        except Exception as exc:
            err = ShardFailure(
                shard,
                "exception",
                f"the result cannot travel back from the worker as msgpack ({exc}); "
                "return plain data (numbers, strings, lists, dicts, bytes) or use num_proc=None",
                "",
                attempt,
                None,
                type(exc).__name__,
            )
    return _pack(
        {
            "ok": False,
            "message": err.message,
            "traceback": err.traceback,
            "type": err.exc_type,
            "events": evs,
        }
    )


def read_answer(blob: bytes, shard: str, attempt: int) -> TaskOutcome:
    """Unpack :func:`answer`'s bytes in the parent, re-emitting the worker's events."""
    msg = msgpack.unpackb(blob)
    if msg.get("events"):
        from atdata._events import Event, emit_event

        for d in msg["events"]:
            emit_event(Event.from_dict(d))
    if msg["ok"]:
        return TaskOutcome(shard, msg["reply"], None)
    fail = ShardFailure(
        shard, "exception", msg["message"], msg["traceback"], attempt, None, msg["type"]
    )
    return TaskOutcome(shard, None, fail)


def _worker_main(conn: Any, job: ShardJob) -> None:
    """A worker's loop: read a msgpack task, run it, answer with msgpack; ``None`` ends it."""
    import signal

    from atdata._events import clear_subscribers

    clear_subscribers()  # listeners copied by fork belong to the parent, which re-emits
    # Ctrl-C reaches the whole process group: the parent alone handles it (it stops the workers
    # and removes what they had half-written), so workers do not print a traceback each
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    parent = multiprocessing.parent_process()
    watch = [conn] if parent is None else [conn, parent.sentinel]
    while True:
        try:
            if parent is not None and parent.sentinel in mpc.wait(watch):
                return  # the parent is gone (killed): nobody will read the answer
            task = msgpack.unpackb(conn.recv_bytes())
        except (EOFError, OSError):
            return
        if task is None:
            return
        shard, attempt, want_events = task
        blob = answer(job, shard, attempt, want_events)
        try:
            conn.send_bytes(blob)
        except OSError:  # the parent is gone
            return


class _Worker:
    def __init__(self, ctx: Any, job: ShardJob) -> None:
        parent, child = ctx.Pipe(duplex=True)
        self.proc = ctx.Process(target=_worker_main, args=(child, job), daemon=True)
        self.proc.start()
        child.close()
        self.conn = parent
        self.shard: str | None = None
        self.attempt = 0
        self.started = 0.0

    def send(self, shard: str, attempt: int, events: bool) -> None:
        self.shard, self.attempt, self.started = shard, attempt, time.monotonic()
        self.conn.send_bytes(msgpack.packb([shard, attempt, events], use_bin_type=True))

    def stop(self) -> None:
        with contextlib.suppress(OSError):
            self.conn.send_bytes(msgpack.packb(None))
        self.proc.join(timeout=5)
        if self.proc.is_alive():
            self.kill()
        self.conn.close()

    def kill(self) -> None:
        self.proc.kill()
        self.proc.join(timeout=5)
        self.conn.close()


def run_pool(
    job: ShardJob,
    shards: Iterable[str],
    *,
    num_proc: int,
    retries: int,
    timeout: float | None,
    events: Callable[[], bool],
    on_retry: Callable[[str, ShardFailure], None],
    start_method: str | None = None,
) -> Iterable[TaskOutcome]:
    """Run the shards on ``num_proc`` worker processes; yield each outcome as it arrives.

    Args:
        job: The picklable job (sent once to each worker).
        shards: Shards to run.
        num_proc: Worker processes.
        retries: Extra attempts for a shard whose worker died or timed out.
        timeout: Seconds one attempt at a shard may take (``None``: no limit).
        events: Asked at each dispatch: whether workers should collect events.
        on_retry: Called in the parent before a shard is retried.
        start_method: ``multiprocessing`` start method (default: the platform's).
    """
    ctx = multiprocessing.get_context(start_method)
    queue: collections.deque[tuple[str, int]] = collections.deque((s, 1) for s in shards)
    workers: list[_Worker] = []
    try:
        while queue or any(w.shard is not None for w in workers):
            while queue and len(workers) < num_proc:
                workers.append(_Worker(ctx, job))
            for w in workers:
                if w.shard is None and queue:
                    shard, attempt = queue.popleft()
                    w.send(shard, attempt, events())
            busy = [w for w in workers if w.shard is not None]
            wait_for: float | None = None
            if timeout is not None:
                now = time.monotonic()
                wait_for = max(0.0, min(w.started + timeout - now for w in busy))
            handles: list[Any] = [w.conn for w in busy] + [w.proc.sentinel for w in busy]
            mpc.wait(handles, timeout=wait_for)
            for w in busy:
                outcome, lost = _collect(w, timeout)
                if lost is not None:
                    workers.remove(w)  # replaced by a fresh worker on the next round
                    cleanup = getattr(job, "cleanup", None)
                    if cleanup is not None:
                        cleanup(w.shard or "", w.proc.pid)
                    shard, attempt = w.shard or "", w.attempt
                    if attempt <= retries:
                        on_retry(shard, lost)
                        queue.appendleft((shard, attempt + 1))
                        continue
                    yield TaskOutcome(shard, None, lost)
                elif outcome is not None:
                    w.shard = None
                    yield outcome
    finally:  # also on KeyboardInterrupt or the caller closing this generator
        clean = getattr(job, "cleanup", None)
        for w in workers:
            if w.shard is None:
                w.stop()
                continue
            w.kill()
            if clean is not None:  # its temporary output must not outlive it
                with contextlib.suppress(OSError):
                    clean(w.shard, w.proc.pid)


def _collect(w: _Worker, timeout: float | None) -> tuple[TaskOutcome | None, ShardFailure | None]:
    """The worker's answer if it sent one, or the failure if it died or overran its time."""
    shard, attempt = w.shard or "", w.attempt
    try:
        has_answer = w.conn.poll()
    except OSError:
        has_answer = False
    if has_answer:
        try:
            blob = w.conn.recv_bytes()
        except (EOFError, OSError):
            blob = None
        if blob is not None:
            return read_answer(blob, shard, attempt), None
    if not w.proc.is_alive():
        w.proc.join(timeout=5)
        code = w.proc.exitcode
        w.conn.close()
        how = f"killed by signal {-code}" if code is not None and code < 0 else f"exit code {code}"
        msg = f"worker process {w.proc.pid} died while processing the shard ({how})"
        return None, ShardFailure(shard, "worker_died", msg, "", attempt, code, "")
    if timeout is not None and time.monotonic() - w.started > timeout:
        w.kill()
        msg = f"no answer after {timeout:g} s; worker process {w.proc.pid} was stopped"
        return None, ShardFailure(shard, "timeout", msg, "", attempt, None, "")
    return None, None


def start_method_of(method: str | None) -> str:
    """The start method workers will use (``None``: the platform's default)."""
    return multiprocessing.get_context(method).get_start_method()


def cpu_count() -> int:
    """CPUs this process may use."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover - not Linux
        return os.cpu_count() or 1
