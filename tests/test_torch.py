"""PyTorch integration: exactly-once splitting across workers and ranks, epochs, mid-epoch resume."""

from __future__ import annotations

import collections
import importlib.util
import itertools

import numpy as np
import pytest

import atdata
from atdata.dataset._torch import rank_slots
from tests._services import require_service

pytestmark = pytest.mark.filterwarnings("ignore:This DataLoader will create:UserWarning")

N = 23  # three shards of 8, 8 and 7: fewer shards than 4 workers x 3 ranks


@pytest.fixture(autouse=True)
def _torch_present():
    if importlib.util.find_spec("torch") is None:
        require_service("torch", 'not installed (pip install "atdata[torch]")')


@pytest.fixture(scope="module")
def ds(tmp_path_factory):
    d = tmp_path_factory.mktemp("torchds")
    return atdata.write_samples(
        [{"i": i} for i in range(N)], str(d / "s-%02d.tar"), maxcount=8, key="index", fsync=False
    )


def _ids(items):
    return [s["i"] for s in items]


def _run(tds, workers, limit=None, **kw):
    """Items delivered by a recording loader (stopping after ``limit`` items)."""
    out = []
    for item in tds.loader(num_workers=workers, **kw):
        out.append(item)
        if limit is not None and len(out) >= limit:
            break
    return out


