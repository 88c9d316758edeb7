"""Run the benchmarks: ``uv run python benchmarks/run.py [read] [index] [query] ...`` (``just bench``).

Without arguments: the read benchmark (issue 3), then every ``benchmarks/bench_*.py`` found. With
names: only those (``read`` is this file's benchmark, ``x`` runs ``bench_x.py``).

The read benchmark measures every implementation in its own process (so each row's peak RSS is
its own), interleaving implementations over several rounds and keeping each one's best time, which
keeps ratios fair on a shared, noisy machine. The table is printed (rich) and saved as
``benchmarks/results.md``.
"""

from __future__ import annotations

import datetime
import glob
import json
import os
import platform
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

import _workload as W  # noqa: E402

ROUNDS = int(os.environ.get("ATDATA_BENCH_ROUNDS", "3"))

# (row, implementation, label, baselines it is compared with, target)
IMPLS = [
    (
        "sequential",
        "seq.ours",
        "atdata typed",
        ("seq.wds", "seq.tarwalk"),
        {"seq.wds": 6.0, "seq.tarwalk": 0.4},
    ),
    ("sequential", "seq.ours_view", "atdata copy_arrays=False", ("seq.wds", "seq.tarwalk"), {}),
    ("sequential", "seq.wds", "wds + msgpack + numpy", (), {}),
    ("sequential", "seq.tarwalk", "tarwalk (ceiling)", (), {}),
    ("batched 64", "batch.ours", "atdata batch_size=64", ("batch.wds",), {"batch.wds": 10.0}),
    ("batched 64", "batch.wds", "wds .batched(64)", (), {}),
    (
        "shuffled",
        "shuffle.ours",
        "atdata shuffled (full permutation)",
        ("shuffle.wds",),
        {"shuffle.wds": 5.0},
    ),
    ("shuffled", "shuffle.wds", "wds .shuffle(10000)", (), {}),
    ("random 1k", "random.ours_index", "atdata ds[i]", ("random.pread",), {"random.pread": 0.5}),
    (
        "random 1k",
        "random.ours_get",
        "atdata ds.get(key)",
        ("random.pread",),
        {"random.pread": 0.5},
    ),
    ("random 1k", "random.pread", "pread at known offsets (ceiling)", (), {}),
    ("write 5k", "write.ours", "atdata fsync=False", ("write.wds",), {"write.wds": 2.0}),
    ("write 5k", "write.ours_fsync", "atdata default (fsync=True)", ("write.wds",), {}),
    ("write 5k", "write.wds", "wds ShardWriter", (), {}),
]


