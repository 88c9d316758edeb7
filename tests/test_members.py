"""Compact member indexes: packed keys, integer arrays and the hashed key lookup."""

from __future__ import annotations

import io
import os
import pickle

from hypothesis import given, settings
from hypothesis import strategies as st

import atdata
from atdata._shards import compact, members
from atdata._shards.compact import KeyLookup, MemberKeys, ShardIndex, compact_ints

_keys = st.text(alphabet=st.characters(blacklist_categories=("Cs",)), max_size=6)


@settings(deadline=None)
@given(st.lists(_keys, max_size=40))
def test_member_keys_round_trip(keys: list[str]) -> None:
    packed = MemberKeys(keys)
    assert list(packed) == keys
    assert [packed[i] for i in range(len(keys))] == keys
    assert [packed[-i] for i in range(1, len(keys) + 1)] == [
        keys[-i] for i in range(1, len(keys) + 1)
    ]
    assert packed[1:3] == keys[1:3]
    assert packed == keys and len(packed) == len(keys)
    assert pickle.loads(pickle.dumps(packed)) == keys


def _first(parts: list[list[str]]) -> dict[str, tuple[int, int]]:
    out: dict[str, tuple[int, int]] = {}
    for p, ks in enumerate(parts):
        for j, k in enumerate(ks):
            out.setdefault(k, (p, j))
    return out


@settings(max_examples=60, deadline=None)
@given(st.lists(st.lists(_keys, max_size=30), max_size=4), st.lists(_keys, max_size=5))
def test_key_lookup_finds_first_occurrence(parts: list[list[str]], probes: list[str]) -> None:
    look = KeyLookup(parts)
    want = _first(parts)
    for key in [*want, *probes]:
        assert look.find(key) == want.get(key)


def test_key_lookup_survives_hash_collisions(monkeypatch) -> None:
    monkeypatch.setattr(compact, "_key_hash", lambda k: len(k) % 2)  # two hash values in all
    parts = [["aa", "b", "cc"], ["b", "dd", "e", "aa"]]
    look = KeyLookup(parts)
    assert [look.find(k) for k in ("aa", "b", "cc", "dd", "e", "zz", "z")] == [
        (0, 0),
        (0, 1),
        (0, 2),
        (1, 1),
        (1, 2),
        None,
        None,
    ]


def test_lookup_is_rebuilt_after_pickling() -> None:
    look = pickle.loads(pickle.dumps(KeyLookup([["x", "y"], ["z"]])))
    assert look.find("z") == (1, 0) and look.find("y") == (0, 1)


def test_compact_ints_width() -> None:
    assert compact_ints([1, 2, 0xFFFFFFFF]).itemsize == 4
    assert list(compact_ints([1, 1 << 40])) == [1, 1 << 40]
    assert compact_ints([-1]).typecode == "q" and compact_ints([]).itemsize == 4


def test_shard_index_is_compact_and_equivalent(tmp_path) -> None:
    ds = atdata.write_samples(
        [{"x": i} for i in range(2000)], os.path.join(tmp_path, "a.tar"), key="index"
    )
    idx = members.load_index(ds.list_shards()[0], ds.source, persist=False)
    assert isinstance(idx.keys, MemberKeys) and idx.offsets.itemsize == 4
    assert idx.sizes.itemsize == 4 and idx.keys.nbytes() == 2000 * 12
    assert idx.position("00001999") == 1999 and idx.position("nope") is None
    assert idx.as_dict()["00000001"] == (idx.offsets[1], idx.sizes[1])
    again = pickle.loads(pickle.dumps(idx))
    assert list(again.keys) == list(idx.keys) and again.position("00000007") == 7
    assert ShardIndex(["a"], [512], [3]).as_dict() == {"a": (512, 3)}


def test_get_and_locate_first_shard_wins(tmp_path) -> None:
    a = os.path.join(tmp_path, "s-0.tar")
    b = os.path.join(tmp_path, "s-1.tar")
    atdata.write_samples([{"x": i} for i in range(3)], a, key="index")
    atdata.write_samples([{"x": 10 + i} for i in range(5)], b, key="index")
    ds = atdata.Dataset(os.path.join(tmp_path, "s-{0..1}.tar"))
    assert ds.get("00000002")["x"] == 2 and ds.get("00000004")["x"] == 14
    assert ds.locate("00000004").shard.endswith("s-1.tar")
    assert [ds[i]["x"] for i in (0, 3, 7, -1)] == [0, 10, 14, 14]


def _persisted(shard: str, body: str, count: int | None = None) -> ShardIndex | None:
    st = os.stat(shard)
    n = body.count("\n") if count is None else count
    path = shard + ".test-idx"
    with open(path, "w", encoding="utf-8") as f:
        f.write(f"atdata-idx 1 {st.st_size} {st.st_mtime_ns} {n}\n{body}")
    return members._read_persisted(path, st, shard)


def test_persisted_index_parses_plain_and_tabbed_keys_alike(tmp_path) -> None:
    import tarfile

    shard = str(tmp_path / "t.tar")
    names = ["a\tb", "x y", "plain"]
    with tarfile.open(shard, "w", format=tarfile.PAX_FORMAT) as tf:
        for n in names:
            data = b"\x80"  # an empty msgpack map
            info = tarfile.TarInfo(n + ".msgpack")
            info.size = len(data)
            tf.addfile(info, io.BytesIO(data))
    built = members.load_index(shard, atdata.URLSource(shard), persist=False)
    assert list(built.keys) == names
    lines = "".join(
        f"{k}\t{o}\t{s}\n" for k, o, s in zip(built.keys, built.offsets, built.sizes, strict=True)
    )
    got = _persisted(shard, lines)  # a key with a tab: the line-by-line parse
    assert got is not None and list(got.keys) == names and list(got.offsets) == list(built.offsets)
    plain = lines.split("\n", 1)[1]  # without the tabbed key the index leaves a sample out
    assert _persisted(shard, plain) is None


def test_persisted_index_rejects_misaligned_or_huge_numbers(tmp_path) -> None:
    ds = atdata.write_samples(
        [{"x": i} for i in range(3)], os.path.join(tmp_path, "a.tar"), key="index"
    )
    shard = ds.list_shards()[0]
    idx = members.load_index(shard, ds.source, persist=False)
    good = "".join(
        f"{k}\t{o}\t{s}\n" for k, o, s in zip(idx.keys, idx.offsets, idx.sizes, strict=True)
    )
    got = _persisted(shard, good)
    assert got is not None and list(got.keys) == list(idx.keys)
    assert list(got.sizes) == list(idx.sizes)
    k = list(idx.keys)
    o, s = list(idx.offsets), list(idx.sizes)
    shifted = (
        f"{k[0]}\t{o[0]}\t{s[0]}\t{k[1]}\n{o[1]}\t{s[1]}\n{k[2]}\t{o[2]}\t{s[2]}\n"  # tabs moved
    )
    assert _persisted(shard, shifted) is None
    huge = good.replace(f"\t{o[1]}\t", f"\t{1 << 70}\t")
    assert _persisted(shard, huge) is None
    past = good.replace(f"\t{o[1]}\t", f"\t{(1 << 62) - 512 * 3}\t")
    assert _persisted(shard, past) is None
    assert _persisted(shard, good, count=4) is None
    assert _persisted(shard, good.rstrip("\n")) is None
