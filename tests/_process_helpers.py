"""Module-level sample types and functions for the shard-processing tests (picklable, so they
can reach worker processes started with ``spawn``)."""

from __future__ import annotations

import os
import signal
import time

import numpy as np

import atdata
from atdata import NDArray


@atdata.packable
class Num:
    x: int
    name: str


@atdata.packable
class Feat:
    x: int
    vec: NDArray


def to_feat(s: Num) -> Feat:
    """A ~deterministic feature sample from a Num."""
    return Feat(x=s.x * 3, vec=np.arange(4, dtype="f4") + s.x)


def square(s: Num) -> Num:
    return Num(x=s.x * s.x, name=s.name.upper())


def shard_sum(samples: list[Num]) -> int:
    return sum(s.x for s in samples)


def count_and_square(s: Num) -> Num:
    """square(), appending one line per call to $ATDATA_TEST_COUNTER (works across processes)."""
    with open(os.environ["ATDATA_TEST_COUNTER"], "a") as f:
        f.write(f"{s.x}\n")
    return square(s)


def die_on_x(s: Num) -> Num:
    """SIGKILL the process that handles the sample with x == $ATDATA_TEST_DIE_X."""
    if s.x == int(os.environ["ATDATA_TEST_DIE_X"]):
        os.kill(os.getpid(), signal.SIGKILL)
    return square(s)


def sleep_on_x(samples: list[Num]) -> int:
    """Sleep far too long in the shard holding x == $ATDATA_TEST_SLEEP_X."""
    if any(s.x == int(os.environ["ATDATA_TEST_SLEEP_X"]) for s in samples):
        time.sleep(60)
    return len(samples)


def busy_ms(s: Num) -> Num:
    """About 1 ms of CPU per sample (for the benchmark)."""
    end = time.perf_counter() + 0.001
    while time.perf_counter() < end:
        pass
    return s


def fails_on_x3(s: Num) -> Num:
    if s.x == 3:
        raise ValueError("x == 3 is not allowed")
    return s


def hold_shard_one(s: Num) -> Num:
    """Shard 0 waits until the worker on shard 1 is inside the function (its temporary output
    is open), then finishes; shard 1 then sleeps far too long. Marker: $ATDATA_TEST_MARK."""
    mark = os.environ["ATDATA_TEST_MARK"]
    if s.x == 2:  # the first sample of shard 1 (2 per shard)
        open(mark, "w").close()
        time.sleep(60)
    elif s.x == 0:
        end = time.monotonic() + 30
        while not os.path.exists(mark) and time.monotonic() < end:
            time.sleep(0.01)
    return s


def hold_shard_one_at(mark: str, s: Num) -> Num:
    """``hold_shard_one`` with the marker path bound (``functools.partial``) rather than read
    from the environment, which Ray's workers do not share; shard 2 sleeps far too long as
    well (whenever it starts). The marker holds the names of shard 1's temporary output files
    as they were while it held."""
    if s.x == 4:  # the first sample of shard 2
        time.sleep(60)
    elif s.x == 2:  # the first sample of shard 1 (2 per shard)
        out = os.path.dirname(mark)
        temps = sorted(n for n in os.listdir(out) if n.startswith(".d-000001.tar.tmp-"))
        with open(mark + ".part", "w") as f:
            f.write("\n".join(temps))
        os.replace(mark + ".part", mark)
        time.sleep(60)
    elif s.x == 0:
        end = time.monotonic() + 30
        while not os.path.exists(mark) and time.monotonic() < end:
            time.sleep(0.01)
    return s


def die_on_x2(s: Num) -> Num:
    """SIGKILL the process that handles the sample with x == 2 (the first of shard 1)."""
    if s.x == 2:
        os.kill(os.getpid(), signal.SIGKILL)
    return s


def hold_zero_fail_one(mark: str, s: Num) -> Num:
    """Shard 0 creates ``mark`` and sleeps far too long (its temporary output open); shard 1
    waits for ``mark``, then raises (2 samples per shard)."""
    if s.x == 0:
        open(mark, "w").close()
        time.sleep(60)
    elif s.x == 2:
        end = time.monotonic() + 30
        while not os.path.exists(mark) and time.monotonic() < end:
            time.sleep(0.01)
        raise ValueError("x == 2 fails")
    return s


@atdata.packable
class KillOnce:
    """A sample whose making SIGKILLs the process once: the first time one with x == 1 is made
    (``mark``, a path, records that it happened)."""

    x: int
    mark: str

    def __post_init__(self) -> None:
        if self.x == 1 and not os.path.exists(self.mark):
            open(self.mark, "w").close()
            os.kill(os.getpid(), signal.SIGKILL)
