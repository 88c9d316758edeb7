"""Eager shard processing: :func:`process_shards` and :func:`map_to_shards` (``Dataset.map(out=)``).

Both run one task per input shard, in this process (``num_proc=None``, the default) or on
``num_proc`` worker processes (see :mod:`atdata.dataset._pool`): a worker that dies or overruns
its ``timeout`` costs only its shard, which is retried up to ``retries`` times on a fresh worker.
Shards that still fail are reported together in one :class:`~atdata.PartialFailureError`
(kind, message, traceback text, attempts), whose ``retry()`` redoes only them.

``map_to_shards`` writes one output shard per input shard, named after it, with its manifest and
commit record (:mod:`atdata.dataset._commit`): the output is the checkpoint, so running the same
call again skips exactly the shards whose commit still matches and verifies.

Examples:
    >>> import os, tempfile, atdata
    >>> @atdata.packable
    ... class Num:
    ...     x: int
    >>> d = tempfile.mkdtemp()
    >>> ds = atdata.write_samples([Num(x=i) for i in range(6)], os.path.join(d, "in", "n.tar"),
    ...                           maxcount=2, key="index")
    >>> ds.process_shards(lambda samples: sum(s.x for s in samples)) == {
    ...     os.path.join(d, "in", f"n-{i:06d}.tar"): v for i, v in enumerate([1, 5, 9])}
    True
    >>> sq = ds.map(lambda s: Num(x=s.x * s.x), out=os.path.join(d, "sq"), manifest=False)
    >>> [s.x for s in sq], [os.path.basename(p) for p in sq.list_shards()]
    ([0, 1, 4, 9, 16, 25], ['n-000000.tar', 'n-000001.tar', 'n-000002.tar'])
"""

from __future__ import annotations

import concurrent.futures
import contextlib
import importlib
import os
import sys
import time
import uuid
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any

from atdata._errors import (
    ConfigError,
    PartialFailureError,
    RemoteShardError,
    SchemaError,
    ShardFailure,
)
from atdata._events import emit, has_subscribers, log_listener, subscribe
from atdata._logging import get_logger
from atdata._shards.writer import ShardInfo
from atdata.dataset._commit import VERIFY_MODES, CommitRecord, check_commit, read_commit
from atdata.dataset._pool import (
    TaskOutcome,
    check_sendable,
    cpu_count,
    exc_failure,
    run_pool,
    start_method_of,
)
from atdata.dataset._shardjobs import (
    MapJob,
    ReduceJob,
    check_output_names,
    input_sha256,
    remove_temps,
)

__all__ = ["Runner", "map_dataset", "map_to_shards", "process_shards"]

Runner = Callable[[Any, list[str], int, Callable[[str, ShardFailure], None]], Iterable[TaskOutcome]]


def _check_common(num_proc: int | None, retries: int, timeout: float | None) -> None:
    if num_proc is not None and (not isinstance(num_proc, int) or num_proc < 1):
        raise ConfigError(f"num_proc must be None or an int >= 1, got {num_proc!r}")
    if retries < 0:
        raise ConfigError(f"retries must be >= 0, got {retries}")
    if timeout is not None and timeout <= 0:
        raise ConfigError(f"timeout must be > 0 seconds, got {timeout}")
    if timeout is not None and num_proc is None:
        raise ConfigError("timeout needs worker processes: pass num_proc=1 or more")


def _error_of(f: ShardFailure, local: BaseException | None) -> BaseException:
    return local if local is not None else RemoteShardError(f.message, f.exc_type, f.traceback)


