"""The per-shard work of ``process_shards`` and ``Dataset.map(out=...)``, run in this process or
in a worker: read one input shard (hashing its bytes on the way), apply the function, and for
``map`` write the output shard, its manifest and its commit record.

Output shards are written under a hidden temporary name with a fixed tar mtime (0), so their
bytes depend only on the input and the function (never on ``num_proc`` or the clock), and they
become visible with one ``os.replace``; the commit record comes last.
"""

from __future__ import annotations

import contextlib
import glob
import hashlib
import os
import time
import uuid
from collections.abc import Callable, Iterator
from typing import Any

from atdata._errors import ConfigError, SampleKeyError, SchemaError
from atdata._events import emit
from atdata._shards.sources import shard_id_kw
from atdata._shards.tar import TarWriter
from atdata._shards.writer import ShardInfo, _check_key
from atdata._wire.sample import DictSample, pack_wire
from atdata.dataset._commit import CommitRecord, commit_path, write_commit

__all__ = [
    "MapJob",
    "ReduceJob",
    "check_output_names",
    "input_sha256",
    "keyed_samples",
    "remove_temps",
    "type_name",
]


class _HashingReader:
    """A shard stream that hashes what is read; on close it reads (and hashes) the rest."""

    def __init__(self, f: Any) -> None:
        self._f = f
        self.h = hashlib.sha256()

    def read(self, n: int = -1) -> bytes:
        b = self._f.read(n)
        self.h.update(b)
        return b

    def close(self) -> None:
        try:
            while block := self._f.read(1 << 20):
                self.h.update(block)
        finally:
            self._f.close()


class _HashingSource:
    """Wraps a :class:`~atdata.DataSource` so the last opened shard's sha256 can be read."""

    def __init__(self, source: Any) -> None:
        self._source = source
        self.last: _HashingReader | None = None

    def list_shards(self) -> list[str]:
        return list(self._source.list_shards())

    @shard_id_kw
    def open_shard(self, shard_id: str) -> Any:
        shard = shard_id
        self.last = _HashingReader(self._source.open_shard(shard))
        return self.last

    def __getattr__(self, name: str) -> Any:
        return getattr(self._source, name)


def input_sha256(source: Any, shard: str) -> str:
    """sha256 of an input shard's bytes (a local file is hashed directly)."""
    if os.path.isfile(shard):
        from atdata.dataset._commit import file_sha256

        return file_sha256(shard)
    h = hashlib.sha256()
    f = source.open_shard(shard)
    try:
        while block := f.read(1 << 20):
            h.update(block)
    finally:
        f.close()
    return h.hexdigest()


def type_name(t: type) -> str:
    """``module:qualname`` of a type (what commit records store)."""
    return f"{t.__module__}:{t.__qualname__}"


def keyed_samples(ds: Any, shard: str) -> Iterator[tuple[str, Any]]:
    """``(key, sample)`` of one shard with the dataset's filters/maps/lenses applied."""
    cur: list[str] = [""]

    def raws() -> Iterator[tuple[str, str, dict]]:
        for item in ds._raw_stream([shard]):
            cur[0] = item[1]
            yield item

    for s in ds._with_ops(ds._decoded(raws())):
        yield cur[0], s  # filters/maps/lenses pull one raw at a time: cur is this sample's key


class ReduceJob:
    """``process_shards``: ``fn(list of the shard's samples)`` -> the shard's result."""

    def __init__(self, ds: Any, fn: Callable[[list[Any]], Any], run: str) -> None:
        self.ds, self.fn, self.run_id = ds, fn, run

    def run(self, shard: str, attempt: int) -> dict[str, Any]:
        t0 = time.perf_counter()
        samples = [s for _k, s in keyed_samples(self.ds, shard)]
        t1 = time.perf_counter()
        ev: dict[str, Any] = {
            "op": "process_shards",
            "run": self.run_id,
            "shard": shard,
            "attempt": attempt,
        }
        emit("shard_read", samples=len(samples), seconds=t1 - t0, **ev)
        result = self.fn(samples)
        emit("shard_done", samples=len(samples), seconds=time.perf_counter() - t0, **ev)
        return {"result": result, "samples": len(samples)}


class _HashingFile:
    __slots__ = ("_f", "h", "size")

    def __init__(self, f: Any) -> None:
        self._f, self.h, self.size = f, hashlib.sha256(), 0

    def write(self, b: bytes | memoryview) -> None:
        self._f.write(b)
        self.h.update(b)
        self.size += len(b)


