"""Exact ``len(ds)`` without decoding: member index, its cache files (never beside the shards),
shipped ``.idx`` files, upstream shards."""

from __future__ import annotations

import json
import os
import shutil

import pytest

import atdata
from atdata._shards.members import cache_dir, cache_path, index_path, load_index


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


def test_index_is_persisted_in_the_cache_and_reused(tmp_path):
    ds = _write(tmp_path, 9, 4)
    shards = ds.list_shards()
    before = sorted(os.listdir(tmp_path))
    assert len(atdata.Dataset(shards)) == 9
    assert sorted(os.listdir(tmp_path)) == before  # nothing written beside the shards
    assert [os.path.exists(index_path(s)) for s in shards] == [False, False, False]
    assert os.environ["ATDATA_CACHE_DIR"] in cache_dir()  # the test session's own cache
    paths = [cache_path(s) for s in shards]
    assert [os.path.dirname(p) for p in paths] == [cache_dir()] * 3
    assert [os.path.exists(p) for p in paths] == [True, True, True]
    assert len(set(paths)) == 3
    # the name is a hash of the real path: a symlinked or relative spelling shares the file
    link = tmp_path / "link.tar"
    os.symlink(shards[0], link)
    assert cache_path(str(link)) == cache_path("file://" + shards[0]) == paths[0]
    with open(paths[0], encoding="utf-8") as f:
        lines = f.read().splitlines()
    assert lines[0].startswith("atdata-idx 1 ")
    assert lines[0].endswith(" 4")
    assert lines[1:] == [
        "00000000\t512\t4",
        "00000001\t1536\t4",
        "00000002\t2560\t4",
        "00000003\t3584\t4",
    ]
    # the next dataset reads the cached index: no header scan
    from atdata._shards import tar

    real, scans = tar.scan_tar_file, []
    tar.scan_tar_file = lambda *a, **k: scans.append(a) or real(*a, **k)
    try:
        assert len(atdata.Dataset(shards)) == 9
    finally:
        tar.scan_tar_file = real
    assert scans == []
    # a planted index that leaves samples out is caught by the check against the shard
    head = lines[0].split(" ")
    head[4] = "1"
    with open(paths[0], "w", encoding="utf-8") as f:
        f.write(" ".join(head) + "\n" + lines[1] + "\n")
    assert len(atdata.Dataset(shards)) == 9


def test_index_shipped_beside_the_shard_is_read_first(tmp_path):
    ds = _write(tmp_path, 9, 4)
    shards = ds.list_shards()
    assert len(atdata.Dataset(shards)) == 9
    with open(cache_path(shards[0]), encoding="utf-8") as f:
        lines = f.read().splitlines()
    head = lines[0].split(" ")
    head[4] = "2"
    with open(index_path(shards[0]), "w", encoding="utf-8") as f:
        f.write(" ".join(head) + "\n" + "\n".join(lines[1:3]) + "\n")
    assert len(atdata.Dataset(shards)) == 9  # it leaves two samples out: not trusted
    head[4] = "4"
    with open(index_path(shards[0]), "w", encoding="utf-8") as f:
        f.write(" ".join(head) + "\n" + "\n".join(lines[1:5]) + "\n")
    os.unlink(cache_path(shards[0]))
    assert len(atdata.Dataset(shards)) == 9
    assert not os.path.exists(cache_path(shards[0]))  # a valid shipped index was used as is
    os.utime(shards[0], ns=(1, 1))  # the shipped index is now stale: rebuilt, only in the cache
    assert len(atdata.Dataset(shards)) == 9
    with open(index_path(shards[0]), encoding="utf-8") as f:
        assert f.read().split("\n")[0] == " ".join(head)  # left as it was


def _idx_head(shard: str, count: int) -> str:
    st = os.stat(shard)
    return f"atdata-idx 1 {st.st_size} {st.st_mtime_ns} {count}\n"


