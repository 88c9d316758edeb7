"""Module-level functions and helpers for the watcher tests (importable by `atdata watch --fn`
in subprocesses, which run with the repository root as their working directory)."""

from __future__ import annotations

import hashlib
import os
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

import atdata
from tests._process_helpers import Num

ROOT = Path(__file__).resolve().parent.parent


def triple(s: Num) -> Num:
    return Num(x=s.x * 3, name=s.name + "!")


def counted_triple(s: Num) -> Num:
    """triple(), appending one line per call to $ATDATA_WATCH_COUNTER (across processes)."""
    with open(os.environ["ATDATA_WATCH_COUNTER"], "a") as f:
        f.write(f"{s.x}\n")
    if os.environ.get("ATDATA_WATCH_SLOW"):
        time.sleep(float(os.environ["ATDATA_WATCH_SLOW"]))
    return triple(s)


def die_once(s: Num) -> Num:
    """SIGKILL this process at sample x == $ATDATA_WATCH_DIE_X, the first time only (a marker
    file next to the counter remembers it)."""
    marker = os.environ["ATDATA_WATCH_DIE_MARKER"]
    if s.x == int(os.environ["ATDATA_WATCH_DIE_X"]) and not os.path.exists(marker):
        Path(marker).write_text("died")
        os.kill(os.getpid(), signal.SIGKILL)
    return triple(s)


def fail_on_7(s: Num) -> Num:
    if s.x == 7:
        raise ValueError("x == 7 is not allowed")
    return triple(s)


def write_shards(directory: Path, n: int, per: int = 5, start: int = 0, manifest: bool = False):
    """n shards `s-000000.tar`... of `per` Num samples each, x = start, start+1, ..."""
    samples = [Num(x=start + i, name=f"n{start + i}") for i in range(n * per)]
    return atdata.write_samples(
        samples, str(directory / "s.tar"), maxcount=per, manifest=manifest, key="index"
    )


def sha(path: str | Path) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def outputs(out: Path) -> dict[str, str]:
    """Output shard name -> sha256 (the visible .tar files only)."""
    return {p.name: sha(p) for p in sorted(out.glob("*.tar"))}


def counts(counter: Path) -> dict[int, int]:
    got: dict[int, int] = {}
    if counter.exists():
        for line in counter.read_text().split():
            got[int(line)] = got.get(int(line), 0) + 1
    return got


def watch_cmd(src: str, out: Path, fn: str, ledger: str, prefix: str | None, name: str,
              *extra: str) -> list[str]:  # fmt: skip
    cmd = [sys.executable, "-m", "atdata", "watch", src, "--out", str(out), "--fn", fn,
           "--type", "tests._process_helpers:Num", "--ledger", ledger, "--name", name, *extra]  # fmt: skip
    if prefix:
        cmd += ["--prefix", prefix]
    return cmd


def run_watch(cmd: list[str], env: dict[str, str], timeout: float = 120) -> subprocess.Popen:
    return subprocess.Popen(
        cmd, cwd=ROOT, env={**os.environ, "PYTHONPATH": str(ROOT), **env},
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )  # fmt: skip


def poll_until(w: atdata.Watcher, n: int, pause: float = 0.0, timeout: float = 120) -> list[str]:
    """Poll ``w`` until ``n`` shards were processed (none may fail or park); their names."""
    processed: list[str] = []
    deadline = time.monotonic() + timeout
    while len(processed) < n and time.monotonic() < deadline:
        rep = w.poll_once()
        assert rep.failed == [] and rep.parked == []
        processed += rep.processed
        time.sleep(pause)
    return processed


def unique() -> str:
    return uuid.uuid4().hex[:10]


def slow_triple(s: Num) -> Num:
    """triple() after 0.25 s (a shard of 5 takes ~1.25 s: twice a short lease)."""
    time.sleep(0.25)
    return counted_triple(s)