@pytest.mark.parametrize(("workers", "world"), list(itertools.product([1, 2, 4], [1, 2, 3])))
@pytest.mark.parametrize("policy", ["drop_last", "pad"])
def test_exactly_once_across_workers_and_ranks(ds, workers, world, policy):
    per_rank = []
    for rank in range(world):
        tds = ds.to_torch(rank=rank, world_size=world, policy=policy, shuffle=True, seed=3)
        per_rank.append(_ids(_run(tds, workers)))
    counts = [len(r) for r in per_rank]
    assert len(set(counts)) == 1  # equal counts per rank
    seen = collections.Counter(itertools.chain.from_iterable(per_rank))
    if policy == "drop_last":
        assert counts[0] == N // world
        assert all(c == 1 for c in seen.values())
        assert len(seen) == (N // world) * world
    else:
        assert counts[0] == -(-N // world)
        assert set(seen) == set(range(N))
        assert sum(seen.values()) - N == counts[0] * world - N  # only the padding repeats


def test_num_workers_zero_and_plain_iteration(ds):
    tds = ds.to_torch(rank=1, world_size=3)
    assert _ids(tds) == [1, 4, 7, 10, 13, 16, 19]  # 21 of 23 kept by drop_last, dealt round-robin
    assert len(tds) == 7
    assert _ids(_run(ds.to_torch(rank=1, world_size=3), 0)) == [1, 4, 7, 10, 13, 16, 19]
    from torch.utils.data import DataLoader

    assert _ids(DataLoader(ds.to_torch(), batch_size=None)) == list(range(N))


def test_epochs_are_deterministic_and_differ(ds):
    a = ds.to_torch(shuffle=True, seed=7)
    b = ds.to_torch(shuffle=True, seed=7)
    a.set_epoch(2)
    b.set_epoch(2)
    first = _ids(a)
    assert first == _ids(b)
    assert sorted(first) == list(range(N))
    a.set_epoch(3)
    assert _ids(a) != first
    assert _ids(ds.to_torch(shuffle=True, seed=8, rank=0, world_size=1)) != _ids(
        ds.to_torch(shuffle=True, seed=7)
    )


@pytest.mark.parametrize("world", [1, 3])
def test_resume_twice_with_changing_workers(ds, world):
    for rank in range(world):
        kw = dict(rank=rank, world_size=world, shuffle=True, seed=11)
        full = ds.to_torch(**kw)
        full.set_epoch(1)
        expected = _ids(full)

        t1 = ds.to_torch(**kw)
        t1.set_epoch(1)
        part1 = _ids(_run(t1, 2, limit=3))
        s1 = t1.state_dict()
        assert len(s1["consumed"]) == 3

        t2 = ds.to_torch(**kw)
        t2.load_state_dict(s1)
        part2 = _ids(_run(t2, 4, limit=2))
        s2 = t2.state_dict()
        assert len(s2["consumed"]) == 5

        t3 = ds.to_torch(**kw)
        t3.load_state_dict(s2)
        part3 = _ids(_run(t3, 0))
        got = part1 + part2 + part3
        assert sorted(got) == sorted(expected)  # exactly the samples of the epoch, none twice
        assert len(got) == len(expected)
        assert set(part3).isdisjoint(part1 + part2)


def test_resume_state_survives_json_and_finishes_epoch(ds):
    import json

    t = ds.to_torch(batch_size=4, shuffle=True, seed=1)
    it = iter(t)
    first = [next(it), next(it)]
    state = json.loads(json.dumps(t.state_dict()))
    t2 = ds.to_torch(batch_size=4, shuffle=True, seed=1)
    t2.load_state_dict(state)
    rest = list(t2)
    keys = [k for b in first + rest for k in b.keys]
    assert sorted(keys) == [f"{i:08d}" for i in range(N)]
    assert [len(b) for b in rest] == [4, 4, 4, 3]
    # the finished epoch starts over on the next iteration
    assert sum(len(b) for b in t2) == N


def test_batches_are_stacked_typed(tmp_path):
    ds = atdata.write_samples(
        [TorchRow(x=np.full(3, i, dtype="f4"), name=str(i)) for i in range(10)],
        str(tmp_path / "t.tar"),
        key="index",
        fsync=False,
    )
    tds = ds.to_torch(batch_size=4, drop_last_batch=True)
    batches = _run(tds, 2)
    assert len(batches) == 2
    xs = np.concatenate([b.x for b in batches])
    assert xs.shape == (8, 3)
    assert sorted(xs[:, 0].tolist()) == [0.0, 1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0]


def test_transform_and_spawn(ds):
    import torch

    tds = ds.to_torch(world_size=2, rank=0, transform=_as_tensor)
    got = _run(tds, 2, multiprocessing_context="spawn")
    assert all(isinstance(t, torch.Tensor) for t in got)
    assert sorted(int(t) for t in got) == list(range(0, 22, 2))
    assert len(tds.state_dict()["consumed"]) == 11


def test_configuration_errors(ds):
    with pytest.raises(atdata.ConfigError, match="cannot give each of 30 ranks"):
        ds.to_torch(rank=0, world_size=30)
    assert len(ds.to_torch(rank=29, world_size=30, policy="pad")) == 1
    with pytest.raises(atdata.ConfigError, match="rank 3 is not in range"):
        ds.to_torch(rank=3, world_size=3)
    with pytest.raises(atdata.ConfigError, match="policy must be"):
        ds.to_torch(policy="wrap")
    with pytest.raises(atdata.ConfigError, match="both rank and world_size"):
        ds.to_torch(rank=0)
    with pytest.raises(atdata.ConfigError, match="batch_size must be"):
        ds.to_torch(batch_size=0)
    state = ds.to_torch(seed=1, shuffle=True).state_dict()
    with pytest.raises(atdata.ConfigError, match="seed=1"):
        ds.to_torch(seed=2, shuffle=True).load_state_dict(state)
    with pytest.raises(atdata.ConfigError, match="pass batch_size to to_torch"):
        ds.to_torch().loader(batch_size=4)
    with pytest.raises(atdata.ConfigError, match="persistent_workers"):
        ds.to_torch().loader(num_workers=1, persistent_workers=True)
    with pytest.raises(atdata.ConfigError, match="filtered dataset"):
        ds.filter(lambda s: True).to_torch()
    assert _ids(ds.select([5, 2, 9]).to_torch()) == [5, 2, 9]


def test_rank_slots_values():
    assert rank_slots(10, 0, 4, "drop_last", None, 0) == [0, 4]
    assert rank_slots(10, 3, 4, "pad", None, 0) == [3, 7, 1]
    assert rank_slots(2, 4, 5, "pad", None, 0) == [0]
    perm = sorted(rank_slots(10, 0, 1, "drop_last", 5, 0))
    assert perm == list(range(10))


def _as_tensor(s):
    import torch

    return torch.tensor(s["i"])


@atdata.packable
class TorchRow:
    x: atdata.NDArray
    name: str
