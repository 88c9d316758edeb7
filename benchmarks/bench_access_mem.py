"""Memory and speed of random access (``ds[i]``, ``ds.get(key)``, ``ds.locate(key)``) at scale.

Writes ``N`` tiny samples (default 1,000,000, shards of 10,000; cached under ``benchmarks/_data``),
then, in fresh subprocesses, measures the Python heap that the member indexes and the key lookup
hold (tracemalloc, after a warm-up of ``len(ds)``, one ``ds[i]`` and one ``ds.get``) and the CPU time of
random ``ds[i]`` and ``ds.get(key)`` over a fixed pick of positions.

Compare two trees in the same run by pointing ``PYTHONPATH`` at each ``src`` in turn::

    ATDATA_BENCH_SRC=/work/main/src uv run python benchmarks/bench_access_mem.py
    uv run python benchmarks/bench_access_mem.py --child  # (internal)
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
N = int(os.environ.get("ATDATA_BENCH_ACCESS_N", "1000000"))
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
