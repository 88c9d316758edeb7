"""What a type checker sees of the public API (checked by mypy in CI: ``uv run mypy``).

Not a pytest module: ``assert_type`` is a no-op at run time; mypy fails CI when a public
signature loses its type (e.g. ``write_samples`` returning ``Any`` again).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import assert_type

import atdata
from atdata import Dataset, DatasetDict, DictSample, SampleBatch


@atdata.packable
class Row(atdata.PackableSample):
    text: str
    n: int = 0


@atdata.packable
class Short:
    text: str


def check(path: str) -> None:
    ds = atdata.write_samples([Row(text="a", n=1)], path)
    assert_type(ds, Dataset[Row])
    assert_type(ds[0], Row)
    assert_type(ds["key"], Row)
    assert_type(ds[1:], Dataset[Row])
    assert_type(ds.get("key"), Row)
    assert_type(ds.select([0]), list[Row])
    assert_type(ds.subset([0]), Dataset[Row])
    assert_type(ds.filter(lambda r: r.n > 0), Dataset[Row])
    assert_type(ds.head(2), list[Row])
    assert_type(iter(ds), Iterator[Row])
    assert_type(ds.ordered(), Iterator[Row])
    assert_type(ds.ordered(batch_size=4), Iterator[SampleBatch[Row]])
    assert_type(ds.shuffled(seed=0), Iterator[Row])
    assert_type(ds.shuffled(batch_size=8, seed=0), Iterator[SampleBatch[Row]])
    assert_type(ds.shuffled(100, 1000, 8), Iterator[SampleBatch[Row]])  # documented order
    assert_type(ds.shuffled(100, 1000), Iterator[Row])
    assert_type(ds.as_type(Short), Dataset[Short])
    assert_type(len(ds), int)
    assert_type(ds[0].__key__, str | None)
    assert_type(Short(text="x").text, str)
    assert_type(atdata.Dataset[Row](path), Dataset[Row])
    assert_type(Dataset(path), Dataset[DictSample])  # untyped: the DictSample default
    assert_type(Dataset(url=path).head(), list[DictSample])
    assert_type(Dataset(path, sample_type=Row), Dataset[Row])
    assert_type(atdata.load_dataset(path, Row, "train"), Dataset[Row])
    assert_type(atdata.load_dataset(path, Row, split="train"), Dataset[Row])
    assert_type(atdata.load_dataset(path, Row), DatasetDict[Row])
    assert_type(atdata.load_dataset(path, split="train"), Dataset[DictSample])
    assert_type(atdata.load_dataset(path), DatasetDict[DictSample])
    assert_type(atdata.load_dataset(path, Row)["train"], Dataset[Row])
    assert_type(atdata.load_dataset(path).as_type(Row), DatasetDict[Row])


def check_ingest(path: str) -> None:
    report = atdata.ingest(path, path + "-out", sample_type=Row, dedup_on="text")
    assert_type(report, atdata.IngestReport)
    assert_type(report.rows_written, int)
    assert_type(report.list_shards(), list[str])
    assert_type(report.rejected, dict[str, int])
