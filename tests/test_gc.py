"""What killed or interrupted writers leave: ``atdata local gc`` / ``local status`` (with a real
SQLite index), Ctrl-C during ``Index.write_samples``, and unwritable or full targets."""

from __future__ import annotations

import errno
import os

import pytest

import atdata
from atdata.cli import main as cli_main
from atdata.index._gc import collect, find_leftovers, staging_lock


@pytest.fixture()
def index(tmp_path):
    idx = atdata.Index(path=str(tmp_path / "index.db"))
    yield idx
    idx.close()


def _plant(index, tmp_path):
    """A dead writer's staging dir, temp files beside stored shards, and a committed entry."""
    e = index.write_samples([{"i": i} for i in range(6)], name="keep", maxcount=3, manifest=True)
    root = str(index.write_store.root)
    dead = os.path.join(root, ".staging", "deadbeef")
    os.makedirs(dead)
    with open(os.path.join(dead, "keep-000000.tar"), "wb") as f:
        f.write(b"x" * 1000)
    shard_dir = os.path.dirname(e.shards[0].url)
    temps = {
        os.path.join(shard_dir, ".keep-000000.tar.tmp-1234-abcdef12"): 300,
        os.path.join(shard_dir, ".keep-000000.manifest.json.tmp-0badf00d"): 20,
    }
    for p, n in temps.items():
        with open(p, "wb") as f:
            f.write(b"y" * n)
    return e, dead, temps


def test_gc_removes_leftovers_reports_bytes_and_keeps_referenced_shards(index, tmp_path, capsys):
    _e, dead, temps = _plant(index, tmp_path)
    # a dataset registered under a name that looks like a temp file is still never touched
    odd = tmp_path / "ext"
    ds = atdata.write_samples([{"i": 1}], odd / "x.tar", key="index")
    hidden = str(odd / ".x.tar.tmp-1-aa")
    os.replace(ds.list_shards()[0], hidden)
    os.replace(hidden, str(index.write_store.root) + "/.x.tar.tmp-1-aa")
    kept = str(index.write_store.root) + "/.x.tar.tmp-1-aa"
    index.insert_dataset(atdata.Dataset(kept), name="odd")
    found = {lo.path: lo.size for lo in find_leftovers(index, min_age=0)}
    assert found == {dead: 1000, **temps, kept: os.path.getsize(kept)}
    db = str(tmp_path / "index.db")
    assert cli_main(["local", "status", "--index", db]) == 0
    out = capsys.readouterr().out
    assert "left by killed writers: 4" in out and dead in out
    assert cli_main(["local", "gc", "--index", db, "--dry-run"]) == 0
    assert os.path.exists(dead)
    assert cli_main(["local", "gc", "--index", db, "--min-age", "0"]) == 0
    out = capsys.readouterr().out
    assert "removed 3 item(s), 1320 bytes" in out
    assert f"kept {kept}" in out
    assert not os.path.exists(dead) and not any(os.path.exists(p) for p in temps)
    assert os.path.exists(kept)
    for name in ("keep", "odd"):
        got = index.open_dataset(name)
        assert all(rep["ok"] for rep in got.verify())
    assert [s["i"] for s in index.open_dataset("keep").ordered()] == list(range(6))


def test_gc_leaves_young_temp_files_and_locked_staging_dirs(index, tmp_path):
    _e, dead, temps = _plant(index, tmp_path)
    with staging_lock(dead):  # a live writer holds it
        assert collect(index, min_age=3600).removed == []
        rep = collect(index, min_age=0)
        assert sorted(lo.path for lo in rep.removed) == sorted(temps)
        assert os.path.exists(dead)
    assert [lo.path for lo in collect(index, min_age=0).removed] == [dead]


class _Interrupt(Exception):
    pass


def _rows_then(exc: BaseException, n: int = 5):
    for i in range(n):
        yield {"i": i}
    raise exc


def test_ctrl_c_keeps_staging_and_the_write_id_resume_completes(index):
    with pytest.raises(KeyboardInterrupt):
        index.write_samples(_rows_then(KeyboardInterrupt()), name="r", maxcount=2, write_id="job")
    left = find_leftovers(index, min_age=0)
    assert [lo.kind for lo in left] == ["staging"]
    assert sorted(os.listdir(left[0].path)) == [".lock", "r-000000.tar", "r-000001.tar"]
    assert index.list_datasets() == []
    e = index.write_samples(({"i": i} for i in range(5)), name="r", maxcount=2, write_id="job")
    assert (e.num_samples, len(index.list_datasets())) == (5, 1)
    assert collect(index, min_age=0).bytes > 0
    assert find_leftovers(index, min_age=0) == []
    # an ordinary error still cleans its staging directory
    with pytest.raises(ValueError):
        index.write_samples(_rows_then(ValueError("bad row")), name="r2", write_id="job2")
    assert find_leftovers(index, min_age=0) == []


def test_unwritable_target_is_a_storage_error_naming_the_path(tmp_path):
    (tmp_path / "file").write_text("x")
    with pytest.raises(atdata.StorageError, match=r"cannot write shard .*file/a\.tar") as ei:
        atdata.write_samples([{"i": 1}], tmp_path / "file" / "a.tar")
    assert isinstance(ei.value, OSError)


