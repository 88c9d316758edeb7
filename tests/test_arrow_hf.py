"""Hugging Face ``datasets`` both ways, with the real package, offline."""

from __future__ import annotations

import os

import numpy as np
import pytest

import atdata

os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
datasets = pytest.importorskip("datasets")


@atdata.packable
class Frame:
    image: atdata.NDArray
    caption: str
    boxes: atdata.NDArray | None = None


@pytest.fixture
def frames(tmp_path):
    samples = [
        Frame(
            image=np.full((3, 4, 2), i, "u1"),
            caption=f"c{i}",
            boxes=None if i == 2 else np.arange(4 * i, dtype="f4").reshape(i, 4),
        )
        for i in range(5)
    ]
    return atdata.write_samples(samples, tmp_path / "f-%02d.tar", maxcount=2, key="index")


def test_to_hf_round_trip_and_fingerprint(frames, tmp_path):
    hf = frames.to_hf(cache_dir=tmp_path / "hf")
    assert isinstance(hf, datasets.Dataset) and hf.num_rows == 5
    assert hf.column_names == ["image", "caption", "boxes"]
    assert np.asarray(hf.with_format("numpy")[1]["image"]).shape == (3, 4, 2)
    assert hf[2]["boxes"] is None and hf[3]["caption"] == "c3"
    again = frames.to_hf(cache_dir=tmp_path / "hf")
    assert again._fingerprint == hf._fingerprint  # same shards: the cache entry is reused
    assert len(os.listdir(tmp_path / "hf")) == 1
    back = atdata.from_arrow(hf, tmp_path / "back", sample_type=Frame)
    assert list(back) == list(frames)
    derived = list(atdata.from_arrow(hf, tmp_path / "derived"))
    assert derived[4].image.dtype == np.uint8 and derived[4].image.shape == (3, 4, 2)
    assert derived[0].boxes.shape == (0, 4) and derived[0].boxes.dtype == np.float32


def test_fingerprint_follows_the_shard_bytes(tmp_path):
    ds = atdata.write_samples([{"x": i} for i in range(3)], tmp_path / "a.tar")
    fp1 = ds.to_hf(cache_dir=tmp_path / "hf")._fingerprint
    atdata.write_samples([{"x": i * 10} for i in range(3)], tmp_path / "a.tar")  # rewritten
    ds2 = atdata.Dataset(str(tmp_path / "a.tar"))
    hf2 = ds2.to_hf(cache_dir=tmp_path / "hf")
    assert hf2._fingerprint != fp1 and hf2["x"] == [0, 10, 20]
    assert ds.subset([0, 2]).to_hf(cache_dir=tmp_path / "hf")._fingerprint != hf2._fingerprint


def test_from_hf_dict_dataset_and_streaming(tmp_path):
    hf = datasets.Dataset.from_dict(
        {"text": ["a", "b", "c"], "label": [0, 1, 0], "emb": [[0.5, 1.0], [1.5, 2.0], [2.5, 3.0]]}
    )
    ds = atdata.from_arrow(hf.select([2, 0]), tmp_path / "hf", type_name="Text")
    assert [(s.text, s.label, s.emb) for s in ds] == [("c", 0, [2.5, 3.0]), ("a", 0, [0.5, 1.0])]
    stream = ds.to_hf(streaming=True)
    assert isinstance(stream, datasets.IterableDataset)
    assert [r["text"] for r in stream] == ["c", "a"]
    back = atdata.from_arrow(stream, tmp_path / "from-stream")
    assert [s.label for s in back] == [0, 0]


@atdata.packable
class Part:
    v: atdata.NDArray
    n: int


@atdata.packable
class Rich:
    props: dict[str, int]
    tags: list[str]
    part: Part | None
    half: atdata.NDArray


def test_hf_round_trip_of_dicts_structs_and_half_floats(tmp_path):
    samples = [
        Rich(
            props={"a": i, "b": -i},
            tags=["x"] * i,
            part=None if i % 2 else Part(v=np.full(3, i, ">f4"), n=i),
            half=np.arange(i, dtype="f2"),
        )
        for i in range(4)
    ]
    ds = atdata.write_samples(samples, tmp_path / "r.tar", key="index")
    hf = ds.to_hf(cache_dir=tmp_path / "hf")
    assert hf[1]["props"] == [{"key": "a", "value": 1}, {"key": "b", "value": -1}]
    assert hf[1]["part"] is None and hf[2]["part"]["n"] == 2
    back = atdata.from_arrow(hf, tmp_path / "back", sample_type=Rich)
    assert list(back) == list(ds)
    derived = list(atdata.from_arrow(hf, tmp_path / "derived"))
    assert derived[2].props == {"a": 2, "b": -2} and derived[2].part.v.dtype == np.dtype(">f4")