def _outcomes(
    job: Any,
    shards: list[str],
    *,
    num_proc: int | None,
    retries: int,
    timeout: float | None,
    start_method: str | None,
    what: str,
    op: str,
    run: str,
    local_errors: dict[str, BaseException],
) -> Iterator[TaskOutcome]:
    """Run ``job`` over ``shards``; keep in-process exceptions (with their objects) aside."""
    if num_proc is None:
        for shard in shards:
            try:
                reply = job.run(shard, 1)
            except Exception as exc:
                local_errors[shard] = exc
                yield TaskOutcome(shard, None, exc_failure(shard, exc, 1))
                continue
            yield TaskOutcome(shard, reply, None)
        return
    method = start_method_of(start_method)
    check_sendable(job, method, what)

    def on_retry(shard: str, f: ShardFailure) -> None:
        emit(
            "shard_retry",
            op=op,
            run=run,
            shard=shard,
            attempt=f.attempts + 1,
            kind=f.kind,
            message=f.message,
        )

    yield from run_pool(
        job,
        shards,
        num_proc=num_proc,
        retries=retries,
        timeout=timeout,
        events=has_subscribers,
        on_retry=on_retry,
        start_method=start_method,
    )


class _Progress:
    """A rich bar over shards: samples done, rate, failures (only on a terminal unless asked)."""

    def __init__(self, enabled: bool | None, total: int, what: str) -> None:
        if enabled is None:
            enabled = sys.stderr.isatty()
        self._bar: Any = None
        self.samples = 0
        self.failed = 0
        self._t0 = time.perf_counter()
        if enabled and total:
            from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn

            self._bar = Progress(
                TextColumn(f"{what} shards"),
                BarColumn(),
                MofNCompleteColumn(),
                TextColumn("{task.fields[info]}"),
                transient=False,
            )
            self._bar.start()
            self._task = self._bar.add_task(what, total=total, info="")

    def done(self, samples: int, failed: bool) -> None:
        self.samples += samples
        self.failed += failed
        if self._bar is not None:
            rate = self.samples / max(time.perf_counter() - self._t0, 1e-9)
            info = f"{self.samples:,} samples  {rate:,.0f}/s"
            if self.failed:
                info += f"  [red]{self.failed} failed"
            self._bar.update(self._task, advance=1, info=info)

    def close(self) -> None:
        if self._bar is not None:
            self._bar.stop()
            self._bar = None


def process_shards(
    ds: Any,
    fn: Callable[[list[Any]], Any],
    *,
    shards: list[str] | None = None,
    checkpoint: str | os.PathLike[str] | None = None,
    on_shard_error: Callable[[str, Exception], None] | None = None,
    num_proc: int | None = None,
    retries: int = 2,
    timeout: float | None = None,
    progress: bool | None = False,
    start_method: str | None = None,
) -> dict[str, Any]:
    """See :meth:`atdata.Dataset.process_shards`."""
    _check_common(num_proc, retries, timeout)
    shard_ids = list(dict.fromkeys(ds.list_shards() if shards is None else shards))
    ckpt = Path(checkpoint) if checkpoint is not None else None
    if ckpt is not None and ckpt.exists():
        done = set(ckpt.read_text().splitlines())
        shard_ids = [s for s in shard_ids if s not in done]
    if not shard_ids:
        return {}
    run = uuid.uuid4().hex[:12]
    with subscribe(log_listener(get_logger(), run)):
        return _process_run(
            ds, fn, shard_ids, run, checkpoint=checkpoint, on_shard_error=on_shard_error,
            num_proc=num_proc, retries=retries, timeout=timeout, progress=progress,
            start_method=start_method,
        )  # fmt: skip


