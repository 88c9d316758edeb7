"""The ingestion loop: read rows, coerce, validate, deduplicate, write shards, seal progress.

One pass over the inputs in a fixed order. Each row is coerced to the sample type, checked by
the user's ``validate``, deduplicated by the content hash of its ``dedup_on`` fields, and
written to the open shard. Shards are written with a fixed tar ``mtime`` and keys numbered by
their position in the output, so the bytes depend only on the input rows. When a shard is
sealed (renamed into place with its manifest), the progress up to the row that filled it is
saved atomically (see :mod:`atdata._ingest._state`); a killed run resumes from there and
writes the same bytes an uninterrupted run would have. A new run saves its state (its inputs
and options, nothing sealed) before its first shard takes its name, so a kill at any point
leaves shards that a state accounts for: sealed ones it records, and at most one after them
that the rerun writes again.
"""

from __future__ import annotations

import contextlib
import os
import re
import time
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from atdata._errors import ConfigError, QualityGateError, SchemaError
from atdata._ingest._coerce import Reject, RowCoercer
from atdata._ingest._dedup import DigestSet, make_keyer
from atdata._ingest._infer import describe_type, infer_sample_type, type_name_for
from atdata._ingest._output import Output
from atdata._ingest._readers import BadRow, arrow_schema, iter_input
from atdata._ingest._report import IngestReport
from atdata._ingest._sources import Input, S3Access, resolve_inputs
from atdata._ingest._state import IngestState, Progress

__all__ = ["INFER_ROWS", "MIN_GATE_ROWS", "IngestRun"]

INFER_ROWS = 1000
MIN_GATE_ROWS = 1000


def _dedup_desc(dedup_on: Any) -> Any:
    if dedup_on is None or isinstance(dedup_on, (bool, str)):
        return dedup_on
    if callable(dedup_on):
        return "callable:" + getattr(dedup_on, "__qualname__", type(dedup_on).__name__)
    return list(dedup_on)


