"""Index provider latency: insert, get (latest), list of 10/100/1000 entries, per provider.

Run: ``uv run python benchmarks/bench_index.py [--ops 200]``. Redis (127.0.0.1:6379) and
PostgreSQL (127.0.0.1:5432, database ``test``) are used when reachable; each run uses its own
prefix/schema and removes it afterwards.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
import uuid


def _providers():
    from atdata.index import SQLiteProvider

    d = tempfile.mkdtemp()
    yield "sqlite", SQLiteProvider(f"{d}/bench.db")
    run = uuid.uuid4().hex[:8]
    try:
        from atdata.index import RedisProvider

        p = RedisProvider(
            "redis://127.0.0.1:6379/15", prefix=f"atdata-bench-{run}:", connect_timeout=1
        )
        p.ping()
        yield "redis", p
    except Exception as exc:
        print(f"redis skipped: {exc}")
    for dsn in (
        "postgresql://root@127.0.0.1:5432/test",
        "postgresql://postgres@127.0.0.1:5432/test",
    ):
        try:
            from atdata.index import PostgresProvider

            yield "postgres", PostgresProvider(dsn, schema=f"atdata_bench_{run}", connect_timeout=2)
            break
        except Exception as exc:
            print(f"postgres ({dsn}) skipped: {exc}")


def _stats(xs: list[float]) -> tuple[float, float]:
    xs = sorted(xs)
    return statistics.median(xs) * 1e3, xs[min(len(xs) - 1, int(0.95 * len(xs)))] * 1e3


def _timed(fn, n: int) -> tuple[float, float]:
    out = []
    for _ in range(n):
        t = time.perf_counter()
        fn()
        out.append(time.perf_counter() - t)
    return _stats(out)


def main() -> None:
    from atdata.index import DatasetEntry, ShardRef

    ap = argparse.ArgumentParser()
    ap.add_argument("--ops", type=int, default=200)
    args = ap.parse_args()
    shards = [ShardRef(f"/data/x-{i:06d}.tar", "ab" * 32, 1 << 20, 1000) for i in range(4)]
    rows = []
    for kind, p in _providers():
        fill = 0
        res: dict[str, tuple[float, float]] = {}
        ins: list[float] = []
        for target in (10, 100, 1000):
            while fill < target:
                t = time.perf_counter()
                p.add_entry(DatasetEntry(name=f"ds-{fill % 50}", shards=shards, tags=["bench"]))
                ins.append(time.perf_counter() - t)
                fill += 1
            assert len(p.list_entries()) == target
            res[f"list {target}"] = _timed(
                p.list_entries, max(5, args.ops // (10 if target == 1000 else 2))
            )
        res["insert"] = _stats(ins)
        res["get latest"] = _timed(lambda p=p: p.get_entry("ds-7"), args.ops)
        res["get version"] = _timed(lambda p=p: p.get_entry("ds-7", "1.3.0"), args.ops)
        rows.append((kind, res))
        if hasattr(p, "drop"):
            p.drop()
        p.close()
    cols = ["insert", "get latest", "get version", "list 10", "list 100", "list 1000"]
    print(f"{'provider':10s}" + "".join(f"{c:>22s}" for c in cols))
    print(f"{'':10s}" + "".join(f"{'median / p95 ms':>22s}" for _ in cols))
    for kind, res in rows:
        print(f"{kind:10s}" + "".join(f"{res[c][0]:>12.3f} / {res[c][1]:<7.3f}" for c in cols))


if __name__ == "__main__":
    main()
