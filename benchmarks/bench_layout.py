"""Per-batch time of ``to_torch`` batches made from undecoded payloads (dataset/_layout.py).

Two sample types, 64 samples a batch:

- ``mixed``: ``{id: str, label: int, image: uint8 (3,96,96), embedding: float32 (512,)}``: the
  id and label come first and differ per sample (ids of several lengths, labels of several
  msgpack int widths);
- ``bench``: the read benchmark's type (``_workload.py``): arrays first, scalars after.

Paths, each for both types:

- ``checked``: every payload decoded with msgpack (as the random-mode reader does), then
  ``TorchDataset._batch`` with the layout turned off (``SampleBatch._from_raw``), over 640
  payloads side by side in one buffer, batch arrays made by ``np.empty`` (as workers place
  them in shared memory);
- ``to_torch``: ``TorchDataset._batch`` of the undecoded payloads: ``fast_batch``, and the
  checked path when it gives ``None``, over the same buffer;
- ``loader-checked`` and ``loader``: a whole epoch of ``to_torch(batch_size=64, shuffle=True,
  output="torch")`` iterated in this process from local shards (the layout turned off, or
  not), per batch: shard reads, batching and conversion to tensors included (``mixed``: 2,048
  samples written once under ``benchmarks/_data/``; ``bench``: the read benchmark's 20,000).

Each measurement runs in a fresh process, ``--rounds`` times, the source trees alternating
(``--before SRC``: another checkout's ``src``, e.g. a ``git worktree`` of main); the median of
the per-round medians is printed, in microseconds per batch.

Run (on a shared machine, under one lock with the other benchmarks):
``flock /tmp/bench.lock uv run python benchmarks/bench_layout.py [--before /path/to/main/src]
[--rounds 7] [--paths checked,to_torch,loader-checked,loader] [--side 96]`` (``--side``: the
mixed type's image is ``3 x side x side``).
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))

_ROW = r"""
import glob, json, os, shutil, statistics, sys, tempfile, time
sys.path.insert(0, sys.argv[3])
import msgpack, numpy as np
import atdata
import atdata.dataset._layout as L
import _workload as W

kind, path, n_batches, batch, side = sys.argv[1], sys.argv[2], 10, 64, int(sys.argv[4])
rng = np.random.default_rng(0)


@atdata.packable
class Mixed:
    id: str
    label: int
    image: atdata.NDArray
    embedding: atdata.NDArray


if kind == "mixed":
    st = Mixed
    img = rng.integers(0, 255, size=(batch, 3, side, side), dtype=np.uint8)
    emb = rng.standard_normal((batch, 512)).astype(np.float32)
    make = lambda i: Mixed(id=f"sample-{i * 37}", label=(i * 7919) % 1000,
                           image=img[i % batch], embedding=emb[i % batch])
    rows = [make(i)._to_wire() for i in range(n_batches * batch)]
else:
    st = W.sample_type()
    rows = [s._to_wire() for s in W.make_samples(n_batches * batch)]
made, plain = [0], L.fast_batch


def counted(*a, **k):  # batches fast_batch made (TorchDataset._batch imports it at each call)
    b = plain(*a, **k)
    made[0] += b is not None
    return b


L.fast_batch = counted
if path.startswith("loader"):
    if kind == "mixed":
        d = os.path.join(W.DATA, f"layout-mixed-{side}-n2048")
        if len(glob.glob(os.path.join(d, "*.tar"))) != 4:
            os.makedirs(d, exist_ok=True)
            atdata.write_samples([make(i) for i in range(2048)], os.path.join(d, "m-%02d.tar"),
                                 maxcount=512, key="index", fsync=False)
        paths = sorted(glob.glob(os.path.join(d, "*.tar")))
    else:
        paths = W.shard_paths(W.data_dir())
    W.warm(paths)
    ds = atdata.Dataset[st](paths)
    per = []
    for epoch in range(4):
        tds = ds.to_torch(batch_size=64, shuffle=True, seed=epoch, output="torch")
        if path == "loader-checked":
            tds._payloads = False
        t, n = time.perf_counter(), 0
        for b in tds:
            n += 1
        if epoch:  # the first epoch warms up
            per.append((time.perf_counter() - t) / n)
    print(json.dumps([statistics.median(per) * 1e6, made[0] > 0]))
    sys.exit(0)
buf, spans = bytearray(), []
for r in rows:
    p = msgpack.packb(r)
    spans.append((len(buf), len(p)))
    buf += p
view = memoryview(bytes(buf))
batches = [
    [("s.tar", f"{i:08d}", view, o, n) for i, (o, n) in enumerate(spans[b * batch:(b + 1) * batch])]
    for b in range(n_batches)
]
unpackb = msgpack.unpackb
tmp = tempfile.mkdtemp()
one = make(0) if kind == "mixed" else W.make_samples(1)[0]
tds = atdata.write_samples([one], os.path.join(tmp, "one-%02d.tar"), fsync=False).to_torch(
    batch_size=batch, output="torch")
alloc = np.empty  # (how workers place batch arrays; without alloc, _batch takes Dataset._emit)


def checked(entries):  # what the reader (random mode) and TorchDataset._batch do without layouts
    tds._payloads = False
    return tds._batch([(s, k, unpackb(v[o:o + n])) for s, k, v, o, n in entries], alloc)


def to_torch(entries):
    tds._payloads = True
    return tds._batch(entries, alloc)


run = checked if path == "checked" else to_torch
for b in batches:
    run(b)  # warm
made[0] = 0
times = []
for _ in range(30):
    for b in batches:
        t = time.perf_counter()
        run(b)
        times.append(time.perf_counter() - t)
shutil.rmtree(tmp)
print(json.dumps([sorted(times)[len(times) // 2] * 1e6, made[0] > 0]))
"""


def main(argv: list[str]) -> None:
    before, rounds, side = None, 7, 96
    paths = ["checked", "to_torch", "loader-checked", "loader"]
    while argv:
        a = argv.pop(0)
        if a == "--before":
            before = os.path.abspath(argv.pop(0))
        elif a == "--rounds":
            rounds = int(argv.pop(0))
        elif a == "--paths":
            paths = argv.pop(0).split(",")
        elif a == "--side":
            side = int(argv.pop(0))
    trees = [("after", os.path.join(HERE, "..", "src"))]
    if before is not None:
        trees.insert(0, ("before", before))
    res: dict[tuple[str, str, str], list[float]] = {}
    fast: dict[tuple[str, str, str], bool] = {}
    for _ in range(rounds):
        for kind in ("mixed", "bench"):
            for path in paths:
                for label, src in trees:
                    env = {**os.environ, "PYTHONPATH": src}
                    out = subprocess.run(
                        [sys.executable, "-c", _ROW, kind, path, HERE, str(side)],
                        env=env,
                        capture_output=True,
                        text=True,
                        check=False,
                    )
                    if out.returncode:
                        raise SystemExit(f"{label} {kind} {path} failed:\n{out.stderr}")
                    us, fa = json.loads(out.stdout.strip().splitlines()[-1])
                    res.setdefault((kind, path, label), []).append(us)
                    fast[(kind, path, label)] = fa
    print(f'us per batch of 64, median of {rounds} rounds ("(layout)": fast_batch made them)')
    for (kind, path, label), v in sorted(res.items()):
        how = " (layout)" if fast[(kind, path, label)] else ""
        print(f"  {kind:6s} {path:14s} {label:6s} {statistics.median(v):9.1f}{how}")


if __name__ == "__main__":
    main(sys.argv[1:])