def _process_run(
    ds: Any,
    fn: Callable[[list[Any]], Any],
    shard_ids: list[str],
    run: str,
    *,
    checkpoint: str | os.PathLike[str] | None,
    on_shard_error: Callable[[str, Exception], None] | None,
    num_proc: int | None,
    retries: int,
    timeout: float | None,
    progress: bool | None,
    start_method: str | None,
) -> dict[str, Any]:
    ckpt = Path(checkpoint) if checkpoint is not None else None
    emit("run_start", op="process_shards", run=run, shards=len(shard_ids), num_proc=num_proc)
    job = ReduceJob(ds, fn, run)
    results: dict[str, Any] = {}
    fails: dict[str, ShardFailure] = {}
    errors: dict[str, BaseException] = {}
    local: dict[str, BaseException] = {}
    bar = _Progress(progress, len(shard_ids), "processing")
    t0 = time.perf_counter()
    try:
        for o in _outcomes(
            job,
            shard_ids,
            num_proc=num_proc,
            retries=retries,
            timeout=timeout,
            start_method=start_method,
            what=f"process_shards function {fn!r}",
            op="process_shards",
            run=run,
            local_errors=local,
        ):
            if o.failure is None:
                assert o.reply is not None
                results[o.shard] = o.reply["result"]
                bar.done(o.reply["samples"], False)
                if ckpt is not None:
                    with open(ckpt, "a") as f:
                        f.write(o.shard + "\n")
                continue
            failure = o.failure
            fails[o.shard] = failure
            errors[o.shard] = exc = _error_of(failure, local.get(o.shard))
            bar.done(0, True)
            emit("shard_fail", op="process_shards", run=run, shard=o.shard,
                 attempt=failure.attempts, kind=failure.kind, message=failure.message,
                 exit_code=failure.exit_code)  # fmt: skip
            if on_shard_error is not None:
                on_shard_error(o.shard, exc)  # type: ignore[arg-type]
    finally:
        bar.close()
    emit("run_end", op="process_shards", run=run, samples=bar.samples,
         seconds=time.perf_counter() - t0, failed=len(fails))  # fmt: skip
    ordered = {s: results[s] for s in shard_ids if s in results}
    if fails:
        err = PartialFailureError(
            [s for s in shard_ids if s in results],
            [s for s in shard_ids if s in fails],
            {s: errors[s] for s in shard_ids if s in fails},
            ordered,
            {s: fails[s] for s in shard_ids if s in fails},
        )

        def again() -> dict[str, Any]:
            redo = process_shards(
                ds, fn, shards=err.failed_shards, checkpoint=checkpoint,
                on_shard_error=on_shard_error, num_proc=num_proc, retries=retries,
                timeout=timeout, progress=progress, start_method=start_method,
            )  # fmt: skip
            return {s: redo.get(s, ordered.get(s)) for s in shard_ids if s in redo or s in ordered}

        err._retry = again
        raise err
    if ckpt is not None and ckpt.exists():
        ckpt.unlink()
    return ordered


