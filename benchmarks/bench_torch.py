"""PyTorch loading: ``ds.to_torch(...).loader(num_workers=n)`` vs the DataLoader's own IPC ceiling.

The ceiling is a trivial ``IterableDataset`` that yields ready-made tensors of the same batch shape,
so it measures only what moving batches from worker processes to the main process costs.
Run: ``uv run python benchmarks/run.py torch``.
"""

from __future__ import annotations

import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import _workload as W


def _to_tensors(b):
    import torch

    return {
        "image": torch.from_numpy(b.image),
        "embedding": torch.from_numpy(b.embedding),
        "label": b.label,
        "idx": torch.tensor(b.idx),
    }


def _ceiling_cls():
    import numpy as np
    import torch
    from torch.utils.data import IterableDataset, get_worker_info

    class Ceiling(IterableDataset):
        def __iter__(self):
            info = get_worker_info()
            nw, wid = (info.num_workers, info.id) if info else (1, 0)
            img = np.zeros((64, 3, 64, 64), np.uint8)
            emb = np.zeros((64, 256), np.float32)
            for _ in range(wid, W.N_SAMPLES // 64, nw):
                yield {
                    "image": torch.from_numpy(img.copy()),
                    "embedding": torch.from_numpy(emb.copy()),
                    "label": ["x"] * 64,
                    "idx": torch.arange(64),
                }

    return Ceiling


Ceiling = None


def main() -> None:
    global Ceiling
    try:
        import torch  # noqa: F401
    except ImportError:
        print('torch benchmark skipped: torch is not installed (pip install "atdata[torch]")')
        return
    from torch.utils.data import DataLoader

    import atdata

    Ceiling = _ceiling_cls()
    Ceiling.__qualname__ = "Ceiling"
    paths = W.shard_paths(W.data_dir())
    W.warm(paths)
    ds = atdata.Dataset[W.sample_type()](paths)
    print("to_torch(batch_size=64, shuffle=True, transform=to tensors), 20,000 samples:")
    for nw in (0, 1, 2):
        tds = ds.to_torch(batch_size=64, shuffle=True, seed=0, transform=_to_tensors)
        t0 = time.perf_counter()
        n = sum(len(b["idx"]) for b in tds.loader(num_workers=nw))
        ours = n / (time.perf_counter() - t0)
        t0 = time.perf_counter()
        m = sum(len(b["idx"]) for b in DataLoader(Ceiling(), batch_size=None, num_workers=nw))
        ceil = m / (time.perf_counter() - t0)
        print(
            f"  num_workers={nw}: atdata {ours:,.0f} samples/s; DataLoader ceiling {ceil:,.0f} ({ours / ceil:.2f}x)"
        )


if __name__ == "__main__":
    main()
