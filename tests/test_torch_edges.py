"""Edge cases of to_torch's iteration: loops that overlap, loops left early, state between them."""

from __future__ import annotations

import pytest

import atdata

pytestmark = [
    pytest.mark.usefixtures("torch_present"),
    pytest.mark.filterwarnings("ignore:This DataLoader will create:UserWarning"),
]

N = 23  # three shards of 8, 8 and 7


@pytest.fixture(scope="module")
def ds(tmp_path_factory):
    d = tmp_path_factory.mktemp("edges")
    atdata.write_samples(
        [{"i": i} for i in range(N)], str(d / "s-%02d.tar"), maxcount=8, key="index", fsync=False
    )
    return atdata.Dataset(str(d / "s-{00..02}.tar"))


def _ids(batch):
    return [int(i) for i in batch.i]


@pytest.mark.parametrize(
    ("mode", "workers", "persistent"),
    [("random", 0, False), ("stream", 0, False), ("random", 2, False), ("stream", 2, True)],
)
def test_an_overtaken_loop_raises_instead_of_repeating_items(ds, mode, workers, persistent):
    # two loops over one dataset share its position: the older one used to go on from where
    # the newer had started, delivering items twice, while state_dict() followed whichever
    # moved last
    tds = ds.to_torch(batch_size=4, shuffle=True, seed=2, mode=mode)
    whole = [_ids(b) for b in tds.loader(num_workers=0)]
    if workers:
        loader = tds.loader(num_workers=workers, persistent_workers=persistent)
    else:
        loader = tds.loader()
    first, second = iter(loader), iter(loader)
    assert _ids(next(first)) == whole[0]
    assert _ids(next(second)) == whole[1]  # the latest loop goes on from the position
    with pytest.raises(atdata.ConfigError, match="another loop over this dataset started"):
        next(first)
    assert tds.state_dict()["position"] == 8
    assert [_ids(b) for b in second] == whole[2:]
    assert tds.state_dict()["position"] == N


def test_an_overtaken_iteration_of_the_dataset_itself_raises(ds):
    tds = ds.to_torch(batch_size=4)
    first, second = iter(tds), iter(tds)
    assert _ids(next(first)) == [0, 1, 2, 3]
    assert _ids(next(second)) == [4, 5, 6, 7]
    with pytest.raises(atdata.ConfigError, match="another loop over this dataset started"):
        next(first)
    assert [_ids(b)[0] for b in second] == [8, 12, 16, 20]
