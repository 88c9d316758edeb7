"""load_dataset: files, globs, brace patterns, split directories, data_files, named datasets."""

from __future__ import annotations

import importlib.util
import os

import numpy as np
import pytest

import atdata
import atdata.local
from atdata import AmbiguousSplitError, DatasetDict, DictSample, SplitNotFoundError
from atdata._load import _split_of, infer_splits


@atdata.packable
class Row:
    idx: int
    vec: atdata.NDArray


def _write(path: str, start: int, n: int) -> None:
    atdata.write_samples(
        [Row(idx=i, vec=np.arange(3, dtype="i2") + i) for i in range(start, start + n)],
        path,
        key="index",
    )


def _idx(ds) -> list[int]:
    return [s.idx for s in ds]


@pytest.fixture
def flat(tmp_path):
    d = tmp_path / "flat"
    _write(str(d / "train-000.tar"), 0, 3)
    _write(str(d / "train-001.tar"), 3, 2)
    _write(str(d / "test-000.tar"), 100, 2)
    _write(str(d / "validation-000.tar"), 200, 1)
    return d


def test_directory_with_split_file_names(flat):
    dd = atdata.load_dataset(str(flat), Row)
    assert isinstance(dd, DatasetDict) and isinstance(dd, dict)
    assert list(dd) == ["train", "validation", "test"]
    assert _idx(dd["train"]) == [0, 1, 2, 3, 4]
    assert _idx(dd["test"]) == [100, 101]
    assert _idx(dd["validation"]) == [200]
    assert dd["train"].head(1)[0].vec.tolist() == [0, 1, 2]


def test_single_split_dict_serves_dataset_methods(flat):
    # upstream's docs: a DatasetDict of exactly one split takes Dataset methods directly
    one = DatasetDict({"train": atdata.Dataset[Row](str(flat / "train-{000..001}.tar"))})
    batch = next(iter(one.ordered(batch_size=4)))
    assert batch.idx == [0, 1, 2, 3] and batch.vec.shape == (4, 3)
    assert [s.idx for s in one.head(2)] == [0, 1]
    assert [os.path.basename(u) for u in one.list_shards()] == ["train-000.tar", "train-001.tar"]
    assert sorted(s.idx for s in one.shuffled()) == [0, 1, 2, 3, 4]
    assert one.get("train") is one["train"]  # dict's own methods stay dict's
    assert isinstance(one.as_type(Row), DatasetDict)


def test_multi_split_dict_names_the_splits_for_dataset_methods(flat):
    dd = atdata.load_dataset(str(flat), Row)
    with pytest.raises(AmbiguousSplitError) as ei:
        dd.ordered(batch_size=2)
    assert str(ei.value) == (
        "DatasetDict.ordered: this DatasetDict holds 3 splits ('train', 'validation', 'test'); "
        "pick one first, e.g. ds_dict['train'].ordered"
    )
    assert isinstance(ei.value, AttributeError) and not hasattr(dd, "head")
    with pytest.raises(AmbiguousSplitError, match="holds no split"):
        DatasetDict().ordered()
    with pytest.raises(AttributeError, match="no attribute 'not_a_method'") as e2:
        _ = DatasetDict({"train": dd["train"]}).not_a_method
    assert not isinstance(e2.value, AmbiguousSplitError)


def test_split_argument_returns_dataset(flat):
    ds = atdata.load_dataset(flat, Row, split="test")
    assert isinstance(ds, atdata.Dataset)
    assert _idx(ds) == [100, 101]
    assert len(ds) == 2


def test_unknown_split_lists_available(flat):
    with pytest.raises(SplitNotFoundError) as ei:
        atdata.load_dataset(str(flat), split="dev-set")
    msg = str(ei.value)
    assert "'dev-set'" in msg and "available splits: train, validation, test" in msg
    assert isinstance(ei.value, KeyError)


def test_untyped_gives_dict_samples(flat):
    s = atdata.load_dataset(str(flat), split="validation").head(1)[0]
    assert isinstance(s, DictSample)
    assert s.idx == 200
    assert isinstance(s["vec"], bytes)
    assert s.array("vec").tolist() == [200, 201, 202]


