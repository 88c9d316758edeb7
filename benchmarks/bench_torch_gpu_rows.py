"""The rows of the GPU loader tables (``../shared/bench/gpu/loader_gpu.py`` and
``loader_scaling.py``) on this machine's CPU, with 0-2 DataLoader workers.

Those scripts live outside the repository and are read-only here; this wrapper imports their
data writer, loaders and ``drain`` as they are, sets their CPU dry run (``GPU_CPU_DRYRUN=1``: the
batches stay on the CPU, no pinning), and runs the worker counts a 2-core machine has:

- ``atdata.to_torch`` / ``webdataset+msgpack`` / ``ceiling (ready tensors)`` at 0, 1, 2 workers
  (shuffled, batch 256 of uint8 3x96x96, steady state after the prefetched batches);
- the same two loaders with the per-sample augmentation of ``loader_scaling.py`` (random crop,
  flip, 3x3 blur) at 0, 1, 2 workers.

Run: ``uv run python benchmarks/bench_torch_gpu_rows.py`` (``GPU_DIR`` where the scripts are,
default ``../shared/bench/gpu`` beside the repository or ``/work/shared/bench/gpu``; ``GPU_N``
samples, default 12,000; ``GPU_ROOT`` for the data, default a directory under /dev/shm removed at
the end; ``ROW_LIMIT_S`` seconds per row, default 8; ``ROUNDS`` runs of every row, default 2, the
best counts). Prints the rows and the ratios to the ceiling and to webdataset measured in the
same run.
"""

from __future__ import annotations

import os
import shutil
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
WORKERS = (0, 1, 2)


def _gpu_dir() -> str:
    for d in (
        os.environ.get("GPU_DIR"),
        os.path.join(HERE, "..", "..", "shared", "bench", "gpu"),
        "/work/shared/bench/gpu",
    ):
        if d and os.path.exists(os.path.join(d, "loader_gpu.py")):
            return os.path.abspath(d)
    raise SystemExit("loader_gpu.py not found: set GPU_DIR to the directory holding it")


def main() -> None:
    try:
        import torch  # noqa: F401
        import webdataset  # noqa: F401
    except ImportError as exc:
        print(f"skipped: {exc.name} is not installed")
        return
    os.environ["GPU_CPU_DRYRUN"] = "1"
    os.environ.setdefault("GPU_N", "12000")
    own_root = "GPU_ROOT" not in os.environ
    if own_root:
        base = "/dev/shm" if os.access("/dev/shm", os.W_OK) else None
        os.environ["GPU_ROOT"] = tempfile.mkdtemp(prefix="atdata-gpurows-", dir=base)
    os.environ.setdefault("OUT", tempfile.gettempdir())
    limit = float(os.environ.get("ROW_LIMIT_S", "8"))
    rounds = int(os.environ.get("ROUNDS", "2"))
    sys.path.insert(0, _gpu_dir())
    try:
        import loader_gpu as L  # the shared scripts, unchanged
        import loader_scaling as S

        import atdata

        Img, _ = L.make_data()
        shards = f"{L.ROOT}/atd/data-{{000000..{L.N // 1000 - 1:06d}}}.tar"
        dsr = atdata.Dataset[Img](shards)

        def atd(nw, transform):
            tds = dsr.to_torch(batch_size=L.BATCH, shuffle=True, seed=0, transform=transform)
            kw = {"prefetch_factor": 4} if nw else {}
            return tds.loader(num_workers=nw, **kw)

        def wds_plain(nw):
            return L.wds_loader(nw)

        def wds_aug(nw):
            return S.wds_loader(nw)

        L.log(f"CPU rows, {L.N} samples, batch {L.BATCH}, cpus {os.cpu_count()}:")
        for nw in [w for w in WORKERS for _ in range(rounds)]:
            L.row("atdata.to_torch", nw, lambda nw=nw: L.drain(atd(nw, L.to_tensors), limit))
            L.row("webdataset+msgpack", nw, lambda nw=nw: L.drain(wds_plain(nw), limit))
            L.row(
                "ceiling (ready tensors)",
                nw,
                lambda nw=nw: L.drain(L.Ceiling(L.N).loader(nw), limit),
            )
        for nw in [w for w in WORKERS for _ in range(rounds)]:
            L.row(
                "atdata.to_torch +aug", nw, lambda nw=nw: L.drain(atd(nw, S.atd_transform), limit)
            )
            L.row("webdataset +aug", nw, lambda nw=nw: L.drain(wds_aug(nw), limit))
        rate: dict = {}
        for r in L.RESULTS["rows"]:  # the best of the rounds
            k = (r["system"], r["workers"])
            rate[k] = max(rate.get(k) or 0.0, r.get("samples_per_s") or 0.0) or None
        L.log("ratios (same run):")
        for nw in WORKERS:
            a, w = rate.get(("atdata.to_torch", nw)), rate.get(("webdataset+msgpack", nw))
            c = rate.get(("ceiling (ready tensors)", nw))
            aa, wa = rate.get(("atdata.to_torch +aug", nw)), rate.get(("webdataset +aug", nw))
            parts = []
            if a and c:
                parts.append(f"to_torch/ceiling {a / c:.2f}")
            if a and w:
                parts.append(f"to_torch/webdataset {a / w:.2f}")
            if aa and wa:
                parts.append(f"+aug to_torch/webdataset {aa / wa:.2f}")
            L.log(f"  workers={nw}: " + ", ".join(parts))
    finally:
        if own_root:
            shutil.rmtree(os.environ["GPU_ROOT"], ignore_errors=True)


if __name__ == "__main__":
    main()