class IngestRun:
    """One run of :func:`~atdata.ingest` (arguments as documented there)."""

    def __init__(
        self,
        source: Any,
        out: str,
        *,
        sample_type: type | None,
        transform: Callable[[dict[str, Any]], Any] | None,
        validate: Callable[[Any], Any] | None,
        dedup_on: Any,
        maxcount: int | None,
        maxsize: int | None,
        max_invalid_fraction: float,
        min_rows: int,
        name: str | None,
        fmt: str | None,
        manifest: bool | None,
        progress: bool | None,
        work_dir: str | None,
        s3: S3Access,
        fsync: bool,
        shard_prefix: str,
    ) -> None:
        if not 0.0 <= max_invalid_fraction <= 1.0:
            raise ConfigError(
                f"max_invalid_fraction must be in [0, 1], got {max_invalid_fraction!r}"
            )
        if maxcount is None and maxsize is None:
            raise ConfigError("give maxcount or maxsize: shards need a size limit")
        self.s3 = s3
        self.inputs: list[Input] = resolve_inputs(source, fmt, s3)
        self.output = Output(out, work_dir, s3)
        self.state = IngestState(self.output.work, fsync=fsync)
        self.transform, self.validate = transform, validate
        self.max_frac, self.min_rows = max_invalid_fraction, min_rows
        self.maxcount, self.maxsize, self.fsync = maxcount, maxsize, fsync
        self.shard_prefix = shard_prefix
        self.progress_flag = progress
        self.inferred = sample_type is None
        self.columns: dict[str, str] = {}
        if sample_type is None:
            sample_type, self.columns = self._infer(name)
            from atdata._logging import get_logger

            get_logger().info(
                "ingest: inferred sample type %s from %s", describe_type(sample_type),
                self.inputs[0].uri,
            )  # fmt: skip
        elif not hasattr(sample_type, "atdata_fields"):
            raise ConfigError(f"sample_type must be a @packable class, got {sample_type!r}")
        self.sample_type: type = sample_type
        self.coerce = RowCoercer(sample_type, self.columns)
        self.keyer = make_keyer(dedup_on, self.coerce.field_names)
        self.manifest = manifest
        self.config = {
            "inputs": [i.identity() for i in self.inputs],
            "schema": describe_type(sample_type),
            "columns": self.columns,
            "maxcount": maxcount,
            "maxsize": maxsize,
            "dedup_on": _dedup_desc(dedup_on),
            "shard_prefix": shard_prefix,
        }
        # per-run working state
        self.seen = DigestSet()
        self.new_digests: list[bytes] = []
        self.cur_digest: bytes | None = None
        self.cur_input = 0
        self.cur_pos = -1
        self.cell: list[Any] | None = None  # byte offset after the current JSONL record
        self.read = self.dups = self.filtered = 0
        self.rejected: dict[str, int] = {}
        self.last_reject = ""
        self.resumed = False
        self.already_complete = False
        self.t0 = time.monotonic()
        self.base_seconds = 0.0
        self.base_written = 0
        self.writer: Any = None
        self.display: Any = None

    # -- setup ---------------------------------------------------------------------------------
    def _infer(self, name: str | None) -> tuple[type, dict[str, str]]:
        first = self.inputs[0]
        stem = (name or "").rsplit("/", 1)[-1]
        if not stem:
            stem = "hf-row" if first.fmt == "hf" else os.path.basename(first.uri.split("?")[0])
            stem = stem.split(".", 1)[0]
        type_name = type_name_for(stem)
        if first.fmt in ("parquet", "hf") and self.transform is None:
            from atdata.dataset._arrow_read import schema_from_arrow

            try:  # the schema says it all: nullability, tensor shapes, nested structs
                return schema_from_arrow(arrow_schema(first, self.s3), name=type_name), {}
            except SchemaError:
                pass  # e.g. column names that are not identifiers: infer from the rows
        rows: list[dict[str, Any]] = []
        for inp in self.inputs:
            gen = iter_input(inp, 0, self.s3)
            try:
                for _, row in gen:
                    if not isinstance(row, dict):
                        continue
                    if self.transform is not None:
                        try:
                            row = self.transform(row)
                        except Exception:
                            continue
                        if not isinstance(row, dict):
                            continue
                    rows.append(row)
                    if len(rows) >= INFER_ROWS:
                        break
            finally:
                gen.close()
            if len(rows) >= INFER_ROWS:
                break
        if not rows:
            raise SchemaError(
                f"cannot infer a sample type: {self.inputs[0].uri} has no readable rows; "
                "pass sample_type="
            )
        return infer_sample_type(rows, type_name)

    def _config_diff(self) -> list[str]:
        old = self.state.progress.config
        return [k for k in self.config if old.get(k) != self.config[k]]

    def _check_config(self) -> None:
        diff = self._config_diff()
        if diff:
            raise ConfigError(
                f"{self.output.out} holds an ingestion with other settings ({', '.join(diff)} "
                f"differ); rerun with the same source and options to resume it, or write to "
                f"another output (or delete {self.state.dir} and its shards to start over)"
            )

    def _prepare(self) -> None:
        """Load (or start) the state; a new one is saved before anything is published.

        Every shard this run renames into place is then covered by a state: one that records
        it once sealed, or one that does not yet, whose rerun writes it again (the same
        bytes). A directory holding shards but no state was not written by an ingestion.
        """
        st = self.state
        if not st.exists() and self.output.remote:  # resumed elsewhere: the remote copy
            self._fetch_remote_state()
        fresh = not st.exists()
        if not fresh:
            st.load()
            if _sealed_nothing(st.progress) and self._config_diff():
                # stopped before its first seal: it committed to nothing, so start over
                self._discard_unsealed()
                fresh = True
            else:
                self._check_config()
                self.already_complete = st.progress.complete
                self.resumed = not st.progress.complete
        if fresh:
            pattern = self.shard_prefix + "-"
            clash = [
                n
                for n in os.listdir(self.output.work)
                if n.startswith(pattern) and n.endswith(".tar")
            ]
            if clash:
                raise ConfigError(
                    f"{self.output.work} already holds shards ({sorted(clash)[0]}, ...) but no "
                    f"ingestion state; write to an empty directory"
                )
            st.progress = Progress(config=self.config)
            st.save()  # before the first shard takes its name (see above)
        p = st.progress
        self.output.clean_temporaries()
        digests = st.open_logs()
        if digests:
            self.seen = DigestSet(max(1 << 16, 2 * len(digests) // 16))
            self.seen.add_log(digests)
        self.read, self.dups, self.filtered = p.read, p.duplicates, p.filtered
        self.rejected = dict(p.rejected)
        self.base_seconds = p.seconds
        self.base_written = p.written

    def _discard_unsealed(self) -> None:
        """Remove the shards and manifests the saved state's run renamed into place after its
        last seal (its shard prefix, numbers from its ``shard_no`` on): no state records them."""
        p = self.state.progress
        prefix = p.config.get("shard_prefix")
        if not isinstance(prefix, str):
            return
        pat = re.compile(
            re.escape(prefix) + r"-(\d{6,})(\.tar|\.manifest\.json|\.manifest\.parquet)"
        )
        for n in sorted(os.listdir(self.output.work), key=lambda n: n.endswith(".tar")):
            m = pat.fullmatch(n)
            if m is not None and int(m.group(1)) >= p.shard_no:  # manifests first, then shards
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(os.path.join(self.output.work, n))

    def _fetch_remote_state(self) -> None:
        st = self.state
        os.makedirs(st.dir, exist_ok=True)
        if self.output.fetch_state(st.path, {"dedup": st.dedup_path, "rejects": st.rejects_path}):
            from atdata._logging import get_logger

            get_logger().info("ingest: resuming %s from its remote state", self.output.out)

    # -- sealing (the writer calls these as a ShardObserver) -----------------------------------
    def begin_shard(self, path: str) -> None:
        pass

    def add(self, key: str, offset: int, size: int, sample: Any) -> None:
        pass

    def abort_shard(self, path: str) -> None:
        pass

    def end_shard(self, info: Any) -> None:
        """Save the progress as of the row that filled the shard, then upload it (S3)."""
        st, p = self.state, self.state.progress
        name = os.path.basename(info.path)
        if self.cur_digest is not None:
            self.new_digests.append(self.cur_digest)
            self.cur_digest = None
        st.add_digests(b"".join(self.new_digests))
        self.new_digests.clear()
        p.shards.append(
            {
                "name": name,
                "num_samples": info.num_samples,
                "size": info.size,
                "sha256": info.sha256,
            }
        )
        p.shard_no += 1
        p.bytes += info.size
        p.written = self.base_written + self.writer.count
        if self.output.remote:
            p.pending.append(name)
        elif info.sha256:  # manifests record no file stamp: vouch for the new file here
            from atdata.manifest._fresh import remember

            remember(info.path, info.sha256)
        self._snapshot()
        st.sync_logs()
        st.save()
        from atdata._events import emit

        emit("shard_commit", op="ingest", shard=self.output.url(name), samples=info.num_samples)
        if self.display is not None:
            self.display.shard(name, p)
        self._upload_pending()

    def _snapshot(self) -> None:
        p = self.state.progress
        p.input_index = self.cur_input
        p.position = self.cur_pos + 1
        cell = self.cell if self.cur_input < len(self.inputs) else None
        p.offset = None if cell is None else cell[0]
        p.read, p.duplicates, p.filtered = self.read, self.dups, self.filtered
        p.rejected = dict(self.rejected)
        p.seconds = self.base_seconds + (time.monotonic() - self.t0)

    def _upload_pending(self) -> None:
        """Upload staged shards, then the log segments sealed since the last publication, then
        the state that names them (so the remote copy is always complete: see ``fetch_state``)."""
        if not self.output.remote:
            return
        st, p, out = self.state, self.state.progress, self.output
        recs = {s["name"]: s for s in p.shards}
        while p.pending:
            name = p.pending[0]
            rec = recs[name]
            out.upload(name, rec["sha256"], rec["size"])
            p.pending.pop(0)
            st.save()
            out.drop_local(name)
        self._publish_remote()

    def _drop_uploaded(self) -> None:
        """Remove the staged copies of uploaded shards that a killed run recorded as uploaded
        but had not dropped yet (nothing else would: they are no longer pending)."""
        if not self.output.remote:
            return
        pending = set(self.state.progress.pending)
        for s in self.state.progress.shards:
            if s["name"] not in pending:
                self.output.drop_local(s["name"])

    def _publish_remote(self) -> None:
        st, p, out = self.state, self.state.progress, self.output
        if p.pending:
            return
        out.put_segment("dedup", st.dedup_path, p.published_dedup_len, p.dedup_len)
        out.put_segment("rejects", st.rejects_path, p.published_rejects_len, p.rejects_len)
        if (p.published_dedup_len, p.published_rejects_len) != (p.dedup_len, p.rejects_len):
            p.published_dedup_len, p.published_rejects_len = p.dedup_len, p.rejects_len
            st.save()
        out.publish_state(st.to_json())

    # -- the loop ------------------------------------------------------------------------------
    def _reject(self, inp: Input, pos: int, reason: str, detail: str, raw: Any) -> None:
        self.rejected[reason] = self.rejected.get(reason, 0) + 1
        self.state.reject(
            {"input": inp.uri, "position": pos, "reason": reason, "detail": detail, "row": raw}
        )
        self.last_reject = f"{inp.uri} record {pos}: {detail}"
        self._gate(final=False)

    def _gate(self, final: bool) -> None:
        invalid = sum(self.rejected.values())
        if not invalid or (not final and self.read < self.min_rows):
            return
        if invalid <= self.max_frac * self.read:
            return
        reasons = ", ".join(f"{k}: {v}" for k, v in sorted(self.rejected.items()))
        raise QualityGateError(
            f"ingestion into {self.output.out} stopped: {invalid} of {self.read} rows "
            f"({invalid / self.read:.1%}) are invalid, above max_invalid_fraction="
            f"{self.max_frac} ({reasons}); last: {self.last_reject}. The rejected rows are in "
            f"{self.state.rejects_path}; fix the input (or pass a transform, or raise "
            "max_invalid_fraction) and rerun: it resumes after the last sealed shard",
            read=self.read,
            invalid=invalid,
            by_reason=self.rejected,
        )

    def _rows(self) -> Iterable[tuple[Input, int, Any]]:
        p = self.state.progress
        for idx in range(p.input_index, len(self.inputs)):
            inp = self.inputs[idx]
            self.cur_input = idx
            here = idx == p.input_index
            start = p.position if here else 0
            self.cell = [None] if inp.fmt in ("jsonl", "csv") else None
            offset = p.offset if here else None
            for pos, row in iter_input(inp, start, self.s3, offset, self.cell):
                yield inp, pos, row

    def _consume(self) -> None:
        coerce, validate, transform, keyer = self.coerce, self.validate, self.transform, self.keyer
        st_type, seen, write = self.sample_type, self.seen, self.writer.write
        display, min_rows = self.display, self.min_rows
        for inp, pos, row in self._rows():
            self.read += 1
            if display is not None and not self.read & 2047:
                display.update(self)
            if self.read == min_rows and self.rejected:
                self._gate(final=False)
            if type(row) is not dict and isinstance(row, BadRow):
                self._reject(inp, pos, row.reason, row.detail, row.raw)
                continue
            if transform is not None:
                try:
                    row = transform(row)
                except Exception as exc:
                    self._reject(inp, pos, "transform", f"transform raised {exc!r}", row)
                    continue
                if row is None:
                    self.filtered += 1
                    continue
            if isinstance(row, st_type):
                sample = row
            elif not isinstance(row, Mapping):
                what = (
                    f"transform returned a {type(row).__name__}, not a dict or {st_type.__name__}"
                )
                self._reject(inp, pos, "transform", what, repr(row)[:200])
                continue
            else:
                try:
                    sample = coerce(row)
                except Reject as r:
                    self._reject(inp, pos, r.reason, str(r), row)
                    continue
            if validate is not None:
                try:
                    ok = validate(sample)
                except Exception as exc:
                    self._reject(inp, pos, "validate", f"validate raised {exc!r}", row)
                    continue
                if ok is not None and not ok:
                    self._reject(inp, pos, "validate", "validate returned False", row)
                    continue
            digest = None
            if keyer is not None:
                digest = keyer(sample, sample.__dict__)
                if digest in seen:
                    self.dups += 1
                    continue
            self.cur_pos = pos
            self.cur_digest = digest
            try:
                write(sample)
            except SchemaError as exc:
                self.cur_digest = None
                self._reject(inp, pos, "coerce", str(exc), row)
                continue
            if digest is not None:
                seen.add(digest)
                if self.cur_digest is not None:
                    self.new_digests.append(digest)
                    self.cur_digest = None

    def _open_writer(self) -> Any:
        from atdata._shards.tar import FIXED_MTIME
        from atdata._shards.writer import ShardWriter

        observers: list[Any] = []
        want = self.manifest
        if want is None:
            import importlib.util

            want = importlib.util.find_spec("pyarrow") is not None
        if want:
            from atdata.manifest._builder import ManifestObserver

            # no clock, no file stamp: a resumed run's manifests equal an uninterrupted run's
            observers.append(ManifestObserver.reproducible(self.sample_type))
        observers.append(self)
        base = self.base_written

        def key(sample: Any, i: int) -> str:
            return f"{base + i:08d}"

        return ShardWriter(
            os.path.join(self.output.work, self.shard_prefix + "-%06d.tar"),
            self.maxcount,
            self.maxsize,
            key=key,
            start_index=self.state.progress.shard_no,
            fsync=self.fsync,
            observers=observers,
            progress=False,
            mtime=FIXED_MTIME,
        )

    def run(self) -> IngestReport:
        """Ingest (or resume, or confirm a finished ingestion); returns the report."""
        self.state.lock()
        try:
            return self._run_locked()
        finally:
            self.state.unlock()

    def _run_locked(self) -> IngestReport:
        self._prepare()
        p = self.state.progress
        try:
            self._drop_uploaded()
            self._upload_pending()  # what a failed or killed run left staged
            if not p.complete:
                self.display = _make_display(self.progress_flag)
                self.writer = self._open_writer()
                try:
                    self._consume()
                    self._gate(final=True)
                except BaseException:
                    self.writer.abort()
                    raise
                self.cur_input, self.cur_pos = len(self.inputs), -1
                self.writer.close()
                p.written = self.base_written + self.writer.count
                self._snapshot()
                p.complete = True
                self.state.sync_logs()
                self.state.save()
            if self.output.remote:  # also after a run killed between its last save and here
                self._finish_remote()
        finally:
            self.state.close_logs()
            if self.display is not None:
                self.display.close(self)
        return self.report()

    def _finish_remote(self) -> None:
        """The whole rejects file as ``.ingest/rejects.jsonl`` (for people), then the state."""
        if os.path.getsize(self.state.rejects_path):
            with open(self.state.rejects_path, "rb") as f:
                self.output.put_meta("rejects.jsonl", f.read())
        self._publish_remote()

    def report(self) -> IngestReport:
        p = self.state.progress
        rejects = self.state.rejects_path
        if self.output.remote:
            pre = f"{self.output.prefix}/" if self.output.prefix else ""
            rejects = f"s3://{self.output.bucket}/{pre}.ingest/rejects.jsonl"
        return IngestReport(
            out=self.output.out,
            rows_read=p.read,
            rows_written=p.written,
            duplicates=p.duplicates,
            filtered=p.filtered,
            rejected=dict(p.rejected),
            bytes_written=p.bytes,
            seconds=p.seconds,
            schema=describe_type(self.sample_type),
            inferred=self.inferred,
            resumed=self.resumed,
            already_complete=self.already_complete,
            rejects_path=rejects if sum(p.rejected.values()) else None,
            sample_type=self.sample_type,
            shard_urls=[self.output.url(s["name"]) for s in p.shards],
            source=self.source(),
        )

    def source(self) -> Any:
        """A data source over the written shards (``None``: their paths are enough)."""
        p = self.state.progress
        if not self.output.remote or not p.shards:
            return None
        from atdata.stores._s3 import S3Source

        urls = [self.output.url(s["name"]) for s in p.shards]
        return S3Source.from_urls(urls, client=self.output.store.client)

    def shard_infos(self) -> list[Any]:
        from atdata._shards.writer import ShardInfo

        return [
            ShardInfo(self.output.url(s["name"]), s["num_samples"], s["size"], s["sha256"])
            for s in self.state.progress.shards
        ]


def _sealed_nothing(p: Progress) -> bool:
    """Whether a saved state records no sealed shard (and is not a finished ingestion)."""
    return not (p.complete or p.shard_no or p.shards or p.pending)


def _make_display(flag: bool | None) -> Any:
    import sys

    if flag is None:
        flag = sys.stderr.isatty()
    if not flag:
        return None
    from atdata._ingest._display import Display

    return Display()
