"""JSONL ingestion speed (with dedup) against a hand-written baseline, and memory at 1M dedup keys.

Run: ``uv run python benchmarks/bench_ingest.py [--rows 100000] [--mem-rows 1000000]``.

Rows are small JSON objects (an id, a short text, a float, a tag); about 5% repeat an earlier
text. Each measurement runs in its own process so its peak RSS is its own:

- ``baseline``: ``json.loads`` + ``msgpack.packb`` + webdataset's ``TarWriter`` over the same
  file (no types, no dedup, no manifests, no progress record);
- ``ingest``: ``atdata.ingest(src, out, dedup_on="text")`` (type inferred, coercion, dedup,
  manifests, durable progress at each shard);
- ``ingest, no manifest``: the same with ``manifest=False``;
- ``memory``: ``atdata.ingest`` of ``--mem-rows`` rows with distinct ids, ``dedup_on="id"``,
  ``manifest=False``: the process's peak RSS with that many keys in the dedup set (target
  <= 150 MB). Manifests are off here because writing them loads pyarrow, which imports pandas
  (about 140 MB resident before the first row, whatever the number of keys; see the
  ``ingest`` row's RSS).

Imports (atdata, and pyarrow + pandas when manifests are written) happen before the clock starts
and are reported in their own column. Targets: ingestion >= 20,000 rows/s with dedup on; memory
<= 150 MB at 1M keys.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import resource
import shutil
import subprocess
import sys
import tempfile
import time


def _rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def make_rows(path: str, n: int, dup_fraction: float = 0.05, seed: int = 0) -> None:
    rng = random.Random(seed)
    tags = ["cat", "dog", "bird", "fish"]
    with open(path, "w") as f:
        for i in range(n):
            j = rng.randrange(i) if i and rng.random() < dup_fraction else i
            row = {"id": i, "text": f"row number {j}", "score": rng.random(), "tag": tags[j % 4]}
            f.write(json.dumps(row) + "\n")


def _warm_imports(kind: str) -> float:
    """Import what the run will use before timing it (a one-off process cost, reported apart:
    pyarrow pulls in pandas, ~2 s here without cached bytecode)."""
    t = time.perf_counter()
    if kind == "baseline":
        import msgpack  # noqa: F401
        import webdataset  # noqa: F401
    else:
        import atdata
        from atdata._ingest import _run  # noqa: F401

        if kind == "ingest":
            import pyarrow as pa
            import pyarrow.parquet

            pa.array([1])  # the first pa.array() imports pandas
            assert atdata.ingest is not None
    return time.perf_counter() - t


def child(kind: str, src: str, out: str) -> dict:
    imports = _warm_imports(kind)
    t = time.perf_counter()
    if kind == "baseline":
        import msgpack
        import webdataset as wds

        os.makedirs(out, exist_ok=True)
        n, loads, packb = 0, json.loads, msgpack.packb
        pattern = os.path.join(out, "base-%06d.tar")
        with wds.ShardWriter(pattern, maxcount=10_000, verbose=0) as w, open(src, "rb") as f:
            for line in f:
                row = loads(line)
                w.write({"__key__": f"{n:08d}", "msgpack": packb(row)})
                n += 1
        rows, written = n, n
    else:
        import atdata

        dedup = "id" if kind == "memory" else "text"
        manifest = None if kind == "ingest" else False
        r = atdata.ingest(src, out, dedup_on=dedup, progress=False, manifest=manifest)
        rows, written = r.rows_read, r.rows_written
    dt = time.perf_counter() - t
    return {
        "seconds": dt,
        "rows": rows,
        "written": written,
        "rss_mb": _rss_mb(),
        "imports": imports,
    }


def _spawn(kind: str, src: str, out: str) -> dict:
    p = subprocess.run(
        [sys.executable, os.path.abspath(__file__), "--child", kind, src, out],
        capture_output=True,
        text=True,
        check=False,
    )
    if p.returncode:
        raise SystemExit(f"{kind} failed:\n{p.stderr}")
    shutil.rmtree(out, ignore_errors=True)
    return json.loads(p.stdout.strip().splitlines()[-1])


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rows", type=int, default=100_000)
    ap.add_argument("--mem-rows", type=int, default=1_000_000)
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--child", nargs=3, metavar=("KIND", "SRC", "OUT"))
    args = ap.parse_args()
    if args.child:
        print(json.dumps(child(*args.child)))
        return
    d = tempfile.mkdtemp(prefix="atdata-bench-ingest-")
    try:
        src = os.path.join(d, "rows.jsonl")
        make_rows(src, args.rows)
        best: dict[str, dict] = {}
        for _ in range(args.rounds):  # interleaved; keep each one's best time
            for kind in ("baseline", "ingest", "nomanifest"):
                res = _spawn(kind, src, os.path.join(d, kind))
                if kind not in best or res["seconds"] < best[kind]["seconds"]:
                    best[kind] = res
        base = best["baseline"]["rows"] / best["baseline"]["seconds"]
        print(
            f"{args.rows:,} JSONL rows ({os.path.getsize(src) / 1e6:.1f} MB), best of {args.rounds}"
        )
        print(f"{'':34}{'rows/s':>10}{'vs baseline':>13}{'peak RSS':>11}{'imports':>10}")
        labels = {
            "baseline": "json + msgpack + wds.TarWriter",
            "ingest": "atdata.ingest dedup_on=text",
            "nomanifest": "  ... manifest=False",
        }
        for kind, label in labels.items():
            r = best[kind]
            rate = r["rows"] / r["seconds"]
            print(
                f"{label:34}{rate:>10,.0f}{rate / base:>12.2f}x{r['rss_mb']:>8.0f} MB"
                f"{r['imports']:>9.2f}s"
            )
        rate = best["ingest"]["rows"] / best["ingest"]["seconds"]
        print(f"target >= 20,000 rows/s with dedup: {'PASS' if rate >= 20_000 else 'FAIL'}")
        if args.mem_rows:
            mem_src = os.path.join(d, "mem.jsonl")
            make_rows(mem_src, args.mem_rows, dup_fraction=0.0, seed=1)
            os.unlink(src)
            m = _spawn("memory", mem_src, os.path.join(d, "memory"))
            ok = m["rss_mb"] <= 150
            print(
                f"memory: {m['written']:,} dedup keys, peak RSS {m['rss_mb']:.0f} MB "
                f"({m['rows'] / m['seconds']:,.0f} rows/s); target <= 150 MB: "
                f"{'PASS' if ok else 'FAIL'}"
            )
    finally:
        shutil.rmtree(d, ignore_errors=True)


if __name__ == "__main__":
    main()
