"""Watcher polling (issue 15): one poll over 10,000 local entries, and new-shard detection.

A directory holds ``--entries`` small ``.tar`` files, all already ``done`` in the ledger (the
steady state of a long-running watch: each poll lists everything and finds nothing to do).
Every figure is measured in the same run:

- baseline: ``os.scandir`` + ``stat`` of the directory (the least any poll must do);
- poll: ``Watcher.poll_once()`` = list + read the whole ledger + plan, per ledger backend
  (SQLite; PostgreSQL and Redis on loopback when they answer) -> target <= 200 ms, and its
  ratio to the baseline;
- first sight: recording 10,000 new entries (one compare-and-set each), per entry;
- detection: ``Watcher.run(interval=...)`` in a thread; a new shard is dropped at a random
  moment; the time until the ledger records it -> target <= one poll interval (+ the poll).

Usage: ``uv run python benchmarks/bench_watch.py [--entries 10000] [--polls 15] [--interval 0.5]``
"""

from __future__ import annotations

import argparse
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
from atdata.watch import LedgerRecord, Watcher, list_local
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
    base = sorted(baseline(src) for _ in range(args.polls))
    b_med = statistics.median(base)
    print(f"baseline scandir+stat: median {b_med * 1e3:.1f} ms, max {base[-1] * 1e3:.1f} ms")
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
            times = []
            for _ in range(args.polls):
                rep = w.poll_once()
                assert rep.listed == args.entries and rep.processed == [] and rep.waiting == 0
                times.append(rep.seconds)
            times.sort()
            med, worst = statistics.median(times), times[-1]
            ok = med <= 0.2
            failed |= not ok
            print(f"poll {name:8s}: median {med * 1e3:6.1f} ms, max {worst * 1e3:6.1f} ms "
                  f"({med / b_med:.1f}x baseline) target <= 200 ms: {'yes' if ok else 'NO'}; "
                  f"first sight {first / args.entries * 1e6:.0f} us/entry")  # fmt: skip
        # detection latency with the SQLite ledger
        name, prov, _ = backends[0]
        w = Watcher(src, identity, os.path.join(tmp, "out"), ledger=prov, name="bench",
                    interval=args.interval, manifest=False)  # fmt: skip
        t = threading.Thread(target=w.run, daemon=True)
        t.start()
        lat = []
        for k in range(-1, args.trials):  # k = -1 warms the processing path up
            time.sleep(random.uniform(0, args.interval))
            path = os.path.join(src, f"new-{k}.tar")
            with open(path, "wb") as f:
                f.write(b"\0" * 1024)
            t0 = time.perf_counter()
            while w.ledger.get(path) is None:
                time.sleep(0.005)
            if k >= 0:
                lat.append(time.perf_counter() - t0)
        w.stop()
        t.join()
        poll = statistics.median(times)
        ok = max(lat) <= args.interval + 2 * poll
        failed |= not ok
        print(f"detect  sqlite  : max {max(lat) * 1e3:.0f} ms, mean {statistics.mean(lat) * 1e3:.0f}"
              f" ms over {args.trials} drops, interval {args.interval * 1e3:.0f} ms; target <= "
              f"interval + poll: {'yes' if ok else 'NO'}")  # fmt: skip
    finally:
        for _name, _prov, drop in backends:
            drop()
        shutil.rmtree(tmp, ignore_errors=True)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
