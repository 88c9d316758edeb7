"""Memory and speed of random access (``ds[i]``, ``ds.get(key)``, ``ds.locate(key)``) at scale.

Writes ``N`` tiny samples (``ATDATA_BENCH_ACCESS_N``, default 200,000; the notes use 1,000,000;
shards of 10,000; about 1 KB each on disk, cached under ``benchmarks/_data``),
then, in fresh subprocesses, measures the Python heap that the member indexes and the key lookup
hold (tracemalloc, after a warm-up of ``len(ds)``, one ``ds[i]`` and one ``ds.get``) and the CPU time of
random ``ds[i]`` and ``ds.get(key)`` over a fixed pick of positions.

Compare two trees in the same run by pointing ``PYTHONPATH`` at each ``src`` in turn::

    ATDATA_BENCH_SRCS=/path/to/base/src:/path/to/new/src ATDATA_BENCH_PAIRS=2 \
        uv run python benchmarks/bench_access_mem.py

Heap figures come from tracemalloc (stopped before the timings); RSS is read once the index
and the key lookup are built (peak: ru_maxrss, which includes the transient build).
"""

from __future__ import annotations

import json
import os
import random
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
N = int(os.environ.get("ATDATA_BENCH_ACCESS_N", "200000"))  # 1000000 for the notes
PER_SHARD = 10_000


def data_dir() -> str:
    import glob

    d = os.path.join(HERE, "_data", f"tiny{N}")
    if len(glob.glob(os.path.join(d, "t-*.tar"))) == N // PER_SHARD:
        return d
    import atdata

    os.makedirs(d, exist_ok=True)
    atdata.write_samples(
        ({"i": i} for i in range(N)),
        os.path.join(d, "t-%06d.tar"),
        maxcount=PER_SHARD,
        key="index",
        fsync=False,
    )
    return d


def child(d: str) -> dict:
    import tracemalloc

    import atdata

    last = N // PER_SHARD - 1
    pattern = os.path.join(d, "t-{000000.." + f"{last:06d}" + "}.tar")
    rng = random.Random(1)
    picks = rng.sample(range(N), 2000)
    keys = [f"{i:08d}" for i in picks]
    tracemalloc.start()
    ds = atdata.Dataset(pattern)
    base = tracemalloc.get_traced_memory()[0]
    assert len(ds) == N
    assert ds[picks[0]]["i"] == picks[0]
    after_index = tracemalloc.get_traced_memory()[0]
    assert ds.get(keys[0])["i"] == picks[0]
    after_get = tracemalloc.get_traced_memory()[0]
    tracemalloc.stop()
    out = {
        "index_bytes_per_sample": (after_index - base) / N,
        "get_bytes_per_sample": (after_get - base) / N,
    }
    import gc
    import resource

    gc.collect()
    with open("/proc/self/statm") as f:  # Linux: resident pages now (not the peak)
        out["rss_mb_now"] = int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 1e6
    out["rss_mb_peak"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1e3
    for name, fn in (
        ("ds[i]", lambda: [ds[i] for i in picks]),
        ("ds.get", lambda: [ds.get(k) for k in keys]),
        ("ds.locate", lambda: [ds.locate(k) for k in keys]),
    ):
        best = float("inf")
        for _ in range(5):
            t0 = time.process_time()
            fn()
            best = min(best, time.process_time() - t0)
        out[f"{name} us"] = best / len(picks) * 1e6
    return out


def main() -> None:
    if sys.argv[1:2] == ["--child"]:
        print(json.dumps(child(sys.argv[2])))
        return
    d = data_dir()
    srcs = [s for s in os.environ.get("ATDATA_BENCH_SRCS", "").split(":") if s] or [""]
    pairs = int(os.environ.get("ATDATA_BENCH_PAIRS", "1"))
    for _ in range(pairs):
        for src in srcs:
            env = dict(os.environ)
            cache = tempfile.mkdtemp(prefix="atdata-bench-cache-")
            env["ATDATA_CACHE_DIR"] = cache  # no persisted index shared between trees
            if src:
                env["PYTHONPATH"] = src
            res = subprocess.run(
                [sys.executable, __file__, "--child", d],
                env=env,
                capture_output=True,
                text=True,
                check=True,
            )
            print(src or "(this tree)", res.stdout.strip(), flush=True)


if __name__ == "__main__":
    main()
