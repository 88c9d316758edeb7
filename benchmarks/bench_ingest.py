"""JSONL ingestion speed (with dedup) against a hand-written baseline, and memory at 1M dedup keys.

Run: ``uv run python benchmarks/bench_ingest.py [--rows 100000] [--mem-rows 1000000]
[--no-mem-manifest] [--compare-src OLD/src]``.

Rows are small JSON objects (an id, a short text, a float, a tag); about 5% repeat an earlier
text. Each measurement runs in its own process so its peak RSS is its own:

- ``baseline``: ``json.loads`` + ``msgpack.packb`` + webdataset's ``TarWriter`` over the same
  file (no types, no dedup, no manifests, no progress record);
- ``ingest``: ``atdata.ingest(src, out, dedup_on="text")`` (type inferred, coercion, dedup,
  manifests, durable progress at each shard);
- ``ingest, no manifest``: the same with ``manifest=False``;
- ``memory``: ``atdata.ingest`` of ``--mem-rows`` rows with distinct ids, ``dedup_on="id"``,
  manifests on (the default; ``--no-mem-manifest`` turns them off): the process's peak RSS with
  that many keys in the dedup set (target <= 150 MB). Manifests are written without pandas
  (pyarrow imports it on its first conversion of Python values, ~100 MB resident here), so
  with them on the RSS is pyarrow's code + the dedup set + one shard's manifest rows.

The ``CPU s`` column (CPU time of the timed region) is steadier than rows/s on a shared
machine. ``--compare-src DIR`` also runs the ``ingest`` and ``memory`` rows with ``DIR`` (another
checkout's ``src``) first on ``PYTHONPATH``, in the same run, as the "before" rows.

What the run imports (atdata; pyarrow and whatever the manifest writer loads, warmed by ingesting
a one-row file with manifests) is imported before the clock starts and reported in its own
column. Targets: ingestion >= 20,000 rows/s with dedup on; memory <= 150 MB at 1M keys.
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

        if kind in ("ingest", "memory"):  # what ingesting with manifests loads, whatever it is
            with tempfile.TemporaryDirectory() as d:
                src = os.path.join(d, "one.jsonl")
                with open(src, "w") as f:
                    f.write('{"id": 0, "text": "t", "score": 0.5, "tag": "cat"}\n')
                atdata.ingest(src, os.path.join(d, "out"), progress=False, min_rows=1)
    return time.perf_counter() - t


def child(kind: str, src: str, out: str) -> dict:
    imports = _warm_imports(kind)
    t, cpu = time.perf_counter(), time.process_time()
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

        dedup = "id" if kind.startswith("memory") else "text"
        manifest = None if kind in ("ingest", "memory") else False
        r = atdata.ingest(src, out, dedup_on=dedup, progress=False, manifest=manifest)
        rows, written = r.rows_read, r.rows_written
    dt = time.perf_counter() - t
    return {
        "seconds": dt,
        "cpu": time.process_time() - cpu,
        "rows": rows,
        "written": written,
        "rss_mb": _rss_mb(),
        "imports": imports,
        "pandas": "pandas" in sys.modules,
    }


def _spawn(kind: str, src: str, out: str, tree: str | None = None) -> dict:
    env = dict(os.environ)
    if tree:  # another checkout's src first on the path: the "before" rows
        env["PYTHONPATH"] = os.pathsep.join([tree, env.get("PYTHONPATH", "")]).rstrip(os.pathsep)
    p = subprocess.run(
        [sys.executable, os.path.abspath(__file__), "--child", kind, src, out],
        capture_output=True,
        text=True,
        check=False,
        env=env,
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
    ap.add_argument("--no-mem-manifest", action="store_true", help="memory row without manifests")
    ap.add_argument("--compare-src", help="another checkout's src: its rows run as 'before'")
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
        runs = [("baseline", "baseline", None), ("ingest", "ingest", None)]
        if args.compare_src:
            runs.append(("before", "ingest", args.compare_src))
        runs.append(("nomanifest", "nomanifest", None))
        for _ in range(args.rounds):  # interleaved; keep each one's best time
            for label, kind, tree in runs:
                res = _spawn(kind, src, os.path.join(d, label), tree)
                if label not in best or res["seconds"] < best[label]["seconds"]:
                    best[label] = res
        base = best["baseline"]["rows"] / best["baseline"]["seconds"]
        print(
            f"{args.rows:,} JSONL rows ({os.path.getsize(src) / 1e6:.1f} MB), best of {args.rounds}"
        )
        print(
            f"{'':34}{'rows/s':>10}{'vs baseline':>13}{'CPU s':>8}{'peak RSS':>11}{'imports':>10}"
            f"{'pandas':>8}"
        )
        labels = {
            "baseline": "json + msgpack + wds.TarWriter",
            "ingest": "atdata.ingest dedup_on=text",
            "before": "  ... before (--compare-src)",
            "nomanifest": "  ... manifest=False",
        }
        for kind, label in labels.items():
            if kind not in best:
                continue
            r = best[kind]
            rate = r["rows"] / r["seconds"]
            print(
                f"{label:34}{rate:>10,.0f}{rate / base:>12.2f}x{r['cpu']:>8.2f}{r['rss_mb']:>8.0f} MB"
                f"{r['imports']:>9.2f}s{'yes' if r['pandas'] else 'no':>8}"
            )
        rate = best["ingest"]["rows"] / best["ingest"]["seconds"]
        print(f"target >= 20,000 rows/s with dedup: {'PASS' if rate >= 20_000 else 'FAIL'}")
        if args.mem_rows:
            mem_src = os.path.join(d, "mem.jsonl")
            make_rows(mem_src, args.mem_rows, dup_fraction=0.0, seed=1)
            os.unlink(src)
            kind = "memory-nomanifest" if args.no_mem_manifest else "memory"
            trees = [("", None)] + ([("before: ", args.compare_src)] if args.compare_src else [])
            for label, tree in trees:
                m = _spawn(kind, mem_src, os.path.join(d, "memory"), tree)
                ok = m["rss_mb"] <= 150
                print(
                    f"{label}memory ({kind}): {m['written']:,} dedup keys, peak RSS "
                    f"{m['rss_mb']:.0f} MB ({m['rows'] / m['seconds']:,.0f} rows/s, "
                    f"{m['cpu']:.1f} CPU s, pandas "
                    f"{'loaded' if m['pandas'] else 'not loaded'}); target <= 150 MB: "
                    f"{'PASS' if ok else 'FAIL'}"
                )
    finally:
        shutil.rmtree(d, ignore_errors=True)


if __name__ == "__main__":
    main()
