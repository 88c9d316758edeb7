"""``Dataset.map`` and ``Dataset.process_shards``: the methods that run work over shards.

:class:`~atdata.Dataset` takes both as they are defined here (``map = _runs.map``); the work
itself is in :mod:`atdata.dataset._process` (imported on the first call).
"""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, TypeVar

if TYPE_CHECKING:
    from atdata.dataset._dataset import Dataset

__all__ = ["map", "process_shards"]

T = TypeVar("T")


def map(
    self: Dataset[T],
    fn: Callable[[T], Any],
    sample_type: type | None = None,
    *,
    out: str | os.PathLike[str] | None = None,
    num_proc: int | None = None,
    batched: bool = False,
    version: str | None = None,
    verify: str = "sha256",
    retries: int = 2,
    timeout: float | None = None,
    manifest: bool | None = None,
    progress: bool | None = None,
    start_method: str | None = None,
    index: Any = None,
    name: str | None = None,
) -> Dataset[Any]:
    """A dataset of ``fn(sample)``: lazy without ``out``; with ``out``, written now.

    With ``out`` (a local directory) each input shard becomes one output shard of the same
    name, with a manifest and a commit record, written here or by ``num_proc`` workers (the
    bytes do not depend on ``num_proc``). The output is the checkpoint: the same call again
    (or ``err.retry()``) redoes only shards whose commit does not match the input sha256 and
    ``version`` or whose output does not verify. Details: :mod:`atdata.dataset._process`.

    Args:
        fn: ``fn(sample) -> sample`` (``None`` drops it; keys stay); with ``batched``,
            ``fn(list of a shard's samples) -> samples`` (keys stay when as many come back,
            else ``<shard name>-<position>``). One run writes one sample type.
        sample_type: The output type (default: what ``fn`` returns; ``DictSample`` takes
            a mix of types).
        out: Output directory (``None``: lazy map).
        num_proc: Worker processes (``None``: this process).
        batched: See ``fn``.
        version: Your version of ``fn``; changing it redoes every shard.
        verify: Check committed outputs by ``"sha256"``, ``"size"`` or ``"none"``.
        retries: Extra attempts for a shard whose worker died or timed out.
        timeout: Seconds per attempt at a shard (needs ``num_proc``).
        manifest: Write manifests (``None``: when pyarrow is installed).
        progress: Progress bar (``None``: on a terminal).
        start_method: Worker start method (a non-picklable ``fn`` fails before any work).
        index: An :class:`~atdata.Index` to record the output in once every shard is
            committed, under ``name``.
        name: The index entry's name (with ``index``).

    Raises:
        PartialFailureError: Some shards failed; all others are committed.
    """
    from atdata.dataset._process import map_dataset

    return map_dataset(
        self, fn, sample_type, out, num_proc=num_proc, batched=batched, version=version,
        verify=verify, retries=retries, timeout=timeout, manifest=manifest, progress=progress,
        start_method=start_method, index=index, name=name,
    )  # fmt: skip


def process_shards(
    self: Dataset[T],
    fn: Callable[[list[T]], Any],
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
    """Call ``fn(list of one shard's samples)`` for each shard; collect the results.

    Runs now, in this process in shard order, or on ``num_proc`` worker processes (results
    then travel back as msgpack: return plain data). A failing shard does not stop others.

    Args:
        fn: Gets one shard's samples (this dataset's filters and maps applied).
        shards: Shard identifiers to process (default: all), e.g. ``err.failed_shards``.
        checkpoint: Text file of finished shards: listed ones are skipped, each finished
            one is appended, and the file is deleted once all succeed.
        on_shard_error: Called as ``on_shard_error(shard, exception)`` per failure.
        num_proc: Worker processes (``None``: this process).
        retries: Extra attempts for a shard whose worker died or timed out.
        timeout: Seconds per attempt at a shard (needs ``num_proc``).
        progress: Progress bar (``None``: on a terminal).
        start_method: Worker start method.

    Returns:
        Shard identifier -> ``fn``'s result, in shard order.

    Raises:
        PartialFailureError: At least one shard failed (``.succeeded_shards``,
            ``.failed_shards``, ``.errors``, ``.results``, ``.failures``, ``.retry()``).

    Examples:
        >>> import atdata, os, tempfile
        >>> d = tempfile.mkdtemp()
        >>> ds = atdata.write_samples([atdata.DictSample(v=i) for i in range(5)],
        ...                           os.path.join(d, "v.tar"), maxcount=2, key="index")
        >>> list(ds.process_shards(len).values())
        [2, 2, 1]
    """
    from atdata.dataset import _process

    return _process.process_shards(
        self, fn, shards=shards, checkpoint=checkpoint, on_shard_error=on_shard_error,
        num_proc=num_proc, retries=retries, timeout=timeout, progress=progress,
        start_method=start_method,
    )  # fmt: skip