def test_infix_and_alias_split_names(tmp_path):
    for name, start in [
        ("mnist-train-000.tar", 0),
        ("mnist-valid-000.tar", 10),
        ("mnist-val-001.tar", 20),
    ]:
        _write(str(tmp_path / name), start, 1)
    dd = atdata.load_dataset(str(tmp_path), Row)
    assert list(dd) == ["train", "validation"]
    assert _idx(dd["validation"]) == [20, 10]  # shards in file-name order: "val-001" < "valid-000"


@pytest.mark.parametrize(
    ("name", "split"),
    [
        ("train-000.tar", "train"),
        ("data_train_0.tar", "train"),
        ("x.test.tar", "test"),
        ("val-3.tar", "validation"),
        ("dev-3.tar", "validation"),
        ("trainer-0.tar", None),
        ("interval-0.tar", None),
        ("data-000000.tar", None),
    ],
)
def test_split_of(name, split):
    assert _split_of(name) == split


def test_subdirectory_splits(tmp_path):
    _write(str(tmp_path / "train" / "a-000.tar"), 0, 2)
    _write(str(tmp_path / "train" / "a-001.tar"), 2, 1)
    _write(str(tmp_path / "test" / "a-000.tar"), 50, 1)
    (tmp_path / "empty").mkdir()
    dd = atdata.load_dataset(tmp_path, Row)
    assert list(dd) == ["train", "test"]
    assert _idx(dd["train"]) == [0, 1, 2]
    assert _idx(dd["test"]) == [50]


def test_directory_without_split_names_is_train(tmp_path):
    _write(str(tmp_path / "data-000.tar"), 0, 2)
    _write(str(tmp_path / "data-001.tar"), 2, 2)
    dd = atdata.load_dataset(str(tmp_path), Row)
    assert list(dd) == ["train"]
    assert _idx(dd["train"]) == [0, 1, 2, 3]


def test_single_file_glob_and_brace(flat):
    assert _idx(atdata.load_dataset(str(flat / "test-000.tar"), Row, split="train")) == [100, 101]
    assert _idx(atdata.load_dataset(str(flat / "train-*.tar"), Row)["train"]) == [0, 1, 2, 3, 4]
    brace = str(flat / "train-{000..001}.tar")
    assert _idx(atdata.load_dataset(brace, Row, split="train")) == [0, 1, 2, 3, 4]


def test_data_files_forms(flat):
    dd = atdata.load_dataset(str(flat), Row, data_files="test-*.tar")
    assert list(dd) == ["train"] and _idx(dd["train"]) == [100, 101]
    dd = atdata.load_dataset(str(flat), Row, data_files=["test-000.tar", "validation-000.tar"])
    assert _idx(dd["train"]) == [100, 101, 200]
    dd = atdata.load_dataset(
        str(flat), Row, data_files={"fit": "train-00{0,1}.tar", "holdout": ["validation-*.tar"]}
    )
    assert list(dd) == ["fit", "holdout"]
    assert _idx(dd["fit"]) == [0, 1, 2, 3, 4] and _idx(dd["holdout"]) == [200]
    ds = atdata.load_dataset("", Row, data_files={"x": str(flat / "test-000.tar")}, split="x")
    assert _idx(ds) == [100, 101]


def test_missing_paths_raise_shard_error(tmp_path):
    with pytest.raises(atdata.ShardError, match="no shard matches"):
        atdata.load_dataset(str(tmp_path / "nothing-*.tar"))
    with pytest.raises(atdata.ShardError, match=r"holds no \.tar shards"):
        atdata.load_dataset(str(tmp_path))


def test_dataset_dict_repr_and_as_type(flat):
    dd = atdata.load_dataset(str(flat))
    r = repr(dd)
    assert r.startswith("DatasetDict({\n    train: Dataset[DictSample] (2 shards: ")
    assert "    test: Dataset[DictSample] (1 shard: " in r
    typed = dd.as_type(Row)
    assert isinstance(typed, DatasetDict) and typed.splits == ["train", "validation", "test"]
    assert _idx(typed["test"]) == [100, 101]