class MapJob:
    """``Dataset.map(out=...)``: one input shard -> one committed output shard.

    Args:
        ds: The input dataset.
        fn: Per sample ``fn(sample) -> sample | None`` (``None`` drops it) or, with ``batched``,
            ``fn(list of the shard's samples) -> iterable of samples``.
        out_paths: Input shard -> output shard path.
        version: The user's version string for commit records.
        batched: See ``fn``.
        manifest: Write a manifest beside each output shard.
        sample_type: The output type (for manifests; ``None``: each shard's first sample's).
        run: The run identifier for events.
        fsync: Flush output shards to disk before they become visible.
    """

    def __init__(
        self,
        ds: Any,
        fn: Callable[..., Any],
        out_paths: dict[str, str],
        *,
        version: str,
        batched: bool,
        manifest: bool,
        sample_type: type | None,
        run: str,
        fsync: bool = True,
    ) -> None:
        self.ds, self.fn, self.out_paths = ds, fn, out_paths
        self.version, self.batched, self.manifest = version, batched, manifest
        self.sample_type, self.run_id, self.fsync = sample_type, run, fsync

    def _outputs(self, shard: str, pairs: Iterator[tuple[str, Any]]) -> Iterator[tuple[str, Any]]:
        fn = self.fn
        if not self.batched:
            for key, s in pairs:
                o = fn(s)
                if o is not None:
                    yield key, o
            return
        got = list(pairs)
        outs = fn([s for _k, s in got])
        if outs is None:
            return
        if isinstance(outs, (dict, str, bytes)) or hasattr(outs, "_to_wire"):
            raise SchemaError(
                f"batched map function returned a {type(outs).__name__} for shard {shard}: "
                "return a list (or another iterable) of the shard's output samples, or None"
            )
        outs = list(outs)
        same = len(outs) == len(got)
        # new samples in another number: keys by position, made unique across the dataset by
        # the output shard's name (positions restart at 0 in every shard)
        stem = os.path.basename(self.out_paths[shard]).removesuffix(".tar")
        for i, o in enumerate(outs):
            own = getattr(o, "__key__", None)
            yield (own if own else got[i][0] if same else f"{stem}-{i:08d}"), o

    def _check_type(self, o: Any, first: type | None, key: str, shard: str) -> None:
        """One map writes one sample type (``sample_type``'s, else the first output's)."""
        want = self.sample_type
        if want is DictSample or type(o) is (want or first or type(o)):
            return
        if want is not None and isinstance(o, DictSample):
            return  # a dict read back as ``want``: its fields are checked when it is read
        what = (
            f"sample_type is {want.__name__}"
            if want is not None
            else f"its earlier samples were {getattr(first, '__name__', first)}"
        )
        raise SchemaError(
            f"map function returned a {type(o).__name__} for sample {key!r} of shard {shard}, "
            f"but {what}: one map writes one sample type, so return that type"
            f"{' (or dicts)' if want is not None else ''}, or pass sample_type=DictSample to "
            "write a mix"
        )

    def cleanup(self, shard: str, pid: int | None) -> None:
        """Remove what a worker that died (pid; ``None``: any writer, as for a Ray task whose
        pid is not known) left half-written for ``shard``."""
        remove_temps(self.out_paths[shard], pid)

    def run(self, shard: str, attempt: int) -> dict[str, Any]:
        out = self.out_paths[shard]
        ev: dict[str, Any] = {"op": "map", "run": self.run_id, "shard": shard, "attempt": attempt}
        t0 = time.perf_counter()
        src = _HashingSource(self.ds.source)
        ds = self.ds._derive(source=src)
        d = os.path.dirname(out) or "."
        tmp = os.path.join(d, f".{os.path.basename(out)}.tmp-{os.getpid()}-{uuid.uuid4().hex[:8]}")
        raw = open(tmp, "wb")  # noqa: SIM115 - closed below on every path
        hf = _HashingFile(raw)
        try:
            tw = TarWriter(hf, mtime=0)
            obs = None
            if self.manifest:
                from atdata.manifest._builder import ManifestObserver

                obs = ManifestObserver(self.sample_type)
                obs.begin_shard(out)
            n_in = [0]

            def counted() -> Iterator[tuple[str, Any]]:
                for pair in keyed_samples(ds, shard):
                    n_in[0] += 1
                    yield pair

            n, keys, first = 0, set(), None
            for key, o in self._outputs(shard, counted()):
                if isinstance(o, dict):
                    o = DictSample(o)
                to_wire = getattr(o, "_to_wire", None)
                if to_wire is None:
                    raise SchemaError(
                        f"map function returned a {type(o).__name__} for sample {key!r} of shard "
                        f"{shard}: return a @packable sample, a DictSample, a dict or None"
                    )
                self._check_type(o, first, key, shard)
                _check_key(key)
                if key in keys:
                    raise SampleKeyError(f"duplicate output key {key!r} from shard {shard}")
                keys.add(key)
                if first is None:
                    first = type(o)
                try:
                    owner = "" if isinstance(o, DictSample) else f"{type(o).__name__}."
                    payload = pack_wire(to_wire(), owner)
                except SchemaError as exc:
                    raise type(exc)(f"{exc} (output sample {key!r} of shard {shard})") from None
                off = tw.add(key + ".msgpack", payload)
                if obs is not None:
                    obs.add(key, off, len(payload), o)
                n += 1
            tw.close()
            raw.flush()
            if self.fsync:
                os.fsync(raw.fileno())
            raw.close()
            t_read = time.perf_counter() - t0
            in_sha = src.last.h.hexdigest() if src.last is not None else ""
            emit("shard_read", samples=n_in[0], seconds=t_read, **ev)
            with contextlib.suppress(FileNotFoundError):
                os.unlink(commit_path(out))  # the old record must never vouch for new bytes
            os.replace(tmp, out)
        except BaseException:
            raw.close()
            with contextlib.suppress(FileNotFoundError):
                os.unlink(tmp)
            raise
        sha = hf.h.hexdigest()
        info = ShardInfo(out, n, hf.size, sha)
        if obs is not None:
            obs.end_shard(info)
        tname = type_name(self.sample_type or first or DictSample)
        emit("shard_write", samples=n, seconds=time.perf_counter() - t0, bytes=hf.size, **ev)
        rec = CommitRecord(
            shard, in_sha, self.version, os.path.basename(out), sha, hf.size, n, tname
        )
        write_commit(out, rec)
        emit("shard_commit", samples=n, seconds=time.perf_counter() - t0, output=out, **ev)
        return {
            "output": out,
            "samples": n,
            "samples_in": n_in[0],
            "size": hf.size,
            "sha256": sha,
            "sample_type": tname,
        }