def test_read_only_directory_is_a_storage_error_naming_the_path(tmp_path):
    ro = tmp_path / "ro"
    ro.mkdir()
    os.chmod(ro, 0o555)
    try:
        if os.access(ro, os.W_OK):
            pytest.skip("running as a user that can write anywhere")
        with pytest.raises(atdata.StorageError, match=r"cannot write shard .*ro/a\.tar") as ei:
            atdata.write_samples([{"i": 1}], ro / "a.tar")
        assert isinstance(ei.value, OSError)
    finally:
        os.chmod(ro, 0o755)


def test_full_disk_is_a_storage_error_naming_the_shard(tmp_path, monkeypatch):
    from atdata._shards import writer

    real = writer._HashingFile.write

    def full(self, b):
        if self.size > 2000:
            raise OSError(errno.ENOSPC, "No space left on device")
        real(self, b)

    monkeypatch.setattr(writer._HashingFile, "write", full)
    with pytest.raises(
        atdata.StorageError, match=r"cannot write shard .*big\.tar: the disk is full"
    ):
        atdata.write_samples([{"i": i} for i in range(20)], tmp_path / "big.tar")
    assert os.listdir(tmp_path) == []  # no half-written shard, no temp file


def test_store_without_room_for_staging_is_a_storage_error(tmp_path):
    blocker = tmp_path / "store-is-a-file"
    blocker.write_text("x")
    idx = atdata.Index(path=str(tmp_path / "i.db"), data_store=atdata.LocalDiskStore(blocker))
    with pytest.raises(
        atdata.StorageError, match=r"cannot create a staging directory .*store-is-a-file"
    ):
        idx.write_samples([{"i": 1}], name="n")
    idx.close()


def _losing_run(index, name="ds", write_id="job"):
    """Two runs of one write_id with other samples: the second commits while the first is
    still writing, so the first stores its shards beside the entry's and raises."""

    def rows_b():
        index.write_samples(
            [{"i": i} for i in range(4)], name=name, write_id=write_id, maxcount=2, manifest=True
        )
        yield from ({"i": 100 + i} for i in range(6))

    with pytest.raises(atdata.IntegrityError, match="another run with this write_id"):
        index.write_samples(rows_b(), name=name, write_id=write_id, maxcount=2, manifest=True)
    entry = index.get_dataset(name)
    kept = os.path.dirname(entry.shards[0].url)
    wdir = os.path.dirname(kept)
    (loser,) = [os.path.join(wdir, d) for d in os.listdir(wdir) if os.path.join(wdir, d) != kept]
    return entry, loser


def test_gc_collects_the_shards_of_a_losing_write_id_run(index, tmp_path, capsys):
    entry, loser = _losing_run(index)
    names = [
        f"ds-00000{i}{x}" for i in range(3) for x in (".manifest.json", ".manifest.parquet", ".tar")
    ]
    assert sorted(os.listdir(loser)) == names
    # another name's entry indexes shard 0 where it is, and upstream's tables shard 1
    index.add_entry(atdata.Dataset(os.path.join(loser, "ds-000000.tar")), name="borrowed")
    from atdata.index import DatasetEntry, ShardRef
    from atdata.providers import _sqlite_legacy

    up = DatasetEntry("upstream-ds", shards=[ShardRef(os.path.join(loser, "ds-000001.tar"))])
    with index.provider._transaction() as conn:
        _sqlite_legacy.mirror_entry(conn, up)
    assert "upstream-ds" in {e.name for e in index.list_datasets()}
    gone = [os.path.join(loser, n) for n in names[6:]]
    assert find_leftovers(index, min_age=3600) == []  # young: a live writer may own them
    found = find_leftovers(index, min_age=0)
    assert sorted((lo.path, lo.kind) for lo in found) == [(p, "orphan") for p in gone]
    db = str(tmp_path / "index.db")
    assert cli_main(["local", "gc", "--index", db]) == 0  # default min age: nothing yet
    assert all(os.path.exists(p) for p in gone)
    assert cli_main(["local", "gc", "--index", db, "--dry-run", "--min-age", "0"]) == 0
    out = capsys.readouterr().out
    assert f"would remove orphan {gone[2]}" in out and all(os.path.exists(p) for p in gone)
    rep = collect(index, min_age=0)
    assert sorted(lo.path for lo in rep.removed) == gone
    assert rep.bytes == sum(lo.size for lo in found) > 0
    assert sorted(os.listdir(loser)) == names[:6]
    assert [s["i"] for s in index.open_dataset("ds").ordered()] == [0, 1, 2, 3]
    assert all(r["ok"] for r in index.open_dataset("ds").verify())
    assert [s["i"] for s in index.open_dataset("borrowed").ordered()] == [100, 101]
    assert find_leftovers(index, min_age=0) == []
    assert index.get_dataset("ds") == entry


def test_gc_takes_a_whole_losing_run_and_nothing_outside_entries_write_dirs(index):
    _entry, loser = _losing_run(index)
    expected = sorted(os.path.join(loser, n) for n in os.listdir(loser))
    other = index.write_samples([{"i": 7}], name="other", write_id="job-2")
    stray = os.path.join(index.write_store.root, "mine", "job", "x.tar")  # no entry's directory
    os.makedirs(os.path.dirname(stray))
    with open(stray, "wb") as f:
        f.write(b"z" * 10)
    rep = collect(index, min_age=0)
    assert sorted(lo.path for lo in rep.removed) == expected
    assert not os.path.exists(loser)  # emptied, so removed
    assert os.path.exists(stray) and os.path.exists(other.shards[0].url)
    assert [s["i"] for s in index.open_dataset("other").ordered()] == [7]
    assert [s["i"] for s in index.open_dataset("ds").ordered()] == [0, 1, 2, 3]
