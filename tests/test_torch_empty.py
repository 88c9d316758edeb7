"""to_torch over datasets with no samples, or fewer samples than ranks: every rank gets the same
(empty) epoch, so distributed ranks step the same number of times; nothing raises."""

from __future__ import annotations

import tarfile
import warnings

import pytest

import atdata

pytestmark = [
    pytest.mark.usefixtures("torch_present"),
    pytest.mark.filterwarnings("ignore:This DataLoader will create:UserWarning"),
]


@pytest.fixture(scope="module")
def empty(tmp_path_factory):
    d = tmp_path_factory.mktemp("empty")
    for name in ("e-00.tar", "e-01.tar"):
        tarfile.open(d / name, "w").close()
    return atdata.Dataset(str(d / "e-{00..01}.tar"))


@pytest.fixture(scope="module")
def two(tmp_path_factory):
    d = tmp_path_factory.mktemp("two")
    return atdata.write_samples(
        [{"i": i} for i in range(2)], str(d / "t-%02d.tar"), maxcount=1, key="index", fsync=False
    )


CONFIGS = [
    {},
    {"batch_size": 4},
    {"shuffle": True, "seed": 3},
    {"mode": "stream"},
    {"mode": "stream", "shuffle": True, "batch_size": 2},
    {"policy": "pad"},
    {"output": "torch", "batch_size": 2},
]


@pytest.mark.parametrize("kw", CONFIGS)
@pytest.mark.parametrize("world_size", [1, 3])
def test_empty_dataset_gives_every_rank_an_empty_epoch(empty, kw, world_size):
    for rank in range(world_size):
        with warnings.catch_warnings():
            warnings.simplefilter("error")  # an empty dataset is not worth a warning
            tds = empty.to_torch(rank=rank, world_size=world_size, **kw)
        assert len(tds) == 0
        assert list(tds) == []
        tds.set_epoch(1)
        assert list(tds) == []
        state = tds.state_dict()
        assert (state["epoch"], state["position"]) == (1, 0)
        tds.load_state_dict(state)
        assert list(tds) == [] and len(tds) == 0


def test_empty_dataset_through_loader_workers(empty):
    tds = empty.to_torch(batch_size=2, shuffle=True)
    assert list(tds.loader(num_workers=2)) == []
    assert list(tds.loader(num_workers=0)) == []
    assert tds.state_dict()["position"] == 0


def test_filter_that_keeps_nothing(two):
    tds = two.filter(lambda s: s["i"] > 5).to_torch(rank=1, world_size=2)
    assert len(tds) == 0 and list(tds) == []


@pytest.mark.parametrize("mode", ["random", "stream"])
def test_fewer_samples_than_ranks(two, mode):
    for rank in range(4):
        with pytest.warns(UserWarning, match="2 samples for 4 ranks .* every rank an empty epoch"):
            tds = two.to_torch(rank=rank, world_size=4, mode=mode)
        assert len(tds) == 0 and list(tds) == []
    padded = [two.to_torch(rank=r, world_size=4, mode=mode, policy="pad") for r in range(4)]
    assert [len(t) for t in padded] == [1, 1, 1, 1]
    got = sorted(s["i"] for t in padded for s in t)
    assert got == [0, 0, 1, 1]
    exact = [two.to_torch(rank=r, world_size=2, mode=mode) for r in range(2)]
    assert sorted(s["i"] for t in exact for s in t) == [0, 1]
