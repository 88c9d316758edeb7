"""Before/after of ``to_torch`` in one run: the same rows with two source trees, interleaved.

On a shared machine a rate measured minutes apart says little; this runs each row alternately
with ``--before`` (the ``src`` directory of another checkout, e.g. a ``git worktree`` of the base
commit) and this checkout's ``src``, ``--rounds`` times, each in a fresh process, and prints the
best and median rate and the least CPU time of each. A row is ``to_torch(batch_size=64,
shuffle=True, output="torch")`` read through ``loader(num_workers=N)``, timed from the dataset's
creation (a counting pass is included) to the last batch.

Run: ``git worktree add --detach /tmp/base <commit>`` then
``uv run python benchmarks/bench_torch_ab.py --before /tmp/base/src [--rounds 5] [--workers 0]
[local|http|s3]``.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

import _workload as W  # noqa: E402
import bench_torch as B  # noqa: E402

_ROW = r"""
import json, sys, time
sys.path.insert(0, sys.argv[5])
import _workload as W, bench_torch as B
import torch, atdata.dataset._torch
paths = W.shard_paths(W.data_dir())
t = time.perf_counter(); c = time.process_time()
ds = B._dataset(sys.argv[1], sys.argv[2], paths, known=sys.argv[3] == "1")
if sys.argv[1] == "s3":
    ds.source._get_client()
n = 0
tds = ds.to_torch(batch_size=64, shuffle=True, seed=0, output="torch")
for b in tds.loader(num_workers=int(sys.argv[4])):
    n += len(b["idx"])
print(json.dumps([n, time.perf_counter() - t, time.process_time() - c]))
"""


def main(argv: list[str]) -> None:
    before, rounds, workers, kind = None, 5, 0, "http"
    while argv:
        a = argv.pop(0)
        if a == "--before":
            before = argv.pop(0)
        elif a == "--rounds":
            rounds = int(argv.pop(0))
        elif a == "--workers":
            workers = int(argv.pop(0))
        else:
            kind = a
    if before is None:
        raise SystemExit("--before SRC is required (the src directory of the base checkout)")
    d = W.data_dir()
    paths = W.shard_paths(d)
    proc, base = (
        (B.start_s3(paths) if kind == "s3" else B.start_http(d)) if kind != "local" else (None, "-")
    )
    trees = (("before", os.path.abspath(before)), ("after", os.path.join(HERE, "..", "src")))
    counts = ("1",) if kind == "local" else ("1", "0")
    res: dict[tuple[str, str], list[tuple[float, float]]] = {}
    try:
        for _ in range(rounds):
            for label, src in trees:
                for known in counts:
                    env = {**os.environ, "PYTHONPATH": src}
                    args = [kind, base, known, str(workers), HERE]
                    out = subprocess.run(
                        [sys.executable, "-c", _ROW, *args], env=env, capture_output=True, text=True
                    )
                    if out.returncode:
                        print(f"{label} failed: {out.stderr.strip().splitlines()[-1:]}")
                        continue
                    n, wall, cpu = json.loads(out.stdout.strip().splitlines()[-1])
                    res.setdefault((label, known), []).append((n / wall, cpu))
    finally:
        if proc is not None:
            proc.terminate()
            proc.wait()
    print(f"{kind}, {workers} workers, {rounds} rounds (samples/s from the dataset's creation):")
    for (label, known), v in sorted(res.items()):
        rates = sorted(r for r, _ in v)
        what = "counts known" if known == "1" else "counts unknown"
        print(
            f"  {label:6s} {what:15s} best {rates[-1]:9,.0f}  median {rates[len(rates) // 2]:9,.0f}"
            f"  least CPU {min(c for _, c in v):.3f} s"
        )


if __name__ == "__main__":
    main(sys.argv[1:])