@pytest.mark.parametrize(
    "body",
    [
        "",  # empty: would make len() 0
        "00000000\t512\t4\n",  # the first sample only
        "00000001\t1536\t4\n00000000\t512\t4\n",  # out of order
        "00000000\t512\t4\n00000001\t1536\t4\n00000002\t2560\t4\n00000003\t3584\t4\n00000009\t4608\t4\n",
        "00000000\t512\t4\n00000001\t1536\t9\n00000002\t2560\t4\n00000003\t3584\t4\n00000004\t4608\t4\n",
        "00000000\t512\t4\n00000001\t1000\t4\n00000002\t2560\t4\n00000003\t3584\t4\n00000004\t4608\t4\n",
        "a\t512\t4\nb\t1536\t4\nc\t2560\t4\nd\t3584\t4\ne\t4608\t4\n",  # wrong keys
    ],
)
@pytest.mark.parametrize("where", ["shipped", "cache"])
def test_empty_or_lying_idx_never_changes_len_or_keys(tmp_path, body, where):
    shard = _write(tmp_path, 5, 5).list_shards()[0]
    count = body.count("\n")
    target = index_path(shard) if where == "shipped" else cache_path(shard)
    os.makedirs(os.path.dirname(target), exist_ok=True)
    with open(target, "w", encoding="utf-8") as f:
        f.write(_idx_head(shard, count) + body)
    ds = atdata.Dataset(shard)
    assert len(ds) == 5
    assert [ds[i].__key__ for i in range(5)] == [f"{i:08d}" for i in range(5)]
    assert ds["00000004"]["i"] == 4


def test_idx_check_walks_other_members_and_long_names(tmp_path):
    import io

    from atdata._shards.tar import TarWriter
    from atdata._wire.payload import _packb

    shard = str(tmp_path / "mixed.tar")
    buf = io.BytesIO()
    w = TarWriter(buf)
    long_key = "k" * 120
    w.add("a.msgpack", _packb({"i": 0}))
    w.add("a.json", b"{}")  # another member between samples
    w.add(long_key + ".msgpack", _packb({"i": 1}))  # a PAX long name
    w.add("b.msgpack", _packb({"i": 2}))
    w.add("zz.txt", b"tail")  # after the last sample
    w.close()
    with open(shard, "wb") as f:
        f.write(buf.getvalue())
    built = load_index(shard, atdata.URLSource(shard))
    assert built.keys == ["a", long_key, "b"]
    from atdata._shards.members import _matches_shard

    assert _matches_shard(shard, built, os.path.getsize(shard))
    # leaving out a sample between other members is caught
    from atdata._shards.members import ShardIndex

    fewer = ShardIndex([built.keys[0], built.keys[2]], [built.offsets[0], built.offsets[2]],
                       [built.sizes[0], built.sizes[2]])  # fmt: skip
    assert not _matches_shard(shard, fewer, os.path.getsize(shard))
    assert len(atdata.Dataset(shard)) == 3


def test_keys_with_tabs_round_trip_through_the_cache(tmp_path):
    keys = ["a\tb", "tab\t\tend\t", "plain"]
    atdata.write_samples(
        [{"i": i} for i in range(3)], str(tmp_path / "t.tar"), key=lambda s, n: keys[n], fsync=False
    )
    shard = str(tmp_path / "t.tar")
    built = load_index(shard, atdata.URLSource(shard))
    assert os.path.exists(cache_path(shard))
    cached = load_index(shard, atdata.URLSource(shard))
    assert cached.keys == built.keys == keys
    assert cached.offsets == built.offsets and cached.sizes == built.sizes
    ds = atdata.Dataset(shard)
    assert len(ds) == 3 and ds["tab\t\tend\t"]["i"] == 1 and ds[0].__key__ == "a\tb"


def test_unwritable_cache_does_not_fail_reads(tmp_path, monkeypatch):
    ds = _write(tmp_path, 5, 5)
    blocker = tmp_path / "cache-is-a-file"
    blocker.write_text("x")
    monkeypatch.setenv("ATDATA_CACHE_DIR", str(blocker))
    fresh = atdata.Dataset(ds.list_shards())
    assert len(fresh) == 5 and fresh[4]["i"] == 4
    assert blocker.read_text() == "x"


def test_stale_or_corrupt_index_is_rebuilt(tmp_path):
    ds = _write(tmp_path, 6, 3)
    shards = ds.list_shards()
    assert len(atdata.Dataset(shards)) == 6
    with open(cache_path(shards[0]), "w", encoding="utf-8") as f:
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
        assert sorted(os.listdir(ro)) == ["x.tar"]
        assert os.path.exists(cache_path(str(ro / "x.tar")))
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
