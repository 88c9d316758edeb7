"""Edge cases of to_torch's iteration: loops that overlap, loops left early, state between them."""

from __future__ import annotations

import functools
import os

import pytest

import atdata
from tests._helpers import FileHandler, serve_http

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


# -- connections that drop mid-shard -----------------------------------------------------------
class _Dropping(FileHandler):
    """Serves files, but cuts the body of ``s-01.tar`` in half (the announced Content-Length
    kept) while ``server.drops`` is above 0, counting down; ``server.tries`` counts its GETs."""

    def do_GET(self):
        path = self.translate_path(self.path)
        if path.endswith("s-01.tar"):
            self.server.tries += 1
        if path.endswith("s-01.tar") and self.server.drops > 0:
            self.server.drops -= 1
            with open(path, "rb") as f:
                data = f.read()
            self.send_response(200)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data[: len(data) // 2])
            self.close_connection = True
            return
        super().do_GET()


@pytest.fixture
def dropping(ds, monkeypatch):
    monkeypatch.setattr("atdata.dataset._torch_cache._RETRY_PAUSE", 0.0)
    directory = os.path.dirname(ds.list_shards()[0])
    with serve_http(functools.partial(_Dropping, directory=directory)) as srv:
        srv.drops = srv.tries = 0
        yield srv


@pytest.mark.parametrize(("workers", "cached"), [(0, False), (0, True), (2, False), (2, True)])
def test_a_connection_dropped_mid_shard_is_fetched_again(dropping, tmp_path, workers, cached):
    # one drop was survived only when the prefetch thread met it (the reader fetched the
    # shard again); the reader meeting it itself, or two drops, ended the epoch
    dropping.drops = 2
    kw = {"cache_dir": tmp_path / "c"} if cached else {}
    tds = atdata.Dataset(f"{dropping.url}/s-{{00..02}}.tar").to_torch(batch_size=4, **kw)
    got = sorted(i for b in tds.loader(num_workers=workers) for i in _ids(b))
    assert got == list(range(N))
    assert dropping.drops == 0
    assert dropping.tries == 3  # two cut short, then the whole shard
    if cached:
        assert not [f for f in os.listdir(tmp_path / "c") if ".part-" in f]


@pytest.mark.parametrize("workers", [0, 2])
def test_a_connection_that_keeps_dropping_raises_after_a_few_attempts(dropping, workers):
    dropping.drops = 100
    tds = atdata.Dataset(f"{dropping.url}/s-{{00..02}}.tar").to_torch(batch_size=4)
    with pytest.raises(atdata.ShardError, match=r"shard http://.*/s-01\.tar ended after"):
        for _ in tds.loader(num_workers=workers):
            pass
    assert 3 <= dropping.tries <= 4 * max(1, workers)  # (a prefetch's try, then its reader's 3)


# -- local shards that change between epochs -------------------------------------------------
def _write_rows(path, first, n=8):
    """``n`` samples ``first``, ``first + 1``, ... whose payload sizes differ from row to row."""
    rows = [{"i": i, "s": "x" * (i % 5)} for i in range(first, first + n)]
    return atdata.write_samples(rows, str(path), key="index", fsync=False)


@pytest.mark.parametrize("workers", [0, 2])
def test_a_local_shard_replaced_between_epochs_raises_naming_it(tmp_path, workers):
    # without workers the next epoch read the replaced file's old bytes through a descriptor
    # kept open (samples of a shard that was gone); workers read the new file at the old
    # offsets and raised 'payload is not valid msgpack'
    path = tmp_path / "s.tar"
    _write_rows(path, 0)
    tds = atdata.Dataset(str(path)).to_torch(batch_size=4, mode="random")
    loader = tds.loader(num_workers=workers)
    assert [i for b in loader for i in _ids(b)] == list(range(8))
    replacement = tmp_path / "new.tar"
    _write_rows(replacement, 101)
    os.replace(replacement, path)
    tds.set_epoch(1)
    with pytest.raises(atdata.ShardError, match=rf"shard {path} changed after to_torch\(\) read"):
        list(loader)


@pytest.mark.parametrize("workers", [0, 2])
def test_a_local_shard_removed_between_epochs_is_not_found(tmp_path, workers):
    path = tmp_path / "s.tar"
    _write_rows(path, 0)
    tds = atdata.Dataset(str(path)).to_torch(batch_size=4, mode="random")
    loader = tds.loader(num_workers=workers)
    assert [i for b in loader for i in _ids(b)] == list(range(8))
    os.unlink(path)
    tds.set_epoch(1)
    with pytest.raises(atdata.DataNotFoundError, match=rf"shard not found: {path}"):
        list(loader)


@pytest.mark.parametrize("epoch", [1.5, "3", None, True])
def test_set_epoch_refuses_what_is_not_an_integer(ds, epoch):
    # 1.5 was taken as epoch 1 and "3" as 3 (load_state_dict refused both in a saved state)
    tds = ds.to_torch(shuffle=True)
    with pytest.raises(
        atdata.ArgumentTypeError, match=rf"set_epoch\(\) takes an integer, got {epoch!r}"
    ):
        tds.set_epoch(epoch)
    assert tds.epoch == 0


def test_set_epoch_takes_numpy_and_torch_integers(ds):
    import numpy as np
    import torch

    tds = ds.to_torch(shuffle=True)
    tds.set_epoch(np.int64(4))
    assert tds.epoch == 4 and type(tds.epoch) is int
    tds.set_epoch(torch.tensor(5))
    assert tds.epoch == 5 and type(tds.epoch) is int
    assert tds.state_dict()["epoch"] == 5


@pytest.mark.parametrize(("workers", "persistent"), [(0, False), (2, False), (2, True)])
def test_len_of_a_resumed_epoch_does_not_set_off_torch_length_warnings_later(
    ds, workers, persistent
):
    # torch keeps the last len(loader) and warns on every item past it: after a resumed epoch
    # (len 2) each item of the next, whole epoch past the second raised 'Length of
    # IterableDataset ... was reported to be 2 ... but 3 samples have been fetched'
    import warnings

    tds = ds.to_torch(batch_size=4)
    state = tds.state_dict() | {"position": 16}
    tds.load_state_dict(state)
    kw = {"persistent_workers": True} if persistent else {}
    loader = tds.loader(num_workers=workers, **kw)
    assert len(loader) == 2
    assert [len(b) for b in loader] == [4, 3]
    tds.set_epoch(1)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        assert [len(b) for b in loader] == [4, 4, 4, 4, 4, 3]
    assert [str(w.message) for w in caught if "Length of IterableDataset" in str(w.message)] == []
    assert len(loader) == 6
