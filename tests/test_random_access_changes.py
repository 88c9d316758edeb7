"""Random access (``ds[i]``, ``get``, ``select``, ``subset``, local ``shuffled``) over a local
shard that is rewritten, replaced or removed after the dataset read it: the same samples are
read from the new file, anything else is refused naming the shard; never the old file's bytes,
never the new file at the old offsets."""

from __future__ import annotations

import os
import pickle

import pytest

import atdata
from atdata._shards import members


def _write(path, ids, wide=False):
    """A shard of samples ``{"i": i, "s": ...}`` keyed ``k<i>``; ``wide`` makes payloads longer
    (from 1 to 600 bytes more each: the samples move to other offsets)."""
    rows = [{"i": i, "s": ("y" * 600 if wide else "x") * (1 + i % 3)} for i in ids]
    atdata.write_samples(rows, str(path), key=lambda r, n: f"k{r['i']:04d}", fsync=False)
    return path


def _replace(path, ids, wide=False, in_place=False, edit=None):
    """Put a new shard of ``ids`` at ``path`` (its bytes through ``edit``) with the old one's
    mtime, renamed over it or written into the same inode; returns ``(old size, new size)``."""
    st = os.stat(path)
    new = _write(path.with_name("new.tar"), ids, wide)
    data = new.read_bytes()
    if edit is not None:
        data = edit(data)
    if in_place:
        new.unlink()
        with open(path, "r+b") as f:
            f.write(data)
            f.truncate()
    else:
        new.write_bytes(data)
        os.replace(new, path)
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns))
    after = os.stat(path)
    assert after.st_mtime_ns == st.st_mtime_ns
    assert (after.st_ino == st.st_ino) == in_place
    return st.st_size, after.st_size


@pytest.fixture(params=["warm", "cold", "pickled"])
def fdcache(request):
    """How the dataset holds the shard's file at the second read: ``warm``, its descriptor still
    open (the next read comes at once: no check of the path is due); ``cold``, descriptors
    closed (as when more than 256 shards are open); ``pickled``, a copy in another process."""

    def settle(ds):
        if request.param == "cold":
            ds._shared.fds.close()
        elif request.param == "pickled":
            ds = pickle.loads(pickle.dumps(ds))
        return ds

    return settle


def test_same_samples_at_new_offsets_are_read_from_the_new_file(tmp_path, fdcache):
    # warm: the old file's bytes came back through the kept descriptor; cold/pickled: the new
    # file was read at the old offsets ('payload is not valid msgpack' or another sample's bytes)
    path = _write(tmp_path / "s.tar", range(8))
    ds = atdata.Dataset(str(path))
    assert [ds[i]["s"] for i in (0, 5)] == ["x", "xxx"]
    sizes = _replace(path, range(8), wide=True)
    assert sizes[0] != sizes[1]
    ds = fdcache(ds)
    assert ds[5]["s"] == "y" * 1800
    assert ds.get("k0001")["s"] == "y" * 1200
    assert [s["i"] for s in ds.select([7, 2])] == [7, 2]
    assert [len(s["s"]) for s in ds.subset([3, 4])] == [600, 1200]
    assert sorted(s["i"] for s in ds.shuffled(seed=1)) == list(range(8))
    assert len(ds) == 8


def _x_to_z(data):
    """The payloads' strings "x", "xx", "xxx" (msgpack fixstr) made "z", "zz", "zzz"."""
    for n in (1, 2, 3):
        data = data.replace(bytes([0xA0 + n]) + b"x" * n, bytes([0xA0 + n]) + b"z" * n)
    return data


@pytest.mark.parametrize("in_place", [False, True])
def test_same_size_same_keys_new_values_are_read_from_the_new_file(tmp_path, fdcache, in_place):
    # a file of the same size and mtime holding the same keys with other values (renamed over:
    # the old values came back through the kept descriptor)
    path = _write(tmp_path / "s.tar", range(8))
    ds = atdata.Dataset(str(path))
    assert ds[3]["s"] == "x"
    old, new = _replace(path, range(8), in_place=in_place, edit=_x_to_z)
    assert old == new
    ds = fdcache(ds)
    assert [ds[i]["s"] for i in range(3)] == ["z", "zz", "zzz"]


