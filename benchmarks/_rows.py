"""One benchmark measurement per process: ``python benchmarks/_rows.py <name> [repeats]``.

Prints one JSON object: samples, best seconds, bytes moved and the peak RSS of this process (so
each row's memory is its own). ``run.py`` drives it.
"""

from __future__ import annotations

import json
import os
import random
import resource
import shutil
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import _workload as W


def _best(fn, repeats: int) -> tuple[int, float]:
    best = float("inf")
    n = 0
    for _ in range(repeats):
        t0 = time.perf_counter()
        n = fn()
        dt = time.perf_counter() - t0
        if isinstance(n, tuple):  # (count, seconds) measured by fn itself
            n, dt = n
        best = min(best, dt)
    return n, best


def _count(it) -> int:
    n = 0
    for _ in it:
        n += 1
    return n


def _ds(paths: list[str], **kw):
    import atdata

    return atdata.Dataset[W.sample_type()](paths, **kw)


def main() -> None:
    name = sys.argv[1]
    repeats = int(sys.argv[2]) if len(sys.argv) > 2 else 3
    n_data = int(sys.argv[3]) if len(sys.argv) > 3 else W.N_SAMPLES
    d = W.data_dir()
    paths = W.shard_paths(d)[: n_data // W.PER_SHARD]  # a prefix of the shards (memory rows)
    nbytes = data_bytes = W.warm(paths)
    rng = random.Random(1)
    picks = rng.sample(range(n_data), 1000)
    if ".wds" in name:
        # import the baseline's library before timing: each row is one fresh process, and
        # `import webdataset` (about a second here) must not be charged to its throughput
        import webdataset  # noqa: F401

    if name == "seq.ours":
        ds = _ds(paths)
        n, t = _best(lambda: _count(ds.ordered()), repeats)
    elif name == "seq.ours_view":
        ds = _ds(paths, copy_arrays=False)
        n, t = _best(lambda: _count(ds.ordered()), repeats)
    elif name == "seq.wds":
        n, t = _best(lambda: _count(W.wds_pipeline(paths)), repeats)
    elif name == "seq.tarwalk":
        n, t = _best(lambda: _count(W.tarwalk(paths)), repeats)
    elif name == "batch.ours":
        ds = _ds(paths)
        n, t = _best(lambda: 64 * _count(ds.ordered(batch_size=64, drop_last=True)), repeats)
    elif name == "batch.wds":
        n, t = _best(
            lambda: 64 * _count(b for b in W.wds_pipeline(paths, batch=64) if len(b[0]) == 64),
            repeats,
        )
    elif name == "shuffle.ours":
        ds = _ds(paths)
        n, t = _best(lambda: _count(ds.shuffled(seed=0)), repeats)
    elif name == "shuffle.wds":
        n, t = _best(lambda: _count(W.wds_pipeline(paths, shuffle=10_000)), repeats)
    elif name == "random.ours_index":
        ds = _ds(paths)
        len(ds)  # builds (or loads) the member index once, outside the timing
        n, t = _best(lambda: _count(ds[i] for i in picks), repeats)
    elif name == "random.ours_get":
        ds = _ds(paths)
        keys = [f"{i:08d}" for i in picks]
        len(ds)
        n, t = _best(lambda: _count(ds.get(k) for k in keys), repeats)
    elif name == "random.pread":
        locs = W.member_offsets(paths)
        sel = [locs[i] for i in picks]
        n, t = _best(lambda: _count(W.pread_reads(sel)), repeats)
    elif name.startswith("write."):
        samples = W.make_samples(5_000)
        nbytes = 0
        out = tempfile.mkdtemp(prefix="atdata-bench-", dir=W.DATA)

        def write() -> int:
            nonlocal nbytes
            shutil.rmtree(out, ignore_errors=True)
            os.makedirs(out)
            t0 = time.perf_counter()
            if name == "write.wds":
                import webdataset as wds

                with wds.ShardWriter(
                    os.path.join(out, "w-%06d.tar"), maxcount=W.PER_SHARD, verbose=0
                ) as w:
                    for s in samples:
                        payload = {
                            "image": W.np_encode(s.image),
                            "embedding": W.np_encode(s.embedding),
                            "label": s.label,
                            "score": s.score,
                            "idx": s.idx,
                        }
                        w.write({"__key__": f"{s.idx:08d}", "msgpack": W.msgpack.packb(payload)})
            else:
                import atdata

                atdata.write_samples(
                    samples,
                    os.path.join(out, "a-%06d.tar"),
                    maxcount=W.PER_SHARD,
                    key="index",
                    fsync=name == "write.ours_fsync",
                    progress=False,
                )
            dt = time.perf_counter() - t0
            nbytes = sum(os.path.getsize(os.path.join(out, f)) for f in os.listdir(out))
            return len(samples), dt

        try:
            n, t = _best(write, repeats)
        finally:
            shutil.rmtree(out, ignore_errors=True)
    elif name == "len.ours_cold":
        # a fresh dataset object each time; the persisted member index is what makes this fast
        n, t = _best(lambda: len(_ds(paths)), repeats)
        nbytes = 0
    else:
        raise SystemExit(f"unknown row {name}")
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(
        json.dumps(
            {
                "name": name,
                "n": n,
                "seconds": t,
                "bytes": nbytes if name.startswith("write") else n * data_bytes // n_data,
                "rss_mb": rss,
            }
        )
    )


if __name__ == "__main__":
    main()
