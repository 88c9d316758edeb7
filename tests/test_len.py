"""Exact ``len(ds)`` without decoding: member index, persisted ``.idx`` files, upstream shards."""

from __future__ import annotations

import json
import os
import shutil

import pytest

import atdata
from atdata._members import index_path, load_index


def _write(tmp_path, n, per, name="d"):
    return atdata.write_samples(
        [{"i": i} for i in range(n)],
        str(tmp_path / f"{name}-%03d.tar"),
        maxcount=per,
        key="index",
        fsync=False,
    )


@pytest.mark.parametrize(("n", "per"), [(1, 1), (7, 3), (20, 5), (50, 50)])
def test_len_of_our_datasets(tmp_path, n, per):
    ds = _write(tmp_path, n, per)
    fresh = atdata.Dataset(str(tmp_path / "d-*.tar"))  # no shard infos: counts come from the index
    assert len(fresh) == n
    assert len(fresh.select(range(0, n, 2))) == len(range(0, n, 2))
    assert sum(1 for _ in ds) == n


def test_index_is_persisted_and_reused(tmp_path):
    ds = _write(tmp_path, 9, 4)
    shards = ds.list_shards()
    assert len(atdata.Dataset(shards)) == 9
    assert [os.path.exists(index_path(s)) for s in shards] == [True, True, True]
    with open(index_path(shards[0]), encoding="utf-8") as f:
        lines = f.read().splitlines()
    assert lines[0].startswith("atdata-idx 1 ")
    assert lines[0].endswith(" 4")
    assert lines[1:] == [
        "00000000\t512\t4",
        "00000001\t1536\t4",
        "00000002\t2560\t4",
        "00000003\t3584\t4",
    ]
    # a planted (valid-looking) index is what the next dataset reads: proof it is reused
    head = lines[0].split(" ")
    head[4] = "1"
    with open(index_path(shards[0]), "w", encoding="utf-8") as f:
        f.write(" ".join(head) + "\n" + lines[1] + "\n")
    assert len(atdata.Dataset(shards)) == 6


def test_stale_or_corrupt_index_is_rebuilt(tmp_path):
    ds = _write(tmp_path, 6, 3)
    shards = ds.list_shards()
    assert len(atdata.Dataset(shards)) == 6
    with open(index_path(shards[0]), "w", encoding="utf-8") as f:
        f.write("garbage\n")
    assert len(atdata.Dataset(shards)) == 6
    # rewrite shard 1 with 5 samples: size and mtime change, so its old index is ignored
    atdata.write_samples([{"i": i} for i in range(5)], shards[1], key="index", fsync=False)
    assert len(atdata.Dataset(shards)) == 8
    assert load_index(shards[1], atdata.URLSource(shards[1])).keys[-1] == "00000004"


def test_len_without_writable_directory(tmp_path):
    ds = _write(tmp_path, 4, 4)
    src = ds.list_shards()[0]
    ro = tmp_path / "ro"
    ro.mkdir()
    shutil.copy(src, ro / "x.tar")
    os.chmod(ro, 0o555)
    try:
        assert len(atdata.Dataset(str(ro / "x.tar"))) == 4
    finally:
        os.chmod(ro, 0o755)


def test_len_of_filtered_dataset_is_refused(tmp_path):
    ds = _write(tmp_path, 4, 4)
    with pytest.raises(TypeError, match="filtered"):
        len(ds.filter(lambda s: True))


def test_len_of_upstream_datasets(interop_dir):
    expected = json.loads((interop_dir / "expected.json").read_text())
    for name in ("images", "vectors"):
        shards = [str(interop_dir / name / s) for s in expected[name]["shards"]]
        ds = atdata.Dataset(shards)
        assert len(ds) == len(expected[name]["samples"])
        assert [s.__key__ for s in ds.select(range(len(ds)))] == [s.__key__ for s in ds]
    assert len(atdata.Dataset(str(interop_dir / "images" / "images-{000000..000002}.tar"))) == 25
    assert len(atdata.Dataset(str(interop_dir / "vectors" / "vectors.tar"))) == 12


def test_per_shard_counts_of_upstream_images(interop_dir):
    shards = sorted(str(p) for p in (interop_dir / "images").glob("*.tar"))
    counts = [len(load_index(s, atdata.URLSource(s), persist=False)) for s in shards]
    assert counts == [10, 10, 5]
