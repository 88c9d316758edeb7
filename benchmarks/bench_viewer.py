"""The dataset viewer under load (issue 15): pages, thumbnails, queries and server memory.

The 20,000-sample workload with manifests (``bench_query``'s: image uint8 3x64x64, float32
embedding 256, label, score, idx; 20 shards of 1,000) is served by ``atdata serve`` in its own
process (uvicorn on a loopback port), and read over one keep-alive HTTP connection:

- page: ``/samples?offset=R&length=100`` at random offsets (one HTTP round trip, 100 random-access
  reads, cells, JSON); baseline: the same 100 ``ds[i]`` in this process (the reads alone);
- thumb: the PNG of a sample's image, each key asked once (cache misses); baseline: ``ds.get(key)``;
- thumb (cached): the same keys again;
- query: a page of 100 rows of ``label = 'class_3' AND score > 1000`` (the query result is
  remembered, so after the first request a page is 100 ranged reads);
- memory: the server's RSS (``VmRSS``) after the pages and thumbnails, and its RSS and peak
  (``VmHWM``) after the dataset page and the queries too (the manifest engine loads pyarrow, and
  pyarrow imports pandas on its first array conversion: about 85 MB together).

Targets: page p95 <= 50 ms, thumbnail <= 20 ms (p95 of misses), server RSS <= 150 MB.

Usage: ``uv run python benchmarks/bench_viewer.py [--requests 60]``
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import random
import subprocess
import sys
import time
from urllib.parse import quote, urlsplit

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import bench_query

import atdata

N = 20_000
TARGETS = {"page_p95_ms": 50.0, "thumb_p95_ms": 20.0, "rss_mb": 150.0}


def pct(xs: list[float], q: float) -> float:
    s = sorted(xs)
    return s[min(len(s) - 1, round(q * (len(s) - 1)))]


def rss_mb(pid: int) -> tuple[float, float]:
    """``(VmRSS, VmHWM)`` of ``pid`` in MB."""
    out = {}
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            k, _, v = line.partition(":")
            if k in ("VmRSS", "VmHWM"):
                out[k] = int(v.split()[0]) / 1024
    return out["VmRSS"], out["VmHWM"]


class Conn:
    def __init__(self, url: str) -> None:
        u = urlsplit(url)
        self.c = http.client.HTTPConnection(u.hostname, u.port, timeout=60)

    def get(self, path: str) -> tuple[float, bytes]:
        t0 = time.perf_counter()
        self.c.request("GET", path)
        r = self.c.getresponse()
        body = r.read()
        dt = (time.perf_counter() - t0) * 1000
        if r.status != 200:
            raise SystemExit(f"GET {path} -> {r.status}: {body[:300]!r}")
        return dt, body


def start_server(pattern: str) -> tuple[subprocess.Popen[str], str]:
    proc = subprocess.Popen(
        [sys.executable, "-m", "atdata", "serve", pattern, "--port", "0"],
        stderr=subprocess.PIPE,
        stdout=subprocess.DEVNULL,
        text=True,
    )
    assert proc.stderr is not None
    line = proc.stderr.readline()
    if " on http" not in line:
        proc.kill()
        raise SystemExit(f"the server did not start: {line}{proc.stderr.read()}")
    return proc, line.split(" on ")[1].split()[0]


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--requests", type=int, default=60, help="timed requests of each kind")
    args = ap.parse_args()
    n_req = args.requests
    d = bench_query.data_dir()
    pattern = os.path.join(d, "bench-{000000..000019}.tar")
    rng = random.Random(0)
    offsets = [rng.randrange(0, N - 100) for _ in range(n_req)]
    keys = [f"{rng.randrange(N):08d}" for _ in range(n_req)]

    # baseline, in this process: the reads alone
    ds = atdata.Dataset(pattern, sample_type=bench_query.wl.sample_type())
    for i in range(0, N, 1000):  # build the member indexes (the server does the same on warm-up)
        ds[i]
    base_page = []
    for off in offsets:
        t0 = time.perf_counter()
        for i in range(off, off + 100):
            ds[i]
        base_page.append((time.perf_counter() - t0) * 1000)
    base_get = []
    for k in keys:
        t0 = time.perf_counter()
        ds.get(k)
        base_get.append((time.perf_counter() - t0) * 1000)

    proc, url = start_server(pattern)
    try:
        c = Conn(url)
        t_list, _ = c.get("/api/datasets")
        c.get("/api/datasets/bench/samples?offset=0&length=100")  # warm: member indexes, keymap
        c.get(f"/api/datasets/bench/thumb?key={keys[0]}&field=image")
        page = []
        for off in offsets:
            dt, body = c.get(f"/api/datasets/bench/samples?offset={off}&length=100")
            assert len(json.loads(body)["rows"]) == 100
            page.append(dt)
        thumb, thumb_hit = [], []
        for k in keys[1:]:
            thumb.append(c.get(f"/api/datasets/bench/thumb?key={k}&field=image")[0])
        for k in keys[1:]:
            thumb_hit.append(c.get(f"/api/datasets/bench/thumb?key={k}&field=image")[0])
        rss_rows, _ = rss_mb(proc.pid)  # pages and thumbnails only: no pyarrow yet
        t_detail, _ = c.get("/api/datasets/bench")
        where = quote("label = 'class_3' AND score > 1000")
        t_q1, body = c.get(f"/api/datasets/bench/query?where={where}&length=100")
        total = json.loads(body)["total"]
        query = []
        for j in range(min(n_req, 20)):
            off = (j * 100) % max(1, total - 100)
            query.append(
                c.get(f"/api/datasets/bench/query?where={where}&offset={off}&length=100")[0]
            )
        rss, peak = rss_mb(proc.pid)
    finally:
        proc.terminate()
        proc.wait(timeout=10)

    def row(name: str, xs: list[float], base: list[float] | None) -> str:
        ratio = f"{pct(xs, 0.5) / pct(base, 0.5):.2f}x" if base else "-"
        return f"| {name} | {pct(xs, 0.5):.1f} | {pct(xs, 0.95):.1f} | {ratio} |"

    print(f"viewer on {N:,} samples ({n_req} requests each; server: `atdata serve`, uvicorn)")
    print("| request | p50 ms | p95 ms | p50 vs baseline |")
    print("|---|---|---|---|")
    print(row("page of 100 rows", page, base_page))
    print(row("100 x ds[i] in-process (baseline)", base_page, None))
    print(row("thumbnail (cache miss)", thumb, base_get))
    print(row("thumbnail (cached)", thumb_hit, base_get))
    print(row("ds.get(key) in-process (baseline)", base_get, None))
    print(row("query page of 100 rows", query, base_page))
    print(f"first requests: listing {t_list:.1f} ms, dataset detail (manifests, histograms) "
          f"{t_detail:.1f} ms, query {t_q1:.1f} ms ({total} matches)")  # fmt: skip
    print(
        f"server memory: RSS {rss_rows:.0f} MB after pages and thumbnails; {rss:.0f} MB "
        f"(peak {peak:.0f} MB) after the dataset page and queries (pyarrow, which imports pandas)"
    )
    checks = {
        "page_p95_ms": pct(page, 0.95),
        "thumb_p95_ms": pct(thumb, 0.95),
        "rss_mb": peak,
    }
    for k, v in checks.items():
        ok = "ok" if v <= TARGETS[k] else "OVER"
        print(f"target {k}: {v:.1f} <= {TARGETS[k]:.0f} {ok}")


if __name__ == "__main__":
    main()
