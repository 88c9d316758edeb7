"""Integrity under crashes: writers SIGKILLed in a subprocess never leave a trusted wrong answer.

Each kill loop starts a writer process that overwrites the same data again and again, kills it at
a random moment, and checks what a reader sees then. ``ATDATA_KILL_LOOPS`` raises the number of
kills (the default keeps the unit suite quick).
"""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import textwrap
import time

import pytest

import atdata
from atdata import DataNotFoundError, IntegrityError

pytest.importorskip("pyarrow")

LOOPS = int(os.environ.get("ATDATA_KILL_LOOPS", "8"))

# Every pass writes the same keys and byte sizes; only the values of `flag` and `v` alternate,
# so a manifest of the previous pass describes a shard of exactly the same size.
_OVERWRITER = textwrap.dedent(
    """
    import sys
    import atdata

    out = sys.argv[1]
    k = int(sys.argv[2])
    while True:
        flag = k % 2
        rows = [{"flag": flag, "v": 10 * flag + i} for i in range(10)]
        atdata.write_samples(rows, out, key="index", manifest=True, fsync=False, progress=False)
        if k == int(sys.argv[2]):
            print("ready", flush=True)
        k += 1
    """
)


def _run_until_killed(script: str, args: list[str], rng: random.Random) -> None:
    p = subprocess.Popen(
        [sys.executable, "-c", script, *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        line = p.stdout.readline()  # type: ignore[union-attr]
        assert line.strip() == "ready", p.stderr.read()  # type: ignore[union-attr]
        time.sleep(rng.uniform(0.0, 0.25))
    finally:
        p.send_signal(signal.SIGKILL)
        p.wait()


def test_killed_overwrite_never_returns_samples_failing_the_query(tmp_path):
    out = tmp_path / "data.tar"
    atdata.write_samples([{"flag": 0, "v": i} for i in range(10)], out, key="index", manifest=True)
    rng = random.Random(1234)
    outcomes = {"correct": 0, "refused": 0}
    for n in range(LOOPS):
        _run_until_killed(_OVERWRITER, [str(out), str(n)], rng)
        ds = atdata.Dataset(str(out))
        try:
            got = [(s["flag"], s["v"]) for s in ds.query(lambda df: df["flag"] == 1).samples]
        except (IntegrityError, DataNotFoundError) as exc:  # a clear error naming the fix
            assert "atdata manifest build" in str(exc)
            outcomes["refused"] += 1
            continue
        truth = [(s["flag"], s["v"]) for s in ds.ordered() if s["flag"] == 1]
        assert got == truth  # never a sample that fails the predicate, never one missed
        outcomes["correct"] += 1
    assert sum(outcomes.values()) == LOOPS
    print(f"kill loop (overwrite with manifests): {outcomes}")


def _flip_in_place(path: str, needle: bytes, keep_stamp: bool) -> None:
    st = os.stat(path)
    with open(path, "rb") as f:
        data = f.read()
    pos = data.index(needle)
    with open(path, "r+b") as f:
        f.seek(pos)
        f.write(bytes([needle[0] ^ 0x02]))
    if keep_stamp:  # bit rot: same size, same mtime, same inode
        os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns))


def _text_shard(tmp_path, name="t.tar"):
    rows = [{"text": "a" * 40 + str(i), "i": i} for i in range(5)]
    return atdata.write_samples(rows, tmp_path / name, key="index", manifest=True)


@pytest.mark.parametrize("keep_stamp", [True, False])
def test_verify_catches_a_flipped_payload_byte(tmp_path, keep_stamp):
    from atdata.cli import main
    from atdata.manifest._read import verify_manifest

    ds = _text_shard(tmp_path)
    shard = ds.list_shards()[0]
    _flip_in_place(shard, b"aaaa", keep_stamp)
    problems = verify_manifest(shard)
    assert len(problems) == 1 and "does not match the sha256" in problems[0]
    assert "t.manifest.json" in problems[0]
    reps = atdata.Dataset(shard).verify()
    assert [r["ok"] for r in reps] == [False]
    assert "checksum mismatch for shard" in reps[0]["error"]
    assert "t.manifest.json records" in reps[0]["error"]
    assert reps[0]["samples"] == 0
    assert main(["verify", shard]) == 1
    assert main(["manifest", "verify", shard]) == 1
    if not keep_stamp:  # a changed stamp makes every use hash the shard: queries refuse too
        with pytest.raises(IntegrityError, match=r"t\.manifest\.json is stale"):
            atdata.Dataset(shard).query("i > 1")