def test_named_dataset_dispatch(monkeypatch):
    if importlib.util.find_spec("atdata._named") is None:
        with pytest.raises(atdata.AtdataError, match="need the index and atmosphere"):
            atdata.load_dataset("@local/mnist")
        return
    import atdata._named as named

    calls = []
    monkeypatch.setattr(named, "load_named", lambda p, **kw: calls.append((p, kw)) or "ok")
    assert atdata.load_dataset("@local/mnist", split="train") == "ok"
    assert calls == [
        ("@local/mnist", {"sample_type": None, "split": "train", "atmosphere": None, "index": None})
    ]


def test_http_urls_pass_through():
    dd = atdata.load_dataset("http://127.0.0.1:1/data-{0..1}.tar")
    assert dd["train"].list_shards() == [
        "http://127.0.0.1:1/data-0.tar",
        "http://127.0.0.1:1/data-1.tar",
    ]


def test_files_without_split_are_left_out_when_others_name_one(tmp_path):
    _write(str(tmp_path / "train-0.tar"), 0, 1)
    _write(str(tmp_path / "extra-0.tar"), 9, 1)
    assert {k: [os.path.basename(p) for p in v] for k, v in infer_splits(tmp_path).items()} == {
        "train": ["train-0.tar"]
    }


def test_documented_exception_types_and_dict_attributes(tmp_path):
    for split, n in [("train", 5), ("test", 2)]:
        atdata.write_samples(
            [{"i": i} for i in range(n)], tmp_path / f"{split}.tar", maxcount=2, key="index"
        )
    dd = atdata.load_dataset(str(tmp_path), streaming=True)
    assert dd.streaming is True and dd.num_shards == {"train": 3, "test": 1}
    assert dd.sample_type is atdata.DictSample
    assert atdata.load_dataset(str(tmp_path)).streaming is False
    assert DatasetDict(splits={"a": dd["test"]}, sample_type=atdata.DictSample).num_shards == {
        "a": 1
    }
    with pytest.raises(ValueError, match="split 'dev' not found"):
        atdata.load_dataset(str(tmp_path), split="dev")
    with pytest.raises(FileNotFoundError, match="no shard matches"):
        atdata.load_dataset(str(tmp_path / "missing-*.tar"))
    with pytest.raises(FileNotFoundError, match="no data files found"):
        atdata.load_dataset(str(tmp_path / "missing.tar"))
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(FileNotFoundError, match=r"holds no \.tar shards"):
        atdata.load_dataset(str(empty))


@atdata.packable
class Tagged:
    tag: str
    n: int


class _ProtocolIndex:
    """An index with only the documented protocol (no open_dataset): a third party's."""

    def __init__(self, entry, typ):
        self.entry, self.typ, self.asked = entry, typ, []

    def get_dataset(self, ref):
        self.asked.append(("get_dataset", ref))
        return self.entry

    def get_schema_type(self, ref):
        self.asked.append(("get_schema_type", ref))
        return self.typ


def test_local_names_resolve_through_any_index_with_the_documented_protocol(tmp_path):
    ds = atdata.write_samples([Tagged(tag=f"t{i}", n=i) for i in range(3)], str(tmp_path / "t.tar"))
    entry = atdata.local.LocalDatasetEntry(
        "tagged", "atdata://local/schema/Tagged@1.0.0", ds.list_shards()
    )
    idx = _ProtocolIndex(entry, Tagged)
    got = atdata.load_dataset("@local/tagged@1.0.0", index=idx, split="train")
    assert got.sample_type is Tagged and [s.n for s in got] == [0, 1, 2]
    assert idx.asked == [("get_dataset", "tagged@1.0.0"), ("get_schema_type", entry.schema_ref)]
    idx.asked.clear()
    dd = atdata.load_dataset("@local/tagged", Tagged, index=idx)
    assert [s.tag for s in dd["train"]] == ["t0", "t1", "t2"]
    assert idx.asked == [("get_dataset", "tagged")]  # an explicit type: no schema lookup
