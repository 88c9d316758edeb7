"""Manifest queries vs. a full decode-and-filter scan (issue 6).

20,000 samples (the issue-3 workload: uint8 image 3x64x64, float32 embedding 256, label, score,
idx) in 20 shards of 1,000, written once with manifests under ``benchmarks/_data/query20000``.

Measured in one run; the scan is the best of ``--repeat`` runs, queries and fetches (a few ms
each, so easily disturbed by other processes) the best of ``max(20, --repeat)``:
- scan: decode every sample and keep those matching (what you do without manifests);
- query: find the matches' locations through the manifests (a fresh Dataset each time, so the
  manifest headers and rows are read from disk every time);
- fetch: read and decode the matched samples by location (ranged reads).

Usage: ``uv run python benchmarks/bench_query.py [--repeat 3]``
"""

from __future__ import annotations

import argparse
import glob
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import _workload as wl

import atdata

N = 20_000
LO, HI = 5_000, 5_299  # 300 samples = 1.5%


def data_dir() -> str:
    d = os.path.join(wl.DATA, f"query{N}")
    if len(glob.glob(os.path.join(d, "bench-*.manifest.json"))) == N // wl.PER_SHARD:
        return d
    os.makedirs(d, exist_ok=True)
    atdata.write_samples(
        wl.make_samples(N),
        os.path.join(d, "bench-%06d.tar"),
        maxcount=wl.PER_SHARD,
        key="index",
        fsync=False,
        manifest=True,
    )
    return d


def best(fn, repeat: int) -> tuple[float, object]:
    times, out = [], None
    for _ in range(repeat):
        t0 = time.perf_counter()
        out = fn()
        times.append(time.perf_counter() - t0)
    return min(times), out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args()
    d = data_dir()
    st = wl.sample_type()
    paths = sorted(glob.glob(os.path.join(d, "bench-*.tar")))
    wl.warm(paths)

    def fresh() -> atdata.Dataset:
        return atdata.Dataset(paths, st)

    def scan() -> list[str]:
        return [s.__key__ for s in fresh().ordered() if LO <= s.idx <= HI]

    t_scan, want = best(scan, args.repeat)
    assert len(want) == HI - LO + 1

    cases = {
        "expr  (Q.idx.between)": lambda ds: ds.query(ds.fields.idx.between(LO, HI)),
        "sql   (idx BETWEEN)": lambda ds: ds.query(f"idx BETWEEN {LO} AND {HI}"),
        "sql via DuckDB (LIKE)": lambda ds: ds.query(
            f"idx BETWEEN {LO} AND {HI} AND label LIKE 'class_%'"
        ),
        "lambda (no pruning)": lambda ds: ds.query(
            lambda df: (df["idx"] >= LO) & (df["idx"] <= HI)
        ),
    }
    print(
        f"dataset: {N} samples in {len(paths)} shards, {sum(map(os.path.getsize, paths)) / 1e6:.0f} MB; "
        f"query matches {len(want)} ({100 * len(want) / N:.1f}%)"
    )
    print(f"full decode-and-filter scan: {t_scan * 1e3:9.1f} ms")
    for name, q in cases.items():
        n = max(20, args.repeat)
        t_q, res = best(lambda q=q: q(fresh()), n)
        assert res.list_keys() == want, name
        t_f, samples = best(lambda res=res: list(res.samples), n)
        assert [s.idx for s in samples] == list(range(LO, HI + 1))
        s = res.stats
        print(
            f"{name}: query {t_q * 1e3:7.2f} ms ({t_scan / t_q:6.0f}x faster than the scan; shards "
            f"{s.shards_scanned} scanned, {s.shards_pruned} pruned)  fetch {len(samples)} by location "
            f"{t_f * 1e3:7.2f} ms ({t_scan / t_f:5.0f}x); query+fetch {t_scan / (t_q + t_f):5.0f}x"
        )


if __name__ == "__main__":
    main()
