"""Watcher polling (issue 15): one poll over 10,000 local entries, and new-shard detection.

A directory holds ``--entries`` small ``.tar`` files, all already ``done`` in the ledger (the
steady state of a long-running watch: each poll lists everything and finds nothing to do).
Every figure is measured in the same run:

- baseline: ``os.scandir`` + ``stat`` of the directory (the least any poll must do);
- poll: ``Watcher.poll_once()`` = list + read the whole ledger + plan, per ledger backend
  (SQLite; PostgreSQL and Redis on loopback when they answer) -> target <= 200 ms, and its
  ratio to the baseline;
- first sight: recording 10,000 new entries (one compare-and-set each), per entry;
- detection: ``Watcher.run(interval=...)`` in a thread; a new shard is written at a random
  moment; the first poll that lists after the write must record it (no poll misses it), so it
  is seen within one interval plus one poll -> target.

Usage: ``uv run python benchmarks/bench_watch.py [--entries 10000] [--polls 15] [--interval 0.5]``
"""

from __future__ import annotations

import argparse
import collections
import os
import random
import shutil
import statistics
import sys
import tempfile
import threading
import time
import uuid
from typing import Any

import atdata
from atdata.watch import LedgerRecord, WatchEntry, Watcher, list_local
from atdata.watch._ledger import ledger_for


def identity(s: Any) -> Any:
    return s


def providers(tmp: str) -> list[tuple[str, Any, Any]]:
    """(name, provider, cleanup) for each backend that answers."""
    from atdata.providers._sqlite import SQLiteProvider

    out: list[tuple[str, Any, Any]] = [
        ("sqlite", SQLiteProvider(os.path.join(tmp, "ledger.db")), lambda: None)
    ]
    run = uuid.uuid4().hex[:8]
    try:
        from atdata.providers._postgres import PostgresProvider

        for dsn in (
            "postgresql://root@127.0.0.1:5432/test",
            "postgresql://postgres@127.0.0.1:5432/test",
        ):
            try:
                p = PostgresProvider(dsn, schema=f"atdata_watchbench_{run}", connect_timeout=2)
            except Exception:
                continue
            out.append(("postgres", p, p.drop))
            break
    except Exception as exc:
        print(f"postgres: skipped ({exc})")
    try:
        from atdata.providers._redis import RedisProvider

        r = RedisProvider("redis://127.0.0.1:6379/15", prefix=f"atdata-watchbench-{run}:")
        r.ping()

        def drop_redis(r: Any = r) -> None:
            for k in r._client.scan_iter(match=f"{r.prefix}*"):
                r._client.delete(k)

        out.append(("redis", r, drop_redis))
    except Exception as exc:
        print(f"redis: skipped ({exc})")
    return out


def baseline(d: str) -> float:
    t0 = time.perf_counter()
    with os.scandir(d) as it:
        for e in it:
            e.stat()
    return time.perf_counter() - t0


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--entries", type=int, default=10_000)
    ap.add_argument("--polls", type=int, default=15)
    ap.add_argument("--interval", type=float, default=0.5)
    ap.add_argument("--trials", type=int, default=5)
    args = ap.parse_args()
    tmp = tempfile.mkdtemp(prefix="atdata-bench-watch-")
    src = os.path.join(tmp, "in")
    os.makedirs(src)
    for i in range(args.entries):
        with open(os.path.join(src, f"shard-{i:06d}.tar"), "wb") as f:
            f.write(b"\0" * 1024)
    listing = list_local(src)
    print(f"{args.entries:,} entries in {src}; Python {sys.version.split()[0]}, "
          f"{os.cpu_count()} CPUs, atdata {atdata.__version__}")  # fmt: skip
    print(f"load average before: {' '.join(f'{x:.1f}' for x in os.getloadavg())}")
    backends = providers(tmp)
    failed = False
    try:
        for name, prov, _drop in backends:
            led = ledger_for(prov, "bench")
            t0 = time.perf_counter()
            for e in listing:
                led.put(LedgerRecord(e.url, "waiting", e.stamp, 0.0, rev=1), expect_rev=0)
            first = time.perf_counter() - t0
            for r in led.list_records():  # now the steady state: everything done
                led.put(r.next(status="done", checksum="0" * 64), expect_rev=r.rev)
            w = Watcher(src, identity, os.path.join(tmp, "out"), ledger=prov, name="bench")
            times, bases = [], []
            w.poll_once()  # fills the watcher's record cache (first poll after a start)
            for _ in range(args.polls):  # interleaved with the baseline: same load for both
                bases.append(baseline(src))
                rep = w.poll_once()
                assert rep.listed == args.entries and rep.processed == [] and rep.waiting == 0
                times.append(rep.seconds)
            times.sort()
            med, worst, bmed = statistics.median(times), times[-1], statistics.median(bases)
            ok = med <= 0.2
            failed |= not ok
            print(f"poll {name:8s}: median {med * 1e3:6.1f} ms, max {worst * 1e3:6.1f} ms; "
                  f"baseline {bmed * 1e3:5.1f} ms ({med / bmed:.1f}x); target <= 200 ms: "
                  f"{'yes' if ok else 'NO'}; first sight {first / args.entries * 1e6:.0f} us/entry")  # fmt: skip
        # detection: the first listing that starts after a new shard is written must see it
        name, prov, _ = backends[0]
        listings: collections.deque[tuple[float, list[WatchEntry]]] = collections.deque(maxlen=50)

        def lister() -> list[WatchEntry]:
            t = time.perf_counter()
            got = list_local(src)
            listings.append((t, got))
            return got

        w = Watcher(src, identity, os.path.join(tmp, "out"), ledger=prov, name="bench",
                    interval=args.interval, manifest=False, lister=lister)  # fmt: skip
        t = threading.Thread(target=w.run, daemon=True)
        t.start()
        lat, missed = [], 0
        for k in range(-1, args.trials):  # k = -1 warms the processing path up
            time.sleep(random.uniform(0, args.interval))
            path = os.path.join(src, f"new-{k}.tar")
            t0 = time.perf_counter()
            with open(path, "wb") as f:
                f.write(b"\0" * 1024)
            while w.ledger.get(path) is None:
                time.sleep(0.005)
            after = [(ts, any(e.url == path for e in got)) for ts, got in list(listings) if ts > t0]
            first_seen = next(ts for ts, seen in after if seen)
            if k >= 0:
                missed += sum(1 for ts, seen in after if ts < first_seen)
                lat.append(first_seen - t0)
        w.stop()
        t.join()
        ok = missed == 0 and max(lat) <= args.interval + statistics.median(times)
        failed |= not ok
        print(f"detect  sqlite  : new shard listed {max(lat) * 1e3:.0f} ms (max), "
              f"{statistics.mean(lat) * 1e3:.0f} ms (mean) after it was written, over "
              f"{args.trials} drops at random moments; polls that missed it: {missed}; interval "
              f"{args.interval * 1e3:.0f} ms; target: first poll after the write, <= interval + "
              f"one poll: {'yes' if ok else 'NO'}")  # fmt: skip
    finally:
        for _name, _prov, drop in backends:
            drop()
        shutil.rmtree(tmp, ignore_errors=True)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
