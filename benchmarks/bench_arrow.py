"""Arrow export speed and memory (issue 14).

The issue-3 workload: 20,000 samples (uint8 image 3x64x64, float32 embedding 256, label, score,
idx) in 20 shards of 1,000 under ``benchmarks/_data/n20000``.

Measured in one run (best of ``--repeat`` rounds, the three readers interleaved in each):
- baseline ``iterate``: read the same shards' samples sequentially (``for s in ds``: every
  sample decoded, arrays included), the cost of reading the bytes through atdata;
- ``pa.table(ds)``: the whole dataset as a pyarrow Table through the PyCapsule stream (tensor
  columns, one contiguous buffer per batch); the target is within 2x of ``iterate``;
- ``tarwalk``: a bare tar-header loop with zero-copy msgpack/numpy views, for scale.

Memory: the streaming reader (``to_arrow_reader(batch_size=1024)``) run in a fresh process over the
20k set and over the same shards listed 4 times (80k samples), each process reporting the most
Arrow memory held at once (``pa.total_allocated_bytes()`` after every batch) and its peak RSS;
the target is the same for both (memory does not grow with the dataset).

Usage: ``uv run python benchmarks/bench_arrow.py [--repeat 3]``
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import _workload as wl


def stream_memory(times: int) -> dict:
    """Run in a child: stream the 20k set listed ``times`` times; report memory."""
    import resource

    import pyarrow as pa

    import atdata

    paths = wl.shard_paths(wl.data_dir()) * times
    ds = atdata.Dataset(paths, sample_type=wl.sample_type())
    rows = batches = peak_arrow = 0
    rss0 = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    for b in ds.to_arrow_reader(batch_size=1024):
        rows += b.num_rows
        batches += 1
        peak_arrow = max(peak_arrow, pa.total_allocated_bytes())
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return {
        "rows": rows,
        "batches": batches,
        "peak_arrow_mb": peak_arrow / 2**20,
        "peak_rss_mb": rss / 1024,
        "rss_growth_mb": (rss - rss0) / 1024,
    }


def child(times: int) -> dict:
    out = subprocess.run(
        [sys.executable, __file__, "--child", str(times)],
        check=True,
        capture_output=True,
        text=True,
    )
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--child", type=int, default=0)
    args = ap.parse_args()
    if args.child:
        print(json.dumps(stream_memory(args.child)))
        return

    import pyarrow as pa

    import atdata

    d = wl.data_dir()
    paths = wl.shard_paths(d)
    size = wl.warm(paths)
    st = wl.sample_type()

    def iterate() -> int:
        return sum(1 for _ in atdata.Dataset(paths, sample_type=st))

    def table() -> int:
        return pa.table(atdata.Dataset(paths, sample_type=st)).num_rows

    def tarwalk() -> int:
        return sum(1 for _ in wl.tarwalk(paths))

    # interleaved, so that load from other processes weighs on both sides alike
    t_it = t_tab = t_tw = float("inf")
    n_it = n_tab = 0
    for _ in range(args.repeat):
        for fn in (iterate, table, tarwalk):
            t0 = time.perf_counter()
            n = fn()
            dt = time.perf_counter() - t0
            if fn is iterate:
                t_it, n_it = min(t_it, dt), n
            elif fn is table:
                t_tab, n_tab = min(t_tab, dt), n
            else:
                t_tw = min(t_tw, dt)
    assert n_it == n_tab == wl.N_SAMPLES
    print(f"20k samples, {len(paths)} shards, {size / 2**20:.0f} MiB")
    print(f"iterate (baseline)  {t_it:7.3f} s  {n_it / t_it:9.0f} samples/s")
    print(f"pa.table(ds)        {t_tab:7.3f} s  {n_tab / t_tab:9.0f} samples/s  ratio {t_tab / t_it:.2f}x (target <= 2x)")  # fmt: skip
    print(f"tarwalk (scale)     {t_tw:7.3f} s")
    m1, m4 = child(1), child(4)
    print(
        f"stream 20k: {m1['rows']} rows in {m1['batches']} batches, peak arrow "
        f"{m1['peak_arrow_mb']:.1f} MiB, peak RSS {m1['peak_rss_mb']:.0f} MiB"
    )
    print(
        f"stream 80k: {m4['rows']} rows in {m4['batches']} batches, peak arrow "
        f"{m4['peak_arrow_mb']:.1f} MiB, peak RSS {m4['peak_rss_mb']:.0f} MiB"
    )
    print(
        f"80k/20k peak arrow {m4['peak_arrow_mb'] / m1['peak_arrow_mb']:.2f}x, "
        f"peak RSS {m4['peak_rss_mb'] / m1['peak_rss_mb']:.2f}x (target ~1x)"
    )


if __name__ == "__main__":
    main()