@pytest.mark.parametrize("in_place", [False, True])
def test_other_keys_in_a_file_of_the_same_size_are_refused(tmp_path, fdcache, in_place):
    # same size, same mtime, same layout, other keys: ds.get('k0003') returned sample k0103
    # (cold) or the old file's sample (warm)
    path = _write(tmp_path / "s.tar", range(8))
    ds = atdata.Dataset(str(path))
    assert ds.get("k0003")["i"] == 3
    old, new = _replace(path, range(100, 108), in_place=in_place)
    assert old == new
    ds = fdcache(ds)
    msg = (
        rf"shard {path} changed after this dataset indexed it \(sample 0 was 'k0000', is "
        r"'k0100' now\).*open the dataset again"
    )
    for _ in range(2):  # (refused again, without a second scan of the same file)
        with pytest.raises(atdata.ShardError, match=msg):
            ds.get("k0003")
        with pytest.raises(atdata.ShardError, match=msg):
            ds[4]
    with pytest.raises(atdata.ShardError, match=msg):
        list(ds.select([1]))
    assert [s["i"] for s in atdata.Dataset(str(path))] == list(range(100, 108))  # reopened


def test_a_shard_with_other_samples_is_refused_naming_the_counts(tmp_path, fdcache):
    path = _write(tmp_path / "s.tar", range(8))
    ds = atdata.Dataset(str(path))
    assert ds[7]["i"] == 7
    _replace(path, range(9))
    ds = fdcache(ds)
    with pytest.raises(
        atdata.ShardError, match=rf"shard {path} changed .*\(8 samples then, 9 now\)"
    ):
        ds[7]


def test_a_removed_shard_is_not_found(tmp_path, fdcache):
    # warm: the removed file's samples were still served through the kept descriptor
    path = _write(tmp_path / "s.tar", range(8))
    ds = atdata.Dataset(str(path))
    assert ds[2]["i"] == 2
    path.unlink()
    ds = fdcache(ds)
    for read in (lambda: ds[2], lambda: ds.get("k0004"), lambda: list(ds.select([0]))):
        with pytest.raises(atdata.DataNotFoundError, match=rf"shard not found: {path}"):
            read()


def test_other_shards_are_still_read(tmp_path, fdcache):
    a = _write(tmp_path / "a.tar", range(4))
    b = _write(tmp_path / "b.tar", range(4, 8))
    ds = atdata.Dataset([str(a), str(b)])
    assert [ds[i]["i"] for i in (0, 7)] == [0, 7]
    _replace(b, range(104, 108))
    ds = fdcache(ds)
    assert [ds[i]["i"] for i in range(4)] == [0, 1, 2, 3]
    with pytest.raises(atdata.ShardError, match=f"shard {b} changed"):
        ds[5]


def test_a_change_made_before_to_torch_is_read_from_the_new_file(tmp_path):
    # the dataset had indexed the shard before it changed; to_torch() noted the new file's size
    # and mtime, so its check passed, and random mode read the new file at the old offsets
    pytest.importorskip("torch")
    path = _write(tmp_path / "s.tar", range(8))
    ds = atdata.Dataset(str(path))
    assert ds[0]["i"] == 0
    _replace(path, range(8), wide=True)
    tds = ds.to_torch(batch_size=4, mode="random")
    got = [
        (int(i), len(t)) for b in tds.loader(num_workers=0) for i, t in zip(b.i, b.s, strict=True)
    ]
    assert got == [(i, 600 * (1 + i % 3)) for i in range(8)]


def test_a_directory_swapped_under_the_shard_is_seen_by_the_path_check(tmp_path, monkeypatch):
    # the open file is untouched (its directory was renamed away, a new one put in its place):
    # only a stat of the path shows it, made at most once a second per shard (not per read)
    path = _write(tmp_path / "data" / "s.tar", range(8))
    ds = atdata.Dataset(str(path))
    assert ds[1]["s"] == "xx"
    (tmp_path / "next").mkdir()
    _write(tmp_path / "next" / "s.tar", range(8), wide=True)
    os.rename(tmp_path / "data", tmp_path / "old")
    os.rename(tmp_path / "next", tmp_path / "data")
    assert ds[1]["s"] == "xx"  # the check of the path is not due yet: the old file, as it is
    late = members._now() + members.RECHECK_NS
    monkeypatch.setattr(members, "_now", lambda: late)
    assert ds[1]["s"] == "y" * 1200
    _replace(path, range(100, 108))
    with pytest.raises(atdata.ShardError, match=f"shard {path} changed after this dataset"):
        ds[1]
