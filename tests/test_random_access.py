"""Random access through the member index (``ds[i]``, ``get``, ``select``), local shuffling, the
generated decoders and the zero-copy option."""

from __future__ import annotations

import pickle

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import atdata
from atdata._wire.decode import decoder_for


@atdata.packable
class Row:
    x: atdata.NDArray
    label: str
    score: float
    idx: int
    note: str | None = None


N = 30


@pytest.fixture(scope="module")
def ds(tmp_path_factory):
    d = tmp_path_factory.mktemp("ra")
    rows = [
        Row(x=np.arange(4, dtype="i2") + i, label=f"l{i % 3}", score=i / 2, idx=i) for i in range(N)
    ]
    return atdata.write_samples(rows, str(d / "r-%02d.tar"), maxcount=7, key="index", fsync=False)


@settings(max_examples=40, deadline=None)
@given(st.lists(st.integers(-N, N - 1), max_size=12))
def test_getitem_and_select_match_sequential_order(ds, idxs):
    got = [ds[i].idx for i in idxs]
    assert got == [(i + N) % N for i in idxs]
    assert [s.idx for s in ds.select(idxs)] == got


def test_get_by_key_and_errors(ds):
    s = ds.get("00000017")
    assert (s.idx, s.label, s.score, s.__key__) == (17, "l2", 8.5, "00000017")
    assert s.x.tolist() == [17, 18, 19, 20]
    assert ds["00000003"].idx == 3
    with pytest.raises(atdata.SampleKeyError, match="no sample with key 'nope'"):
        ds.get("nope")
    with pytest.raises(IndexError, match="out of range for a dataset of 30 samples"):
        ds[N]
    assert [s.idx for s in ds[27:]] == [27, 28, 29]


def test_shuffled_is_a_seeded_permutation(ds):
    a = [s.idx for s in ds.shuffled(seed=4)]
    assert sorted(a) == list(range(N))
    assert a == [s.idx for s in ds.shuffled(seed=4)]
    assert a != [s.idx for s in ds.shuffled(seed=5)]
    batches = list(ds.shuffled(batch_size=8, seed=4))
    assert [len(b) for b in batches] == [8, 8, 8, 6]
    assert np.concatenate([b.x[:, 0] for b in batches]).tolist() == a


def test_default_arrays_writable_views_read_only(ds):
    s = ds[5]
    assert s.x.flags.writeable
    s.x[0] = 99
    assert ds[5].x[0] == 5
    view = atdata.Dataset[Row](ds.list_shards(), copy_arrays=False)
    v = next(iter(view))
    assert not v.x.flags.writeable
    assert v.x.tolist() == [0, 1, 2, 3]
    assert [r.x.tolist() for r in view] == [r.x.tolist() for r in ds]
    with pytest.raises(ValueError, match="read-only"):
        v.x[0] = 1


def test_random_access_after_fork(ds):
    import multiprocessing as mp

    ds[0]  # opens a cached descriptor in this process
    ctx = mp.get_context("fork")
    with ctx.Pool(1) as pool:
        assert pool.apply(_idx_at, (ds, 12)) == 12


def _idx_at(d, i):
    return d[i].idx


def test_dictsample_pickles():
    s = atdata.DictSample(a=1)
    s.__key__ = "k"
    t = pickle.loads(pickle.dumps(s))
    assert (t["a"], t.__key__) == (1, "k")


arrays = st.builds(
    lambda shape, dt, seed: np.random.default_rng(seed).integers(0, 100, size=shape).astype(dt),
    st.lists(st.integers(0, 3), max_size=3).map(tuple),
    st.sampled_from(["u1", "<i4", "<f8", "<f2", "?"]),
    st.integers(0, 5),
)


@settings(max_examples=60, deadline=None)
@given(
    st.lists(
        st.fixed_dictionaries(
            {
                "x": arrays,
                "label": st.text(max_size=5),
                "score": st.floats(allow_nan=False),
                "idx": st.integers(-(2**63), 2**63 - 1),
            },
            optional={"note": st.none() | st.text(max_size=3)},
        ),
        min_size=1,
        max_size=4,
    )
)
def test_generated_decoder_agrees_with_reference(raws):
    dec = decoder_for(Row)
    for r in raws:  # several in a row: the header cache must follow dtype/shape changes
        wire = {**r, "x": atdata.encode_array(r["x"])}
        got, ref = dec(wire, "", "k"), Row._from_wire_slow(wire)
        assert got == ref
        assert got.__key__ == "k"
        assert got.x.dtype == r["x"].dtype and got.x.shape == r["x"].shape


def test_generated_decoder_errors_match_reference():
    dec = decoder_for(Row)
    good = {"x": atdata.encode_array(np.zeros(2)), "label": "a", "score": 1.0, "idx": 1}
    for bad in (
        {**good, "label": 3},
        {**good, "x": b"\x03<f8\x01junk"},
        {k: v for k, v in good.items() if k != "idx"},
    ):
        with pytest.raises(atdata.AtdataError) as fast:
            dec(bad, " in shard s.tar", None)
        with pytest.raises(atdata.AtdataError) as slow:
            Row._from_wire_slow(bad, " in shard s.tar")
        assert str(fast.value) == str(slow.value)
        assert type(fast.value) is type(slow.value)
    assert dec({**good, "score": 2}, "", None).score == 2.0


def test_decode_error_names_shard_key_field(tmp_path):
    import msgpack

    from atdata._shards.tar import TarWriter

    with open(tmp_path / "bad.tar", "wb") as f:
        w = TarWriter(f)
        w.add(
            "k1.msgpack",
            msgpack.packb({"x": b"\x03<f8\x01junk", "label": "a", "score": 1.0, "idx": 1}),
        )
        w.close()
    ds = atdata.Dataset[Row](str(tmp_path / "bad.tar"))
    for read in (lambda: list(ds), lambda: ds[0], lambda: list(ds.shuffled(seed=1))):
        with pytest.raises(atdata.DecodeError) as e:
            read()
        msg = str(e.value)
        assert "bad.tar" in msg and "'k1'" in msg and "'x'" in msg


@settings(max_examples=40, deadline=None)
@given(
    st.lists(st.integers(0, N - 1), min_size=1, max_size=8),
    st.lists(st.integers(-8, 7), max_size=8),
)
def test_select_of_a_selection_counts_negatives_from_its_end(ds, first, second):
    sub = ds.subset(first)
    n = len(first)
    inside = [i for i in second if -n <= i < n]
    assert [s.idx for s in sub.select(inside)] == [first[i] for i in inside]
    assert [s.idx for s in sub[-n:]] == first


def test_select_out_of_range_negative_raises_instead_of_wrapping(ds):
    with pytest.raises(IndexError, match=r"sample index -31 out of range for a dataset of 30"):
        ds.select([-(N + 1)])
    with pytest.raises(IndexError, match=r"sample index -31 out of range for a dataset of 30"):
        ds[-(N + 1)]
    sub = ds.subset([4, 5, 6])
    with pytest.raises(IndexError, match=r"sample index -4 out of range for a selection of 3"):
        sub.select([-4])
    with pytest.raises(IndexError, match=r"sample index 3 out of range for a selection of 3"):
        sub.select([3])
    with pytest.raises(IndexError, match=r"sample index 3 out of range for a selection of 3"):
        sub[3]
    assert [s.idx for s in sub.select([-1, 0, -3])] == [6, 4, 4]
    assert sub[-1].idx == 6
