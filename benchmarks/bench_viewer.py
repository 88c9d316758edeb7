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
  (``VmHWM``) after the dataset page and the queries too (the manifest engine loads pyarrow, about
  33 MB; it no longer lets pyarrow import pandas, another 51 MB: "pandas loaded" says whether a
  pandas extension module is mapped into the server). The queries are SQL that the engine
  evaluates in Arrow (AND/OR of simple terms); a query with a function needs DuckDB (about 50 MB
  more), reported after the target is measured.

Targets: page p95 <= 50 ms, thumbnail <= 20 ms (p95 of misses), server RSS <= 150 MB.

Usage: ``uv run python benchmarks/bench_viewer.py [--requests 60] [--compare-src DIR]``

``--compare-src`` serves a second copy of atdata (another checkout's ``src/``) first, in the same
run, e.g. the commit before a change: ``git worktree add /tmp/base HEAD~1`` then
``--compare-src /tmp/base/src``.
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
from typing import Any
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


def start_server(pattern: str, src: str | None = None) -> tuple[subprocess.Popen[str], str]:
    env = dict(os.environ)
    if src:  # serve another copy of atdata (e.g. the commit before a change)
        env["PYTHONPATH"] = os.path.abspath(src) + os.pathsep + env.get("PYTHONPATH", "")
    proc = subprocess.Popen(
        [sys.executable, "-m", "atdata", "serve", pattern, "--port", "0"],
        stderr=subprocess.PIPE,
        stdout=subprocess.DEVNULL,
        text=True,
        env=env,
    )
    assert proc.stderr is not None
    line = proc.stderr.readline()
    if " on http" not in line:
        proc.kill()
        raise SystemExit(f"the server did not start: {line}{proc.stderr.read()}")
    return proc, line.split(" on ")[1].split()[0]


def loaded(pid: int, package: str) -> bool:
    """Whether ``package``'s extension modules are mapped into process ``pid``."""
    with open(f"/proc/{pid}/maps") as f:
        return any(f"/{package}/" in line or f"/_{package}." in line for line in f)


def serve_and_measure(
    pattern: str, offsets: list[int], keys: list[str], n_req: int, src: str | None
) -> dict[str, Any]:
    """Start a server, run the requests, and return latencies (ms) and memory (MB)."""
    proc, url = start_server(pattern, src)
    m: dict[str, Any] = {}
    try:
        c = Conn(url)
        m["t_list"], _ = c.get("/api/datasets")
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
        m["rss_rows"], _ = rss_mb(proc.pid)  # pages and thumbnails only: no pyarrow yet
        m["t_detail"], _ = c.get("/api/datasets/bench")
        where = quote("label = 'class_3' AND score > 1000")
        m["t_q1"], body = c.get(f"/api/datasets/bench/query?where={where}&length=100")
        total = json.loads(body)["total"]
        query = []
        for j in range(min(n_req, 20)):
            off = (j * 100) % max(1, total - 100)
            query.append(
                c.get(f"/api/datasets/bench/query?where={where}&offset={off}&length=100")[0]
            )
        either = quote("label = 'class_3' OR (idx < 500 AND score > 0)")  # Arrow, no DuckDB
        m["t_or"], body = c.get(f"/api/datasets/bench/query?where={either}&length=100")
        m["total_or"] = json.loads(body)["total"]
        m["rss"], m["peak"] = rss_mb(proc.pid)
        m["pandas"] = loaded(proc.pid, "pandas")
        m["duckdb"] = loaded(proc.pid, "duckdb")
        # beyond the target: SQL with a function runs in DuckDB (about 50 MB more)
        fn = quote("idx % 7 = 0 AND label = 'class_3'")
        m["t_duck"], _ = c.get(f"/api/datasets/bench/query?where={fn}&length=100")
        m["rss_duck"], _ = rss_mb(proc.pid)
        m.update(page=page, thumb=thumb, thumb_hit=thumb_hit, query=query, total=total)
    finally:
        proc.terminate()
        proc.wait(timeout=10)
    return m


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--requests", type=int, default=60, help="timed requests of each kind")
    ap.add_argument(
        "--compare-src",
        metavar="DIR",
        help="also serve the atdata package under DIR (a checkout's src/, e.g. of the commit "
        "before a change) in the same run, and report both",
    )
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

    runs = [("this tree", None)]
    if args.compare_src:
        runs.insert(0, (args.compare_src, args.compare_src))
    results = [(name, serve_and_measure(pattern, offsets, keys, n_req, src)) for name, src in runs]

    def row(name: str, xs: list[float], base: list[float] | None) -> str:
        ratio = f"{pct(xs, 0.5) / pct(base, 0.5):.2f}x" if base else "-"
        return f"| {name} | {pct(xs, 0.5):.1f} | {pct(xs, 0.95):.1f} | {ratio} |"

    print(f"viewer on {N:,} samples ({n_req} requests each; server: `atdata serve`, uvicorn)")
    for name, m in results:
        page, thumb, thumb_hit, query = (m[k] for k in ("page", "thumb", "thumb_hit", "query"))
        print(f"\nserver: {name}")
        print("| request | p50 ms | p95 ms | p50 vs baseline |")
        print("|---|---|---|---|")
        print(row("page of 100 rows", page, base_page))
        print(row("100 x ds[i] in-process (baseline)", base_page, None))
        print(row("thumbnail (cache miss)", thumb, base_get))
        print(row("thumbnail (cached)", thumb_hit, base_get))
        print(row("ds.get(key) in-process (baseline)", base_get, None))
        print(row("query page of 100 rows", query, base_page))
        print(f"first requests: listing {m['t_list']:.1f} ms, dataset detail (manifests, "
              f"histograms) {m['t_detail']:.1f} ms, query {m['t_q1']:.1f} ms "
              f"({m['total']} matches)")  # fmt: skip
        print(
            f"server memory: RSS {m['rss_rows']:.0f} MB after pages and thumbnails; "
            f"{m['rss']:.0f} MB (peak {m['peak']:.0f} MB) after the dataset page and queries; "
            f"pandas loaded: {'yes' if m['pandas'] else 'no'}, duckdb: "
            f"{'yes' if m['duckdb'] else 'no'} (an OR query: {m['t_or']:.1f} ms, "
            f"{m['total_or']} matches)"
        )
        print(
            f"beyond the target: after a SQL query with a function (DuckDB, {m['t_duck']:.1f} "
            f"ms) RSS {m['rss_duck']:.0f} MB"
        )
    if len(results) == 2:
        (_, old), (_, new) = results
        print(f"\npeak RSS: {new['peak']:.0f} MB vs {old['peak']:.0f} MB "
              f"({new['peak'] / old['peak']:.2f}x)")  # fmt: skip
    m = results[-1][1]
    checks = {
        "page_p95_ms": pct(m["page"], 0.95),
        "thumb_p95_ms": pct(m["thumb"], 0.95),
        "rss_mb": m["peak"],
    }
    for k, v in checks.items():
        ok = "ok" if v <= TARGETS[k] else "OVER"
        print(f"target {k}: {v:.1f} <= {TARGETS[k]:.0f} {ok}")


if __name__ == "__main__":
    main()
