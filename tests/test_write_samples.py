"""write_samples with odd inputs: generators, empty input, keys given in dicts, mixed types."""

from __future__ import annotations

import tarfile

import numpy as np
import pytest

import atdata


@atdata.packable
class Pt:
    a: int
    arr: atdata.NDArray
    note: str | None = None


def _names(ds) -> list[str]:
    with tarfile.open(ds.list_shards()[0]) as t:
        return t.getnames()


def test_a_dicts_key_entry_is_its_key_not_a_field(tmp_path):
    ds = atdata.write_samples([{"__key__": "ключ-1", "x": 1}, {"x": 2}], str(tmp_path / "k.tar"))
    got = list(ds)
    assert got[0].__key__ == "ключ-1" and got[0].to_dict() == {"x": 1}
    assert got[1].to_dict() == {"x": 2}
    assert _names(ds)[0] == "ключ-1.msgpack"
    assert ds.get("ключ-1")["x"] == 1
    s = atdata.DictSample({"__key__": "k", "x": 1})
    assert (s.__key__, list(s.keys())) == ("k", ["x"])


def test_duplicate_keys_given_in_dicts_are_refused(tmp_path):
    with pytest.raises(atdata.SampleKeyError, match="duplicate sample key 'k'"):
        atdata.write_samples(
            [{"__key__": "k", "x": 1}, {"__key__": "k", "x": 2}], str(tmp_path / "d.tar")
        )


def test_a_sample_of_another_type_is_refused_when_written(tmp_path):
    with pytest.raises(
        atdata.SchemaError, match="sample 1 is a dict, but the samples before it are Pt"
    ):
        atdata.write_samples([Pt(a=1, arr=np.zeros(1)), {"a": 2}], str(tmp_path / "m.tar"))
    mixed = [{"a": 1}, Pt(a=2, arr=np.zeros(1))]  # read as DictSample: every sample fits
    assert [s["a"] for s in atdata.write_samples(mixed, str(tmp_path / "d.tar"))] == [1, 2]


def test_generators_and_odd_arrays_round_trip(tmp_path):
    arrs = [
        np.zeros((0, 3)),
        np.array(5.0),
        np.arange(12).reshape(3, 4)[:, ::2],
        np.arange(3, dtype=">i4"),
    ]
    ds = atdata.write_samples(
        (Pt(a=i, arr=a) for i, a in enumerate(arrs)), str(tmp_path / "g.tar"), key="index"
    )
    got = list(ds)
    assert [s.arr.shape for s in got] == [(0, 3), (), (3, 2), (3,)]
    assert got[2].arr.tolist() == [[0, 2], [4, 6], [8, 10]] and got[3].arr.tolist() == [0, 1, 2]
    assert [s.note for s in got] == [None] * 4
    with pytest.raises(atdata.ConfigError, match="samples must be non-empty"):
        atdata.write_samples((x for x in []), str(tmp_path / "e.tar"))
