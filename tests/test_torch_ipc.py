"""Worker -> training process transport: the array columns of a batch share one shared-memory
arena (one descriptor per batch), and what arrives is what the batch holds without workers."""

from __future__ import annotations

import multiprocessing

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import atdata

pytestmark = [
    pytest.mark.usefixtures("torch_present"),
    pytest.mark.timeout(180),
    pytest.mark.filterwarnings(
        "ignore:This DataLoader will create:UserWarning", "ignore:.*pin_memory.*:UserWarning"
    ),
]


@atdata.packable
class Two:
    """Two array columns (both above the inline limit) and a scalar."""

    img: np.ndarray
    emb: np.ndarray
    i: int


_DTYPES = ["u1", "i2", "f4", "f8", "i8", "bool"]


@settings(max_examples=40, deadline=None)
@given(
    st.lists(
        st.lists(
            st.tuples(st.lists(st.integers(0, 9), max_size=3), st.sampled_from(_DTYPES)),
            min_size=1,
            max_size=5,
        ),
        min_size=1,
        max_size=4,
    )
)
def test_arena_arrays_never_overlap_and_keep_their_values(batches):
    from atdata.dataset import _torch_ipc as ipc

    hint = [0]
    for cols in batches:
        reg: dict = {}
        alloc = ipc.shm_alloc(reg, hint)
        arrays = []
        for k, (shape, dt) in enumerate(cols):
            a = alloc(tuple(shape), np.dtype(dt))
            assert a.shape == tuple(shape) and a.dtype == np.dtype(dt)
            a[...] = k + 1
            arrays.append(a)
        for k, a in enumerate(arrays):  # no array wrote over another
            assert (a == np.asarray(k + 1).astype(a.dtype)).all()
            if a.nbytes:
                t = reg[a.ctypes.data][1]
                assert t.shape == a.shape and t.numpy().tobytes() == a.tobytes()
                assert (t.storage_offset() * a.itemsize) % 64 == 0
    # once the hint covers a batch, the whole batch lies in one storage
    reg = {}
    alloc = ipc.shm_alloc(reg, hint)
    arrays = [alloc(tuple(s), np.dtype(d)) for s, d in batches[-1]]
    ptrs = {reg[a.ctypes.data][1].untyped_storage().data_ptr() for a in arrays if a.nbytes}
    assert len(ptrs) <= 1


@pytest.fixture(scope="module")
def two(tmp_path_factory):
    d = tmp_path_factory.mktemp("arena")
    rows = [
        Two(
            img=np.full((3, 32, 32), i, dtype=np.uint8),
            emb=np.arange(8192, dtype=np.float32) + i,
            i=i,
        )
        for i in range(40)
    ]
    return atdata.write_samples(rows, str(d / "s.tar"), fsync=False)


@pytest.mark.skipif(
    "fork" not in multiprocessing.get_all_start_methods(), reason="needs the fork start method"
)
def test_batch_columns_arrive_as_views_of_one_storage(two):
    import torch

    tds = two.to_torch(batch_size=8, shuffle=True, output="torch")
    want = list(tds.loader(num_workers=0))
    got = list(tds.loader(num_workers=2, pin_memory=True, multiprocessing_context="fork"))
    assert len(got) == len(want) == 5
    for w, g in zip(want, got, strict=True):
        assert g["__key__"] == w["__key__"] and g["i"].tolist() == w["i"].tolist()
        for k in ("img", "emb"):
            assert g[k].dtype == w[k].dtype and g[k].shape == w[k].shape
            assert torch.equal(g[k], w[k])
    # after each worker's first batch (which sizes its arena), both columns share one storage
    for g in got[2:]:
        assert g["img"].is_pinned() is torch.cuda.is_available()
    plain = list(tds.loader(num_workers=2, multiprocessing_context="fork"))
    for g in plain[2:]:
        assert g["img"].untyped_storage().data_ptr() == g["emb"].untyped_storage().data_ptr()
        assert g["emb"].storage_offset() > 0 and g["img"].is_shared()
    batches = list(two.to_torch(batch_size=8).loader(num_workers=1))
    assert [int(b.emb[0, 0]) for b in batches] == [0, 8, 16, 24, 32]
    assert batches[3].img.shape == (8, 3, 32, 32) and int(batches[3].img[7].max()) == 31