def test_verify_ok_stays_ok_and_copies_are_hashed_once(tmp_path, monkeypatch):
    import shutil

    from atdata.manifest import _fresh
    from atdata.manifest._read import verify_manifest

    ds = _text_shard(tmp_path)
    shard = ds.list_shards()[0]
    assert verify_manifest(shard) == []
    assert [r["ok"] for r in atdata.Dataset(shard).verify()] == [True]
    copy = tmp_path / "copy"
    copy.mkdir()
    for f in os.listdir(tmp_path):
        if f.startswith("t."):
            shutil.copy(tmp_path / f, copy / f)  # new inode and mtime: the stamp differs
    hashed = []
    real = _fresh.file_sha256
    monkeypatch.setattr(_fresh, "file_sha256", lambda p: hashed.append(p) or real(p))
    c = str(copy / "t.tar")
    assert atdata.Dataset(c).query("i >= 3").list_keys() == ["00000003", "00000004"]
    assert atdata.Dataset(c).query("i < 1").list_keys() == ["00000000"]
    _fresh._memo.clear()  # a new process: the persisted record still spares the hash
    assert atdata.Dataset(c).query("i < 2").list_keys() == ["00000000", "00000001"]
    assert hashed == [c]


def test_replaced_shard_of_equal_size_is_stale_even_with_its_old_mtime(tmp_path):
    a = _text_shard(tmp_path, "a.tar").list_shards()[0]
    rows = [{"text": "b" * 40 + str(i), "i": 9 - i} for i in range(5)]
    other = tmp_path / "o"
    b = atdata.write_samples(rows, other / "a.tar", key="index").list_shards()[0]
    assert os.path.getsize(a) == os.path.getsize(b)
    st = os.stat(a)
    os.replace(b, a)
    os.utime(a, ns=(st.st_atime_ns, st.st_mtime_ns))
    with pytest.raises(
        IntegrityError, match=r"a\.manifest\.json is stale: shard .* is not the file"
    ):
        atdata.Dataset(a).query("i > 5")
    assert len(atdata.Dataset(a)) == 5  # len falls back to a header scan, never fails


def test_overwriting_a_shard_removes_its_old_manifest_first(tmp_path):
    shard = _text_shard(tmp_path).list_shards()[0]
    atdata.write_samples([{"text": "z", "i": 1}], shard, key="index")  # no manifest this time
    assert not os.path.exists(tmp_path / "t.manifest.json")
    assert not os.path.exists(tmp_path / "t.manifest.parquet")
    with pytest.raises(DataNotFoundError, match="atdata manifest build"):
        atdata.Dataset(shard).query("i = 1")


_INDEX_WRITER = textwrap.dedent(
    """
    import sys
    import atdata

    idx = atdata.Index(path=sys.argv[1])
    k = int(sys.argv[2])
    first = True
    while True:
        rows = [{"i": i, "k": k} for i in range(12)]
        idx.write_samples(rows, name="d", maxcount=4, manifest=True, write_id=f"w{k}")
        if first:
            print("ready", flush=True)
            first = False
        k += 1000
    """
)


def test_killed_index_writes_never_leave_a_manifest_without_its_shard(tmp_path):
    db = str(tmp_path / "index.db")
    rng = random.Random(99)
    for n in range(max(4, LOOPS // 2)):
        _run_until_killed(_INDEX_WRITER, [db, str(n)], rng)
        store = tmp_path / "data"
        orphans = []
        for root, dirs, files in os.walk(store):
            dirs[:] = [d for d in dirs if d != ".staging"]
            for f in files:
                if f.endswith(".manifest.json") and not f.startswith("."):
                    shard = os.path.join(root, f[: -len(".manifest.json")] + ".tar")
                    if not os.path.exists(shard):
                        orphans.append(shard)
        assert orphans == []
    from atdata.index._gc import collect, find_leftovers

    idx = atdata.Index(path=db)
    entries = idx.list_datasets()
    assert len(entries) >= max(4, LOOPS // 2)
    left = find_leftovers(idx, min_age=0)
    rep = collect(idx, min_age=0)
    assert rep.bytes == sum(x.size for x in left) and len(rep.removed) == len(left)
    assert find_leftovers(idx, min_age=0) == []
    for e in entries:  # every committed entry still reads and verifies after the gc
        ds = idx.open_dataset(e.name, e.version)
        assert len(ds) == 12 and all(r["ok"] for r in ds.verify())
    print(f"kill loop (index writes): {len(entries)} entries, gc removed {len(left)} items")