def remove_temps(out: str, pid: int | None = None) -> list[str]:
    """Remove the temporary files a writer of output shard ``out`` left when it was killed: the
    shard's and its commit record's (those of process ``pid`` only, when given) and its
    manifest's (named without a pid: only ever one writer of a shard runs under the output
    directory's lock). Returns the paths removed."""
    from atdata.manifest._paths import manifest_paths

    tag = "" if pid is None else f"{pid}-"
    names = [os.path.basename(out), os.path.basename(commit_path(out))]
    patterns = [glob.escape(f".{n}.tmp-{tag}") + "*" for n in names]
    patterns += [glob.escape(f".{os.path.basename(m)}.tmp-") + "*" for m in manifest_paths(out)]
    d = glob.escape(os.path.dirname(out) or ".")
    gone = []
    for pattern in patterns:
        for p in glob.glob(os.path.join(d, pattern)):
            with contextlib.suppress(FileNotFoundError):
                os.unlink(p)
                gone.append(p)
    return gone


def check_output_names(shards: list[str], out: str) -> dict[str, str]:
    """Input shard -> output path ``<out>/<input file name>``; refuses collisions and overwriting
    an input."""
    paths: dict[str, str] = {}
    seen: dict[str, str] = {}
    for s in shards:
        name = s.rstrip("/").rsplit("/", 1)[-1].split("?", 1)[0] or "shard"
        if not name.endswith(".tar"):
            name += ".tar"
        if name in seen:
            raise ConfigError(
                f"input shards {seen[name]} and {s} would both be written to {name!r} in {out}; "
                "map shards with distinct file names, or map each directory to its own output"
            )
        seen[name] = s
        p = os.path.join(out, name)
        if os.path.exists(s) and os.path.exists(p) and os.path.samefile(s, p):
            raise ConfigError(f"out={out!r} would overwrite the input shard {s}; choose another")
        paths[s] = p
    return paths
