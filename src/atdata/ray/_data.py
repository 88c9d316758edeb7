"""Ray Data bridge: a Datasource over atdata shards, a Datasink writing atdata shards, and the
shard pipeline of ``Dataset.map(out=...)`` run as Ray tasks.

Ray API differences handled here (Ray 2.10 and later, see :data:`SUPPORTED_RAY`):

- ``Datasource.get_read_tasks(parallelism)`` gained ``per_task_row_limit`` and
  ``data_context`` keyword arguments (accepted and passed on when ``ReadTask`` takes them);
- ``BlockMetadata`` lost its ``schema`` field (moved to ``ReadTask(schema=...)``): only the
  fields the installed release declares are filled;
- ``Datasink.on_write_start()`` gained a ``schema`` argument; ``on_write_complete`` receives a
  ``WriteResult`` (newer) or the list of the write tasks' returns (older).
"""

from __future__ import annotations

import contextlib
import dataclasses
import inspect
import os
import re
from collections.abc import Callable, Iterable, Iterator
from typing import Any

from atdata._errors import ConfigError, MissingExtraError, ShardFailure
from atdata._extras import require
from atdata._shards.writer import ShardInfo, ShardWriter
from atdata._wire.sample import DictSample
from atdata.dataset._dataset import Dataset
from atdata.dataset._pool import TaskOutcome, answer, read_answer
from atdata.dataset._process import map_to_shards
from atdata.dataset._shardjobs import keyed_samples

__all__ = ["SUPPORTED_RAY", "AtdataDatasink", "AtdataDatasource", "map", "read", "write"]

SUPPORTED_RAY = (2, 10)
"""The oldest Ray release whose Datasource/Datasink API this module supports."""


def _ray() -> Any:
    ray = require("ray", "ray", "atdata.ray")
    require("ray.data", "ray", "atdata.ray")
    m = re.match(r"(\d+)\.(\d+)", ray.__version__)
    if m is None or (int(m.group(1)), int(m.group(2))) < SUPPORTED_RAY:
        raise MissingExtraError(
            f"atdata.ray needs Ray >= {'.'.join(str(v) for v in SUPPORTED_RAY)} (its Datasource/"
            f'Datasink API), found {ray.__version__}: pip install -U "atdata[ray]"'
        )
    return ray


# -- samples <-> rows -------------------------------------------------------------------------
def _field_names(st: type, sample: Any) -> list[str]:
    if hasattr(st, "atdata_fields"):
        from atdata._wire.fields import fields_of

        return [f.name for f in fields_of(st)]
    return list(sample.keys()) if hasattr(sample, "keys") else []


def _column(values: list[Any]) -> Any:
    import numpy as np

    if values and all(isinstance(v, np.ndarray) for v in values):
        first = values[0]
        if all(v.shape == first.shape and v.dtype == first.dtype for v in values):
            return np.stack(values)  # a fixed-shape tensor column
        col = np.empty(len(values), dtype=object)
        col[:] = values
        return col  # a variable-shaped tensor column
    if all(isinstance(v, str) for v in values) or all(
        isinstance(v, (int, float)) and not isinstance(v, bool) for v in values
    ):
        return np.asarray(values)
    col = np.empty(len(values), dtype=object)
    col[:] = values
    return col


def _shard_block(ds: Dataset[Any], shard: str) -> Any:
    from ray.data.block import BlockAccessor

    keys: list[str] = []
    cols: dict[str, list[Any]] = {}
    names: list[str] | None = None
    for key, s in keyed_samples(ds, shard):
        if names is None:
            names = _field_names(ds.sample_type, s)
            cols = {n: [] for n in names}
        keys.append(key)
        for n in names:
            cols[n].append(getattr(s, n) if hasattr(type(s), "atdata_fields") else s.get(n))
    batch = {"__key__": _column(keys), **{n: _column(v) for n, v in cols.items()}}
    return BlockAccessor.batch_to_block(batch)


def _plain(v: Any) -> Any:
    item = getattr(v, "item", None)
    if item is not None and getattr(v, "shape", None) == ():
        return item()
    return v


def _row_sample(row: Any, st: type) -> tuple[str | None, Any]:
    d = {k: _plain(row[k]) for k in row}
    key = d.pop("__key__", None)
    if st is DictSample:
        return key, DictSample(d)
    from atdata._wire.fields import fields_of

    return key, st(**{f.name: d[f.name] for f in fields_of(st) if f.name in d})


