"""Datasets the viewer tests look at (shared by the API and the browser tests)."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

import atdata

N = 60
PER_SHARD = 25
LABELS = ("cat", "dog", "bird")


@atdata.packable
class ViewRow:
    image: atdata.NDArray  # uint8 CHW (3, 16, 20)
    depth: atdata.NDArray  # float32 HW (12, 10)
    embedding: atdata.NDArray  # float32 (8,): no thumbnail
    label: str
    caption: str
    score: float
    blob: bytes
    words: list[str]


def rows(n: int = N) -> list[ViewRow]:
    rng = np.random.default_rng(7)
    out = []
    for i in range(n):
        depth = np.linspace(-1.0, 3.0, 120, dtype=np.float32).reshape(12, 10) * (1 + i % 3)
        out.append(
            ViewRow(
                image=rng.integers(0, 256, (3, 16, 20), dtype=np.uint8),
                depth=depth,
                embedding=np.full(8, i, np.float32),
                label=LABELS[i % 3],
                caption=("long caption " * 40) if i % 10 == 0 else f"row {i}",
                score=i / 4,
                blob=bytes(i),
                words=[f"w{j}" for j in range(i % 30)],
            )
        )
    return out


def write_pics(d: Path, manifest: bool = True) -> str:
    """``N`` rows in shards of ``PER_SHARD`` under ``d``; returns the brace pattern."""
    atdata.write_samples(
        rows(),
        os.path.join(d, "pics-%06d.tar"),
        maxcount=PER_SHARD,
        key="index",
        manifest=manifest,
        fsync=False,
    )
    return os.path.join(d, "pics-{000000..000002}.tar")
