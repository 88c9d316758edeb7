"""DataLoader workers and what cannot be pickled: a sample type or transform defined inside a
function fails fast with WorkerPickleError (naming it and the fix) instead of hanging the
training loop. Each test has a hard timeout, so a regression fails rather than hangs."""

from __future__ import annotations

import multiprocessing

import numpy as np
import pytest

import atdata

pytestmark = [
    pytest.mark.usefixtures("torch_present"),
    pytest.mark.timeout(120),
    pytest.mark.filterwarnings("ignore:This DataLoader will create:UserWarning"),
]

_FORK = "fork" in multiprocessing.get_all_start_methods()


@atdata.packable
class Row:
    """A module-level sample type: workers can send it."""

    x: np.ndarray
    i: int


def _local_type():
    @atdata.packable
    class LocalRow:
        x: np.ndarray
        i: int

    return LocalRow


def _write(tmp_path, cls, n=12):
    return atdata.write_samples(
        [cls(x=np.full(3, i, dtype=np.float32), i=i) for i in range(n)],
        str(tmp_path / "s.tar"),
        fsync=False,
    )


def _wrap(batch):
    """A transform returning an object of a class made inside a function (from the third
    batch on: a check of the first item alone would miss it)."""

    class Box:
        pass

    if batch.i[0] < 8:
        return batch
    box = Box()
    box.batch = batch
    return box


@pytest.mark.skipif(not _FORK, reason="needs the fork start method")
def test_local_sample_type_with_fork_workers_fails_fast(tmp_path):
    ds = _write(tmp_path, _local_type())
    tds = ds.to_torch(batch_size=4)
    with pytest.raises(atdata.WorkerPickleError) as err:
        tds.loader(num_workers=2, multiprocessing_context="fork")
    msg = str(err.value)
    assert "the sample type '_local_type.<locals>.LocalRow'" in msg
    assert "define it at module level" in msg and "num_workers=0" in msg
    assert isinstance(err.value, TypeError) and isinstance(err.value, atdata.ConfigError)
    # the same dataset works without workers, and as tensors (no sample type crosses)
    assert next(list(b.i) for b in tds.loader(num_workers=0)) == [0, 1, 2, 3]
    tt = ds.to_torch(batch_size=4, output="torch")
    got = list(tt.loader(num_workers=2, multiprocessing_context="fork"))
    assert sorted(int(i) for b in got for i in b["i"]) == list(range(12))


def test_local_sample_type_and_lambda_with_spawn_fail_fast(tmp_path):
    tds = _write(tmp_path, _local_type()).to_torch(batch_size=4, output="torch")
    with pytest.raises(atdata.WorkerPickleError, match=r"\(spawn start method\).*LocalRow.*fork"):
        tds.loader(num_workers=1, multiprocessing_context="spawn")
    ok = _write(tmp_path, Row)
    with pytest.raises(atdata.WorkerPickleError, match=r"cannot pickle transform '.*<lambda>'"):
        ok.to_torch(batch_size=4, transform=lambda b: b).loader(
            num_workers=1, multiprocessing_context="spawn"
        )
    with pytest.raises(atdata.WorkerPickleError, match=r"the filter function '.*<lambda>'"):
        ok.filter(lambda s: s.i > 2).to_torch().loader(
            num_workers=1, multiprocessing_context="spawn"
        )
    # a module-level type and transform pass the check and run
    got = list(ok.to_torch(batch_size=4).loader(num_workers=1, multiprocessing_context="spawn"))
    assert [list(b.i) for b in got] == [[0, 1, 2, 3], [4, 5, 6, 7], [8, 9, 10, 11]]


@pytest.mark.skipif(not _FORK, reason="needs the fork start method")
def test_unsendable_transform_output_fails_in_the_worker(tmp_path):
    tds = _write(tmp_path, Row).to_torch(batch_size=4, transform=_wrap)
    loader = tds.loader(num_workers=2, multiprocessing_context="fork")
    got = []
    with pytest.raises(atdata.WorkerPickleError) as err:
        got.extend(loader)
    msg = str(err.value)
    assert "cannot send the item a transform made (Box:" in msg
    assert "_wrap.<locals>.Box" in msg and "num_workers=0" in msg
    assert [list(b.i) for b in got] == [[0, 1, 2, 3], [4, 5, 6, 7]]
    assert tds.state_dict()["position"] == 8  # what was delivered, not the lost batch


def test_a_module_level_lens_runs_under_spawn(tmp_path):
    # the lens named by its getter's module and name was the Lens, not the getter, so a
    # lens-viewed dataset could never reach spawned workers ("define it at module level")
    from tests._lens_defs import Full, NameOnly

    ds = atdata.write_samples(
        [Full(name=f"n{i}", value=i) for i in range(5)], str(tmp_path / "f.tar"), fsync=False
    )
    tds = ds.as_type(NameOnly).to_torch(batch_size=2)
    got = list(tds.loader(num_workers=1, multiprocessing_context="spawn"))
    assert [list(b.name) for b in got] == [["n0", "n1"], ["n2", "n3"], ["n4"]]