# -- read ---------------------------------------------------------------------------------------
def _datasource_base() -> type:
    _ray()
    from ray.data import Datasource

    return Datasource


def _metadata(num_rows: int, size: int | None, shard: str) -> Any:
    from ray.data.block import BlockMetadata

    have = {f.name for f in dataclasses.fields(BlockMetadata)}
    kw: dict[str, Any] = {"num_rows": num_rows, "size_bytes": size}
    for name, value in (("schema", None), ("input_files", [shard]), ("exec_stats", None)):
        if name in have:
            kw[name] = value
    return BlockMetadata(**kw)


class AtdataDatasource:
    """A Ray ``Datasource`` over the shards of an atdata dataset: one read task per shard.

    Built by :func:`read`; the class derives from ``ray.data.Datasource`` when Ray is imported.
    """

    def __new__(cls, ds: Dataset[Any]) -> Any:  # subclass Ray's Datasource lazily
        return _impl_datasource()(ds)


def _read_shard(ds: Dataset[Any], shard: str) -> list[Any]:
    return [_shard_block(ds, shard)]


_DATASOURCE: type | None = None


def _impl_datasource() -> type:
    global _DATASOURCE
    if _DATASOURCE is not None:
        return _DATASOURCE
    base = _datasource_base()
    from ray.data import ReadTask

    task_params = set(inspect.signature(ReadTask.__init__).parameters)

    class _Source(base):  # type: ignore[misc, valid-type]
        def __init__(self, ds: Dataset[Any]) -> None:
            with contextlib.suppress(TypeError):
                super().__init__()
            self._ds = ds
            self._shards = ds.list_shards()

        def get_name(self) -> str:
            return "atdata"

        def estimate_inmemory_data_size(self) -> int | None:
            sizes = [os.path.getsize(s) for s in self._shards if os.path.isfile(s)]
            return sum(sizes) if len(sizes) == len(self._shards) else None

        def get_read_tasks(self, parallelism: int, **kwargs: Any) -> list[Any]:
            tasks = []
            limit = kwargs.get("per_task_row_limit")
            for shard in self._shards:
                rows = self._ds._shared.shard_count(shard)
                size = os.path.getsize(shard) if os.path.isfile(shard) else None
                meta = _metadata(rows, size, shard)
                extra = {}
                if limit is not None and "per_task_row_limit" in task_params:
                    extra["per_task_row_limit"] = limit
                fn = _bind(_read_shard, self._ds, shard)
                tasks.append(ReadTask(fn, meta, **extra))
            return tasks

    _Source.__name__ = _Source.__qualname__ = "AtdataDatasource"
    _DATASOURCE = _Source
    return _Source


def _bind(fn: Callable[..., Any], *args: Any) -> Callable[[], Any]:
    def call() -> Any:
        return fn(*args)

    return call


def read(ds: Dataset[Any], **read_args: Any) -> Any:
    """A ``ray.data.Dataset`` of ``ds``'s samples: one read task per shard.

    Columns: ``__key__`` and one per field (arrays as tensor columns). Row counts in the read
    metadata are exact (member indexes), so ``count()`` needs no read.

    Args:
        ds: The atdata dataset (its filters, maps and lenses apply).
        **read_args: Passed to ``ray.data.read_datasource`` (e.g. ``concurrency``).
    """
    _ray()
    import ray.data

    return ray.data.read_datasource(AtdataDatasource(ds), **read_args)


# -- write --------------------------------------------------------------------------------------
_DATASINK: type | None = None


class AtdataDatasink:
    """A Ray ``Datasink`` writing atdata shards ``<out>/part-<task>.tar``: built by :func:`write`.

    Each write task writes one shard (hidden temporary name, then renamed); when the job fails
    the shards it wrote are removed, and only when every task succeeded are the shards
    reported (and, with an index, recorded in one entry). Either way the temporaries of write
    tasks whose worker was killed are removed.
    """

    def __new__(cls, out: str, sample_type: type, prefix: str = "part") -> Any:
        return _impl_datasink()(out, sample_type, prefix)


