"""Writing samples into tar shards: :class:`ShardWriter`, :class:`ShardInfo` and observer hooks.

A shard is written under a hidden temporary name and renamed to its final name only once it is
complete, so readers never see a truncated shard, even after a crash or an exception.

This is the shard layer's writer: it knows tar members and observers, not datasets or manifests.
The public ``atdata.ShardWriter`` (``manifest=True``) and ``atdata.write_samples`` (which returns
a :class:`~atdata.Dataset`) build on it in :mod:`atdata.dataset._write`.

Examples:
    >>> import tempfile, os
    >>> from atdata._wire.sample import DictSample
    >>> d = tempfile.mkdtemp()
    >>> with ShardWriter(os.path.join(d, "rows.tar"), key="index") as w:
    ...     for t in "abc":
    ...         _ = w.write(DictSample(text=t))
    >>> info = w.list_shard_infos()[0]
    >>> (os.path.basename(info.path), info.num_samples, info.size, len(info.sha256))
    ('rows.tar', 3, 4096, 64)
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import os
import re
import uuid
from collections.abc import Callable, Iterable
from typing import Any, Protocol

from atdata._errors import (
    AtdataError,
    ConfigError,
    SampleKeyError,
    SchemaError,
    StorageError,
    count_arg,
)
from atdata._shards.tar import BLOCK, TarWriter
from atdata._wire.sample import DictSample, pack_wire

__all__ = ["KeyPolicy", "ShardInfo", "ShardObserver", "ShardWriter"]

KeyPolicy = None | str | Callable[[Any, int], str]
_BAD_KEY = re.compile(r"[.\x00\n]")


@dataclasses.dataclass(frozen=True)
class ShardInfo:
    """A finished shard: where it is, how many samples, its size and sha256."""

    path: str
    num_samples: int
    size: int
    sha256: str


class ShardObserver(Protocol):
    """Hook notified while shards are written (used by manifests and member indexes).

    An observer may also define ``prepare_shard(tmp_path, info)``: it is called once the shard is
    complete under its temporary name, before the rename that makes it visible.
    """

    def begin_shard(self, path: str) -> None: ...
    def add(self, key: str, offset: int, size: int, sample: Any) -> None: ...
    def end_shard(self, info: ShardInfo) -> None: ...  # after the shard has its final name
    def abort_shard(self, path: str) -> None: ...


class _HashingFile:
    __slots__ = ("_f", "_h", "size")

    def __init__(self, f: Any) -> None:
        self._f = f
        self._h = hashlib.sha256()
        self.size = 0

    def write(self, b: bytes | memoryview) -> None:
        self._f.write(b)
        self._h.update(b)
        self.size += len(b)

    def hexdigest(self) -> str:
        return self._h.hexdigest()


def _check_key(key: Any) -> str:
    if not isinstance(key, str) or not key or _BAD_KEY.search(key) or key.startswith("/"):
        raise SampleKeyError(
            f"invalid sample key {key!r}: keys are non-empty strings without '.', NUL or newlines "
            "(WebDataset splits member names at the first dot)"
        )
    return key


def _numbered(path: str) -> bool:
    """Whether the file name of ``path`` holds a printf field for the shard number (``%06d``;
    ``%%`` is a literal ``%``; a ``%`` in a directory name is never a field).

    Raises:
        ConfigError: When the name is not a printf pattern of at most one number.

    Examples:
        >>> _numbered("out/d-%03d.tar"), _numbered("5%/d.tar"), _numbered("d-%%.tar")
        (True, False, False)
    """
    base = os.path.basename(path)
    if "%" not in base:
        return False
    try:
        return base % 0 != base % 1
    except (TypeError, ValueError):
        pass
    try:
        base % ()  # only literal %% in it
        return False
    except (TypeError, ValueError):
        raise ConfigError(
            f"shard pattern {path!r}: the file name takes one printf field for the shard "
            "number (e.g. data-%06d.tar); write a literal % as %%"
        ) from None


def _shard_pattern(path: str, sharded: bool) -> str:
    if _numbered(path) or not sharded:
        return path
    root, ext = os.path.splitext(path)
    return f"{root}-%06d{ext or '.tar'}"


def _write_error(exc: OSError, path: str) -> StorageError:
    import errno

    why = "the disk is full" if exc.errno == errno.ENOSPC else (exc.strerror or str(exc))
    where = exc.filename or path
    return StorageError(
        f"cannot write shard {path}: {why} ({where}); free some space or write to a directory "
        "you can write to (nothing was kept of the unfinished shard)"
    )


def _drop_sidecars(final: str) -> None:
    """Remove the manifest of a shard about to be replaced: it describes the old bytes.

    Done before the new shard takes the name, so a writer killed in between leaves a shard without
    a manifest (queries refuse it and say how to build one), never a manifest of other bytes.
    """
    base = final[:-4] if final.endswith(".tar") else final
    for side in (base + ".manifest.json", base + ".manifest.parquet"):
        with contextlib.suppress(FileNotFoundError):
            os.unlink(side)


class ShardWriter:
    """Write samples into one or more tar shards.

    Args:
        pattern: Shard path; a printf pattern such as ``"out/data-%06d.tar"`` when sharding. A
            plain path with ``maxcount``/``maxsize`` gets ``-%06d`` inserted before ``.tar``.
        maxcount: Start a new shard after this many samples.
        maxsize: Start a new shard before it would exceed this many bytes.
        key: ``None`` (a sample's own ``__key__`` or a fresh uuid1, like upstream), ``"index"``
            (zero-padded running index), ``"uuid"`` (always a fresh uuid1) or a callable
            ``(sample, index) -> str``.
        start_index: First shard number.
        fsync: Flush each shard to disk before it becomes visible (crash durability).
        observers: :class:`ShardObserver` hooks (manifests, indexes).
        progress: Show a progress display (``None``: only on an interactive terminal).
        total: Expected number of samples, for the progress display.
        mtime: The modification time written in every tar header (``None``: now); a fixed
            value makes the shard bytes depend on the samples alone (reproducible output).

    Examples:
        >>> import tempfile, os
        >>> from atdata._wire.sample import DictSample
        >>> d = tempfile.mkdtemp()
        >>> with ShardWriter(os.path.join(d, "s-%03d.tar"), maxcount=2, key="index") as w:
        ...     for i in range(5):
        ...         _ = w.write(DictSample(i=i))
        >>> [os.path.basename(i.path) for i in w.list_shard_infos()]
        ['s-000.tar', 's-001.tar', 's-002.tar']
    """

    def __init__(
        self,
        pattern: str | os.PathLike[str],
        maxcount: int | None = None,
        maxsize: int | None = None,
        *,
        key: KeyPolicy = None,
        start_index: int = 0,
        fsync: bool = True,
        observers: Iterable[ShardObserver] = (),
        progress: bool | None = None,
        total: int | None = None,
        mtime: int | None = None,
    ) -> None:
        if maxcount is not None:
            maxcount = count_arg("maxcount", maxcount, 1)
        if maxsize is not None:
            maxsize = count_arg("maxsize (bytes per shard)", maxsize, 3 * BLOCK)
        path = os.fspath(pattern)
        self.pattern = _shard_pattern(path, maxcount is not None or maxsize is not None)
        self._numbered = _numbered(self.pattern)
        self.maxcount, self.maxsize = maxcount, maxsize
        if not (key is None or callable(key) or key in ("index", "uuid")):
            raise ConfigError(f"key must be None, 'index', 'uuid' or a callable, got {key!r}")
        self._key = key
        self._shard_no = start_index
        self._fsync = fsync
        self._observers: list[ShardObserver] = list(observers)
        self._infos: list[ShardInfo] = []
        self._count = 0  # samples written overall
        self._file: Any = None
        self._progress = _Progress(progress, total)
        self._mtime = mtime

    # -- shard lifecycle ----------------------------------------------------------------------
    def _final_path(self) -> str:
        head, base = os.path.split(self.pattern)
        if self._numbered:
            return os.path.join(head, base % self._shard_no)
        name = os.path.join(head, base % ()) if "%" in base else self.pattern
        if self._shard_no != 0 and self._infos:
            raise ConfigError(
                f"{self.pattern!r} holds a single shard; pass maxcount/maxsize to shard"
            )
        return name

    def _open(self) -> None:
        final = self._final_path()
        d = os.path.dirname(final) or "."
        os.makedirs(d, exist_ok=True)
        self._final = final
        self._tmp = os.path.join(
            d, f".{os.path.basename(final)}.tmp-{os.getpid()}-{uuid.uuid4().hex[:8]}"
        )
        self._raw = open(self._tmp, "wb")  # noqa: SIM115 - closed in _finish/_abort
        self._file = _HashingFile(self._raw)
        self._tar = TarWriter(self._file, mtime=self._mtime)
        self._shard_count = 0
        self._keys: set[str] = set()
        for ob in self._observers:
            ob.begin_shard(final)

    def _finish(self) -> None:
        self._tar.close()
        self._raw.flush()
        if self._fsync:
            os.fsync(self._raw.fileno())
        self._raw.close()
        info = ShardInfo(self._final, self._shard_count, self._file.size, self._file.hexdigest())
        for ob in self._observers:  # e.g. manifests, written under temporary names
            prepare = getattr(ob, "prepare_shard", None)
            if prepare is not None:
                prepare(self._tmp, info)
        _drop_sidecars(self._final)
        os.replace(self._tmp, self._final)
        self._infos.append(info)
        self._file = None
        self._shard_no += 1
        for ob in self._observers:
            ob.end_shard(info)

    def _abort(self) -> None:
        if self._file is None:
            return
        try:
            self._raw.close()
        finally:
            self._file = None
            with contextlib.suppress(FileNotFoundError):
                os.unlink(self._tmp)
            for ob in self._observers:
                ob.abort_shard(self._final)

    # -- public -------------------------------------------------------------------------------
    def _next_key(self, sample: Any) -> str:
        k = self._key
        if k is None:
            own = getattr(sample, "__key__", None)
            return own if own is not None else str(uuid.uuid1())
        if k == "index":
            return f"{self._count:08d}"
        if k == "uuid":
            return str(uuid.uuid1())
        return k(sample, self._count)  # type: ignore[operator]

    def write(self, sample: Any) -> str:
        """Write one sample (a packable sample, a :class:`DictSample` or a plain dict).

        Returns:
            The key it was written under.

        Raises:
            SchemaError: When the sample cannot be encoded (nothing is written for it).
            SampleKeyError: For an invalid or duplicate key.
        """
        if isinstance(sample, dict):
            sample = DictSample(sample)  # (its "__key__" entry, if any, is the key)
        to_wire = getattr(sample, "_to_wire", None)
        if to_wire is None:
            raise SchemaError(
                f"cannot write a {type(sample).__name__}: use a @packable type, a DictSample or a dict"
            )
        key = _check_key(self._next_key(sample))
        try:
            owner = "" if isinstance(sample, DictSample) else f"{type(sample).__name__}."
            payload = pack_wire(to_wire(), owner)
        except SchemaError as exc:
            shard = self._final if self._file is not None else self.pattern
            raise type(exc)(f"{exc} (sample {key!r}, shard {shard})") from None
        if (
            self._file is not None
            and self.maxsize is not None
            and self._shard_count
            and self._file.size + len(payload) + 3 * BLOCK + 1024 > self.maxsize
        ):
            self._io(self._finish)
        if self._file is None:
            self._io(self._open)
        if key in self._keys:
            raise SampleKeyError(f"duplicate sample key {key!r} in shard {self._final}")
        self._keys.add(key)
        try:
            offset = self._tar.add(key + ".msgpack", payload)
        except OSError as exc:
            raise _write_error(exc, self._final) from None
        for ob in self._observers:
            ob.add(key, offset, len(payload), sample)
        self._shard_count += 1
        self._count += 1
        self._progress.advance(len(payload))
        if self.maxcount is not None and self._shard_count >= self.maxcount:
            self._io(self._finish)
        return key

    def _io(self, step: Callable[[], None]) -> None:
        """Run a shard lifecycle step; a failed write (read-only directory, full disk) becomes a
        :class:`~atdata.StorageError` naming the shard."""
        try:
            step()
        except OSError as exc:
            if isinstance(exc, AtdataError):
                raise
            raise _write_error(exc, getattr(self, "_final", None) or self.pattern) from None

    def close(self) -> list[ShardInfo]:
        """Finish the open shard and return every shard written."""
        if self._file is not None:
            self._io(self._finish)
        self._progress.close()
        return list(self._infos)

    def abort(self) -> None:
        """Drop the shard being written (finished shards stay)."""
        self._abort()
        self._progress.close()

    @property
    def shard_infos(self) -> Iterable[ShardInfo]:
        """Finished shards so far (lazy)."""
        return iter(self._infos)

    def list_shard_infos(self) -> list[ShardInfo]:
        """Finished shards so far."""
        return list(self._infos)

    @property
    def count(self) -> int:
        """Samples written so far."""
        return self._count

    def __enter__(self) -> ShardWriter:
        return self

    def __exit__(self, exc_type: Any, exc: Any, tb: Any) -> None:
        if exc_type is not None:
            self.abort()
        else:
            self.close()


def _rate(bar: Any, task: Any) -> str:
    """Samples per second of a progress task (the bar counts samples, not bytes)."""
    t = next(x for x in bar.tasks if x.id == task)
    speed = t.finished_speed or t.speed
    return "" if speed is None else f"{speed:,.0f} samples/s"


class _Progress:
    """A rich progress bar, shown only when asked for or on an interactive terminal."""

    def __init__(self, enabled: bool | None, total: int | None) -> None:
        if enabled is None:
            import sys

            enabled = sys.stderr.isatty()
        self._bar: Any = None
        self._n = 0
        if enabled:
            from rich.progress import (
                BarColumn,
                MofNCompleteColumn,
                Progress,
                TextColumn,
                TimeRemainingColumn,
            )

            self._bar = Progress(
                TextColumn("writing"),
                BarColumn(),
                MofNCompleteColumn(),
                TextColumn("{task.fields[rate]}"),
                TimeRemainingColumn(),
                transient=False,
            )
            self._bar.start()
            self._task = self._bar.add_task("write", total=total, rate="")

    def advance(self, nbytes: int) -> None:
        if self._bar is not None:
            self._n += 1
            if self._n % 64 == 0:
                self._bar.update(self._task, completed=self._n, rate=_rate(self._bar, self._task))

    def close(self) -> None:
        if self._bar is not None:
            self._bar.update(self._task, completed=self._n)
            self._bar.update(self._task, rate=_rate(self._bar, self._task))
            self._bar.stop()
            self._bar = None
