"""``atdata.Watcher``: process each new shard of a directory or S3 prefix exactly once.

Each poll lists the source, reads the ledger, asks :func:`~atdata.watch._plan.plan` what to do
and does it: a shard is processed once it is complete (its manifest is written, or its stamp
held still across two polls and ``settle`` seconds), by the same per-shard job as
``Dataset.map(out=...)`` (:class:`~atdata.dataset._shardjobs.MapJob`: a hidden temporary file,
one ``os.replace``, then the commit record), under a lease in the ledger that a heartbeat
thread renews. A watcher that dies leaves its lease to expire; the next poll of any watcher
takes the shard over, and the output, whose bytes depend only on the input and the function,
comes out identical. If the dead watcher had already committed the output, the commit record
is found and the shard is not processed again.

Examples:
    >>> import os, tempfile, atdata
    >>> from atdata.providers._sqlite import SQLiteProvider
    >>> @atdata.packable
    ... class Num:
    ...     x: int
    >>> d = tempfile.mkdtemp()
    >>> _ = atdata.write_samples([Num(x=i) for i in range(4)], os.path.join(d, "in", "n.tar"),
    ...                          maxcount=2, manifest=False)
    >>> w = Watcher(os.path.join(d, "in"), lambda s: Num(x=s.x * 10), os.path.join(d, "out"),
    ...             sample_type=Num, ledger=SQLiteProvider(os.path.join(d, "ledger.db")))
    >>> w.poll_once().waiting, w.poll_once().processed
    (2, ['n-000000.tar', 'n-000001.tar'])
    >>> [s.x for s in atdata.Dataset(os.path.join(d, "out", "n-000001.tar"), Num).ordered()]
    [20, 30]
    >>> sorted({r.status for r in w.list_records()}), w.poll_once().processed
    (['done'], [])
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import os
import socket
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from typing import Any, Protocol, runtime_checkable

from atdata._errors import ConfigError
from atdata.watch._ledger import Ledger, LedgerRecord, ledger_for
from atdata.watch._listing import Lister, LocalLister, WatchEntry, lister_for
from atdata.watch._plan import Action, plan

__all__ = ["PollReport", "ShardHandler", "Watcher"]

ON_CHANGE = ("reprocess", "refuse")


@runtime_checkable
class ShardHandler(Protocol):
    """Custom per-shard work instead of a map function: ``handle(shard, dataset)`` does it and
    returns the output's location (recorded in the ledger) or ``None``. It is retried after a
    crash, so it must be idempotent."""

    def handle(self, shard: str, dataset: Any) -> str | None: ...


@dataclasses.dataclass
class PollReport:
    """What one poll did (shard names are base names).

    Attributes:
        listed: Shards listed.
        waiting: Shards seen but not complete yet (their stamp is recorded).
        processed: Shards processed by this watcher in this poll.
        failed: Shards whose attempt failed (to be retried).
        parked: Shards parked after ``max_attempts``.
        refused: Shards rewritten in place and refused (``on_change="refuse"``).
        unchanged: Rewritten-looking shards whose bytes were verified unchanged.
        busy: Shards leased by another watcher.
        lost: Claims or finishes another watcher won first.
        errors: Shard -> error of the failures above.
        seconds: Time the poll took.
    """

    listed: int = 0
    waiting: int = 0
    processed: list[str] = dataclasses.field(default_factory=list)
    failed: list[str] = dataclasses.field(default_factory=list)
    parked: list[str] = dataclasses.field(default_factory=list)
    refused: list[str] = dataclasses.field(default_factory=list)
    unchanged: list[str] = dataclasses.field(default_factory=list)
    busy: list[str] = dataclasses.field(default_factory=list)
    lost: list[str] = dataclasses.field(default_factory=list)
    errors: dict[str, str] = dataclasses.field(default_factory=dict)
    seconds: float = 0.0


def _base(url: str) -> str:
    return url.rstrip("/").rsplit("/", 1)[-1]


class _Lease:
    """The record of a claimed shard, renewed by a heartbeat thread until :meth:`stop`."""

    def __init__(self, ledger: Ledger, rec: LedgerRecord, clock: Callable[[], float],
                 lease_s: float) -> None:  # fmt: skip
        self.ledger, self.rec, self.clock, self.lease_s = ledger, rec, clock, lease_s
        self.lost = False
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._beat, name="atdata-watch-lease", daemon=True)
        self._thread.start()

    def _beat(self) -> None:
        while not self._stop.wait(self.lease_s / 3):
            with self._lock:
                new = self.rec.next(lease_until=self.clock() + self.lease_s)
                try:
                    ok = self.ledger.put(new, expect_rev=self.rec.rev)
                except Exception:  # a ledger hiccup: try again at the next beat
                    continue
                if not ok:
                    self.lost = True
                    return
                self.rec = new

    def stop(self) -> LedgerRecord:
        self._stop.set()
        self._thread.join()
        return self.rec


class Watcher:
    """Watches a local directory or an S3 prefix and processes each new shard exactly once.

    Args:
        source: A local directory or ``s3://bucket/prefix/``.
        handler_or_fn: A per-sample function ``fn(sample) -> sample | None`` as for
            ``Dataset.map`` (with ``batched=True``: ``fn(list of samples) -> samples``), writing
            ``<out>/<shard name>`` with its manifest and commit record; or a
            :class:`ShardHandler` doing its own per-shard work.
        out: Local output directory (required for a function).
        sample_type: The input shards' sample type (default :class:`~atdata.DictSample`).
        ledger: Where the ledger lives: an index provider (SQLite, PostgreSQL, Redis), an
            ``Index``, a string naming one (a SQLite file, a ``postgresql://`` DSN, a
            ``redis://`` URL: as ``atdata watch --ledger``) or a ready ledger (default: the
            default index's provider).
        name: The watch's name in the ledger (default: derived from ``source`` and ``out``);
            watchers sharing a name and a ledger share the work.
        batched: See ``handler_or_fn``.
        manifest: Write manifests beside output shards (default: when pyarrow is installed).
        version: Version string recorded in commit records.
        interval: Seconds between polls in :meth:`run`.
        settle: Seconds a shard without a manifest must keep its size and mtime (besides
            being seen unchanged by two polls) before it is read.
        lease: Seconds a claim lasts without renewal (renewed every third of it while working).
        max_attempts: Attempts (a crash counts as one) before a shard is parked with its error.
        on_change: A processed shard rewritten in place (its sha256 changed):
            ``"reprocess"`` it, or ``"refuse"`` (record it as refused, keep the first output).
        owner: This watcher's lease owner name (default ``host:pid:random``).
        clock: Wall clock in seconds (injectable for tests; leases compare across watchers).
        lister: Listing function returning :class:`~atdata.watch.WatchEntry` items (default:
            the source's).
        s3: S3 client options (``endpoint_url=``, credentials) or a ready client as
            ``s3={"client": client}``, for an ``s3://`` source.
        on_shard: Called as each shard's outcome is known, with ``(outcome, shard name,
            message)``; outcome is ``processed``, ``failed``, ``parked``, ``refused`` or
            ``unchanged`` (the :class:`PollReport` list it joins).

    Raises:
        ConfigError: For a bad option, a missing ``out``, or an unwatchable source.
    """

    def __init__(
        self,
        source: str | os.PathLike[str],
        handler_or_fn: Callable[..., Any] | ShardHandler,
        out: str | os.PathLike[str] | None = None,
        *,
        sample_type: type | None = None,
        ledger: Any = None,
        name: str | None = None,
        batched: bool = False,
        manifest: bool | None = None,
        version: str | None = None,
        interval: float = 5.0,
        settle: float = 0.0,
        lease: float = 300.0,
        max_attempts: int = 3,
        on_change: str = "reprocess",
        owner: str | None = None,
        clock: Callable[[], float] = time.time,
        lister: Lister | None = None,
        s3: dict[str, Any] | None = None,
        on_shard: Callable[[str, str, str], None] | None = None,
    ) -> None:
        from atdata.dataset._process import _manifest_default

        self.source = os.fspath(source)
        if "://" not in self.source:  # ledger keys are absolute paths, whatever the cwd
            self.source = os.path.abspath(self.source)
        if on_change not in ON_CHANGE:
            raise ConfigError(f"on_change must be 'reprocess' or 'refuse', got {on_change!r}")
        if max_attempts < 1:
            raise ConfigError(f"max_attempts must be >= 1, got {max_attempts}")
        if lease <= 0 or interval < 0 or settle < 0:
            raise ConfigError(
                f"lease must be > 0 seconds and interval, settle >= 0; got lease={lease:g}, "
                f"interval={interval:g}, settle={settle:g}"
            )
        self.handler: ShardHandler | None = (
            handler_or_fn if isinstance(handler_or_fn, ShardHandler) else None
        )
        self.fn: Callable[..., Any] | None = None if self.handler else handler_or_fn  # type: ignore[assignment]
        if self.handler is None and not callable(handler_or_fn):
            raise ConfigError(f"handler_or_fn must be a function or a ShardHandler, "
                              f"got {type(handler_or_fn).__name__}")  # fmt: skip
        self.out = os.fspath(out) if out is not None else None
        if self.out is not None and "://" not in self.out:
            self.out = os.path.abspath(self.out)
        if self.handler is None and self.out is None:
            raise ConfigError("a Watcher with a map function needs out= (a local directory)")
        if self.out is not None and "://" in self.out:
            raise ConfigError(f"out must be a local directory, got {self.out!r}")
        self.sample_type = sample_type
        self.batched, self.version = batched, "" if version is None else str(version)
        self.manifest = _manifest_default(manifest)
        self.interval, self.settle, self.lease = interval, settle, lease
        self.max_attempts, self.on_change = max_attempts, on_change
        self.owner = owner or f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
        self.clock = clock
        self.on_shard = on_shard
        self._s3 = dict(s3 or {})
        self._client: Any = self._s3.pop("client", None)
        if lister is None:
            lister = lister_for(self.source, client=self._s3_client() if self._is_s3 else None)
        self.lister = lister
        if name is None:
            key = f"{self.source}\0{self.out or ''}".encode()
            name = f"{_base(self.out or self.source)}-{hashlib.sha1(key).hexdigest()[:10]}"
        self.name = name
        if ledger is None:
            from atdata.index._index import get_default_index

            ledger = get_default_index().provider
        self.ledger: Ledger = ledger_for(ledger, name)
        self._stop = threading.Event()
        if self.out is not None:
            os.makedirs(self.out, exist_ok=True)

    @property
    def _is_s3(self) -> bool:
        return self.source.startswith("s3://")

    def _s3_client(self) -> Any:
        if self._client is None:
            from atdata.stores._s3client import make_client

            self._client = make_client(**self._s3)
        return self._client

    # -- the ledger ------------------------------------------------------------------------------
    @property
    def records(self) -> Iterator[LedgerRecord]:
        """This watch's ledger records (lazy view of :meth:`list_records`)."""
        return iter(self.list_records())

    def list_records(self) -> list[LedgerRecord]:
        """This watch's ledger records, sorted by shard."""
        return self.ledger.list_records()

    def forget(self, shard: str) -> bool:
        """Drop ``shard``'s record so it is seen as new (to retry a parked or refused shard)."""
        return self.ledger.delete(shard)

    # -- polling ---------------------------------------------------------------------------------
    def plan(self, listing: list[WatchEntry] | None = None) -> list[Action]:
        """What the next poll would do, changing nothing (listing: default the lister's)."""
        entries = self.lister() if listing is None else listing
        records = self.ledger.snapshot()
        return plan(entries, records, self.clock(), settle=self.settle,
                    max_attempts=self.max_attempts)  # fmt: skip

    def poll_once(self) -> PollReport:
        """List the source once and act on every shard; see the module docstring."""
        t0 = time.perf_counter()
        entries = self.lister()
        self._check_names(entries)
        rep = PollReport(listed=len(entries))
        for a in self.plan(entries):
            self._act(a, rep)
        rep.seconds = time.perf_counter() - t0
        return rep

    def run(self, *, max_polls: int | None = None,
            on_poll: Callable[[PollReport], None] | None = None) -> None:  # fmt: skip
        """Poll every ``interval`` seconds until :meth:`stop` (or ``max_polls`` polls).

        A poll that fails with :class:`~atdata.StorageError` (the source or the ledger is
        unreachable for a while) is logged as a warning and counts as a poll; the next one
        tries again. Other errors end the run.
        """
        from atdata._errors import StorageError
        from atdata._logging import get_logger

        self._stop.clear()
        n = 0
        while not self._stop.is_set():
            try:
                rep = self.poll_once()
            except StorageError as exc:
                get_logger().warning("watch %s: poll failed, retrying in %g s: %s",
                                     self.name, self.interval, exc)  # fmt: skip
                rep = None
            if rep is not None and on_poll is not None:
                on_poll(rep)
            n += 1
            if max_polls is not None and n >= max_polls:
                return
            self._stop.wait(self.interval)

    def stop(self) -> None:
        """Make :meth:`run` return after the current poll."""
        self._stop.set()

    # -- actions ---------------------------------------------------------------------------------
    def _check_names(self, entries: list[WatchEntry]) -> None:
        if self.out is None or isinstance(self.lister, LocalLister):
            return  # one directory, not recursive: its names are distinct
        if len({e.url.rsplit("/", 1)[-1] for e in entries}) == len(entries):
            return
        seen: dict[str, str] = {}
        for e in entries:
            b = _base(e.url)
            if b in seen:
                raise ConfigError(
                    f"shards {seen[b]} and {e.url} would both be written to {b!r} in {self.out}; "
                    "watch a prefix whose shards have distinct file names"
                )
            seen[b] = e.url

    def _act(self, a: Action, rep: PollReport) -> None:
        e, r, now = a.entry, a.record, self.clock()
        if a.kind == "observe":
            rep.waiting += 1
            if r is None:
                self.ledger.put(LedgerRecord(e.url, "waiting", e.stamp, now, rev=1, updated=now),
                                expect_rev=0)  # fmt: skip
            else:
                attempts = 0 if a.status == "waiting" else r.attempts
                err = "" if a.status == "waiting" else r.error
                new = r.next(status=a.status, stamp=e.stamp, since=now, attempts=attempts,
                             error=err, owner="", lease_until=0.0, updated=now)  # fmt: skip
                self.ledger.put(new, expect_rev=r.rev)
        elif a.kind == "wait":
            rep.waiting += 1
        elif a.kind == "busy":
            rep.busy.append(_base(e.url))
        elif a.kind == "park":
            assert r is not None
            why = (
                f"the lease of {r.owner} expired on attempt {r.attempts} of {self.max_attempts}: "
                "the watcher died or hung while processing the shard"
                + (f" (an earlier attempt failed with {r.error})" if r.error else "")
            )
            new = r.next(status="parked", error=why, owner="", lease_until=0.0, updated=now)
            if self.ledger.put(new, expect_rev=r.rev):
                self._note(rep, "parked", e.url, why)
        elif a.kind == "claim":
            self._claim_and_process(e, r, rep, fresh=False)
        elif a.kind == "verify":
            assert r is not None
            self._verify(e, r, rep)

    def _verify(self, e: WatchEntry, r: LedgerRecord, rep: PollReport) -> None:
        from atdata.dataset._shardjobs import input_sha256

        now = self.clock()
        sha = input_sha256(self._dataset(e.url).source, e.url)
        if sha == r.checksum:
            new = r.next(status="done", updated=now)
            if self.ledger.put(new, expect_rev=r.rev):
                self._note(rep, "unchanged", e.url, "")
            return
        if self.on_change == "refuse":
            why = (
                f"shard {e.url} was rewritten in place after it was processed (sha256 "
                f"{r.checksum[:12]}... -> {sha[:12]}...); on_change='refuse' keeps the first "
                f"output {r.output}: write new data as new shards, or forget the shard "
                "(Watcher.forget) to process it again"
            )
            new = r.next(status="refused", error=why, updated=now)
            if self.ledger.put(new, expect_rev=r.rev):
                self._note(rep, "refused", e.url, why)
            return
        self._claim_and_process(e, r, rep, fresh=True)

    def _claim_and_process(
        self, e: WatchEntry, r: LedgerRecord | None, rep: PollReport, *, fresh: bool
    ) -> None:
        now = self.clock()
        takeover = r is not None and r.status == "running"
        base = r if r is not None else LedgerRecord(e.url, "waiting", e.stamp, now)
        attempts = 1 if fresh or r is None else r.attempts + 1
        rec = base.next(status="running", stamp=e.stamp, attempts=attempts, owner=self.owner,
                        lease_until=now + self.lease, updated=now)  # fmt: skip
        ok = self.ledger.put(rec, expect_rev=base.rev)
        if not ok:
            rep.lost.append(_base(e.url))
            return
        held = _Lease(self.ledger, rec, self.clock, self.lease)
        err: str | None = None
        result: dict[str, Any] = {}
        try:
            result = self._process(e, rec.attempts, takeover)
        except Exception as exc:
            err = f"{type(exc).__name__}: {exc}"
        except BaseException:  # interrupted (Ctrl-C, exit): hand the shard back at once
            cur = held.stop()
            if not held.lost:  # as before the claim, so a rerun takes it without waiting
                back = dataclasses.replace(base, rev=cur.rev + 1, updated=self.clock())
                with contextlib.suppress(Exception):  # else the lease expires, as for a crash
                    self.ledger.put(back, expect_rev=cur.rev)
            raise
        rec = held.stop()
        if held.lost:
            rep.lost.append(_base(e.url))
            return
        now = self.clock()
        done = {"owner": "", "lease_until": 0.0, "updated": now}
        if err is None and result.get("moved"):
            new = rec.next(status="waiting", stamp="", since=now, attempts=0, error="", **done)
        elif err is None:
            new = rec.next(status="done", checksum=result.get("sha256", ""), error="",
                           output=result.get("output") or "", samples=result.get("samples", 0),
                           **done)  # fmt: skip
        else:
            parked = rec.attempts >= self.max_attempts
            new = rec.next(status="parked" if parked else "failed", error=err, **done)
        if not self.ledger.put(new, expect_rev=rec.rev):
            rep.lost.append(_base(e.url))
            return
        if new.status != "waiting":
            self._note(rep, "processed" if new.status == "done" else new.status, e.url, err or "")

    def _note(self, rep: PollReport, what: str, url: str, message: str) -> None:
        """Record a shard's outcome in the report and tell ``on_shard`` at once."""
        name = _base(url)
        getattr(rep, what).append(name)
        if message:
            rep.errors[name] = message
        if self.on_shard is not None:
            self.on_shard(what, name, message)

    def _dataset(self, url: str) -> Any:
        from atdata.dataset._dataset import Dataset

        if self._is_s3:
            from atdata.stores._s3 import S3Source

            return Dataset(S3Source([url], client=self._s3_client()), self.sample_type)
        return Dataset(url, self.sample_type)

    def _process(self, e: WatchEntry, attempt: int, takeover: bool) -> dict[str, Any]:
        """Process one claimed shard; ``{"sha256", "output", "samples"}`` or ``{"moved": True}``
        when a local shard changed while it was read (it is observed again)."""
        ds = self._dataset(e.url)
        if self.handler is not None:
            from atdata.dataset._shardjobs import input_sha256

            sha = input_sha256(ds.source, e.url)
            output = self.handler.handle(e.url, ds)
            return {"sha256": sha, "output": output or "", "samples": 0}
        from atdata.dataset._commit import check_commit, read_commit
        from atdata.dataset._shardjobs import (
            MapJob,
            check_output_names,
            input_sha256,
            remove_temps,
        )

        assert self.out is not None and self.fn is not None
        out_paths = check_output_names([e.url], self.out)
        out = out_paths[e.url]
        if read_commit(out) is not None:  # a previous attempt may have committed already
            sha = input_sha256(ds.source, e.url)
            if not check_commit(out, sha, self.version, "sha256"):
                rec = read_commit(out)
                assert rec is not None
                return {"sha256": sha, "output": out, "samples": rec.num_samples}
        if takeover:  # what the dead watcher left half-written
            remove_temps(out)
        job = MapJob(ds, self.fn, out_paths, version=self.version, batched=self.batched,
                     manifest=self.manifest, sample_type=None, run=self.name)  # fmt: skip
        reply = job.run(e.url, attempt)
        rec = read_commit(out)
        sha = rec.input_sha256 if rec is not None else ""
        if not self._is_s3 and _stamp_now(e.url) != e.stamp:
            return {"moved": True}
        return {"sha256": sha, "output": out, "samples": int(reply["samples"])}


def _stamp_now(path: str) -> str:
    try:
        st = os.stat(path)
    except OSError:
        return ""
    return f"{st.st_size}:{st.st_mtime_ns}"