def _row(name: str, repeats: int = 1, n: int = W.N_SAMPLES) -> dict:
    out = subprocess.run(
        [sys.executable, os.path.join(HERE, "_rows.py"), name, str(repeats), str(n)],
        capture_output=True,
        text=True,
        check=False,
    )
    if out.returncode != 0:
        raise SystemExit(f"benchmark {name} failed:\n{out.stderr}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def _import_time(rounds: int = 7) -> tuple[float, bool]:
    code = (
        "import sys, time; t = time.perf_counter(); import atdata; "
        "print(time.perf_counter() - t, 'numpy' in sys.modules)"
    )
    best, heavy = float("inf"), False
    for _ in range(rounds):
        out = subprocess.run(
            [sys.executable, "-c", code], capture_output=True, text=True, check=True
        )
        t, np_loaded = out.stdout.split()
        best = min(best, float(t))
        heavy = heavy or np_loaded == "True"
    return best, heavy


def run_read() -> str:
    from rich.console import Console
    from rich.markup import escape
    from rich.table import Table

    console = Console()
    d = W.data_dir()
    size = sum(os.path.getsize(p) for p in W.shard_paths(d))
    console.print(
        f"workload: {W.N_SAMPLES} samples, {len(W.shard_paths(d))} shards, {size / 1e6:.0f} MB in {d}"
    )
    best: dict[str, dict] = {}
    for r in range(ROUNDS):
        for _row_name, impl, *_ in IMPLS:
            res = _row(
                impl,
                1
                if impl.startswith(("seq", "batch", "shuffle"))
                else 3
                if impl.startswith("write")
                else 10,
            )
            if impl not in best or res["seconds"] < best[impl]["seconds"]:
                best[impl] = res
        console.print(f"round {r + 1}/{ROUNDS} done")
    mem = {n: _row("seq.ours", 1, n) for n in (W.N_SAMPLES // 4, W.N_SAMPLES // 2, W.N_SAMPLES)}
    imp, numpy_loaded = _import_time()

    def rate(k: str) -> float:
        return best[k]["n"] / best[k]["seconds"]

    table = Table(title=f"atdata read/write benchmark (best of {ROUNDS} rounds)")
    for col in (
        "row",
        "implementation",
        "samples/s",
        "MB/s",
        "ratio",
        "peak RSS MB",
        "target",
        "met",
    ):
        table.add_column(
            col,
            justify="right" if col not in ("row", "implementation", "ratio", "target") else "left",
        )
    md = [
        "| row | implementation | samples/s | MB/s | ratio | peak RSS MB | target | met |",
        "|---|---|---:|---:|---|---:|---|---|",
    ]
    all_met = True
    for row, impl, label, bases, targets in IMPLS:
        b = best[impl]
        ratios = [f"{rate(impl) / rate(x):.2f}x {x.split('.')[1]}" for x in bases]
        tgt = ", ".join(f">= {v}x {k.split('.')[1]}" for k, v in targets.items())
        met = all(rate(impl) / rate(k) >= v for k, v in targets.items()) if targets else None
        all_met = all_met and met is not False
        cells = [
            row,
            label,
            f"{rate(impl):,.0f}",
            f"{b['bytes'] / b['seconds'] / 1e6:,.0f}",
            "; ".join(ratios),
            f"{b['rss_mb']:.0f}",
            tgt,
            "" if met is None else ("yes" if met else "NO"),
        ]
        table.add_row(*[escape(c) for c in cells])
        md.append("| " + " | ".join(cells) + " |")
    cells = [
        "import",
        "import atdata (fresh process)",
        "",
        "",
        f"{imp * 1000:.0f} ms",
        "",
        "< 150 ms, no numpy",
        "yes" if imp < 0.15 and not numpy_loaded else "NO",
    ]
    table.add_row(*[escape(c) for c in cells])
    md.append("| " + " | ".join(cells) + " |")
    rss = [mem[n]["rss_mb"] for n in sorted(mem)]
    ok = max(rss) < 80 and max(rss) - min(rss) < 10
    for n in sorted(mem):
        cells = [
            "stream RSS",
            f"atdata typed, {n} samples ({n // W.PER_SHARD} shards)",
            f"{mem[n]['n'] / mem[n]['seconds']:,.0f}",
            "",
            "",
            f"{mem[n]['rss_mb']:.0f}",
            "< 80 MB, flat",
            "yes" if ok else "NO",
        ]
        table.add_row(*[escape(c) for c in cells])
        md.append("| " + " | ".join(cells) + " |")
    console.print(table)
    all_met = all_met and ok and imp < 0.15 and not numpy_loaded
    console.print("all targets met" if all_met else "[red]some targets missed[/red]")
    head = [
        "# Benchmark results",
        "",
        f"Produced by `just bench` (`uv run python benchmarks/run.py`) on {datetime.date.today()}, "
        f"Python {platform.python_version()}, {os.cpu_count()} CPUs (shared), {platform.machine()}.",
        f"Workload: {W.N_SAMPLES} samples of image uint8 (3,64,64), embedding float32 (256,), label, score, "
        f"idx in {W.N_SAMPLES // W.PER_SHARD} shards of {W.PER_SHARD} ({size / 1e6:.0f} MB), local disk, warm page cache. "
        "Each implementation runs in its own process; best of "
        f"{ROUNDS} interleaved rounds. Ratios compare samples/s measured in the same run.",
        "",
    ]
    text = "\n".join(
        [*head, *md, "", "All targets met." if all_met else "Some targets missed (see `met`).", ""]
    )
    with open(os.path.join(HERE, "results.md"), "w", encoding="utf-8") as f:
        f.write(text)
    return text


def main(argv: list[str]) -> None:
    others = sorted(glob.glob(os.path.join(HERE, "bench_*.py")))
    names = argv or ["read", *[os.path.basename(p)[6:-3] for p in others]]
    for name in names:
        if name == "read":
            run_read()
            continue
        path = os.path.join(HERE, f"bench_{name}.py")
        if not os.path.exists(path):
            raise SystemExit(f"no benchmark {name!r} (expected {path})")
        subprocess.run([sys.executable, path], check=True)


if __name__ == "__main__":
    main(sys.argv[1:])