def _write_task(out: str, prefix: str, st: type, blocks: Iterable[Any], idx: int) -> Any:
    from ray.data.block import BlockAccessor

    path = os.path.join(out, f"{prefix}-{idx:06d}.tar")
    n = 0
    with ShardWriter(path, key=lambda s, i: s.__key__ or f"{idx:06d}-{i:08d}") as w:
        for block in blocks:
            row: Any
            for row in BlockAccessor.for_block(block).iter_rows(public_row_format=False):
                key, sample = _row_sample(row, st)
                with contextlib.suppress(AttributeError, TypeError):
                    object.__setattr__(sample, "__key__", key)
                w.write(sample)
                n += 1
    infos = w.list_shard_infos()
    if not infos:
        return None
    i = infos[0]
    return {"path": i.path, "num_samples": i.num_samples, "size": i.size, "sha256": i.sha256}


def _remove_written(out: str, prefix: str, *, shards: bool) -> None:
    """Remove the hidden temporaries of ``<out>/<prefix>-NNNNNN.tar`` shards (a write task
    whose worker was killed leaves its own, even when Ray retries the task and the write
    succeeds) and, with ``shards``, the shards themselves (a failed write)."""
    name = re.escape(prefix) + r"-\d{6}\.tar"
    pat = re.compile(rf"(\.{name}\.tmp-.*|{name})$" if shards else rf"\.{name}\.tmp-.*$")
    for entry in os.listdir(out):
        if pat.match(entry):
            with contextlib.suppress(FileNotFoundError):
                os.unlink(os.path.join(out, entry))


def _impl_datasink() -> type:
    global _DATASINK
    if _DATASINK is not None:
        return _DATASINK
    _ray()
    from ray.data import Datasink

    class _Sink(Datasink):
        def __init__(self, out: str, sample_type: type, prefix: str) -> None:
            self.out, self.sample_type, self.prefix = out, sample_type, prefix
            self.infos: list[ShardInfo] = []

        def get_name(self) -> str:
            return "atdata"

        def on_write_start(self, *args: Any, **kwargs: Any) -> None:
            os.makedirs(self.out, exist_ok=True)

        def write(self, blocks: Iterable[Any], ctx: Any) -> Any:
            return _write_task(self.out, self.prefix, self.sample_type, blocks, ctx.task_idx)

        def on_write_complete(self, result: Any) -> None:
            returns = getattr(result, "write_returns", result)
            got = [r for r in returns if r]
            got.sort(key=lambda r: r["path"])
            self.infos = [
                ShardInfo(r["path"], r["num_samples"], r["size"], r["sha256"]) for r in got
            ]
            _remove_written(self.out, self.prefix, shards=False)  # of attempts that died

        def on_write_failed(self, error: Exception) -> None:
            _remove_written(self.out, self.prefix, shards=True)

    _Sink.__name__ = _Sink.__qualname__ = "AtdataDatasink"
    _DATASINK = _Sink
    return _Sink


def write(
    ray_ds: Any,
    out: str | os.PathLike[str],
    sample_type: type,
    *,
    index: Any = None,
    name: str | None = None,
    prefix: str = "part",
) -> Dataset[Any]:
    """Write a ``ray.data.Dataset`` as atdata shards (one per write task) and return it.

    Args:
        ray_ds: Rows with one column per field of ``sample_type`` (and optionally ``__key__``).
        out: Output directory (local).
        sample_type: A ``@packable`` type, or :class:`~atdata.DictSample`.
        index: An :class:`~atdata.Index` to record the result in (once every shard is written;
            if any write task fails, its shards are removed and no entry is made).
        name: The entry's name (needs ``index``).
        prefix: Shard file prefix: ``<out>/<prefix>-<task>.tar``.

    Raises:
        ConfigError: When ``out`` holds shards with this prefix already.
    """
    _ray()
    out_dir = os.fspath(out)
    if os.path.isdir(out_dir) and any(
        re.match(re.escape(prefix) + r"-\d{6}\.tar$", f) for f in os.listdir(out_dir)
    ):
        raise ConfigError(
            f"{out_dir} already holds {prefix}-*.tar shards: write to an empty directory"
        )
    if (index is None) != (name is None):
        raise ConfigError("pass both index= and name= to record the written dataset")
    sink = AtdataDatasink(out_dir, sample_type, prefix)
    ray_ds.write_datasink(sink)
    infos = sink.infos
    if not infos:
        raise ConfigError(f"the Ray dataset had no rows, so nothing was written to {out_dir}")
    ds: Dataset[Any] = Dataset([i.path for i in infos], sample_type=sample_type, shard_infos=infos)
    if index is not None:
        index.insert_dataset(ds, name=name)
    return ds


