"""Random-mode order of ``to_torch``: a seeded Feistel permutation evaluated per slot (O(1)
memory) against the order array it replaced (``rng.permutation(n)``, 8 bytes per sample).

Rows, for ``n`` samples: the cost of the positions of a whole epoch taken 4,096 slots at a time
(what a worker does), in ns per sample, and the memory each keeps for the epoch.

Run: ``uv run python benchmarks/bench_torch_order.py [n]``.
"""

from __future__ import annotations

import sys
import time

import numpy as np


def main(argv: list[str]) -> None:
    from atdata.dataset._torch_plan import Permutation

    n = int(argv[0]) if argv else 10_000_000
    group = 4096
    t0 = time.perf_counter()
    order = np.random.default_rng([0, 1]).permutation(n)
    total = 0
    for lo in range(0, n, group):
        total += int(order[lo : lo + group][0])
    t_array = time.perf_counter() - t0
    mem_array = order.nbytes
    del order
    t0 = time.perf_counter()
    p = Permutation(n, 0, 1)
    for lo in range(0, n, group):
        total += int(p(np.arange(lo, min(lo + group, n)))[0])
    t_feistel = time.perf_counter() - t0
    mem_feistel = p.keys.nbytes
    print(
        f"n={n:,}: order array {t_array / n * 1e9:.1f} ns/sample, {mem_array / 2**20:.0f} MiB; "
        f"Feistel {t_feistel / n * 1e9:.1f} ns/sample, {mem_feistel} bytes "
        f"(ratio {t_feistel / t_array:.1f}x the time)"
    )


if __name__ == "__main__":
    main(sys.argv[1:])