@contextlib.contextmanager
def _locked(out: str) -> Iterator[None]:
    """One ``map(out=...)`` run per output directory at a time (an advisory ``flock``)."""
    path = os.path.join(out, ".atdata-map.lock")
    with open(path, "a") as f:
        try:
            import fcntl
        except ImportError:  # pragma: no cover - not POSIX
            yield
            return
        try:
            fcntl.flock(f.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            raise ConfigError(
                f"another map(out={out!r}) run is writing there; wait for it or use another out"
            ) from None
        try:
            yield
        finally:
            fcntl.flock(f.fileno(), fcntl.LOCK_UN)


def _check_commits(
    ds: Any, shards: list[str], out_paths: dict[str, str], version: str, verify: str
) -> list[CommitRecord | None]:
    """Each shard's commit record if it still holds, else ``None``; the sha256 work runs on a
    few threads (hashlib releases the GIL), so checking many committed shards takes little time."""

    def one(s: str) -> CommitRecord | None:
        rec = read_commit(out_paths[s])
        if rec is None:
            return None
        why = check_commit(out_paths[s], input_sha256(ds.source, s), version, verify)
        return None if why else rec

    if len(shards) < 2:
        return [one(s) for s in shards]
    with concurrent.futures.ThreadPoolExecutor(min(8, cpu_count() + 1)) as pool:
        return list(pool.map(one, shards))


def _resolve_type(name: str) -> type | None:
    mod, _, qual = name.partition(":")
    m = sys.modules.get(mod)
    if m is None:
        try:
            m = importlib.import_module(mod)
        except ImportError:
            return None
    obj: Any = m
    for part in qual.split("."):
        obj = getattr(obj, part, None)
        if obj is None:
            return None
    return obj if isinstance(obj, type) else None


def _manifest_default(manifest: bool | None) -> bool:
    if manifest is not None:
        return manifest
    try:
        import pyarrow  # noqa: F401
    except ImportError:
        return False
    return True


def map_dataset(
    ds: Any,
    fn: Callable[..., Any],
    sample_type: type | None,
    out: str | os.PathLike[str] | None,
    *,
    num_proc: int | None = None,
    batched: bool = False,
    version: str | None = None,
    index: Any = None,
    timeout: float | None = None,
    **kwargs: Any,
) -> Any:
    """:meth:`~atdata.Dataset.map`: lazy (``out=None``, a derived dataset) or written now
    (:func:`map_to_shards`)."""
    if out is None:
        if num_proc is not None or batched or version is not None or timeout is not None:
            raise ConfigError("num_proc, batched, version and timeout need out=<directory>")
        if index is not None:
            raise ConfigError("index= records a written dataset: pass out=<directory> too")
        return ds._derive(_ops=(*ds._ops, ("map", fn)), sample_type=sample_type or ds.sample_type)
    return map_to_shards(
        ds, fn, out, sample_type=sample_type, num_proc=num_proc, batched=batched,
        version=version, timeout=timeout, index=index, **kwargs,
    )  # fmt: skip


def map_to_shards(
    ds: Any,
    fn: Callable[..., Any],
    out: str | os.PathLike[str],
    *,
    sample_type: type | None = None,
    num_proc: int | None = None,
    batched: bool = False,
    version: str | None = None,
    verify: str = "sha256",
    retries: int = 2,
    timeout: float | None = None,
    manifest: bool | None = None,
    progress: bool | None = None,
    start_method: str | None = None,
    fsync: bool = True,
    runner: Runner | None = None,
    index: Any = None,
    name: str | None = None,
) -> Any:
    """See :meth:`atdata.Dataset.map` (with ``out``).

    ``runner(job, shards, retries, on_retry)``, when given, runs the shard jobs instead of this
    process or its worker pool (``atdata.ray.map`` runs them as Ray tasks) and yields one
    :class:`~atdata.dataset._pool.TaskOutcome` per shard.
    """
    from atdata._wire.sample import DictSample
    from atdata.dataset._dataset import Dataset

    _check_common(num_proc, retries, timeout)
    if (index is None) != (name is None):
        raise ConfigError("pass both index= and name= to record the output dataset in an index")
    if verify not in VERIFY_MODES:
        raise ConfigError(f"verify must be one of {', '.join(VERIFY_MODES)}; got {verify!r}")
    if ds._selection is not None:
        raise ConfigError(
            "map(out=...) works shard by shard; it cannot write a selection or slice of a "
            "dataset: map the whole dataset (filter inside fn) instead"
        )
    out_dir = os.fspath(out)
    if "://" in out_dir:
        raise ConfigError(f"out must be a local directory, got {out_dir!r}")
    ver = "" if version is None else str(version)
    shard_ids = ds.list_shards()
    out_paths = check_output_names(shard_ids, out_dir)
    os.makedirs(out_dir, exist_ok=True)
    run = uuid.uuid4().hex[:12]
    with _locked(out_dir), subscribe(log_listener(get_logger(), run)):
        for p in out_paths.values():  # leftovers of a run that was killed mid-shard
            remove_temps(p)
        emit("run_start", op="map", run=run, shards=len(shard_ids), num_proc=num_proc, out=out_dir)
        t0 = time.perf_counter()
        todo: list[str] = []
        recs = _check_commits(ds, shard_ids, out_paths, ver, verify)
        for s, rec in zip(shard_ids, recs, strict=True):
            if rec is None:
                todo.append(s)
            else:
                emit("shard_skip", op="map", run=run, shard=s, samples=rec.num_samples)
        job = MapJob(
            ds, fn, out_paths, version=ver, batched=batched, manifest=_manifest_default(manifest),
            sample_type=sample_type, run=run, fsync=fsync,
        )  # fmt: skip
        fails: dict[str, ShardFailure] = {}
        local: dict[str, BaseException] = {}
        bar = _Progress(progress, len(todo), "mapping")
        if runner is not None:

            def on_retry(shard: str, f: ShardFailure) -> None:
                emit("shard_retry", op="map", run=run, shard=shard, attempt=f.attempts + 1,
                     kind=f.kind, message=f.message)  # fmt: skip

            outcomes: Iterator[TaskOutcome] = iter(runner(job, todo, retries, on_retry))
        else:
            outcomes = _outcomes(
                job,
                todo,
                num_proc=num_proc,
                retries=retries,
                timeout=timeout,
                start_method=start_method,
                what=f"map function {fn!r}",
                op="map",
                run=run,
                local_errors=local,
            )
        try:
            for o in outcomes:
                if o.failure is None:
                    assert o.reply is not None
                    bar.done(o.reply["samples_in"], False)
                    continue
                fails[o.shard] = f = o.failure
                bar.done(0, True)
                emit("shard_fail", op="map", run=run, shard=o.shard, attempt=f.attempts,
                     kind=f.kind, message=f.message, exit_code=f.exit_code)  # fmt: skip
        finally:
            bar.close()
            # an error leaving the loop (Ctrl-C, a raising listener) stops the workers or Ray
            # tasks now, not when the traceback holding this frame is dropped (a notebook
            # keeps the last one)
            stop = getattr(outcomes, "close", None)
            if stop is not None:
                stop()
        emit("run_end", op="map", run=run, samples=bar.samples,
             seconds=time.perf_counter() - t0, failed=len(fails))  # fmt: skip
    kwargs: dict[str, Any] = dict(sample_type=sample_type, num_proc=num_proc, batched=batched, version=version,
                  verify=verify, retries=retries, timeout=timeout, manifest=manifest,
                  progress=progress, start_method=start_method, fsync=fsync,
                  runner=runner, index=index, name=name)  # fmt: skip
    if fails:
        ok = [s for s in shard_ids if s not in fails]
        err = PartialFailureError(
            ok,
            [s for s in shard_ids if s in fails],
            {s: _error_of(fails[s], local.get(s)) for s in shard_ids if s in fails},
            {s: out_paths[s] for s in ok},
            {s: fails[s] for s in shard_ids if s in fails},
        )
        err._retry = lambda: map_to_shards(ds, fn, out, **kwargs)  # commits skip the rest
        raise err
    infos: list[ShardInfo] = []
    types: dict[str, list[str]] = {}  # sample type name -> shards written with it
    for s in shard_ids:
        rec = read_commit(out_paths[s])
        assert rec is not None
        p = out_paths[s]
        infos.append(ShardInfo(p, rec.num_samples, rec.output_size, rec.output_sha256))
        if rec.num_samples:
            types.setdefault(rec.sample_type, []).append(s)
    if sample_type is None and len(types) > 1:  # each shard held one type, but not the same
        found = "; ".join(
            f"{t} in {', '.join(ss[:3])}{' ...' if len(ss) > 3 else ''}" for t, ss in types.items()
        )
        raise SchemaError(
            f"map function returned different sample types in different shards ({found}) of "
            f"{out_dir}: return one type, or pass sample_type=DictSample to write a mix; then run "
            "again with a new version="
        )
    st: type | None = sample_type
    if st is None and types:
        st = _resolve_type(next(iter(types)))
    result: Any = Dataset([i.path for i in infos], sample_type=st or DictSample, shard_infos=infos)
    if index is not None:
        index.insert_dataset(result, name=name)
    return result