# -- map ----------------------------------------------------------------------------------------
def _run_remote(job: Any, shard: str, attempt: int, want_events: bool) -> bytes:
    return answer(job, shard, attempt, want_events)


def _ray_runner(num_cpus: float) -> Callable[..., Iterator[TaskOutcome]]:
    ray = _ray()

    def run(
        job: Any, shards: list[str], retries: int, on_retry: Callable[[str, ShardFailure], None]
    ) -> Iterator[TaskOutcome]:
        from atdata._events import has_subscribers

        remote = ray.remote(num_cpus=num_cpus, max_retries=0)(_run_remote)
        job_ref = ray.put(job)
        pending: dict[Any, tuple[str, int]] = {}

        def submit(shard: str, attempt: int) -> None:
            pending[remote.remote(job_ref, shard, attempt, has_subscribers())] = (shard, attempt)

        try:
            for s in shards:
                submit(s, 1)
            while pending:
                ready, _ = ray.wait(list(pending), num_returns=1)
                ref = ready[0]
                shard, attempt = pending[ref]
                try:
                    blob = ray.get(ref)
                except Exception as exc:  # the task's worker died or Ray lost the task
                    del pending[ref]
                    _remove_temps(job, shard)  # what the dead worker had half-written
                    cls = type(exc).__name__
                    fail = ShardFailure(
                        shard,
                        "worker_died",
                        f"Ray task for the shard failed ({cls}: {exc})".splitlines()[0],
                        "",
                        attempt,
                        None,
                        cls,
                    )
                    if attempt <= retries:
                        on_retry(shard, fail)
                        submit(shard, attempt + 1)
                        continue
                    yield TaskOutcome(shard, None, fail)
                    continue
                del pending[ref]
                yield read_answer(blob, shard, attempt)
        finally:  # also on KeyboardInterrupt, an error leaving the run or the caller closing us
            _stop(ray, job, pending)

    return run


_STOP_WAIT_S = 30.0
"""How long stopping a run waits for its cancelled Ray tasks to end before removing their
temporaries (a task still running past it may leave one, swept at the next run's start)."""


def _stop(ray: Any, job: Any, pending: dict[Any, tuple[str, int]]) -> None:
    """Cancel the run's unfinished Ray tasks (their workers are killed, queued ones dropped),
    wait for them to end, then remove what they had half-written."""
    if not pending:
        return
    refs = list(pending)
    for ref in refs:
        with contextlib.suppress(Exception):  # a task that finished meanwhile
            ray.cancel(ref, force=True)
    with contextlib.suppress(Exception):
        ray.wait(refs, num_returns=len(refs), timeout=_STOP_WAIT_S)
    for shard in sorted({shard for shard, _attempt in pending.values()}):
        _remove_temps(job, shard)
    pending.clear()


def _remove_temps(job: Any, shard: str) -> None:
    """Remove the temporary output of ``shard``'s stopped or dead task (all of them: the run
    holds the output directory's lock, so no other writer of the shard runs)."""
    clean = getattr(job, "cleanup", None)
    if clean is not None:
        with contextlib.suppress(OSError):
            clean(shard, None)


def map(
    ds: Dataset[Any],
    fn: Callable[..., Any],
    out: str | os.PathLike[str],
    *,
    sample_type: type | None = None,
    batched: bool = False,
    version: str | None = None,
    verify: str = "sha256",
    retries: int = 2,
    manifest: bool | None = None,
    num_cpus: float = 1,
) -> Dataset[Any]:
    """``ds.map(fn, out=out)`` with one Ray task per shard, on the connected Ray cluster.

    The output shards, manifests and commit records are those of ``Dataset.map(out=...)``
    (byte for byte), so a rerun, on Ray or locally, skips exactly the committed shards; failures
    raise :class:`~atdata.PartialFailureError` (a task whose worker died is retried up to
    ``retries`` times and then reported as ``"worker_died"``; what it had half-written is
    removed). ``out`` must be a directory every Ray worker can reach (local on a one-machine
    cluster, a shared filesystem otherwise). An interrupt (Ctrl-C) or another exception leaving
    the run cancels its unfinished Ray tasks (``ray.cancel(force=True)``: running ones are
    stopped, queued ones never start) and removes their temporary files; committed shards stay.
    """
    return map_to_shards(
        ds, fn, out, sample_type=sample_type, batched=batched, version=version, verify=verify,
        retries=retries, manifest=manifest, progress=False, runner=_ray_runner(num_cpus),
    )  # fmt: skip
