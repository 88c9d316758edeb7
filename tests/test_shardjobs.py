"""The per-shard job of Dataset.map(out=...): what the function may return, and the keys."""

from __future__ import annotations

import pytest

import atdata
from atdata import PartialFailureError, SchemaError
from tests._process_helpers import Feat, Num, square, to_feat
from tests.test_process import hidden_temps, make_input


def test_outputs_of_another_type_than_sample_type_fail_their_shard(tmp_path):
    ds = make_input(tmp_path, shards=2, per=3)
    with pytest.raises(PartialFailureError) as ei:
        ds.map(square, Feat, out=tmp_path / "o")
    err = ei.value
    first = ds.list_shards()[0]
    assert err.failed_shards == ds.list_shards()
    assert isinstance(err.errors[first], SchemaError)
    assert err.failures[first].message == (
        f"SchemaError: map function returned a Num for sample '00000000' of shard {first}, but "
        "sample_type is Feat: one map writes one sample type, so return that type (or dicts), "
        "or pass sample_type=DictSample to write a mix"
    )
    assert list((tmp_path / "o").glob("*.tar")) == [] and hidden_temps(tmp_path / "o") == []
    # dicts with the type's fields are fine, and DictSample takes any mix
    out = ds.map(lambda s: {"x": s.x, "name": "d"}, Num, out=tmp_path / "dicts")
    assert out.sample_type is Num and [s.x for s in out] == list(range(6))
    mixed = ds.map(lambda s: square(s) if s.x % 2 else to_feat(s), atdata.DictSample,
                   out=tmp_path / "mix")  # fmt: skip
    assert [sorted(s.keys()) for s in mixed][:2] == [["vec", "x"], ["name", "x"]]


def test_outputs_of_two_types_in_one_shard_fail_it(tmp_path):
    ds = make_input(tmp_path, shards=1, per=3)
    with pytest.raises(PartialFailureError) as ei:
        ds.map(lambda s: square(s) if s.x else to_feat(s), out=tmp_path / "o")
    shard = ds.list_shards()[0]
    assert ei.value.failures[shard].message.startswith(
        f"SchemaError: map function returned a Num for sample '00000001' of shard {shard}, "
        "but its earlier samples were Feat: "
    )


def test_outputs_of_two_types_in_two_shards_are_refused(tmp_path):
    ds = make_input(tmp_path, shards=2, per=3)
    a, b = ds.list_shards()
    with pytest.raises(SchemaError) as ei:
        ds.map(lambda s: square(s) if s.x < 3 else to_feat(s), out=tmp_path / "o")
    assert str(ei.value) == (
        "map function returned different sample types in different shards "
        f"(tests._process_helpers:Num in {a}; tests._process_helpers:Feat in {b}) of "
        f"{tmp_path / 'o'}: return one type, or pass sample_type=DictSample to write a mix; "
        "then run again with a new version="
    )


def test_batched_outputs_of_another_count_get_keys_unique_across_shards(tmp_path):
    ds = make_input(tmp_path, shards=2, per=2)
    out = ds.map(lambda ss: [square(s) for s in ss for _ in range(2)], out=tmp_path / "o",
                 batched=True)  # fmt: skip
    keys = [s.__key__ for s in out]
    assert keys == [f"d-00000{i // 4}-0000000{i % 4}" for i in range(8)]
    assert out.get("d-000001-00000001").x == 4
    again = ds.map(lambda ss: [square(s) for s in ss for _ in range(2)], out=tmp_path / "p",
                   batched=True, num_proc=2)  # fmt: skip
    assert [s.__key__ for s in again] == keys


def test_batched_function_returning_one_sample_says_to_return_a_list(tmp_path):
    ds = make_input(tmp_path, shards=1, per=2)
    shard = ds.list_shards()[0]
    for bad, name in ((lambda ss: ss[0], "Num"), (lambda ss: {"x": 1}, "dict")):
        with pytest.raises(PartialFailureError) as ei:
            ds.map(bad, out=tmp_path / name, batched=True)
        assert ei.value.failures[shard].message == (
            f"SchemaError: batched map function returned a {name} for shard {shard}: return a "
            "list (or another iterable) of the shard's output samples, or None"
        )
